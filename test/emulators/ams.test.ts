/**
 * AMS v2 emulator + AmsProvider specifics: paging of large sets, locator economy (one per asset, the
 * 5-per-asset limit, deletion on close), token expiry and re-authentication, faults, OData error
 * shapes, the legacy root's 301, and storage-encrypted files. Bytes live in a real Azurite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmsProvider } from '../../src/providers/ams/index.js';
import { startAmsEmulator, type AmsEmulator } from '@assetfs/lab/emulators/ams/index.js';
import { AzureBacking } from '@assetfs/lab/emulators/common/backing.js';
import { startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { AZURITE_ACCOUNT, startAzurite, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { AuthError, TransientError, UnavailableError } from '../../src/core/errors.js';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { HttpTransport } from '../../src/transports/http.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';

let azurite: StorageServer;
let proxy: FaultProxy;
let backing: AzureBacking;
let emu: AmsEmulator;
const transport = new HttpTransport({ requestTimeoutMs: 10_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  azurite = await startAzurite();
  proxy = await startFaultProxy(azurite.url);
  backing = new AzureBacking(azurite.url, `${proxy.url}/${AZURITE_ACCOUNT}`);
  emu = await startAmsEmulator({ azure: backing, tenant: 'tenant-1' });
}, 120_000);

afterAll(async () => {
  await transport.close();
  await emu?.close();
  await proxy?.close();
  await azurite?.stop();
});

function amsProvider(opts: { e?: AmsEmulator; cfg?: Record<string, unknown>; listPageSize?: number } = {}): AmsProvider {
  const e = opts.e ?? emu;
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'ams', type: 'ams', restUrl: e.apiUrl, tokenUrl: e.tokenUrl, clientId: e.clientId, clientSecret: e.clientSecret, urlTtl: 60_000, ...opts.cfg }],
  }).sources[0] as SourceConfigOf<'ams'>;
  return new AmsProvider(cfg, { log: silentLogger, listPageSize: opts.listPageSize });
}

async function all(p: Provider, dir: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir)) out.push(e);
  return out;
}

/** A raw call to the emulator's service root, as another AMS client would make it. */
function amsFetch(path: string, init: { method?: string; json?: unknown; verbose?: boolean; headers?: Record<string, string> } = {}) {
  return fetch(`${emu.apiUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${emu.issueToken()}`, 'x-ms-version': '2.19', dataserviceversion: '3.0', maxdataserviceversion: '3.0',
      accept: init.verbose ? 'application/json;odata=verbose' : 'application/json',
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers,
    },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
    redirect: 'manual',
  });
}

const q = (id: string) => `('${encodeURIComponent(id)}')`;
const count = (method: string, re: RegExp) => emu.server.requests().filter((r) => r.method === method && re.test(r.path)).length;

/** An asset with `n` real files `c-0.bin`…; returns its id and the files' bytes. */
async function assetWithFiles(name: string, n: number, opts: { options?: number } = {}): Promise<{ id: string; data: Buffer[] }> {
  const id = emu.createAsset(name, opts);
  const data = Array.from({ length: n }, (_, i) => deterministicBytes(`${name}-${i}`, 70_000 + i * 1013));
  for (let i = 0; i < n; i++) await emu.putFile(id, `c-${i}.bin`, data[i]!);
  return { id, data };
}

describe('AMS emulator and provider', () => {
  it('pages 10,000 assets through the provider, each exactly once, at most 1000 per answer', async () => {
    const bulk = await startAmsEmulator({ azure: backing });
    const p = amsProvider({ e: bulk });
    try {
      bulk.seedMany(10_000, 'bulk-');
      const names = (await all(p, '')).map((e) => e.name);
      expect(names.length).toBe(10_000);
      expect(new Set(names).size).toBe(10_000);
      const pages = bulk.server.requests().filter((r) => r.path === '/api/Assets');
      expect(pages.length).toBe(11); // 10 full pages, then an empty one
      expect(pages.every((r) => new URLSearchParams(r.query).get('$top') === '1000')).toBe(true);
      // The server caps $top at 1000 and links to the rest.
      const r = await fetch(`${bulk.apiUrl}Assets?$top=5000`, { headers: { authorization: `Bearer ${bulk.issueToken()}`, 'x-ms-version': '2.19', accept: 'application/json;odata=verbose' } });
      const body = (await r.json()) as { d: { results: unknown[]; __next?: string } };
      expect(body.d.results.length).toBe(1000);
      expect(body.d.__next).toMatch(/\$skip=1000/);
    } finally {
      await p.close();
      await bulk.close();
    }
  });

  it('lists 1,001 files of one asset over several pages', async () => {
    const id = emu.createAsset('thousand-and-one');
    emu.seedFiles(id, Array.from({ length: 1001 }, (_, i) => `f-${i}.mp4`));
    for (const listPageSize of [undefined, 250]) {
      const p = amsProvider({ listPageSize });
      try {
        const asset = (await all(p, '')).find((e) => e.name === 'thousand-and-one')!;
        expect(asset).toMatchObject({ kind: 'dir', ref: `${id}/` });
        const files = await all(p, asset.ref);
        expect(files.length).toBe(1001);
        expect(new Set(files.map((f) => f.ref)).size).toBe(1001);
        expect(files.every((f) => f.kind === 'file' && f.size === 1)).toBe(true);
      } finally {
        await p.close();
      }
    }
  });

  it('reads 8 files of one asset concurrently through ONE locator, and close() deletes locators and policies', async () => {
    const { id, data } = await assetWithFiles('eight', 8);
    const p = amsProvider();
    const files = await all(p, `${id}/`);
    const postsBefore = count('POST', /^\/api\/Locators$/);
    const located = await Promise.all(files.map(async (f) => {
      const obj = { source: p.name, ref: f.ref, version: f.version, size: f.size };
      const loc = await p.locate(obj);
      const got = await transport.readRange(loc, { start: 0, end: f.size }, obj);
      expect(sha256(got)).toBe(sha256(data[Number(/c-(\d)/.exec(f.name)![1])]!));
      return loc;
    }));
    expect(count('POST', /^\/api\/Locators$/) - postsBefore).toBe(1);
    expect(emu.liveLocators(id)).toBe(1);
    expect(emu.liveAccessPolicies()).toBe(1);
    await p.close();
    expect(emu.liveLocators()).toBe(0);
    expect(emu.liveAccessPolicies()).toBe(0);
    // Deleting the locator revoked its SAS in storage.
    expect((await fetch(located[0]!.url)).status).toBe(403);
  });

  it('replaces an expiring locator, never keeps more than 2 of ours, and deletes the old one after it expires', async () => {
    const { id } = await assetWithFiles('rotating', 2);
    const p = amsProvider({ cfg: { urlTtl: 4_000 } }); // renewal margin: 25 % = 1 s
    try {
      const [a, b] = await all(p, `${id}/`);
      const obj = (f: RemoteEntry) => ({ source: p.name, ref: f.ref, version: f.version, size: f.size });
      const first = await p.locate(obj(a!));
      expect(first.expiresAt - Date.now()).toBeLessThanOrEqual(4_000);
      expect((await p.locate(obj(b!))).url.split('?')[1]).toBe(first.url.split('?')[1]); // reused while fresh
      await sleep(Math.max(0, first.expiresAt - Date.now() - 700)); // inside the renewal margin, not yet expired
      const second = await p.locate(obj(b!));
      expect(second.url.split('?')[1]).not.toBe(first.url.split('?')[1]);
      expect(emu.liveLocators(id)).toBe(2); // the old one still serves reads that hold it
      expect((await fetch(first.url)).status).toBe(200);
      await sleep(Math.max(0, first.expiresAt - Date.now()) + 1_500);
      expect(emu.liveLocators(id)).toBe(1);
      expect(p.liveLocators(`${id}/`)).toBe(1);
      await sleep(Math.max(0, second.expiresAt - Date.now()) + 100); // expired, not yet collected
      await p.locate(obj(a!));
      expect(emu.liveLocators(id)).toBeLessThanOrEqual(2);
    } finally {
      await p.close();
    }
    expect(emu.liveLocators(id)).toBe(0);
  });

  it('a 6th locator on one asset is a 400; the provider frees its stale one, answers TransientError, then succeeds', async () => {
    const { id, data } = await assetWithFiles('crowded', 1);
    const policy = (await (await amsFetch('AccessPolicies', { method: 'POST', json: { Name: 'other', DurationInMinutes: '60', Permissions: 1 } })).json()) as { Id: string };
    const foreign: string[] = [];
    const addForeign = async () => {
      const r = await amsFetch('Locators', { method: 'POST', json: { AccessPolicyId: policy.Id, AssetId: id, Type: 1 } });
      const body = (await r.json()) as Record<string, any>;
      if (r.status === 201) foreign.push(body.Id);
      return { status: r.status, body };
    };
    const p = amsProvider({ cfg: { urlTtl: 4_000 } }); // renewal margin: 25 % = 1 s
    const [f] = await all(p, `${id}/`);
    const obj = { source: p.name, ref: f!.ref, version: f!.version, size: f!.size };
    try {
      const ours = await p.locate(obj);
      for (let i = 0; i < 4; i++) expect((await addForeign()).status).toBe(201);
      const sixth = await addForeign();
      expect(sixth.status).toBe(400);
      expect(sixth.body).toEqual({ 'odata.error': { code: '', message: { lang: 'en-US', value: expect.stringMatching(/at most 5 locators/) } } });
      // Ours is near expiry but alive: its replacement hits the limit, so ours is deleted and the
      // caller told to retry; the retry gets the freed slot.
      await sleep(Math.max(0, ours.expiresAt - Date.now() - 700));
      const err = await p.locate(obj).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect((err as TransientError).retryAfterMs).toBeGreaterThanOrEqual(1000);
      expect(emu.liveLocators(id)).toBe(4);
      const again = await p.locate(obj);
      expect(emu.liveLocators(id)).toBe(5);
      expect((await transport.readRange(again, { start: 10, end: 20 }, obj)).equals(data[0]!.subarray(10, 20))).toBe(true);
    } finally {
      await p.close();
    }
    expect(emu.liveLocators(id)).toBe(4);
    // Five locators of others: a fresh provider gets TransientError and touches none of them.
    expect((await addForeign()).status).toBe(201);
    const p2 = amsProvider();
    try {
      await expect(p2.locate(obj)).rejects.toBeInstanceOf(TransientError);
      expect(emu.liveLocators(id)).toBe(5);
      expect((await amsFetch(`Locators${q(foreign.pop()!)}`, { method: 'DELETE' })).status).toBe(204);
      const loc = await p2.locate(obj);
      expect((await transport.readRange(loc, { start: 0, end: 5 }, obj)).equals(data[0]!.subarray(0, 5))).toBe(true);
    } finally {
      await p2.close();
    }
    for (const l of foreign) expect((await amsFetch(`Locators${q(l)}`, { method: 'DELETE' })).status).toBe(204);
    expect((await amsFetch(`AccessPolicies${q(policy.Id)}`, { method: 'DELETE' })).status).toBe(204);
    expect(emu.liveLocators()).toBe(0);
    expect(emu.liveAccessPolicies()).toBe(0);
  });

  it('logs in with client credentials, and again when the token expires mid-session or is revoked', async () => {
    const id = emu.createAsset('auth-probe');
    const logins = () => count('POST', /^\/tenant-1\/oauth2\/token$/);
    emu.tokenTtlMs = 2_000;
    const p = amsProvider();
    try {
      const before = logins();
      expect((await p.stat(`${id}/`)).name).toBe('auth-probe');
      expect((await p.stat(`${id}/`)).name).toBe('auth-probe');
      expect(logins() - before).toBe(1); // reused
      await sleep(2_100); // the token has expired
      expect((await p.stat(`${id}/`)).name).toBe('auth-probe');
      expect(logins() - before).toBe(2);
      emu.server.faults.add({ kind: 'expire-tokens', pathPrefix: '/api/' }); // revoked before its expiry
      const unauthorized = emu.server.requests().filter((r) => r.status === 401).length;
      expect((await p.stat(`${id}/`)).name).toBe('auth-probe');
      expect(emu.server.requests().filter((r) => r.status === 401).length).toBe(unauthorized + 1);
      expect(logins() - before).toBe(3);
    } finally {
      emu.tokenTtlMs = 3_600_000;
      await p.close();
    }
    const wrong = amsProvider({ cfg: { clientSecret: 'not-the-secret' } });
    await expect(wrong.stat(`${id}/`)).rejects.toBeInstanceOf(AuthError);
    await wrong.close();
  });

  it('takes a static token, and a refused static token is an AuthError', async () => {
    const id = emu.createAsset('static-token');
    const p = amsProvider({ cfg: { tokenUrl: undefined, clientId: undefined, clientSecret: undefined, token: emu.issueToken(60_000) } });
    try {
      expect((await p.stat(`${id}/`)).name).toBe('static-token');
      emu.signer.revokeAll();
      await expect(p.stat(`${id}/`)).rejects.toBeInstanceOf(AuthError);
    } finally {
      await p.close();
    }
  });

  it('injected 5xx and 429 are TransientErrors (429 with retryAfterMs), in the OData error shape', async () => {
    const id = emu.createAsset('faulty');
    const p = amsProvider();
    try {
      await p.stat(`${id}/`); // logged in
      emu.server.faults.add({ kind: 'status', status: 503, pathPrefix: '/api/Assets' });
      const e503 = await p.stat(`${id}/`).catch((e: unknown) => e);
      expect(e503).toBeInstanceOf(TransientError);
      expect((e503 as TransientError).status).toBe(503);
      emu.server.faults.add({ kind: 'status', status: 429, retryAfterSec: 7, pathPrefix: '/api/Assets' });
      const e429 = await all(p, '').catch((e: unknown) => e);
      expect(e429).toBeInstanceOf(TransientError);
      expect((e429 as TransientError).retryAfterMs).toBe(7_000);
      emu.server.faults.add({ kind: 'reset', pathPrefix: '/api/Assets' });
      await expect(p.stat(`${id}/`)).rejects.toBeInstanceOf(TransientError);
      emu.server.faults.add({ kind: 'status', status: 500 });
      const r = await amsFetch('Assets');
      expect(r.status).toBe(500);
      expect(await r.json()).toEqual({ 'odata.error': { code: '', message: { lang: 'en-US', value: 'injected fault 500' } } });
    } finally {
      emu.server.faults.clear();
      await p.close();
    }
  });

  it('answers OData v3 in both JSON flavours, with the documented error bodies and header checks', async () => {
    const { id } = await assetWithFiles('shapes', 1);
    const missing = "Assets('nb:cid:UUID:00000000-0000-0000-0000-00000000abcd')";
    let r = await amsFetch(missing);
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ 'odata.error': { code: '', message: { lang: 'en-US', value: 'Resource Asset not found' } } });
    r = await amsFetch(missing, { verbose: true });
    expect(await r.json()).toEqual({ error: { code: '', message: { lang: 'en-US', value: 'Resource Asset not found' } } });
    // Keys with raw or URL-encoded quotes and colons name the same asset.
    for (const key of [`('${id}')`, q(id), `(%27${id}%27)`]) {
      r = await amsFetch(`Assets${key}`);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { Id: string }).Id).toBe(id);
    }
    expect((await amsFetch(`Assets(${encodeURIComponent(id)})`)).status).toBe(400); // unquoted key
    const verbose = (await (await amsFetch(`Assets${q(id)}/Files`, { verbose: true })).json()) as { d: { results: Record<string, any>[] } };
    const vf = verbose.d.results[0]!;
    expect(vf.__metadata.type).toBe('Microsoft.Cloud.Media.Vod.Rest.Data.Models.AssetFile');
    expect(vf.ContentFileSize).toBe('70000');
    expect(vf.LastModified).toMatch(/^\/Date\(\d+\)\/$/);
    const light = (await (await amsFetch(`Assets${q(id)}/Files`)).json()) as { value: Record<string, any>[] };
    expect(light.value[0]).toMatchObject({ Id: vf.Id, Name: 'c-0.bin', ContentFileSize: '70000', ParentAssetId: id });
    expect(light.value[0]!.__metadata).toBeUndefined();
    expect(Date.parse(light.value[0]!.LastModified)).toBe(Number(/\d+/.exec(vf.LastModified)![0]));
    const single = (await (await amsFetch(`Assets${q(id)}`, { verbose: true })).json()) as { d: Record<string, any> };
    expect(single.d).toMatchObject({ Id: id, Name: 'shapes', State: 0, Options: 0 });
    expect(single.d.__metadata.uri).toContain(encodeURIComponent(id));
    // Headers: x-ms-version is required; the bearer token must be valid.
    r = await amsFetch('Assets', { headers: { 'x-ms-version': '' } });
    expect(r.status).toBe(400);
    expect(((await r.json()) as any)['odata.error'].message.value).toMatch(/x-ms-version/);
    expect((await amsFetch('Assets', { headers: { authorization: '' } })).status).toBe(401);
    expect((await amsFetch('Assets', { headers: { authorization: 'Bearer not.a.token' } })).status).toBe(401);
    expect((await amsFetch('Assets', { headers: { authorization: `Bearer ${emu.issueToken(-1_000)}` } })).status).toBe(401);
    expect((await amsFetch('Assets?$skip=-1')).status).toBe(400);
    // The token endpoint speaks Azure AD, not OData.
    const t = await fetch(emu.tokenUrl, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: 'x', resource: 'https://rest.media.azure.net' }) });
    expect(t.status).toBe(401);
    expect(await t.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('answers the legacy root /API/ with 301; a provider configured on it follows per call and never moves its root', async () => {
    const id = emu.createAsset('legacy');
    const r = await fetch(`${emu.url}/API/Assets?$top=1`, { redirect: 'manual' });
    expect(r.status).toBe(301);
    expect(r.headers.get('location')).toBe(`${emu.apiUrl}Assets?$top=1`);
    const p = amsProvider({ cfg: { restUrl: `${emu.url}/API/` } });
    try {
      const legacy = () => emu.server.requests().filter((x) => x.path.startsWith('/API')).length;
      const before = legacy();
      expect((await all(p, '')).some((e) => e.ref === `${id}/`)).toBe(true);
      expect((await p.stat(`${id}/`)).name).toBe('legacy');
      // A redirect decides nothing for later calls (docs/semantics.md, "Credentials and origins").
      expect(p.rest.serviceRoot).toBe(`${emu.url}/API/`);
      expect(legacy() - before).toBeGreaterThanOrEqual(2);
    } finally {
      await p.close();
    }
  });

  it('lists storage-encrypted files as unreadable (EACCES), and locate refuses them', async () => {
    const { id } = await assetWithFiles('encrypted', 1, { options: 1 });
    const p = amsProvider();
    try {
      const [f] = await all(p, `${id}/`);
      expect(f!.unreadable?.code).toBe('EACCES');
      const err = await p.locate({ source: p.name, ref: f!.ref, version: f!.version, size: f!.size }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as UnavailableError).code).toBe('EACCES');
      expect(emu.liveLocators(id)).toBe(0);
    } finally {
      await p.close();
    }
  });

  it('a locator works only once it has propagated (locatorDelayMs), and only until its expiry', async () => {
    const { id, data } = await assetWithFiles('delayed', 1);
    const policy = (await (await amsFetch('AccessPolicies', { method: 'POST', json: { Name: 'short', DurationInMinutes: 0.05, Permissions: 1 } })).json()) as { Id: string };
    emu.locatorDelayMs = 1_000;
    try {
      const r = await amsFetch('Locators', { method: 'POST', json: { AccessPolicyId: policy.Id, AssetId: id, StartTime: new Date().toISOString(), Type: 1 } });
      expect(r.status).toBe(201);
      const l = (await r.json()) as { Id: string; BaseUri: string; ContentAccessComponent: string; Path: string; ExpirationDateTime: string };
      expect(l.Path).toBe(`${l.BaseUri}${l.ContentAccessComponent}`);
      expect(l.BaseUri).toMatch(new RegExp(`^${proxy.url}/${AZURITE_ACCOUNT}/asset-[0-9a-f-]{36}$`));
      expect(Date.parse(l.ExpirationDateTime) - Date.now()).toBeLessThanOrEqual(3_000);
      const url = `${l.BaseUri}/c-0.bin${l.ContentAccessComponent}`;
      expect((await fetch(url)).status).toBe(403);
      await sleep(1_100);
      const ok = await fetch(url);
      expect(ok.status).toBe(200);
      expect(Buffer.from(await ok.arrayBuffer()).equals(data[0]!)).toBe(true);
      await sleep(Math.max(0, Date.parse(l.ExpirationDateTime) - Date.now()) + 200);
      expect((await fetch(url)).status).toBe(403);
      expect((await amsFetch(`Locators${q(l.Id)}`, { method: 'DELETE' })).status).toBe(204);
      expect((await amsFetch(`Locators${q(l.Id)}`, { method: 'DELETE' })).status).toBe(404);
    } finally {
      emu.locatorDelayMs = 0;
      await amsFetch(`AccessPolicies${q(policy.Id)}`, { method: 'DELETE' });
    }
  });
});

describe('ams: platform ids', () => {
  it('byId: a file id is one Files call; an asset id is Files (404) then Assets, and one Assets call once the root was listed', async () => {
    const { id: asset } = await assetWithFiles('ids-asset', 1);
    const file = [...emu.catalog.files.values()].find((f) => f.ParentAssetId === asset)!;
    const p = amsProvider();
    // The REST calls (the token endpoint aside).
    const calls = () => emu.server.requests().filter((r) => r.path.startsWith('/api/')).map((r) => `${r.method} ${r.status} ${r.path}`);
    emu.server.clearLog();
    expect(await p.byId(file.Id)).toMatchObject({ name: 'c-0.bin', kind: 'file', ref: `${asset}/${file.Id}`, id: file.Id });
    expect(calls()).toEqual([`GET 200 /api/Files${q(file.Id)}`]);
    emu.server.clearLog();
    expect(await p.byId(asset)).toMatchObject({ name: 'ids-asset', kind: 'dir', ref: `${asset}/`, status: 'Initialized' });
    expect(calls()).toEqual([`GET 404 /api/Files${q(asset)}`, `GET 200 /api/Assets${q(asset)}`]);
    await all(p, '');
    emu.server.clearLog();
    expect((await p.byId(asset)).ref).toBe(`${asset}/`);
    expect(calls()).toEqual([`GET 200 /api/Assets${q(asset)}`]);
  });
});
