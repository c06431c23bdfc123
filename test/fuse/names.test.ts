/**
 * Names come through a real mount exactly (docs/semantics.md "Names"), on S3 (s3rver) and a platform
 * (the Nomad emulator, whose names may hold anything): `%`, `#`, `?`, spaces, leading dashes, control
 * characters and Unicode as they are; `/` and `..` escaped; writes under an escaped name go up under
 * the remote name. And a size and time a server gets wrong show as unknown (docs "Numbers from servers"):
 * size 0, the mount's start time, EIO on read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BIN, mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';
import { s3rverSource, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { s3rverClient } from '@assetfs/lab/demo/seed-storage.js';
import { DEFAULT_NOMAD_USER, startNomadEmulator, type NomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { startRewritingProxy, type RewritingProxy } from '../helpers/rewriting-proxy.js';

/** Names Linux can hold: each must be listed, and read, under exactly this name. */
const EXACT = ['100% done.txt', 'a%2Fb.txt', '%00', '#1 take?.mov', ' spaced  name .txt', '-rf', '--help.txt', 'Ünïcødé ✓.srt', '日本語／タイトル.mp4', 'quote ‛ here.txt', '😀.png'];
/** Only a platform can also give control characters (s3rver keeps keys as file names of its own). */
const PLATFORM_ONLY = ['tab\there.txt', 'new\nline.txt'];

const body = (name: string) => `bytes of ${JSON.stringify(name)}\n`;

let s3: StorageServer;
let nomad: NomadEmulator;
let backing: S3Backing;
let bad: RewritingProxy;
let d: MountedDaemon;
let bucketId: string;
let startedAt: number;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['names', 'nomad'] });
  const client = s3rverClient(s3.url);
  for (const name of EXACT) await client.send(new PutObjectCommand({ Bucket: 'names', Key: `exact/${name}`, Body: body(name) }));
  await client.send(new PutObjectCommand({ Bucket: 'names', Key: 'bad/numbers.bin', Body: 'twelve bytes' }));
  client.destroy();
  backing = new S3Backing(s3.url, s3.url, 'nomad');
  nomad = await startNomadEmulator({ s3: backing });
  bucketId = nomad.createBucket('media-bucket');
  const exact = nomad.createFolder(bucketId, 'exact');
  for (const name of [...EXACT, ...PLATFORM_ONLY]) await nomad.putFile(exact, name, Buffer.from(body(name)));
  await nomad.putFile(nomad.createFolder(bucketId, 'AC/DC'), 'live.txt', Buffer.from('live\n'));
  await nomad.putFile(bucketId, '..', Buffer.from('dot dot\n'));
  // The same bucket again, through a proxy that turns every size into -1 and every time into 1970.
  bad = await startRewritingProxy(s3.url, (b) =>
    b.replace(/<Size>\d+<\/Size>/g, '<Size>-1</Size>').replace(/<LastModified>[^<]*<\/LastModified>/g, '<LastModified>1970-01-01T00:00:00.000Z</LastModified>'));
  startedAt = Date.now();
  d = await mountDaemon({
    sources: [
      s3rverSource(s3.url, 'names', { name: 's3' }),
      s3rverSource(bad.url, 'names', { name: 'badnumbers', readOnly: true }),
      { name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password },
    ],
    metadataTtl: '1s',
    uploads: { writeBack: '200ms' },
  });
}, 180_000);

afterAll(async () => {
  await d?.stop();
  await bad?.close();
  await nomad?.close();
  backing?.close();
  await s3?.stop();
});

const at = (...p: string[]) => join(d.mountpoint, ...p);

describe('names through the mount', () => {
  it.each(['s3', 'nomad'])('%s: every name Linux can hold is listed and read under exactly that name', async (source) => {
    const names = source === 'nomad' ? [...EXACT, ...PLATFORM_ONLY] : EXACT;
    const dir = source === 'nomad' ? at('nomad', 'media-bucket', 'exact') : at('s3', 'exact');
    expect((await readdir(dir)).sort()).toEqual([...names].sort());
    for (const name of names) expect(await readFile(join(dir, name), 'utf8'), name).toBe(body(name));
  });

  it('nomad: "/" and ".." in remote names are escaped, and read', async () => {
    const top = await readdir(at('nomad', 'media-bucket'));
    expect(top).toContain('AC‛／DC');
    expect(top).toContain('‛．‛．');
    expect(await readFile(at('nomad', 'media-bucket', 'AC‛／DC', 'live.txt'), 'utf8')).toBe('live\n');
    expect(await readFile(at('nomad', 'media-bucket', '‛．‛．'), 'utf8')).toBe('dot dot\n');
  });

  it('nomad: writes under an escaped name go to the remote name', async () => {
    const child = (parentId: string, name: string) => nomad.catalog.child(parentId, name);
    const acdc = child(bucketId, 'AC/DC')!.id;
    const live = child(acdc, 'live.txt')!.id;
    await writeFile(at('nomad', 'media-bucket', 'AC‛／DC', 'new.txt'), 'new in AC/DC\n');
    await writeFile(at('nomad', 'media-bucket', 'AC‛／DC', 'live.txt'), 'live, rewritten\n');
    await until(async () => child(acdc, 'new.txt')?.size === 13 && child(acdc, 'live.txt')?.size === 16, 'the two uploads', 60_000);
    expect(child(acdc, 'live.txt')!.id).toBe(live);
    // A new file named with an escape goes up under the name it stands for (which Nomad refuses: '/').
    await writeFile(at('nomad', 'media-bucket', 'x‛／y.txt'), 'x slash y\n');
    let remotes: string[] = [];
    await until(async () => {
      const s = JSON.parse(await sh(`node ${BIN} status --json --socket ${join(d.dir, 'cache', 'control.sock')}`)) as { uploads: Record<string, { remote: string }[]> };
      remotes = Object.values(s.uploads).flat().map((j) => j.remote);
      return remotes.some((r) => r.includes('x/y.txt'));
    }, 'the upload of x/y.txt', 30_000);
    expect(remotes.find((r) => r.includes('x/y.txt'))).toBe('nomad/["media-bucket","x/y.txt"]');
    // Nothing went up under a local name, nor as nested folders.
    expect(nomad.catalog.children(bucketId).map((r) => r.name).sort()).toEqual(['..', 'AC/DC', 'exact']);
  });
});

describe('numbers through the mount', () => {
  it('a size of -1 and a 1970 time show as size 0 and the mount start; reading fails with EIO', async () => {
    const st = await stat(at('badnumbers', 'bad', 'numbers.bin'));
    expect(st.size).toBe(0);
    expect(st.mtimeMs).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000) * 1000);
    await expect(readFile(at('badnumbers', 'bad', 'numbers.bin'))).rejects.toMatchObject({ code: 'EIO' });
    await until(async () => /s3 source \\"badnumbers\\": \\"numbers.bin\\": the server sent size -1/.test(d.logs()), 'the log line', 10_000);
  });
});
