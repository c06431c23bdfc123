/** Wordbee emulator + provider specifics (docs/providers.md#wordbee), beyond the shared contract. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { TransientError } from '../../src/core/errors.js';
import { WordbeeProvider } from '../../src/providers/wordbee/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { startWordbeeEmulator, type WordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { HttpTransport } from '../../src/transports/http.js';
import { silentLogger } from '../../src/util/logger.js';
import { walk } from '../contract/provider-suite.js';

let emu: WordbeeEmulator;
const transport = new HttpTransport({ requestTimeoutMs: 5_000 });

function provider(over: Record<string, unknown> = {}, listPageSize?: number): Provider {
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'wb', type: 'wordbee', baseUrl: emu.apiUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214', 'jbs55'], ...over }],
  }).sources[0] as SourceConfigOf<'wordbee'>;
  return new WordbeeProvider(cfg, { log: silentLogger, listPageSize });
}

async function names(p: Provider, path: string): Promise<string[]> {
  const dir = await walk(p, path);
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir.ref)) out.push(e);
  return out.map((e) => `${e.name}${e.kind === 'dir' ? '/' : ''}`).sort();
}

const logins = () => emu.server.requests().filter((r) => r.path === '/api/auth/token' && r.method === 'POST').length;

beforeAll(async () => {
  emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
  const c = emu.catalog;
  c.addDocument(7214, 100, 'a.docx');
  c.addDocument(7214, 200, 'b.docx');
  c.addDocument(7214, 300, 'c.docx');
  for (const [doc, seg] of [[100, 1001], [100, 1002], [200, 2001], [200, 2002], [200, 2003], [300, 3001], [300, 3002]] as const) c.addSegment(doc, seg);
  await c.putAsset(1001, 'en', 'public\\images', 'logo.png', Buffer.from('png-bytes'));
  await c.putAsset(1001, 'fr', '', 'notes.txt', Buffer.from('bonjour'));
  await c.putAsset(1001, '', 'raw', 'noloc.bin', Buffer.from('no locale'));
  await emu.seedMany(2001, 'de', 'many', 10_000);
  c.addProject(9999);
  c.addDocument(9999, 900, 'other.docx');
  c.addSegment(900, 9001);
  c.addJob(55, 7214, [300]);
});
afterAll(async () => {
  await transport.close();
  await emu?.close();
});

describe('wordbee provider against its emulator', () => {
  it('maps scope/document/segment/locale/relativePath, backslashes to folders, no locale to _', async () => {
    const p = provider({}, 2); // a page of 2 segments: the search is paged (7 segments, 3 documents)
    try {
      expect(await names(p, '')).toEqual(['jbs55/', 'pr7214/']);
      expect(await names(p, 'pr7214')).toEqual(['100/', '200/', '300/']);
      expect(await names(p, 'pr7214/200')).toEqual(['2001/', '2002/', '2003/']);
      expect(await names(p, 'pr7214/100/1001')).toEqual(['_/', 'en/', 'fr/']);
      expect(await names(p, 'pr7214/100/1001/en')).toEqual(['public/']);
      expect(await names(p, 'pr7214/100/1001/en/public/images')).toEqual(['logo.png']);
      expect(await names(p, 'pr7214/100/1001/_/raw')).toEqual(['noloc.bin']);
      // A job scope sees only its documents; another project's never appear.
      expect(await names(p, 'jbs55')).toEqual(['300/']);
    } finally {
      await p.close();
    }
  });

  it('lists 10,000 assets of one folder completely, each once', async () => {
    const p = provider();
    try {
      const all = await names(p, 'pr7214/200/2001/de/many');
      expect(all.length).toBe(10_000);
      expect(new Set(all).size).toBe(10_000);
    } finally {
      await p.close();
    }
  });

  it('reads through a download that ignores Range (200 with the whole body)', async () => {
    const p = provider();
    try {
      const e = await walk(p, 'pr7214/100/1001/fr/notes.txt');
      const obj = { source: 'wb', ref: e.ref, version: e.version, size: e.size };
      const loc = await p.locate(obj);
      expect(loc.rangeable).toBe(false);
      expect((await transport.readRange(loc, { start: 3, end: 7 }, obj)).toString()).toBe('jour');
      const dl = emu.server.requests().filter((r) => r.path === '/api/resources/assets/1001').at(-1)!;
      // The server logs the status at its 'finish', which may come after the client has the whole body.
      for (let i = 0; i < 100 && dl.status === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(dl.status).toBe(200);
    } finally {
      await p.close();
    }
  });

  it.each([400, 401] as const)('an expired token answered with %i logs in again once', async (status) => {
    emu.expiredStatus = status;
    const p = provider();
    try {
      const e = await walk(p, 'pr7214/100/1001/fr/notes.txt');
      const before = logins();
      emu.expireTokens();
      expect((await p.stat(e.ref)).size).toBe(7); // stat always asks the server
      expect(logins()).toBe(before + 1);
      expect(emu.server.requests().some((r) => r.status === status)).toBe(true);
    } finally {
      emu.expiredStatus = 400;
      await p.close();
    }
  });

  it('wrong credentials are an AuthError-like EACCES, not a retry loop', async () => {
    const p = provider({ apiKey: 'wrong' });
    try {
      await expect(names(p, 'pr7214')).rejects.toMatchObject({ code: expect.stringMatching(/EACCES|EIO/) });
    } finally {
      await p.close();
    }
  });

  it('429 with Retry-After and 5xx become TransientErrors; the throttling body is Wordbee\'s', async () => {
    const p = provider();
    try {
      await names(p, 'pr7214'); // logged in, documents cached
      emu.server.faults.add({ kind: 'status', status: 429, retryAfterSec: 10, pathPrefix: '/api/resources/assets' });
      const err = await names(p, 'pr7214/300/3001').then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect((err as TransientError).retryAfterMs).toBe(10_000);
      expect((err as Error).message).toContain('Requests throttled');
      emu.server.faults.add({ kind: 'status', status: 503, pathPrefix: '/api/resources/assets' });
      await expect(names(p, 'pr7214/300/3002')).rejects.toBeInstanceOf(TransientError);
    } finally {
      await p.close();
    }
  });

  it('the two-step upload (media upload, then attach to a segment) makes a listed, readable asset', async () => {
    const login = await fetch(`${emu.apiUrl}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accountid: 'acme', key: 'k3y' }) });
    const token = (await login.json()) as string;
    const auth = { 'X-Auth-Token': token, 'X-Auth-AccountId': 'acme' };
    const raw = await fetch(`${emu.apiUrl}/media/upload?filename=x.srt`, { method: 'POST', headers: auth, body: 'raw' });
    expect(raw.status).toBe(400); // a raw body is refused: multipart only
    const form = new FormData();
    form.append('file', new Blob(['1\n00:00:01,000 --> 00:00:02,000\nHi\n']), 'x.srt');
    const up = (await (await fetch(`${emu.apiUrl}/media/upload?filename=x.srt`, { method: 'POST', headers: auth, body: form })).json()) as { result: { token: string } };
    const attach = await fetch(`${emu.apiUrl}/resources/assets/3002?scope=pr7214`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ filetoken: up.result.token, locale: 'en', relativePath: 'subs/en' }),
    });
    expect(attach.status).toBe(200);
    expect(await attach.json()).toMatchObject({ segmentId: 3002, locale: 'en', relativePath: 'subs\\en', name: 'x.srt' });
    const p = provider();
    try {
      expect(await names(p, 'pr7214/300/3002/en/subs/en')).toEqual(['x.srt']);
    } finally {
      await p.close();
    }
  });

  it('a segment outside the scope is not found; delete answers 200 even for nothing', async () => {
    const login = await fetch(`${emu.apiUrl}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accountid: 'acme', key: 'k3y' }) });
    const auth = { 'X-Auth-Token': (await login.json()) as string, 'X-Auth-AccountId': 'acme' };
    expect((await fetch(`${emu.apiUrl}/resources/assets/9001/list?scope=pr7214`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${emu.apiUrl}/resources/assets/3001?scope=pr7214&filename=none.txt&locale=en`, { method: 'DELETE', headers: auth })).status).toBe(200);
  });
});

describe('wordbee: platform ids', () => {
  const calls = () => emu.server.requests().filter((r) => r.path !== '/api/auth/token').map((r) => `${r.method} ${r.status} ${r.path}`);

  it('byId: a scope without a call, a segment with assets by its rows (one call), a document or an empty segment through the scope search', async () => {
    const p = provider();
    try {
      await p.byId!('pr7214'); // logs in
      emu.server.clearLog();
      expect(await p.byId!('pr7214')).toMatchObject({ name: 'pr7214', kind: 'dir', ref: 'd:pr7214' });
      expect(await p.byId!('1001')).toMatchObject({ name: '1001', kind: 'dir', ref: 'd:pr7214/100/1001' });
      expect(calls()).toEqual(['GET 200 /api/resources/assets/1001/list']);
      // A document: no segment of either scope answers to it; the first scope's search has it.
      emu.server.clearLog();
      expect(await p.byId!('200')).toMatchObject({ name: '200', kind: 'dir', ref: 'd:pr7214/200' });
      expect(calls()).toEqual(['GET 404 /api/resources/assets/200/list', 'GET 404 /api/resources/assets/200/list', 'POST 200 /api/resources/segments/search']);
      // A segment without assets: its rows are empty, the search places it.
      expect(await p.byId!('3001')).toMatchObject({ name: '3001', kind: 'dir', ref: 'd:pr7214/300/3001' });
      for (const outside of ['9001', '900', 'pr9999', 'x1']) await expect(p.byId!(outside)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(p.idOf!(await walk(p, 'pr7214/100/1001/en'))).toBeUndefined();
      expect(await p.ancestry!(await walk(p, 'pr7214/100/1001/en/public/images/logo.png'))).toEqual(
        ['d:pr7214', 'd:pr7214/100', 'd:pr7214/100/1001', 'd:pr7214/100/1001/en', 'd:pr7214/100/1001/en/public', 'd:pr7214/100/1001/en/public/images'],
      );
    } finally {
      await p.close();
    }
  });
});
