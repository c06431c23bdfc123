// MK.IO emulator + provider specifics beyond the shared contract: $skiptoken paging of 10,000 assets,
// both auth headers and the MK.IO error body, asset PUT validation, the legacy SDK path, jwt expiry
// and revocation mid-read, injected faults and the real rate-limit path, storage-access refusal, the
// presigned-S3 variant of getFileAccessInfo, and listing versions with and without listing ETags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MkioProvider } from '../../src/providers/mkio/index.js';
import { AZURE_ACCOUNT, MKIO_DEFAULT_TOKEN, S3_ACCOUNT, startMkioEmulator, type MkioEmulator } from '@assetfs/lab/emulators/mkio/index.js';
import { AzureBacking, S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { AuthError, ExpiredError, NotFoundError, TransientError, UnavailableError } from '../../src/core/errors.js';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { HttpTransport } from '../../src/transports/http.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';

let az: StorageServer, s3: StorageServer, proxy: FaultProxy, s3b: S3Backing, emu: MkioEmulator;
const transport = new HttpTransport({ requestTimeoutMs: 10_000 });
const providers: Provider[] = [];
const CLIP = deterministicBytes('mkio-clip', 300_000);

function provider(opts: { token?: string; listPageSize?: number } = {}): MkioProvider {
  const cfg = ConfigSchema.parse({ sources: [{ name: 'mk', type: 'mkio', baseUrl: emu.url, project: emu.project, token: opts.token ?? MKIO_DEFAULT_TOKEN }] }).sources[0] as SourceConfigOf<'mkio'>;
  const p = new MkioProvider(cfg, { log: silentLogger, listPageSize: opts.listPageSize });
  providers.push(p);
  return p;
}

async function all(p: Provider, dir: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir)) out.push(e);
  return out;
}

const api = (path: string, init: RequestInit & { token?: string | null } = {}) => {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (init.token !== null) headers.authorization ??= `Bearer ${init.token ?? MKIO_DEFAULT_TOKEN}`;
  return fetch(`${emu.url}${path}`, { ...init, headers });
};
const v1 = (rest: string) => `/api/v1/projects/${emu.project}/media/${rest}`;
const accessCalls = () => emu.server.requests().filter((r) => r.path.endsWith('/getFileAccessInfo')).length;
const obj = (p: Provider, e: RemoteEntry) => ({ source: p.name, ref: e.ref, version: e.version, size: e.size });

beforeAll(async () => {
  [az, s3] = await Promise.all([startAzurite(), startS3rver({ buckets: ['mkio'] })]);
  proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  s3b = new S3Backing(s3.url, proxy.url, 'mkio');
  emu = await startMkioEmulator({ azure: new AzureBacking(az.url, az.url), s3: s3b });
  await emu.createAsset('movie', { storage: 'azure', subPath: 'incoming' });
  await emu.putFile('movie', 'clip.mp4', CLIP);
  await emu.putFile('movie', 'subs/en/clip.srt', Buffer.from('1\n00:00:01,000 --> 00:00:02,000\nhi\n'));
  await emu.createAsset('single', { storage: 's3' });
  await emu.putFile('single', 'only.mp4', CLIP);
  emu.seedMany(10_000, { prefix: 'bulk-' });
}, 180_000);

afterAll(async () => {
  for (const p of providers) await p.close();
  await transport.close();
  await emu?.close();
  s3b?.close();
  await proxy?.close();
  await Promise.all([az?.stop(), s3?.stop()]);
});

describe('mkio: asset paging', () => {
  it('pages 10,000 assets by $skiptoken, each exactly once, one GET per page', async () => {
    emu.server.clearLog();
    const names = (await all(provider({ listPageSize: 1000 }), '')).map((e) => e.name).filter((n) => n.startsWith('bulk-'));
    expect(names.length).toBe(10_000);
    expect(new Set(names).size).toBe(10_000);
    const gets = emu.server.requests().filter((r) => r.path === v1('assets'));
    expect(gets.length).toBe(Math.ceil(10_002 / 1000));
    expect(gets.slice(1).every((r) => new URLSearchParams(r.query).has('$skiptoken'))).toBe(true);
  });

  it('answers pagination, a relative nextLink, and refuses a forged $skiptoken', async () => {
    const page = (await (await api(`${v1('assets')}?$top=3&$orderby=name desc`)).json()) as any;
    expect(page.supplemental.pagination).toEqual({ start: 0, end: 3, records: 3, total: 10_002 });
    expect(page.value.map((a: any) => a.name)).toEqual(['single', 'movie', 'bulk-09999']);
    expect(page['@odata.nextLink']).toMatch(/^\/api\/v1\/projects\/.+\/media\/assets\?.*\$skiptoken=/);
    const next = (await (await api(page['@odata.nextLink'])).json()) as any;
    expect(next.value.map((a: any) => a.name)).toEqual(['bulk-09998', 'bulk-09997', 'bulk-09996']);
    expect(next.supplemental.pagination.start).toBe(3);
    const token = new URL(page['@odata.nextLink'], emu.url).searchParams.get('$skiptoken')!;
    const forged = Buffer.from(JSON.stringify({ a: 'bulk-05000', d: 1 })).toString('base64url') + token.slice(token.indexOf('.'));
    const bad = await api(`${v1('assets')}?$top=3&$orderby=name desc&$skiptoken=${forged}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe('InvalidSkipToken');
  });

  it('serves the legacy SDK path with the x-mkio-token header', async () => {
    const r = await api(`/api/ams/${emu.subscription}/assets?$top=2`, { token: null, headers: { 'x-mkio-token': MKIO_DEFAULT_TOKEN } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(body.value).toHaveLength(2);
    expect(body['@odata.nextLink']).toMatch(new RegExp(`^/api/ams/${emu.subscription}/assets\\?`));
  });
});

describe('mkio: auth, errors and asset validation', () => {
  it('refuses unknown tokens with the MK.IO error body, and the provider gets an AuthError', async () => {
    for (const headers of [{ authorization: 'Bearer nope' }, { 'x-mkio-token': 'nope' }, {}] as Record<string, string>[]) {
      const r = await api(v1('assets'), { token: null, headers });
      expect(r.status).toBe(401);
      const body = (await r.json()) as any;
      expect(body).toMatchObject({ error: { code: 'Unauthorized', extraDetail: {} }, status: 401 });
      expect(typeof body.error.detail).toBe('string');
      expect(typeof body.ref).toBe('string');
    }
    await expect(all(provider({ token: 'nope' }), '')).rejects.toBeInstanceOf(AuthError);
  });

  it('404s a missing asset with the error body; the provider maps it to NotFoundError', async () => {
    const r = await api(v1('assets/ghost'));
    expect(r.status).toBe(404);
    expect((await r.json()) as any).toMatchObject({ error: { code: 'AssetNotFound' }, status: 404 });
    await expect(provider().stat('ghost/')).rejects.toBeInstanceOf(NotFoundError);
    await expect(provider().stat('movie/nope.mp4')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('validates PUT: storageAccountName required, container name, unique (container, storage), fixed fields', async () => {
    const put = (name: string, properties: Record<string, unknown>) => api(v1(`assets/${name}`), { method: 'PUT', body: JSON.stringify({ properties }), headers: { 'content-type': 'application/json' } });
    expect((await put('a1', { container: 'a1-c' })).status).toBe(400);
    expect((await put('a1', { storageAccountName: AZURE_ACCOUNT, container: 'Bad_Name' })).status).toBe(400);
    const made = await put('a1', { storageAccountName: AZURE_ACCOUNT, container: 'a1-c', subPath: 'in' });
    expect(made.status).toBe(201);
    expect(((await made.json()) as any).properties).toMatchObject({ container: 'a1-c', storageAccountName: AZURE_ACCOUNT, subPath: 'in' });
    const dup = await put('a2', { storageAccountName: AZURE_ACCOUNT, container: 'a1-c' });
    expect(dup.status).toBe(409);
    expect((await dup.json()) as any).toMatchObject({ error: { code: 'Conflict' }, status: 409 });
    expect((await put('a2', { storageAccountName: S3_ACCOUNT, container: 'a1-c' })).status).toBe(201); // other storage: fine
    expect((await put('a1', { storageAccountName: AZURE_ACCOUNT, container: 'a1-c', subPath: 'moved' })).status).toBe(400);
    expect((await put('a1', { storageAccountName: AZURE_ACCOUNT, container: 'a1-c', subPath: 'in', description: 'new' })).status).toBe(200);
    expect((await api(v1('assets/a1'), { method: 'DELETE' })).status).toBe(200);
    expect((await api(v1('assets/a2'), { method: 'DELETE' })).status).toBe(200);
    expect((await api(v1('assets/a1'))).status).toBe(404);
  });

  it('injected 5xx and 429 are TransientErrors, the 429 with its Retry-After', async () => {
    const p = provider();
    emu.server.faults.add({ kind: 'status', status: 503, pathPrefix: '/api/v1/' });
    await expect(p.stat('movie/')).rejects.toMatchObject({ name: 'TransientError', status: 503 });
    emu.server.faults.add({ kind: 'status', status: 429, retryAfterSec: 7, pathPrefix: '/api/v1/' });
    const e = await p.stat('movie/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransientError);
    expect((e as TransientError).retryAfterMs).toBe(7000);
    expect((await p.stat('movie/')).kind).toBe('dir');
  });

  it('enforces the project rate limit with 429 and Retry-After', async () => {
    const p = provider();
    emu.rateLimits.getsPerMinute = 3;
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => p.stat('movie/')));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
      expect(refused.length).toBeGreaterThanOrEqual(3);
      for (const e of refused) {
        expect(e).toBeInstanceOf(TransientError);
        expect((e as TransientError).status).toBe(429);
        expect((e as TransientError).retryAfterMs).toBeGreaterThan(0);
        expect((e as TransientError).retryAfterMs).toBeLessThanOrEqual(60_000);
      }
      const r = await api(v1('assets/movie'));
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await r.json()) as any).toMatchObject({ error: { code: 'TooManyRequests' }, status: 429 });
    } finally {
      emu.rateLimits.getsPerMinute = 2000;
    }
  });
});

describe('mkio: storage listing, versions and reads', () => {
  it('lists nested folders and gives each file its storage ETag, by HEAD or from a listing that has it', async () => {
    const p = provider();
    emu.server.clearLog();
    const top = await all(p, 'movie/');
    expect(top.map((e) => `${e.name}:${e.kind}`).sort()).toEqual(['clip.mp4:file', 'subs:dir']);
    const clip = top.find((e) => e.name === 'clip.mp4')!;
    const stored = await emu.store.head('azure', emu.asset('movie')!.container, 'incoming/clip.mp4');
    expect(clip).toMatchObject({ size: CLIP.length, version: stored!.etag });
    expect(emu.server.requests().filter((r) => r.method === 'HEAD').length).toBe(1);
    expect((await all(p, (await all(p, 'movie/subs/'))[0]!.ref)).map((e) => e.name)).toEqual(['clip.srt']);

    emu.listingDetail = true;
    try {
      emu.server.clearLog();
      const again = (await all(p, 'movie/')).find((e) => e.name === 'clip.mp4')!;
      expect(again.version).toBe(clip.version);
      expect(emu.server.requests().filter((r) => r.method === 'HEAD' || r.path.endsWith('getFileAccessInfo')).length).toBe(0);
    } finally {
      emu.listingDetail = false;
    }
  });

  it('a jwt expiring mid-read is refused by storage; after refused() a fresh getFileAccessInfo reads on', async () => {
    const p = provider();
    emu.urlTtlMs = 1_500;
    try {
      const e = (await all(p, 'movie/')).find((x) => x.name === 'clip.mp4')!;
      const o = obj(p, e);
      const loc = await p.locate(o);
      expect(loc.headers?.authorization).toMatch(/^Bearer /);
      expect(loc.expiresAt).toBeLessThanOrEqual(Date.now() + 1_500);
      expect((await transport.readRange(loc, { start: 0, end: 100_000 }, o)).equals(CLIP.subarray(0, 100_000))).toBe(true);
      await new Promise((r) => setTimeout(r, Math.max(0, loc.expiresAt - Date.now()) + 1_200));
      await expect(transport.readRange(loc, { start: 100_000, end: 200_000 }, o)).rejects.toBeInstanceOf(ExpiredError);
      const before = accessCalls();
      p.refused(o, loc);
      const again = await p.locate(o);
      expect(accessCalls()).toBe(before + 1);
      expect(again.headers?.authorization).not.toBe(loc.headers?.authorization);
      expect((await transport.readRange(again, { start: 100_000, end: 200_000 }, o)).equals(CLIP.subarray(100_000, 200_000))).toBe(true);
    } finally {
      emu.urlTtlMs = 5 * 60_000;
    }
  });

  it('revoked jwts (expire-tokens fault) are refused before their expiry; refused() then re-mints', async () => {
    const p = provider();
    const e = (await all(p, 'movie/')).find((x) => x.name === 'clip.mp4')!;
    const o = obj(p, e);
    const loc = await p.locate(o);
    expect((await p.locate(o)).headers?.authorization).toBe(loc.headers?.authorization); // shared until refused
    emu.server.faults.add({ kind: 'expire-tokens', pathPrefix: '/blob/' });
    await expect(transport.readRange(loc, { start: 0, end: 10 }, o)).rejects.toBeInstanceOf(ExpiredError);
    p.refused(o, loc);
    const again = await p.locate(o);
    expect((await transport.readRange(again, { start: 5, end: 15 }, o)).equals(CLIP.subarray(5, 15))).toBe(true);
  });

  it('a listing whose HEAD probe is refused asks MK.IO once more; a stale refused() keeps the newer answer', async () => {
    const p = provider();
    const e = (await all(p, 'movie/')).find((x) => x.name === 'clip.mp4')!;
    const o = obj(p, e);
    const loc = await p.locate(o);
    emu.signer.revokeAll();
    const before = accessCalls();
    expect((await all(p, 'movie/')).find((x) => x.name === 'clip.mp4')!.version).toBe(e.version);
    expect(accessCalls()).toBe(before + 1);
    p.refused(o, loc); // names the revoked jwt, not the one just fetched
    const again = await p.locate(o);
    expect(accessCalls()).toBe(before + 1);
    expect((await transport.readRange(again, { start: 0, end: 10 }, o)).equals(CLIP.subarray(0, 10))).toBe(true);
  });

  it("a jwt reads only its own asset's container", async () => {
    const p = provider();
    const loc = await p.locate({ source: p.name, ref: 'movie/clip.mp4', version: '', size: CLIP.length });
    const other = await emu.createAsset('neighbour', { storage: 'azure' });
    await emu.putFile('neighbour', 'x.bin', Buffer.from('secret'));
    const r = await fetch(`${emu.url}/blob/${AZURE_ACCOUNT}/${other.container}/x.bin`, { headers: loc.headers });
    expect(r.status).toBe(403);
    expect(await r.text()).toContain('AuthorizationPermissionMismatch');
  });

  it('a refused storage credential lists files as unreadable and locate() fails with EACCES', async () => {
    const p = provider();
    emu.setCredentialExpired(AZURE_ACCOUNT, true);
    try {
      const clip = (await all(p, 'movie/')).find((x) => x.name === 'clip.mp4')!;
      expect(clip.unreadable?.code).toBe('EACCES');
      expect(clip.unreadable?.reason).toMatch(/credential/);
      expect((await p.stat(clip.ref)).unreadable?.code).toBe('EACCES');
      const err = await p.locate(obj(p, clip)).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as UnavailableError).code).toBe('EACCES');
    } finally {
      emu.setCredentialExpired(AZURE_ACCOUNT, false);
    }
  });

  it('S3 storage: a plain bucket URL takes the jwt; a presigned URL is used as is and expires', async () => {
    const p = provider();
    const e = (await all(p, 'single/'))[0]!;
    const o = obj(p, e);
    expect(e.version).toBe((await s3b.head(`${emu.asset('single')!.container}/only.mp4`))!.etag);
    const plain = await p.locate(o);
    expect(plain.url).toContain(`/s3/mkio/`);
    expect((await transport.readRange(plain, { start: 7, end: 70_007 }, o)).equals(CLIP.subarray(7, 70_007))).toBe(true);

    emu.s3Presign = true;
    emu.urlTtlMs = 1_000;
    try {
      const q = provider();
      expect((await q.stat(e.ref)).version).toBe(e.version); // probed with a 1-byte GET on the presigned URL
      const loc = await q.locate(o);
      expect(new URL(loc.url).searchParams.has('X-Amz-Signature')).toBe(true);
      expect(loc.headers).toBeUndefined();
      expect((await transport.readRange(loc, { start: 1, end: 50_001 }, o)).equals(CLIP.subarray(1, 50_001))).toBe(true);
      await new Promise((r) => setTimeout(r, Math.max(0, loc.expiresAt - Date.now()) + 1_500));
      await expect(transport.readRange(loc, { start: 0, end: 10 }, o)).rejects.toBeInstanceOf(ExpiredError);
      q.refused(o, loc);
      emu.urlTtlMs = 60_000;
      const again = await q.locate(o);
      expect(again.url).not.toBe(loc.url);
      expect((await transport.readRange(again, { start: 0, end: 10 }, o)).equals(CLIP.subarray(0, 10))).toBe(true);
    } finally {
      emu.s3Presign = false;
      emu.urlTtlMs = 5 * 60_000;
    }
  });
});
