/** Peer tools for the benchmark: installed from Debian when missing (as root), else reported as skipped. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMounted, ROOT, sh, shResult } from '../test/helpers/mount.js';

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

/** The trivial in-memory fuse-native FS (trivial-fs.ts) serving one file of `size` bytes, mounted in a child. */
export async function trivialFs(size: number): Promise<{ file: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-trivial-'));
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'trivial-fs.js'), mnt, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('mounted') && resolve());
    child.once('exit', (c) => reject(new Error(`trivial fs exited ${c}`)));
  });
  return {
    file: join(mnt, 'data.bin'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (await isMounted(mnt)) await sh(`fusermount -uz ${mnt}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
