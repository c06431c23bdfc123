/**
 * Nomad emulator + provider specifics: paging of a 10,000-entry folder, token expiry as 401 and 403
 * (re-authentication through the refresh token, password login as the fallback), unreadable assets
 * (Archived → EACCES, Uploading → EAGAIN), RFC 7807 error bodies and their mapping, injected faults.
 * Bytes live in s3rver behind the expiry-enforcing fault proxy.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NomadProvider } from '../../src/providers/nomad/index.js';
import { startNomadEmulator, type NomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { AuthError, ExpiredError, NotFoundError, TransientError, UnavailableError } from '../../src/core/errors.js';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { HttpTransport } from '../../src/transports/http.js';
import { silentLogger } from '../../src/util/logger.js';

const USER = { userName: 'editor@nomad.example', password: 'pw-1' };
const MANY = 10_000;

let s3: StorageServer;
let proxy: FaultProxy;
let backing: S3Backing;
let emu: NomadEmulator;
const transport = new HttpTransport({ requestTimeoutMs: 10_000 });
const ids: Record<string, string> = {};
const open: Provider[] = [];

function provider(opts: { listPageSize?: number; rootFolderId?: string; password?: string } = {}): NomadProvider {
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'nm', type: 'nomad', baseUrl: emu.url, username: USER.userName, password: opts.password ?? USER.password, rootFolderId: opts.rootFolderId }],
  }).sources[0] as SourceConfigOf<'nomad'>;
  const p = new NomadProvider(cfg, { log: silentLogger, listPageSize: opts.listPageSize });
  open.push(p);
  return p;
}

async function all(p: Provider, dir: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir)) out.push(e);
  return out;
}

async function api(path: string, o: { method?: string; token?: string; body?: unknown } = {}) {
  const r = await fetch(`${emu.url}${path}`, {
    method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

async function login(): Promise<any> {
  const r = await api('/api/account/login', { body: { ...USER, applicationId: randomUUID() } });
  expect(r.status).toBe(200);
  return r.body;
}

const paths = () => emu.server.requests().map((r) => `${r.status} ${r.path}`);

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['nomad-media'] });
  proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  backing = new S3Backing(s3.url, proxy.url, 'nomad-media');
  emu = await startNomadEmulator({ s3: backing, users: [USER], urlTtlMs: 60_000 });
  ids.bucket = emu.createBucket('media');
  ids.big = emu.createFolder(ids.bucket, 'big');
  ids.docs = emu.createFolder(ids.bucket, 'docs');
  ids.nested = emu.createFolder(ids.docs, 'nested');
  ids.readme = await emu.putFile(ids.docs, 'readme.txt', Buffer.from('hello nomad\n'));
  ids.deep = await emu.putFile(ids.nested, 'deep.mp4', Buffer.from('deep video bytes'));
  ids.archived = await emu.putFile(ids.docs, 'old.mxf', Buffer.from('cold bytes'), { status: 'Archived' });
  ids.uploading = await emu.putFile(ids.docs, 'incoming.mov', Buffer.from('still uploading'), { status: 'Uploading' });
  await emu.seedMany(ids.big, MANY);
}, 180_000);

afterAll(async () => {
  for (const p of open) await p.close();
  await transport.close();
  await emu?.close();
  backing?.close();
  await proxy?.close();
  await s3?.stop();
});

beforeEach(() => {
  emu.server.clearLog();
  emu.server.faults.clear();
  emu.expiredStatus = 401;
});

describe('nomad emulator: search and paging', () => {
  it(`pages a ${MANY}-entry folder through the provider: exact count, no duplicates`, async () => {
    const p = provider({ listPageSize: 500 });
    const root = await all(p, '');
    expect(root.map((e) => `${e.name}:${e.kind}`)).toEqual(['media:dir']);
    const big = (await all(p, ids.bucket!)).find((e) => e.name === 'big')!;
    emu.server.clearLog();
    const entries = await all(p, big.ref);
    expect(entries.length).toBe(MANY);
    expect(new Set(entries.map((e) => e.name)).size).toBe(MANY);
    expect(new Set(entries.map((e) => e.ref)).size).toBe(MANY);
    expect(entries.every((e) => e.kind === 'file' && e.size === 5 && e.version !== '' && !e.unreadable)).toBe(true);
    // 20 pages of 500, and not one more: the provider stops at totalItemCount.
    expect(paths().filter((s) => s.endsWith('/api/admin/search'))).toEqual(Array(20).fill('200 /api/admin/search'));
  });

  it('copes with a server that cuts pages shorter than asked (page size 3000 → 1000)', async () => {
    const entries = await all(provider({ listPageSize: 3000 }), ids.big!);
    expect(entries.length).toBe(MANY);
    expect(new Set(entries.map((e) => e.name)).size).toBe(MANY);
  });

  it('pageOffset is a page index; fields are projected; folders have no fullUrl', async () => {
    const { token } = await login();
    const page = await api('/api/admin/search', {
      token,
      body: { pageOffset: 3, pageSize: 7, filters: [{ fieldName: 'parentId', operator: 'Equals', values: ids.big }], searchResultFields: [{ name: 'id' }, { name: 'identifiers.name' }] },
    });
    expect(page.status).toBe(200);
    expect(page.body.items.map((i: any) => i.identifiers.name)).toEqual(['f-00021', 'f-00022', 'f-00023', 'f-00024', 'f-00025', 'f-00026', 'f-00027']);
    expect(Object.keys(page.body.items[0].identifiers)).toEqual(['name']);
    expect(page.body).toMatchObject({ totalItemCount: MANY, nextPageOffset: 4, hasItems: true });

    const docs = await api('/api/admin/search', { token, body: { pageOffset: 0, pageSize: 100, filters: [{ fieldName: 'parentId', operator: 0, values: ids.docs }] } });
    const byName = Object.fromEntries(docs.body.items.map((i: any) => [i.title, i]));
    expect(byName['nested'].identifiers).toMatchObject({ assetTypeDisplay: 'Folder', displayPath: '/media/docs/nested' });
    expect(byName['nested'].identifiers.fullUrl).toBeUndefined();
    expect(byName['readme.txt'].identifiers).toMatchObject({ name: 'readme.txt', assetTypeDisplay: 'File', contentLength: 12, displayPath: '/media/docs/readme.txt' });
    expect(byName['readme.txt'].identifiers.fullUrl).toMatch(/X-Amz-Signature=/);
    expect(Date.parse(byName['readme.txt'].lastModifiedDate)).toBeGreaterThan(0);
    const got = await fetch(byName['readme.txt'].identifiers.fullUrl, { headers: { range: 'bytes=6-10' } });
    expect(got.status).toBe(206);
    expect(await got.text()).toBe('nomad');

    // uuidSearchField lists recursively.
    const below = await api('/api/admin/search', { token, body: { pageSize: 100, filters: [{ fieldName: 'uuidSearchField', operator: 'Equals', values: ids.docs }] } });
    expect(below.body.items.map((i: any) => i.title).sort()).toEqual(['deep.mp4', 'incoming.mov', 'nested', 'old.mxf', 'readme.txt']);
    const past = await api('/api/admin/search', { token, body: { pageOffset: 9, pageSize: 100, filters: [{ fieldName: 'parentId', operator: 'Equals', values: ids.docs }] } });
    expect(past.body).toMatchObject({ items: [], totalItemCount: 4, hasItems: false });
  });

  it('asset and detail have the documented shapes', async () => {
    const { token } = await login();
    const a = await api(`/api/admin/asset/${ids.deep}`, { token });
    expect(a.body).toMatchObject({ id: ids.deep, parentId: ids.nested, displayName: 'deep.mp4', bucketName: 'media', assetStatus: 'Available', assetType: 'File', contentLength: 16 });
    expect(a.body.fullUrl).toMatch(/X-Amz-Expires=60&/);
    const d = await api(`/api/admin/asset/${ids.docs}/detail`, { token });
    expect(d.body).toMatchObject({ assetId: ids.docs, assetStats: { totalContentLength: 12 + 16 + 10 + 15 }, parents: [{ id: ids.bucket, displayName: 'media' }] });
    const b = await api(`/api/admin/asset/${ids.bucket}`, { token });
    expect(b.body).toMatchObject({ assetType: 'Bucket', fullUrl: null });
  });

  it('rootFolderId makes that folder the source root; stat of files and folders', async () => {
    const p = provider({ rootFolderId: ids.docs });
    expect((await all(p, '')).map((e) => e.name).sort()).toEqual(['incoming.mov', 'nested', 'old.mxf', 'readme.txt']);
    expect(await p.stat(ids.readme!)).toMatchObject({ name: 'readme.txt', kind: 'file', size: 12 });
    expect(await p.stat(ids.nested!)).toMatchObject({ name: 'nested', kind: 'dir', size: 0, version: '' });
  });

  it('putFile on an existing name replaces the bytes: same id, new version, later mtime', async () => {
    const p = provider();
    const id = await emu.putFile(ids.docs!, 'swap.txt', Buffer.from('one'));
    const before = await p.stat(id);
    await new Promise((r) => setTimeout(r, 5));
    expect(await emu.putFile(ids.docs!, 'swap.txt', Buffer.from('two two'))).toBe(id);
    const after = (await all(p, ids.docs!)).find((e) => e.name === 'swap.txt')!;
    expect(after.ref).toBe(id);
    expect(after.size).toBe(7);
    expect(after.version).not.toBe(before.version);
    expect(after.mtimeMs).toBeGreaterThan(before.mtimeMs);
    const obj = { source: p.name, ref: id, version: after.version, size: after.size };
    expect((await transport.readRange(await p.locate(obj), { start: 0, end: 7 }, obj)).toString()).toBe('two two');
  });
});

describe('nomad emulator: authentication', () => {
  for (const status of [401, 403] as const) {
    it(`an expired token answered with ${status} re-authenticates through the refresh token`, async () => {
      const p = provider();
      await p.stat(ids.readme!);
      expect(p.client.logins).toEqual({ password: 1, refresh: 0 });
      emu.expiredStatus = status;
      emu.server.clearLog();
      emu.server.faults.add({ kind: 'expire-tokens' }); // the next request finds its token revoked
      expect(await p.stat(ids.readme!)).toMatchObject({ name: 'readme.txt' });
      expect(paths()).toEqual([`${status} /api/admin/asset/${ids.readme}`, '200 /api/account/refresh-token', `200 /api/admin/asset/${ids.readme}`]);
      expect(p.client.logins).toEqual({ password: 1, refresh: 1 });
    });
  }

  it('tokens really expire: an old token is refused, the provider keeps working via refresh', async () => {
    emu.tokenTtlMs = 1_000;
    try {
      const first = await login();
      expect(first.expirationSeconds).toBe(1);
      const p = provider();
      await all(p, ids.docs!);
      const old = await p.client.session.current();
      await new Promise((r) => setTimeout(r, 1_300));
      const refused = await api(`/api/admin/asset/${ids.readme}`, { token: old });
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ status: 401, title: 'Unauthorized', instance: `/api/admin/asset/${ids.readme}` });
      expect((await all(p, ids.docs!)).length).toBeGreaterThan(3);
      expect(p.client.logins.password).toBe(1);
      expect(p.client.logins.refresh).toBeGreaterThanOrEqual(1);
    } finally {
      emu.tokenTtlMs = 45 * 60_000;
    }
  });

  it('a refused refresh token falls back to a password login', async () => {
    const p = provider();
    await p.stat(ids.readme!);
    emu.revokeRefreshTokens();
    emu.revokeTokens();
    emu.server.clearLog();
    expect(await p.stat(ids.readme!)).toMatchObject({ name: 'readme.txt' });
    expect(paths()).toEqual([`401 /api/admin/asset/${ids.readme}`, '404 /api/account/refresh-token', '200 /api/account/login', `200 /api/admin/asset/${ids.readme}`]);
    expect(p.client.logins).toEqual({ password: 2, refresh: 0 });
  });

  it('a wrong password is an AuthError; the emulator answers 404 problem details', async () => {
    await expect(provider({ password: 'wrong' }).stat(ids.readme!)).rejects.toBeInstanceOf(AuthError);
    const r = await api('/api/account/login', { body: { userName: USER.userName, password: 'wrong' } });
    expect(r.status).toBe(404);
    expect(Object.keys(r.body).sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
  });

  it('ping keeps the session and refresh tokens rotate', async () => {
    const p = provider();
    expect(await p.client.ping()).toEqual({ pingStatus: 'Normal' });
    const a = await login();
    const b = await api('/api/account/refresh-token', { body: { refreshToken: a.refreshToken } });
    expect(b.body).toMatchObject({ userSessionId: a.userSessionId, id: a.id, loginStatus: null });
    expect((await api('/api/account/refresh-token', { body: { refreshToken: a.refreshToken } })).status).toBe(404);
  });
});

describe('nomad emulator: unreadable assets', () => {
  it('an Archived asset is listed EACCES and locate throws UnavailableError naming the status', async () => {
    const p = provider();
    const docs = await all(p, ids.docs!);
    const old = docs.find((e) => e.name === 'old.mxf')!;
    expect(old.unreadable?.code).toBe('EACCES');
    expect(old.unreadable?.reason).toMatch(/Archived/);
    const err = await p.locate({ source: p.name, ref: old.ref, version: old.version, size: old.size }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe('EACCES');
    expect((err as Error).message).toMatch(/Archived/);
    expect(docs.find((e) => e.name === 'readme.txt')!.unreadable).toBeUndefined();
  });

  it('an Uploading asset is EAGAIN until it becomes Available, then it reads', async () => {
    const p = provider();
    const e = (await all(p, ids.docs!)).find((x) => x.name === 'incoming.mov')!;
    expect(e.unreadable).toMatchObject({ code: 'EAGAIN' });
    expect(e.unreadable!.reason).toMatch(/Uploading/);
    const obj = { source: p.name, ref: e.ref, version: e.version, size: e.size };
    await expect(p.locate(obj)).rejects.toMatchObject({ code: 'EAGAIN', name: 'UnavailableError' });
    for (const [status, code] of [['PendingRestore', 'EAGAIN'], ['Registering', 'EAGAIN'], ['Error', 'EACCES'], ['Deleting', 'EACCES']] as const) {
      emu.setStatus(e.ref, status);
      expect((await p.stat(e.ref)).unreadable?.code).toBe(code);
    }
    emu.setStatus(e.ref, 'Available');
    expect((await p.stat(e.ref)).unreadable).toBeUndefined();
    expect((await transport.readRange(await p.locate(obj), { start: 6, end: 15 }, obj)).toString()).toBe('uploading');
    emu.setStatus(e.ref, 'Uploading');
  });
});

describe('nomad emulator: errors and faults', () => {
  it('RFC 7807 bodies map to NotFoundError / AuthError with the detail', async () => {
    const p = provider();
    const missing = randomUUID();
    const err = await p.stat(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(`Asset ${missing} was not found.`);
    const { token } = await login();
    const r = await api(`/api/admin/asset/${missing}`, { token });
    expect(r.body).toEqual({ type: expect.stringContaining('rfc9110'), title: 'Not Found', status: 404, detail: `Asset ${missing} was not found.`, instance: `/api/admin/asset/${missing}` });
    const bad = await api('/api/admin/search', { token, body: { filters: [{ fieldName: 'parentId', operator: 'Sideways', values: 'x' }] } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ title: 'Bad Request', status: 400, detail: expect.stringContaining('Sideways') });
    expect((await api(`/api/admin/asset/${ids.readme}`)).status).toBe(401);
  });

  it('429 with Retry-After is a TransientError with retryAfterMs; 5xx and resets are transient too', async () => {
    const p = provider();
    await p.stat(ids.readme!); // logged in
    emu.server.faults.add({ kind: 'status', status: 429, retryAfterSec: 7, pathPrefix: '/api/admin/search' });
    const e429 = await all(p, ids.docs!).catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(TransientError);
    expect(e429).toMatchObject({ status: 429, retryAfterMs: 7_000 });
    // Queued from another process's point of view: through the control route.
    await fetch(`${emu.url}/__faults`, { method: 'POST', body: JSON.stringify({ kind: 'status', status: 503, pathPrefix: '/api/admin/asset/' }) });
    await expect(p.stat(ids.readme!)).rejects.toMatchObject({ name: 'TransientError', status: 503 });
    emu.server.faults.add({ kind: 'reset', pathPrefix: '/api/admin/asset/' });
    await expect(p.stat(ids.readme!)).rejects.toBeInstanceOf(TransientError);
    expect((await all(p, ids.docs!)).length).toBeGreaterThan(3); // and then it works again
  });

  it('a fullUrl refused by storage is replaced by a fresh one on the next locate', async () => {
    emu.urlTtlMs = 5_000;
    try {
      const p = provider();
      const e = await p.stat(ids.readme!);
      const obj = { source: p.name, ref: e.ref, version: e.version, size: e.size };
      const loc = await p.locate(obj);
      expect(loc.expiresAt).toBeGreaterThan(Date.now() + 3_000);
      expect(loc.expiresAt).toBeLessThanOrEqual(Date.now() + 5_000);
      proxy.expireNext(1);
      await expect(transport.readRange(loc, { start: 0, end: 5 }, obj)).rejects.toBeInstanceOf(ExpiredError);
      await new Promise((r) => setTimeout(r, 1_100)); // a new second: a new X-Amz-Date, a new signature
      const again = await p.locate(obj);
      expect(again.url).not.toBe(loc.url);
      expect((await transport.readRange(again, { start: 0, end: 5 }, obj)).toString()).toBe('hello');
    } finally {
      emu.urlTtlMs = 60_000;
    }
  });
});

describe('nomad: platform ids', () => {
  it('ancestry climbs parentId, one asset call per level, to the bucket, or to rootFolderId; outside it there is no path', async () => {
    const p = provider();
    const deep = await p.byId(ids.deep!);
    expect(deep).toMatchObject({ name: 'deep.mp4', kind: 'file', ref: ids.deep, status: 'Available' });
    emu.server.clearLog();
    expect(await p.ancestry(deep)).toEqual([ids.bucket, ids.docs, ids.nested]);
    expect(paths().filter((s) => s.includes('/api/admin/asset/'))).toHaveLength(4);
    expect(await p.ancestry(await p.byId(ids.bucket!))).toEqual([]);
    const rooted = provider({ rootFolderId: ids.docs });
    expect(await rooted.ancestry(deep)).toEqual([ids.nested]);
    expect(await rooted.ancestry(await rooted.byId(ids.readme!))).toEqual([]);
    await expect(rooted.ancestry(await rooted.byId(ids.big!))).rejects.toBeInstanceOf(NotFoundError);
  });
});
