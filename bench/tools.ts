/** Peer tools for the benchmark: installed from Debian when missing (as root), else reported as skipped. */
import { sh, shResult } from '../test/helpers/mount.js';

const PACKAGES: Record<string, string> = { rclone: 'rclone', s3fs: 's3fs', fio: 'fio', ffprobe: 'ffmpeg' };

export async function ensureTools(tools: readonly string[], log: (s: string) => void): Promise<Set<string>> {
  const have = new Set<string>();
  const missing: string[] = [];
  for (const t of tools) {
    if ((await shResult(`command -v ${t}`)).code === 0) have.add(t);
    else missing.push(t);
  }
  if (missing.length && process.getuid?.() === 0 && (await shResult('command -v apt-get')).code === 0) {
    const pkgs = [...new Set(missing.map((t) => PACKAGES[t] ?? t))];
    log(`bench: installing ${pkgs.join(' ')} from Debian…`);
    await shResult(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs.join(' ')} >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs.join(' ')} >/dev/null 2>&1)`);
  }
  for (const t of tools) if ((await shResult(`command -v ${t}`)).code === 0) have.add(t);
  for (const t of tools) if (!have.has(t)) log(`bench: ${t} is not available (not root, or no Debian package): its rows are skipped`);
  return have;
}

/** Seconds of `cmd`. */
export async function timed(cmd: string): Promise<number> {
  const t = process.hrtime.bigint();
  await sh(cmd, { timeoutMs: 1_200_000 });
  return Number(process.hrtime.bigint() - t) / 1e9;
}
