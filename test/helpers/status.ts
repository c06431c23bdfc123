/**
 * `assetfs status --json` of the daemon whose cache dir is `cacheDir`. The control socket comes up
 * just after the mount (src/daemon/run.ts): until it answers, this asks again, then fails saying why.
 */
import { join } from 'node:path';
import { BIN, shResult, until } from './mount.js';

export async function daemonStatus<T = Record<string, unknown>>(cacheDir: string): Promise<T> {
  let out: { code: number; stdout: string; stderr: string } | undefined;
  await until(async () => {
    out = await shResult(`node ${BIN} status --json --socket ${join(cacheDir, 'control.sock')}`);
    return out.code === 0 || !/no running assetfs daemon answers/.test(out.stderr);
  }, 'the control socket', 30_000, 100);
  if (out!.code !== 0) throw new Error(`assetfs status failed (${out!.code}): ${out!.stderr}`);
  return JSON.parse(out!.stdout) as T;
}
