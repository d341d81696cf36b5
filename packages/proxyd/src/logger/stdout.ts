// Where the logger's readable lines go: stdout, written straight from the logger thread.
import fs from 'node:fs';

/**
 * A write stream on fd 1, or undefined when fd 1 is /dev/null (a service with StandardOutput=null, a
 * benchmark): nobody can read those lines, so the logger does not make them — the JSON file still gets
 * every record. (Measured: making the readable lines was up to a third of the logger's time per record.)
 *
 * Why not process.stdout: in a worker thread it posts every write to the primary as a message for it to
 * write out (measured: that hop was a fifth of this thread's time at 10k requests/s); a file stream on
 * fd 1 writes from the libuv pool and batches what queues up (writev). Node keeps stdio pipes and TTYs
 * blocking on Linux, so these writes never see EAGAIN.
 */
export function openStdout(): fs.WriteStream | undefined {
  const testFile = testStdoutFile();
  if (testFile !== undefined) return fs.createWriteStream(testFile, { flags: 'a' });
  if (isDevNull(1)) return undefined;
  return fs.createWriteStream('', { fd: 1, autoClose: false });
}

function isDevNull(fd: number): boolean {
  try {
    const out = fs.fstatSync(fd);
    return out.isCharacterDevice() && out.rdev === fs.statSync('/dev/null').rdev;
  } catch {
    return false; // cannot tell: write the lines
  }
}

/**
 * Test-only: a proxy that a test starts inside its own process (test/helpers/proxy.ts, startTestProxy)
 * shares fd 1 with the test, where tap reads its results; the helper names a file in
 * PROXYD_TEST_STDOUT_FILE, and the readable lines go there instead (the test shows them when it fails).
 * Honoured only together with PROXYD_TEST_HOOKS=1, which only the test helpers set: a real run never
 * takes this path.
 */
function testStdoutFile(): string | undefined {
  if (process.env.PROXYD_TEST_HOOKS !== '1') return undefined;
  const file = process.env.PROXYD_TEST_STDOUT_FILE;
  return file ? file : undefined;
}
