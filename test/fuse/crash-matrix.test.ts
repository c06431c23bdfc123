/**
 * The crash matrix of the write path (docs/semantics.md, "Writes into the mount"): on S3 (s3rver),
 * Nomad and AMS (our emulators), one daemon holds five files at the five points of the write path when
 * it is SIGKILLed:
 *
 *   A  being written      a writer has the file open and has written to it
 *   B  write-back delay   closed, waiting out uploads.writeBack (1 h here)
 *   E  after a rename     written as .E.tmp, closed, renamed to E.bin (rsync's way), waiting
 *   D  before the commit  every part sent; the commit request is held at the storage or platform
 *   C  between parts      part 2 is held at the storage; the others may be confirmed
 *
 * The kill is timed from outside (held requests, a long write-back delay): no hook in the daemon.
 * A restarted daemon must list A as needing attention with its staged copy kept (the writer then
 * writes it again, as a user would), upload B, C, D and E by itself, and end with every remote
 * sha256 equal to what was written, nothing left under <cacheDir>/staging, and `status` clean.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AZURITE_ACCOUNT, s3rverSource, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy, type RequestMatch } from '@assetfs/lab/emulators/fault-proxy.js';
import { AzureBacking, S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { startAmsEmulator, type AmsEmulator } from '@assetfs/lab/emulators/ams/index.js';
import { DEFAULT_NOMAD_USER, startNomadEmulator, type NomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';
import { daemonStatus } from '../helpers/status.js';

const MiB = 1024 * 1024;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

let s3: StorageServer;
let azurite: StorageServer;
let s3Proxy: FaultProxy;
let azureProxy: FaultProxy;
let s3Backing: S3Backing;
let ams: AmsEmulator;
let nomad: NomadEmulator;
let work: string;

interface Status {
  uploads: { active: unknown[]; queued: unknown[]; failed: { remote: string; lastError: string }[]; recent: { remote: string; conflictOf?: string }[]; journal: { lastError?: unknown } };
  writes: { files: number; attention: { path: string; staged: string; reason: string }[] };
}
const status = (_d: MountedDaemon, cacheDir: string) => daemonStatus<Status>(cacheDir);

/** Where each platform's matrix writes, and how its commit and its second part are held. */
interface Platform {
  name: 's3' | 'nomad' | 'ams';
  /** Mount-relative folder under the source; made by `prepare`. */
  dir: string;
  prepare(m: string): Promise<void>;
  /** Holds the commit of `file` (a base name); resolves once it is held. */
  holdCommit(file: string): Promise<void>;
  /** Holds part 2 of `file`; resolves once it is held. */
  holdPart2(file: string): Promise<void>;
}

const partQuery = (n: number) => new RegExp(`[?&]partNumber=${n}(&|$)`);
const proxyHold = (proxy: FaultProxy, match: RequestMatch) => proxy.hold(match).reached;
/** The n-th request `match` accepts (Azure names blocks by opaque ids: count them). */
const nth = (n: number, match: RequestMatch): RequestMatch => {
  let seen = 0;
  return (r) => match(r) && ++seen === n;
};

const PLATFORMS: Platform[] = [
  {
    name: 's3',
    dir: 'crash',
    prepare: (m) => sh(`mkdir -p ${q(join(m, 's3', 'crash'))}`).then(() => undefined),
    holdCommit: (file) => proxyHold(s3Proxy, (r) => r.method === 'POST' && r.path.endsWith(`/${file}`) && /[?&]uploadId=/.test(r.query)),
    holdPart2: (file) => proxyHold(s3Proxy, (r) => r.method === 'PUT' && r.path.endsWith(`/${file}`) && partQuery(2).test(r.query)),
  },
  {
    name: 'nomad',
    dir: 'media-bucket/crash',
    prepare: async () => void nomad.ensurePath('media-bucket/crash'),
    // The commit is Nomad's own call; the parts go to storage through presigned URLs (one file at a time here).
    holdCommit: async () => {
      const before = nomad.server.faults.count();
      nomad.server.faults.add({ kind: 'hang', pathPattern: '/asset/upload/[^/]+/complete$' });
      await until(async () => nomad.server.faults.count() > before, 'the held Nomad commit', 60_000, 50);
    },
    holdPart2: () => proxyHold(s3Proxy, (r) => r.method === 'PUT' && r.path.startsWith('/nomad/') && partQuery(2).test(r.query)),
  },
  {
    name: 'ams',
    dir: 'Crash Matrix',
    prepare: (m) => sh(`mkdir -p ${q(join(m, 'ams', 'Crash Matrix'))}`).then(() => undefined),
    holdCommit: (file) => proxyHold(azureProxy, (r) => r.method === 'PUT' && r.path.endsWith(`/${file}`) && /[?&]comp=blocklist(&|$)/.test(r.query)),
    holdPart2: (file) => proxyHold(azureProxy, nth(2, (r) => r.method === 'PUT' && r.path.endsWith(`/${file}`) && /[?&]comp=block(&|$)/.test(r.query))),
  },
];

beforeAll(async () => {
  [s3, azurite] = await Promise.all([startS3rver({ buckets: ['media', 'nomad'] }), startAzurite()]);
  s3Proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  azureProxy = await startFaultProxy(azurite.url.replace(/\/devstoreaccount1$/, ''));
  s3Backing = new S3Backing(s3.url, s3Proxy.url, 'nomad');
  [ams, nomad] = await Promise.all([
    startAmsEmulator({ azure: new AzureBacking(azurite.url, `${azureProxy.url}/${AZURITE_ACCOUNT}`) }),
    startNomadEmulator({ s3: s3Backing }),
  ]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-crash-'));
}, 120_000);
afterAll(async () => {
  await Promise.allSettled([ams?.close(), nomad?.close()]);
  s3Backing?.close();
  await Promise.allSettled([s3Proxy?.close(), azureProxy?.close()]);
  await Promise.allSettled([s3?.stop(), azurite?.stop()]);
  await rm(work, { recursive: true, force: true });
});

const sources = () => [
  s3rverSource(s3Proxy.url, 'media'),
  { name: 'ams', type: 'ams', restUrl: ams.apiUrl, tokenUrl: ams.tokenUrl, clientId: ams.clientId, clientSecret: ams.clientSecret },
  { name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password },
];

/** A command left running in the background (a writer holding a file open, an fsync waiting). */
function background(cmd: string): ChildProcess {
  const c = spawn('bash', ['-c', cmd], { stdio: 'ignore' });
  c.on('error', () => undefined);
  return c;
}

/** A process that writes `from` into `to` with one descriptor and keeps it open. */
function writer(to: string, from: string): ChildProcess {
  const js = `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'w'); fs.writeSync(fd, fs.readFileSync(process.argv[2])); setTimeout(() => {}, 600000);`;
  const c = spawn(process.execPath, ['-e', js, to, from], { stdio: 'ignore' });
  c.on('error', () => undefined);
  return c;
}

describe.each(PLATFORMS)('SIGKILL at every point of the write path into $name', (p) => {
  it('the restart uploads every closed file, keeps the one being written for attention, and ends clean', async () => {
    const cacheDir = join(work, `cache-${p.name}`);
    const cfg = { cacheDir, sources: sources(), uploads: { writeBack: '1h' } };
    const data = {
      A: deterministicBytes(`A-${p.name}`, 1 * MiB + 11),
      B: deterministicBytes(`B-${p.name}`, 1 * MiB + 22),
      C: deterministicBytes(`C-${p.name}`, 17 * MiB + 33), // three 8 MiB parts
      D: deterministicBytes(`D-${p.name}`, 17 * MiB + 44),
      E: deterministicBytes(`E-${p.name}`, 1 * MiB + 55),
    };
    for (const [k, v] of Object.entries(data)) await writeFile(join(work, `${p.name}-${k}`), v);
    const local = (k: keyof typeof data) => join(work, `${p.name}-${k}`);
    const bg: ChildProcess[] = [];

    const first = await mountDaemon(cfg);
    const at = (d: MountedDaemon, name: string) => join(d.mountpoint, p.name, p.dir, name);
    try {
      await p.prepare(first.mountpoint);
      // A: being written: the writer has written and keeps its only descriptor open (any close of a
      // descriptor, even of a dup in a child process, is a FUSE flush: the file counts as closed).
      bg.push(writer(at(first, 'A.bin'), local('A')));
      await until(async () => (await sh(`stat -c %s ${q(at(first, 'A.bin'))} 2>/dev/null || true`)).trim() === String(data.A.length), 'the writer of A');
      // B: closed, inside the write-back delay. E: the same, after rsync's rename.
      await sh(`cp ${q(local('B'))} ${q(at(first, 'B.bin'))}`);
      await sh(`cp ${q(local('E'))} ${q(at(first, '.E.tmp'))} && mv ${q(at(first, '.E.tmp'))} ${q(at(first, 'E.bin'))}`);
      // D: closed, then an fsync starts its upload, whose commit is held.
      const dHeld = p.holdCommit('D.bin');
      await sh(`cp ${q(local('D'))} ${q(at(first, 'D.bin'))}`);
      bg.push(background(`dd if=/dev/null of=${q(at(first, 'D.bin'))} conv=notrunc,fsync status=none`));
      await dHeld;
      // C: the same, with its part 2 held.
      const cHeld = p.holdPart2('C.bin');
      await sh(`cp ${q(local('C'))} ${q(at(first, 'C.bin'))}`);
      bg.push(background(`dd if=/dev/null of=${q(at(first, 'C.bin'))} conv=notrunc,fsync status=none`));
      await cHeld;
      await first.kill();
    } finally {
      for (const c of bg) c.kill('SIGKILL');
      await first.stop();
    }

    const second = await mountDaemon(cfg);
    try {
      // A was never closed: kept, listed, not uploaded, not in the mount.
      const before = await status(second, cacheDir);
      const kept = before.writes.attention.find((a) => a.path === `/${p.name}/${p.dir}/A.bin`);
      expect(kept?.reason).toMatch(/writing/);
      expect(existsSync(kept!.staged)).toBe(true);
      // The writer writes it again, as a user would; fsync returns once it is uploaded.
      await sh(`dd if=${q(local('A'))} of=${q(at(second, 'A.bin'))} bs=1M conv=fsync status=none`);
      await until(async () => {
        const s = await status(second, cacheDir);
        if (s.uploads.failed.length) throw new Error(`an upload failed: ${JSON.stringify(s.uploads.failed)}`);
        return s.uploads.active.length + s.uploads.queued.length === 0 && s.writes.files === 0;
      }, 'every upload', 120_000);
      const after = await status(second, cacheDir);
      expect(after.writes.attention).toEqual([]);
      expect(after.uploads.recent.filter((j) => j.conflictOf)).toEqual([]);
      expect(after.uploads.journal.lastError).toBeUndefined();
      expect(await readdir(join(cacheDir, 'staging'))).toEqual([]);
      await sh('echo 1 > /proc/sys/vm/drop_caches');
      for (const k of ['A', 'B', 'C', 'D', 'E'] as const) {
        expect((await sh(`sha256sum ${q(at(second, `${k}.bin`))}`)).split(' ')[0], `${k}.bin`).toBe(sha256(data[k]));
      }
      expect(await sh(`ls -A ${q(join(second.mountpoint, p.name, p.dir))}`)).toBe('A.bin\nB.bin\nC.bin\nD.bin\nE.bin\n');
    } finally {
      await second.stop();
    }
  }, 240_000);
});
