// Run the installed proxyd the way proxyd.service does, as far as a machine without systemd as PID 1
// allows: as an unprivileged user id that owns nothing (what DynamicUser= gives: systemd picks a uid
// from 61184-65519 with no passwd entry), no supplementary groups, no capabilities, no new privileges
// (CapabilityBoundingSet=, NoNewPrivileges=), in the log directory (WorkingDirectory=), with a clean
// environment plus $CREDENTIALS_DIRECTORY when a test gives one (LoadCredential=). setpriv(1) does the
// dropping; it needs root, so the tests that use this are skipped for a non-root run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** The user and group id the service runs as here (in DynamicUser's range, in no passwd file). */
export const SERVICE_UID = 61234;

/** Why the unprivileged run cannot happen on this machine, or false when it can. */
export function cannotDropPrivileges(): string | false {
  if (process.getuid?.() !== 0) return 'needs root, to switch to an unprivileged user with setpriv';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  return false;
}

export interface ServiceRun {
  child: ChildProcess;
  /** What the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** The listening URL, once proxyd printed it; undefined when it exited first. */
  url?: string;
}

/**
 * Start `command args` as SERVICE_UID and wait (at most `timeoutMs`) until proxyd says where it listens
 * or the process exits, whichever comes first.
 */
export async function startAsServiceUser(
  command: string,
  args: string[],
  opts: { cwd: string; credentialsDirectory?: string; timeoutMs?: number },
): Promise<ServiceRun> {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    // Every proxy a test starts dials loopback only (worker/guarded-lookup.ts).
    PROXYD_TEST_HOOKS: '1',
  };
  if (opts.credentialsDirectory) env.CREDENTIALS_DIRECTORY = opts.credentialsDirectory;
  const id = String(SERVICE_UID);
  const child = spawn(
    'setpriv',
    ['--reuid', id, '--regid', id, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--', command, ...args],
    { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let ended = false;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      ended = true;
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const listening = /proxyd listening on (https?:\/\/127\.0\.0\.1:\d+)/;
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  while (!listening.test(out) && !ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return { child, stdout: () => out, stderr: () => err, exited, url: listening.exec(out)?.[1] };
}

/** SIGTERM, then SIGKILL if it has not ended within `graceMs`; resolves with the exit code or signal. */
export async function stopRun(run: ServiceRun, graceMs = 15_000): Promise<number | string> {
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
  const result = await run.exited;
  clearTimeout(timer);
  return result;
}
