/**
 * Platform ids through a real mount, on all seven sources of the lab at once (one daemon): the
 * read-only `user.assetfs.*` attributes (getfattr/setfattr, and the getxattr size protocol with raw
 * syscalls), `.by-id/<id>` found with one API call and read byte for byte like the path (from the same
 * cache blocks), the hidden `.by-id` folder, and `assetfs locate` both ways through the real CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pLimit from 'p-limit';
import { AZURITE_ACCOUNT } from '@assetfs/lab/emulators/storage-servers.js';
import { mimeOf } from '@assetfs/lab/emulators/ams/catalog.js';
import { startPlatformLab, type PlatformLab } from '@assetfs/lab/demo/lab.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, NODE_FLAGS, mountDaemon, sh, shResult, type MountedDaemon } from '../helpers/mount.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** What reached a server: the platform emulators' logs, and the storage fault proxies'. */
interface RequestLog {
  requests(): readonly { method: string; path: string }[];
  clearLog(): void;
}

interface Case {
  readonly source: string;
  /** A file (below the source) read by path and through `.by-id/`. */
  readonly file: string;
  /** The entry whose id is resolved: the file, or (platforms whose files have no id) a folder above it. */
  readonly holder: string;
  /** The platform's own id of `holder`, from the emulator's catalog. */
  expectedId(): string;
  /** Attributes beside source/id/version that the holder must show. */
  readonly extra: Readonly<Record<string, string>>;
  /** The server that answers the source's API calls, and the one call byId makes there. */
  log(): RequestLog;
  readonly byIdCall: RegExp;
  /** The provider may answer from an index it still holds (Wordbee's scope index lives 5 s): no call at all. */
  readonly mayBeHeld?: boolean;
}

describe.sequential('platform ids through a real mount', () => {
  let lab: PlatformLab;
  let d: MountedDaemon;
  const at = (rel: string) => `${d.mountpoint}/${rel}`;
  const cli = (args: string) => sh(`${q(process.execPath)} ${NODE_FLAGS.join(' ')} ${q(BIN)} ${args} --config ${q(`${d.dir}/config.json`)}`);
  const xattrs = async (path: string) => {
    const out = await sh(`getfattr -d --absolute-names ${q(path)}`);
    return Object.fromEntries([...out.matchAll(/^user\.assetfs\.(\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]));
  };
  const idOf = async (path: string) => (await sh(`getfattr --only-values -n user.assetfs.id ${q(path)}`));
  const byIdName = (id: string) => id.replace(/%/g, '%25').replace(/\//g, '%2F');

  const cases: Case[] = [
    {
      source: 's3', file: 'videos/subtitles/sample.en.srt', holder: 'videos/subtitles/sample.en.srt', expectedId: () => 'videos/subtitles/sample.en.srt',
      extra: {}, log: () => lab.s3Proxy, byIdCall: /^HEAD \/media\/videos\/subtitles\/sample\.en\.srt$/,
    },
    {
      source: 'blob', file: 'images/poster.png', holder: 'images/poster.png', expectedId: () => 'images/poster.png',
      extra: { contentType: 'application/octet-stream' }, log: () => lab.azureProxy, byIdCall: /^HEAD \/devstoreaccount1\/media\/images\/poster\.png$/,
    },
    {
      source: 'ams', file: 'Launch Teaser/teaser.en.srt', holder: 'Launch Teaser/teaser.en.srt',
      expectedId: () => [...lab.ams.catalog.files.values()].find((f) => f.Name === 'teaser.en.srt' && f.ParentAssetId === lab.ams.findAsset('Launch Teaser'))!.Id,
      extra: { contentType: mimeOf('teaser.en.srt') }, log: () => lab.ams.server, byIdCall: /^GET \/api\/Files\('nb%3Acid%3AUUID%3A[0-9a-f-]+'\)$/,
    },
    {
      source: 'ams', file: 'Launch Teaser/poster.png', holder: 'Launch Teaser', expectedId: () => lab.ams.findAsset('Launch Teaser')!,
      extra: { status: 'Initialized' }, log: () => lab.ams.server, byIdCall: /^GET \/api\/Assets\('nb%3Acid%3AUUID%3A[0-9a-f-]+'\)$/,
    },
    {
      source: 'nomad', file: 'media-bucket/Projects/2026/Launch/poster.png', holder: 'media-bucket/Projects/2026/Launch/poster.png',
      expectedId: () => lab.nomad.find('media-bucket/Projects/2026/Launch/poster.png')!.id,
      extra: { status: 'Available' }, log: () => lab.nomad.server, byIdCall: /^GET \/api\/admin\/asset\/[^/]+$/,
    },
    {
      source: 'mediahub', file: 'pl-launch/uploads/subtitles/teaser.en.srt', holder: 'pl-launch/uploads/subtitles/teaser.en.srt',
      expectedId: () => [...lab.mediahub.catalog.files.values()].find((f) => f.objectKey === 'uploads/subtitles/teaser.en.srt')!.id,
      extra: {}, log: () => lab.mediahub.server, byIdCall: /^GET \/v1\/files\/[^/]+\/?$/,
    },
    {
      source: 'mkio', file: 'launch-teaser/subtitles/teaser.fr.srt', holder: 'launch-teaser', expectedId: () => 'launch-teaser',
      extra: {}, log: () => lab.mkio.server, byIdCall: /^GET \/api\/v1\/projects\/[^/]+\/media\/assets\/launch-teaser$/,
    },
    {
      source: 'wordbee', file: 'pr7214/19641/27665601/en/subtitles/teaser.en.srt', holder: 'pr7214/19641/27665601', expectedId: () => '27665601',
      extra: {}, log: () => lab.wordbee.server, byIdCall: /^GET \/api\/resources\/assets\/27665601\/list$/, mayBeHeld: true,
    },
    {
      source: 'wordbee', file: 'pr7214/19642/27665602/_/contacts.txt', holder: 'pr7214/19642', expectedId: () => '19642',
      extra: {}, log: () => lab.wordbee.server, byIdCall: /^POST \/api\/resources\/segments\/search$/, mayBeHeld: true,
    },
  ];

  beforeAll(async () => {
    lab = await startPlatformLab({ log: silentLogger, bigFileBytes: 1024 * 1024, manyCount: 0 });
    // The blob source through Azurite's fault proxy, so that the test sees what reaches storage.
    const sources = lab.sources.map((s) => (s.name === 'blob' ? { ...s, accountUrl: `${lab.azureProxy.url}/${AZURITE_ACCOUNT}` } : s));
    // A long write-back keeps a file written here staged (not uploaded) for the whole test.
    d = await mountDaemon({ sources, metadataTtl: '60s', cache: { memory: '64MiB', disk: 0, blockSize: '1MiB' }, uploads: { writeBack: '1h' } });
  }, 300_000);
  afterAll(async () => {
    await d?.stop();
    await lab?.stop();
  });

  /** Each case's id, as getfattr read it. */
  const ids = new Map<Case, string>();

  for (const c of cases) {
    describe(`${c.source}: ${c.holder}`, () => {
      let id = '';
      let byPath = '';

      it('shows read-only user.assetfs.* attributes: the platform id, version, and what the platform says', async () => {
        byPath = await sh(`sha256sum < ${q(at(`${c.source}/${c.file}`))}`);
        const a = await xattrs(at(`${c.source}/${c.holder}`));
        id = await idOf(at(`${c.source}/${c.holder}`));
        expect(id).toBe(c.expectedId());
        ids.set(c, id);
        expect(a).toMatchObject({ source: c.source, id, ...c.extra });
        if (c.holder === c.file) expect(a.version).toMatch(/./);
        for (const args of ['-n user.assetfs.id -v other', '-x user.assetfs.id', '-n user.mine -v 1']) {
          const r = await shResult(`setfattr ${args} ${q(at(`${c.source}/${c.holder}`))}`);
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/Operation not supported/);
        }
        expect(await idOf(at(`${c.source}/${c.holder}`))).toBe(id);
      });

      it('.by-id/<id> is found with one API call and no listing, and reads the same bytes from the same cache blocks', async () => {
        const log = c.log();
        log.clearLog();
        const holder = at(`${c.source}/.by-id/${byIdName(id)}`);
        expect(await sh(`stat -c %F ${q(holder)}`)).toMatch(c.holder === c.file ? /regular/ : /directory/);
        const calls = log.requests().map((r) => `${r.method} ${r.path}`);
        expect(calls.length).toBe(c.mayBeHeld && calls.length === 0 ? 0 : 1);
        for (const call of calls) expect(call).toMatch(c.byIdCall);
        expect(await xattrs(holder)).toEqual(await xattrs(at(`${c.source}/${c.holder}`)));
        const rest = c.file.slice(c.holder.length);
        expect(await sh(`sha256sum < ${q(holder + rest)}`)).toBe(byPath);
        if (c.holder === c.file) expect(log.requests().filter((r) => r.method === 'GET' && !c.byIdCall.test(`${r.method} ${r.path}`))).toEqual([]);
      });
    });
  }

  it('assetfs locate prints the id, version and status, and locate --id prints the path, on every source', async () => {
    const limit = pLimit(4); // each is a node process
    await Promise.all(cases.map((c) => limit(async () => {
      const id = ids.get(c)!;
      const holder = at(`${c.source}/${c.holder}`);
      const [out, path] = await Promise.all([cli(`locate ${q(holder)}`), cli(`locate --id ${c.source} ${q(id)}`)]);
      expect(out).toContain(`id:           ${id}\n`);
      expect(out).toContain(`by id:        ${d.mountpoint}/${c.source}/.by-id/${byIdName(id)}\n`);
      expect(out).toMatch(/^version: +\S+$/m);
      expect(out).toMatch(/^status: +\S+$/m);
      expect(path).toBe(`${holder}\n`);
    })));
  });

  it('.by-id is hidden from ls -a of a source root, stat works, it lists nothing and takes no writes', async () => {
    for (const s of ['s3', 'blob', 'ams', 'nomad', 'mediahub', 'mkio', 'wordbee']) {
      expect((await sh(`ls -a ${q(at(s))}`)).split('\n')).not.toContain('.by-id');
      expect(await sh(`stat -c %F ${q(at(`${s}/.by-id`))}`)).toMatch(/directory/);
      expect(await sh(`ls -a ${q(at(`${s}/.by-id`))}`)).toBe('.\n..\n');
    }
    const r = await shResult(`touch ${q(at('s3/.by-id/new.txt'))}`);
    expect(r.stderr).toMatch(/Read-only file system/);
    const missing = await shResult(`stat ${q(at('ams/.by-id/nb:cid:UUID:00000000-0000-0000-0000-000000000000'))}`);
    expect(missing.stderr).toMatch(/No such file or directory/);
  });

  it('writes into the mount do not ask JS for security.capability (answered in the addon); a staged file has only its source', async () => {
    const file = at('s3/ids-write-probe.bin');
    await sh(`dd if=/dev/zero of=${q(file)} bs=4k count=16 status=none`);
    expect(d.logs()).not.toMatch(/predates its patch 8/);
    expect(await xattrs(file)).toEqual({ source: 's3' });
    await sh(`rm ${q(file)}`);
  });

  it('getxattr and listxattr follow the size protocol: a size probe, ERANGE for a short buffer, ENODATA for a name not there', async () => {
    const path = at('nomad/media-bucket/Projects/2026/Launch/poster.png');
    const id = await idOf(path);
    const names = ['user.assetfs.source', 'user.assetfs.id', 'user.assetfs.version', 'user.assetfs.status'];
    const py = [
      'import ctypes, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'p, name = sys.argv[1].encode(), b"user.assetfs.id"',
      'buf = ctypes.create_string_buffer(4096)',
      'def call(f, *a):',
      '    n = f(*a)',
      '    return f"{n}:{ctypes.get_errno() if n < 0 else 0}"',
      'print(call(libc.getxattr, p, name, None, 0))',
      'print(call(libc.getxattr, p, name, buf, 4))',
      'print(call(libc.getxattr, p, name, buf, 4096), buf.raw[:64].rstrip(b"\\0").decode())',
      'print(call(libc.getxattr, p, b"user.assetfs.nope", buf, 4096))',
      'print(call(libc.listxattr, p, None, 0))',
      'print(call(libc.listxattr, p, buf, 8))',
      'n = libc.listxattr(p, buf, 4096); print(n, buf.raw[:n].split(b"\\0")[:-1])',
    ].join('\n');
    const out = (await sh(`python3 -c ${q(py)} ${q(path)}`)).trim().split('\n');
    const listBytes = names.reduce((n, x) => n + x.length + 1, 0);
    expect(out).toEqual([
      `${id.length}:0`,
      '-1:34', // ERANGE
      `${id.length}:0 ${id}`,
      '-1:61', // ENODATA
      `${listBytes}:0`,
      '-1:34',
      `${listBytes} [${names.map((n) => `b'${n}'`).join(', ')}]`,
    ]);
  });
});
