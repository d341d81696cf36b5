// curl as the real client. Returns status, headers and body; never throws on HTTP errors.
// (Headers go to a temp file: curl 7.88 crashes writing --dump-header to /dev/stderr when it is a pipe.)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CurlResult {
  code: number; // curl's exit code
  status: number;
  headers: string;
  body: Buffer;
  stderr: string;
}

export function curl(args: string[], timeoutMs = 30_000): Promise<CurlResult> {
  const dir = mkdtempSync(join(tmpdir(), 'proxyd-curl-'));
  const headerFile = join(dir, 'headers');
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['--silent', '--show-error', '--max-time', String(Math.ceil(timeoutMs / 1000)), '--dump-header', headerFile, ...args],
      { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 },
      (err, stdout, stderr) => {
        let headers = '';
        try {
          headers = readFileSync(headerFile, 'utf8');
        } catch {
          // no response at all
        }
        rmSync(dir, { recursive: true, force: true });
        const statuses = [...headers.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)].map((m) => Number(m[1]));
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          status: statuses.at(-1) ?? 0,
          headers,
          body: stdout,
          stderr: stderr.toString(),
        });
      },
    );
  });
}
