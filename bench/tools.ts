/** Peer tools for the benchmark: installed from Debian when missing (as root), else reported as skipped. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

export interface CpuTimes {
  /** CPU-seconds in user and in system mode. */
  readonly user: number;
  readonly sys: number;
}

/** CPU-seconds process `pid` (all its threads) has used so far, from /proc/<pid>/stat. */
export async function processCpu(pid: number): Promise<CpuTimes> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), counted from field 3: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(await sh('getconf CLK_TCK'));
  return { user: Number(fields[11]) / ticks, sys: Number(fields[12]) / ticks };
}

/** `run()`'s result and the CPU process `pid` used meanwhile. */
export async function withCpu<T>(pid: number, run: () => Promise<T>): Promise<[T, CpuTimes]> {
  const before = await processCpu(pid);
  const result = await run();
  const after = await processCpu(pid);
  return [result, { user: after.user - before.user, sys: after.sys - before.sys }];
}

/** Drop the kernel page cache (root only); false when it could not be dropped. */
export async function dropPageCache(): Promise<boolean> {
  try {
    await writeFile('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

/**
 * The state every timed cold read starts from, the baseline's (curl) and each mount's alike: the page
 * cache dropped (no client keeps pages of an earlier read), then the storage server's files under
 * `serverDir` read back in, so the server serves from memory as it did for the first reads after
 * seeding. Here the server's disk and the clients' cache dirs are one device; a server reading its
 * object from that disk while a client writes its cache to it measures the shared disk, not the
 * client (docs/perf-log.md, 2026-11-29). False when the page cache could not be dropped.
 */
export async function coldStart(serverDir: string): Promise<boolean> {
  const dropped = await dropPageCache();
  await sh(`find ${JSON.stringify(serverDir)} -type f -exec cat {} + > /dev/null`, { timeoutMs: 600_000 });
  return dropped;
}

/** MiB/s of reading `file` sequentially with dd bs=1M (and `flags`, e.g. iflag=direct). */
export async function ddMiBps(file: string, bytes: number, flags = ''): Promise<number> {
  return bytes / 1024 / 1024 / (await timed(`dd if=${JSON.stringify(file)} of=/dev/null bs=1M ${flags} status=none`));
}

/** MiB/s of an O_DIRECT sequential read (dd bs=1M) of a `bytes` file written for it under the temp dir (the cache dir's disk). */
export async function directReadMiBps(bytes: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-disk-'));
  try {
    await sh(`dd if=/dev/zero of=${dir}/f bs=1M count=${Math.ceil(bytes / 1024 / 1024)} status=none && sync`, { timeoutMs: 600_000 });
    await dropPageCache();
    return await ddMiBps(`${dir}/f`, bytes, 'iflag=direct');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** MiB/s of downloading `url` with curl (its own timing, so process start-up is not counted). */
export async function curlMiBps(url: string, bytes: number): Promise<number> {
  const out = await sh(`curl -s -f -o /dev/null -w '%{time_total}' ${JSON.stringify(url)}`, { timeoutMs: 600_000 });
  return bytes / 1024 / 1024 / Number(out.trim());
}

/** IOPS of one fio job of 4 KiB random O_DIRECT reads of `file` for 10 s. */
export async function fioRandomReadIops(file: string): Promise<number> {
  const out = await sh(`fio --name=rand --filename=${JSON.stringify(file)} --readonly --rw=randread --bs=4k --ioengine=psync --direct=1 --runtime=10 --time_based --output-format=json`, { timeoutMs: 120_000 });
  return (JSON.parse(out) as { jobs: { read: { iops: number } }[] }).jobs[0]!.read.iops;
}

/** A peer's FUSE mount (rclone, s3fs) started in the background; resolves once it is mounted. */
export async function foreignMount(cmd: string[], mnt: string, env: Record<string, string> = {}): Promise<{ stop(): Promise<void> }> {
  // Debian's rclone 1.60 fails on AWS_CA_BUNDLE ("unsupported transport"); loopback HTTP needs no CA anyway.
  const { AWS_CA_BUNDLE: _ca, ...base } = process.env;
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore', env: { ...base, ...env } });
  const deadline = Date.now() + 30_000;
  while (!(await isMounted(mnt))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${cmd[0]} did not mount (exit ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    async stop() {
      await sh(`fusermount -uz ${mnt} || true`);
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    },
  };
}

/** MiB/s of a cold sequential read of `file` through a peer's mount started by `cmd` (from coldStart). */
export async function peerColdRead(serverDir: string, cmd: string[], mnt: string, file: string, bytes: number, env: Record<string, string> = {}): Promise<number> {
  await mkdir(mnt, { recursive: true });
  const m = await foreignMount(cmd, mnt, env);
  try {
    await coldStart(serverDir);
    return await ddMiBps(join(mnt, file), bytes);
  } finally {
    await m.stop();
  }
}

/** The trivial in-memory fuse-native FS (trivial-fs.ts) serving one file of `size` bytes, mounted in a child. */
export async function trivialFs(size: number, readaheadKb = 1024): Promise<{ file: string; pid: number; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-trivial-'));
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'trivial-fs.js'), mnt, String(size), String(readaheadKb)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('mounted') && resolve());
    child.once('exit', (c) => reject(new Error(`trivial fs exited ${c}`)));
  });
  return {
    file: join(mnt, 'data.bin'),
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (await isMounted(mnt)) await sh(`fusermount -uz ${mnt}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
