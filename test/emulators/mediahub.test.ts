/**
 * MediaHub emulator + provider specifics: paging a 10,000-file folder, tokens that expire (403) and
 * re-authentication, 302 download links read through the real HttpTransport, archives, unreadable
 * files, error bodies, and injected 500/429.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteEntry } from '../../src/core/types.js';
import { AuthError, NotFoundError, TransientError, UnavailableError } from '../../src/core/errors.js';
import { MediahubProvider, type MediahubProviderDeps } from '../../src/providers/mediahub/index.js';
import { MEDIAHUB_CLIENT, startMediahubEmulator, type MediahubEmulator } from '@assetfs/lab/emulators/mediahub/index.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { presignExpired, startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { HttpTransport } from '../../src/transports/http.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { mapListing } from '../../src/vfs/names.js';
import { walk } from '../contract/provider-suite.js';

const PIPE = '64b7f00d1c2e3a4b5c6d7e8f';
const BIG_PIPE = '64b7f00d1c2e3a4b5c6d7e90';
const MANY = 10_000;
const CLIP = deterministicBytes('mediahub-clip', 700_001);

let s3: StorageServer;
let proxy: FaultProxy;
let backing: S3Backing;
let emu: MediahubEmulator;
const transport = new HttpTransport({ requestTimeoutMs: 10_000 });
const open: MediahubProvider[] = [];

function provider(deps: Partial<MediahubProviderDeps> = {}, src: Record<string, unknown> = {}): MediahubProvider {
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'xvid', type: 'mediahub', baseUrl: emu.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret, urlTtl: 60_000, ...src }],
  }).sources[0] as SourceConfigOf<'mediahub'>;
  const p = new MediahubProvider(cfg, { log: silentLogger, ...deps });
  open.push(p);
  return p;
}

async function all(p: MediahubProvider, ref: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(ref)) out.push(e);
  return out;
}

const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
const objOf = (p: MediahubProvider, e: RemoteEntry) => ({ source: p.name, ref: e.ref, version: e.version, size: e.size });

async function token(): Promise<string> {
  const r = await fetch(`${emu.baseUrl}/oauth2/token/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credential', client_id: MEDIAHUB_CLIENT.id, client_secret: MEDIAHUB_CLIENT.secret, scope: 'mediahub' }),
  });
  const j = (await r.json()) as { access_token: string; expires_in: unknown };
  expect(typeof j.expires_in).toBe('string');
  return j.access_token;
}

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['mediahub'] });
  proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  backing = new S3Backing(s3.url, proxy.url, 'mediahub');
  emu = await startMediahubEmulator({ s3: backing });
  await emu.putFile({ pipelineId: PIPE, objectKey: 'media/clip.mp4', bytes: CLIP });
  await emu.seedMany(BIG_PIPE, 'big/', MANY);
}, 120_000);

afterAll(async () => {
  await Promise.all(open.map((p) => p.close()));
  await transport.close();
  await emu?.close();
  backing?.close();
  await proxy?.close();
  await s3?.stop();
});

describe('mediahub: listing', () => {
  for (const limit of [1000, 5000]) {
    it(`pages a folder of ${MANY} files with limit=${limit}: each exactly once, in ceil(total/limit) calls`, async () => {
      const p = provider({ listPageSize: limit });
      const dir = await walk(p, `${BIG_PIPE}/big/`);
      emu.server.clearLog();
      const entries = await all(p, dir.ref);
      expect(entries.length).toBe(MANY);
      expect(new Set(entries.map((e) => e.name)).size).toBe(MANY);
      expect(new Set(entries.map((e) => e.ref)).size).toBe(MANY);
      expect(entries.every((e) => e.kind === 'file' && e.size === 5 && e.version !== '')).toBe(true);
      // The walk just listed the catalog: that snapshot serves this folder without another pass.
      expect(emu.server.requests().filter((r) => r.path === '/v1/files/').length).toBe(0);
      const fresh = provider({ listPageSize: limit });
      emu.server.clearLog();
      expect((await all(fresh, dir.ref)).length).toBe(MANY);
      const pages = emu.server.requests().filter((r) => r.path === '/v1/files/');
      expect(pages.length).toBe(Math.ceil(emu.catalog.files.size / limit));
      expect(pages.every((r) => new URLSearchParams(r.query).get('limit') === String(limit))).toBe(true);
    });
  }

  it('concurrent lists share one catalog pass', async () => {
    const p = provider();
    emu.server.clearLog();
    const [a, b] = await Promise.all([all(p, ''), all(p, `d:${PIPE}/media/`)]);
    expect(a.map((e) => e.name).sort()).toEqual([BIG_PIPE, PIPE].sort());
    expect(b.map((e) => e.name)).toEqual(['clip.mp4']);
    expect(emu.server.requests().filter((r) => r.path === '/v1/files/').length).toBe(Math.ceil(emu.catalog.files.size / 1000));
  });

  it('a folder added after the snapshot is found on a miss', async () => {
    const p = provider();
    await all(p, '');
    await emu.putFile({ pipelineId: PIPE, objectKey: 'later/x.txt', bytes: Buffer.from('x') });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await p.stat(`d:${PIPE}/later/`)).kind).toBe('dir');
    expect((await all(p, `d:${PIPE}/later/`)).map((e) => e.name)).toEqual(['x.txt']);
  });

  it('files without an object key sit under _files, same names told apart by id', async () => {
    const a = await emu.putFile({ pipelineId: PIPE, name: 'dup.mp4', bytes: Buffer.from('first') });
    const b = await emu.putFile({ pipelineId: PIPE, objectKey: null, name: 'dup.mp4', bytes: Buffer.from('second!') });
    const p = provider();
    const loose = await all(p, (await walk(p, `${PIPE}/_files/`)).ref);
    const dups = loose.filter((e) => e.name === 'dup.mp4');
    expect(dups.map((e) => e.id).sort()).toEqual([a.id, b.id].sort());
    expect(new Set(dups.map((e) => e.size))).toEqual(new Set([5, 7]));
    expect(mapListing(dups).size).toBe(2);
    const second = dups.find((e) => e.id === b.id)!;
    expect((await transport.readRange(await p.locate(objOf(p, second)), { start: 0, end: 7 }, objOf(p, second))).toString()).toBe('second!');
  });

  it('an archive is a folder of its items, each readable', async () => {
    const items = [{ name: 'a.srt', bytes: Buffer.from('1\n00:00:01,000 --> 00:00:02,000\nhi\n') }, { name: 'b.bin', bytes: deterministicBytes('item-b', 300_007) }];
    const rec = await emu.putArchive({ pipelineId: PIPE, objectKey: 'bundles/pack.zip', items });
    expect(rec.items).toHaveLength(2);
    const p = provider();
    const dir = await walk(p, `${PIPE}/bundles/pack.zip`);
    expect(dir).toMatchObject({ kind: 'dir', id: rec.id });
    expect((await p.stat(dir.ref)).kind).toBe('dir');
    const listed = await all(p, dir.ref);
    expect(listed.map((e) => `${e.name}:${e.size}`)).toEqual(['a.srt:' + items[0]!.bytes.length, `b.bin:${items[1]!.bytes.length}`]);
    for (const [i, e] of listed.entries()) {
      expect(await p.stat(e.ref)).toMatchObject({ name: e.name, size: e.size, version: e.version });
      const obj = objOf(p, e);
      const got = await transport.readRange(await p.locate(obj), { start: 1, end: e.size }, obj);
      expect(sha256(got)).toBe(sha256(items[i]!.bytes.subarray(1)));
    }
    const t = await token();
    const j = (await (await fetch(`${emu.baseUrl}/files/downloads?file_id=${rec.id}`, { headers: { authorization: `Bearer ${t}` } })).json()) as { urls: string[] };
    expect(j.urls).toHaveLength(2);
  });

  it('a file still uploading is listed as unreadable, and locate says EAGAIN', async () => {
    await emu.putFile({ pipelineId: PIPE, objectKey: 'incoming/raw.mov', bytes: Buffer.from('partial'), status: 'UPLOADING' });
    const p = provider();
    const e = await walk(p, `${PIPE}/incoming/raw.mov`);
    expect(e.unreadable?.code).toBe('EAGAIN');
    const err = await errorOf(p.locate(objOf(p, e)));
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe('EAGAIN');
  });
});

describe('mediahub: auth', () => {
  it('an expired token answers 403 0x0000003, and the provider logs in again once', async () => {
    const p = provider();
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    const before = emu.tokensIssued;
    emu.expireTokens();
    emu.server.clearLog();
    expect(await p.stat(clip.ref)).toMatchObject({ size: CLIP.length, version: clip.version });
    expect(emu.tokensIssued).toBe(before + 1);
    expect(emu.server.requests().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      `GET /v1/files/${clip.id} 403`, 'POST /v1/oauth2/token/ 200', `GET /v1/files/${clip.id} 200`,
    ]);
  });

  it('a token that runs out by time mid-session is renewed', async () => {
    const clip = await walk(provider(), `${PIPE}/media/clip.mp4`);
    // Answered as "2" (whole seconds) while it lives 1.5 s: the client trusts it until 1.8 s, too long.
    emu.tokenTtlMs = 1_500;
    try {
      const p = provider();
      const t0 = Date.now();
      await p.stat(clip.ref); // logs in
      const t1 = Date.now();
      const before = emu.tokensIssued;
      await new Promise((r) => setTimeout(r, t1 + 1_550 - Date.now()));
      expect(Date.now()).toBeLessThan(t0 + 1_800); // still inside the client's trust window
      emu.server.clearLog();
      const obj = objOf(p, clip);
      const got = await transport.readRange(await p.locate(obj), { start: 5, end: 1005 }, obj);
      expect(got.equals(CLIP.subarray(5, 1005))).toBe(true);
      expect(emu.tokensIssued).toBe(before + 1);
      expect(emu.server.requests().map((r) => `${r.path} ${r.status}`)).toEqual(['/v1/files/downloads 403', '/v1/oauth2/token/ 200', '/v1/files/downloads 200']);
    } finally {
      emu.tokenTtlMs = 7_200_000;
    }
  });

  it('wrong client credentials are an AuthError', async () => {
    const p = provider({}, { clientSecret: 'not-the-secret' });
    expect(await errorOf(p.stat(`d:${PIPE}/`))).toBeInstanceOf(AuthError);
  });

  it('error bodies: 403 for a bad token, 400 for limit > 5000, 404 for a missing file', async () => {
    const bad = await fetch(`${emu.baseUrl}/files/?limit=10`, { headers: { authorization: 'Bearer nope' } });
    expect(bad.status).toBe(403);
    expect(await bad.json()).toEqual({ error: { error_code: '0x0000003', error_message: 'Invalid access token' } });
    const t = await token();
    const big = await fetch(`${emu.baseUrl}/files/?limit=5001`, { headers: { authorization: `Bearer ${t}` } });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: { error_code: string } }).error.error_code).toBe('0x0230001');
    const missing = await fetch(`${emu.baseUrl}/files/000000000000000000000000`, { headers: { authorization: `Bearer ${t}` } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { error_code: '0x0230002', error_message: 'Requested file does not exist' } });
    const err = await errorOf(provider().stat('f:000000000000000000000000'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('Requested file does not exist');
  });
});

describe('mediahub: downloads and faults', () => {
  it('a download URL asked to live until expiry_time is valid until then, also when asked late in a second', async () => {
    const rec = await emu.putFile({ pipelineId: PIPE, objectKey: 'media/late.bin', bytes: Buffer.from('late') });
    const t = await token();
    while (Date.now() % 1000 < 600) await new Promise((r) => setTimeout(r, 5));
    // Two whole seconds ahead: `expiry_time − now` is then 1.0–1.4 s, which rounded to S3's whole seconds
    // from a signing time truncated to the second once ended the URL a second early.
    const expiry = Math.floor(Date.now() / 1000) + 2;
    const j = (await (await fetch(`${emu.baseUrl}/files/downloads?file_id=${rec.id}&expiry_time=${expiry}`, { headers: { authorization: `Bearer ${t}` } })).json()) as { url: string };
    const query = new URL(j.url).searchParams;
    expect(presignExpired(query, expiry * 1000 - 1)).toBe(false);
    expect(presignExpired(query, expiry * 1000 + 2_000)).toBe(true);
  });

  it('redirect=true: the provider takes the 302 Location, and bytes are exact', async () => {
    const p = provider({ redirectDownloads: true }, { urlTtl: 30_000 });
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    const obj = objOf(p, clip);
    emu.server.clearLog();
    const before = Date.now();
    const loc = await p.locate(obj);
    expect(loc.url.startsWith(proxy.url)).toBe(true);
    expect(loc.expiresAt).toBeGreaterThan(before + 25_000);
    expect(loc.expiresAt).toBeLessThanOrEqual(before + 31_000);
    const dl = emu.server.requests().find((r) => r.path === '/v1/files/downloads')!;
    expect(dl.status).toBe(302);
    expect(new URLSearchParams(dl.query).get('redirect')).toBe('true');
    const got = await transport.readRange(loc, { start: 65_537, end: 700_000 }, obj);
    expect(sha256(got)).toBe(sha256(CLIP.subarray(65_537, 700_000)));
  });

  it('the HttpTransport follows a 302 download link to storage (Authorization stays with the API)', async () => {
    const p = provider();
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    const t = await token();
    const url = `${emu.baseUrl}/files/downloads?file_id=${clip.id}&expiry_time=${Math.floor(Date.now() / 1000) + 30}&redirect=true`;
    proxy.clearLog();
    const got = await transport.readRange({ url, headers: { authorization: `Bearer ${t}` }, expiresAt: Date.now() + 30_000 }, { start: 100, end: 200_100 }, objOf(p, clip));
    expect(got.equals(CLIP.subarray(100, 200_100))).toBe(true);
    expect(proxy.requests().map((r) => `${r.status} ${r.range}`)).toEqual(['206 bytes=100-200099']);
  });

  it('a download URL is refused after expiry_time', async () => {
    const p = provider({}, { urlTtl: 1_000 });
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    const loc = await p.locate(objOf(p, clip));
    expect(loc.expiresAt).toBeLessThanOrEqual(Date.now() + 2_000);
    await new Promise((r) => setTimeout(r, Math.max(0, loc.expiresAt - Date.now()) + 1_200));
    expect((await fetch(loc.url, { headers: { range: 'bytes=0-9' } })).status).toBe(403);
  });

  it('injected 500 and 429 (Retry-After) are TransientErrors, and the next call works', async () => {
    const p = provider();
    emu.server.faults.add({ kind: 'status', status: 500, pathPrefix: '/v1/files/' });
    const e500 = await errorOf(all(p, ''));
    expect(e500).toBeInstanceOf(TransientError);
    expect((e500 as TransientError).status).toBe(500);
    expect((await all(p, '')).length).toBe(2);
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    emu.server.faults.add({ kind: 'status', status: 429, retryAfterSec: 3, pathPrefix: '/v1/files/downloads' });
    const e429 = await errorOf(p.locate(objOf(p, clip)));
    expect(e429).toBeInstanceOf(TransientError);
    expect(e429).toMatchObject({ status: 429, retryAfterMs: 3000 });
    expect((await p.locate(objOf(p, clip))).url.startsWith(proxy.url)).toBe(true);
  });
});

describe('mediahub: platform ids', () => {
  it('byId: a file, an archive (its folder), a folder record (the folder of its path); ancestry from the record, archive items under their archive', async () => {
    const archive = { id: String((await emu.putArchive({ pipelineId: PIPE, objectKey: 'ids/pack.zip', items: [{ name: 'a.txt', bytes: Buffer.from('a') }] })).id) };
    const folder = { id: String((await emu.putFile({ pipelineId: PIPE, objectKey: 'ids/sub', type: 'folder' })).id) };
    const p = provider(); // its catalog snapshot holds both
    const clip = await walk(p, `${PIPE}/media/clip.mp4`);
    emu.server.clearLog();
    expect(await p.byId(p.idOf(clip)!)).toMatchObject({ ref: clip.ref, version: clip.version, contentType: 'video/mp4' });
    expect(emu.server.requests().filter((r) => !r.path.includes('oauth2')).map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/files/${p.idOf(clip)}`]);
    expect(await p.byId(archive.id)).toMatchObject({ name: 'pack.zip', kind: 'dir', ref: `a:${archive.id}` });
    expect(await p.byId(folder.id)).toMatchObject({ name: 'sub', kind: 'dir', ref: `d:${PIPE}/ids/sub/` });
    expect(await p.ancestry(clip)).toEqual([`d:${PIPE}/`, `d:${PIPE}/media/`]);
    const item = await walk(p, `${PIPE}/ids/pack.zip/a.txt`);
    expect(p.idOf(item)).toBeUndefined();
    expect(await p.ancestry(item)).toEqual([`d:${PIPE}/`, `d:${PIPE}/ids/`, `a:${archive.id}`]);
    expect(await p.ancestry(await walk(p, `${PIPE}/ids/sub`))).toEqual([`d:${PIPE}/`, `d:${PIPE}/ids/`]);
    await expect(p.byId('000000000000000000000000')).rejects.toBeInstanceOf(NotFoundError);
  });
});
