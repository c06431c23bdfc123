/**
 * The contract every Provider passes (rclone's fstests idea): run once per source type against a
 * real server or the platform's emulator. Platforms shape their trees differently (MK.IO assets,
 * Wordbee scope/document/segment/locale, flat AMS assets), so the fixture says where the suite may
 * write (`base`), whether folders nest below it, and where a large folder can be made; the suite finds
 * everything by walking names from the root and never builds a ref itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Provider, Ref, RemoteEntry } from '../../src/core/types.js';
import { NotFoundError } from '../../src/core/errors.js';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';

export interface ContractFixture {
  /** A provider over the seeded platform; signed URLs it obtains live `urlTtlMs` (the fixture tells the emulator). */
  provider(opts: { listPageSize?: number; urlTtlMs: number }): Provider;
  /** Folder path ('' = source root, else ending in '/') under which the suite writes its files. */
  readonly base: string;
  /** Whether folders can nest below `base` (false for AMS: an asset is one flat container). */
  readonly nested: boolean;
  /** Write a file at a path (mount-relative, '/'-separated), replacing any earlier one. */
  put(path: string, data: Buffer): Promise<void>;
  /** Make `count` files named f-00000… in one folder; returns that folder's path ('' = root). */
  putMany(count: number): Promise<string>;
  /** Refs of a file and a folder that do not exist. */
  readonly missingRefs: readonly Ref[];
  /** Status codes the platform gives an expired signed URL or token (default [403]). */
  readonly expiredStatuses?: readonly number[];
  /**
   * Revoke every URL/token issued so far, where access does not expire by URL lifetime (Wordbee's API
   * GETs): the suite then checks that a fresh locate after `refused()` reads again.
   */
  revokeAccess?(): Promise<void>;
  teardown(): Promise<void>;
}

const MANY = 2500;

/** putMany for object stores: `count` small files `<dir>f-00000…`, 16 at a time. */
export async function putManyFiles(put: (path: string, data: Buffer) => Promise<void>, dir: string, count: number): Promise<string> {
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(16);
  await Promise.all(Array.from({ length: count }, (_, i) => limit(() => put(`${dir}f-${String(i).padStart(5, '0')}`, Buffer.from(String(i))))));
  return dir;
}
const BIG = deterministicBytes('contract-big', 3 * 1024 * 1024 + 17);

async function all(p: Provider, dir: Ref): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir)) out.push(e);
  return out;
}

/** The entry at a mount-relative path, found by listing each folder on the way. */
export async function walk(p: Provider, path: string): Promise<RemoteEntry> {
  let dir: RemoteEntry = { name: '', kind: 'dir', ref: '', size: 0, mtimeMs: 0, version: '' };
  for (const seg of path.split('/').filter(Boolean)) {
    const next = (await all(p, dir.ref)).find((e) => e.name === seg);
    if (!next) throw new Error(`"${seg}" not found while walking ${path}`);
    dir = next;
  }
  return dir;
}

export function runProviderContract(label: string, setup: () => Promise<ContractFixture>): void {
  describe(`Provider contract: ${label}`, () => {
    let fx: ContractFixture;
    let p: Provider;
    let manyDir = '';
    // The daemon's transport (undici behind it for what it does not read itself).
    const transport = new FastHttpTransport({ requestTimeoutMs: 10_000 });

    beforeAll(async () => {
      fx = await setup();
      await fx.put(`${fx.base}top.txt`, Buffer.from('top\n'));
      await fx.put(`${fx.base}big.bin`, BIG);
      await fx.put(`${fx.base}change.txt`, Buffer.from('version one'));
      if (fx.nested) await fx.put(`${fx.base}deep/er/clip.mp4`, Buffer.from('deep'));
      manyDir = await fx.putMany(MANY);
      p = fx.provider({ urlTtlMs: 60_000 });
    }, 300_000);
    afterAll(async () => {
      await p?.close();
      await transport.close();
      await fx?.teardown();
    });

    it('lists folders with names, kinds, sizes, times and versions', async () => {
      const baseDir = await walk(p, fx.base);
      expect(baseDir.kind).toBe('dir');
      const entries = await all(p, baseDir.ref);
      const big = entries.find((e) => e.name === 'big.bin')!;
      expect(big).toMatchObject({ kind: 'file', size: BIG.length });
      expect(big.version).not.toBe('');
      expect(Math.abs(big.mtimeMs - Date.now())).toBeLessThan(3_600_000);
      expect(entries.find((e) => e.name === 'top.txt')).toMatchObject({ kind: 'file', size: 4 });
      if (fx.nested) {
        expect(entries.find((e) => e.name === 'deep')?.kind).toBe('dir');
        const deep = await all(p, entries.find((e) => e.name === 'deep')!.ref);
        expect(deep.map((e) => `${e.name}:${e.kind}`)).toEqual(['er:dir']);
        expect((await walk(p, `${fx.base}deep/er/clip.mp4`)).size).toBe(4);
      }
    });

    it(`pages through ${MANY} entries, each exactly once`, async () => {
      const small = fx.provider({ listPageSize: 200, urlTtlMs: 60_000 });
      try {
        const dir = await walk(small, manyDir);
        const many = (await all(small, dir.ref)).filter((e) => /^f-\d{5}/.test(e.name));
        expect(many.length).toBe(MANY);
        expect(new Set(many.map((e) => e.name)).size).toBe(MANY);
      } finally {
        await small.close();
      }
    });

    it('stats files and folders, and missing refs are NotFoundError', async () => {
      const big = await walk(p, `${fx.base}big.bin`);
      expect(await p.stat(big.ref)).toMatchObject({ kind: 'file', size: BIG.length, version: big.version, name: 'big.bin' });
      const baseDir = await walk(p, fx.base);
      if (baseDir.ref !== '') expect((await p.stat(baseDir.ref)).kind).toBe('dir');
      for (const ref of fx.missingRefs) await expect(p.stat(ref)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('locates byte-exact ranged reads at odd offsets', async () => {
      const big = await walk(p, `${fx.base}big.bin`);
      const obj = { source: p.name, ref: big.ref, version: big.version, size: big.size };
      const loc = await p.locate(obj);
      // (not bytes=0-0: s3rver answers it with the whole object, which the transport rightly rejects)
      for (const [start, end] of [[0, 2], [1, 4097], [1_048_575, 2_097_153], [BIG.length - 5, BIG.length]] as const) {
        const got = await transport.readRange(loc, { start, end }, obj);
        expect(sha256(got)).toBe(sha256(BIG.subarray(start, end)));
      }
    });

    it('expired access is refused, and a fresh locate reads again', async () => {
      const short = fx.provider({ urlTtlMs: 2_000 });
      const refusedWith = fx.expiredStatuses ?? [403];
      try {
        const e = await walk(short, `${fx.base}top.txt`);
        const obj = { source: short.name, ref: e.ref, version: e.version, size: e.size };
        const loc = await short.locate(obj);
        expect((await fetch(loc.url, { headers: { ...loc.headers } })).status).toBe(200);
        if (fx.revokeAccess) {
          await fx.revokeAccess();
        } else {
          expect(loc.expiresAt).toBeLessThanOrEqual(Date.now() + 2_500);
          await new Promise((r) => setTimeout(r, Math.max(0, loc.expiresAt - Date.now()) + 1_500));
        }
        expect(refusedWith).toContain((await fetch(loc.url, { headers: { ...loc.headers } })).status);
        short.refused?.(obj, loc);
        const again = await short.locate(obj);
        expect((await transport.readRange(again, { start: 0, end: 4 }, obj)).toString()).toBe('top\n');
      } finally {
        await short.close();
      }
    });

    it('ids: byId gives back the listed entry, ancestry names the folders above it, an unknown id is NotFoundError', async () => {
      const { idOf, byId, ancestry } = p;
      if (!idOf || !byId || !ancestry) throw new Error(`${label} implements no platform ids`);
      let withId = 0;
      for (const path of [`${fx.base}big.bin`, ...(fx.nested ? [`${fx.base}deep/er/clip.mp4`] : [])]) {
        const segs = path.split('/').filter(Boolean);
        const chain: RemoteEntry[] = [];
        for (let i = 1; i <= segs.length; i++) chain.push(await walk(p, segs.slice(0, i).join('/')));
        expect(await ancestry.call(p, chain.at(-1)!)).toEqual(chain.slice(0, -1).map((a) => a.ref));
        for (const [i, e] of chain.entries()) {
          const id = idOf.call(p, e);
          if (id === undefined) continue;
          withId++;
          const found = await byId.call(p, id);
          expect(found).toMatchObject({ name: e.name, kind: e.kind, ref: e.ref, version: e.version, size: e.size });
          expect(idOf.call(p, found)).toBe(id);
          expect(await ancestry.call(p, found)).toEqual(chain.slice(0, i).map((a) => a.ref));
          await expect(byId.call(p, `${id}-missing`)).rejects.toBeInstanceOf(NotFoundError);
        }
      }
      expect(withId).toBeGreaterThan(0);
    });

    it('a changed object gets a new version', async () => {
      const before = await walk(p, `${fx.base}change.txt`);
      await fx.put(`${fx.base}change.txt`, Buffer.from('version two!'));
      const after = await p.stat(before.ref);
      expect(after.version).not.toBe(before.version);
      expect(after.size).toBe(12);
    });
  });
}
