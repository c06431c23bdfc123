/**
 * A loopback emulator of Wordbee Translator's project-asset API (docs/providers.md#wordbee): token auth with a
 * 30-minute idle lifetime, scopes (pr/jbs/jbc), segment search with skip/take, asset listing per
 * segment and for many segments, downloads that ignore Range and always send the whole file, the
 * two-step upload (media upload → file token → attach to a segment), delete, Wordbee's error bodies,
 * and the shared fault queue.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HttpError, Router, sendEmpty, sendJson, startEmulatorServer, type Ctx, type EmulatorServer } from '../common/server.js';
import { WordbeeCatalog, normRelPath, type AssetRecord } from './catalog.js';
import { knobEtag, knobPage, newKnobs, pagingKnobsFor, rowsOf, type EmulatorKnobs } from '../common/knobs.js';

/** The document that generated segments belong to (paging knobs `virtualRows`/`endless`). */
export const VIRTUAL_DOCUMENT = 999_999;
/** Generated segment ids start here. */
export const VIRTUAL_SEGMENT_BASE = 900_000_000;

export interface WordbeeEmulatorOptions {
  accounts?: { accountId: string; key: string }[];
  /** Idle lifetime of a token (Wordbee: 30 minutes without use). */
  tokenIdleMs?: number;
  /** Status of a call with an invalid or expired token: the docs show 400, some deployments say 401. */
  expiredStatus?: 400 | 401;
  port?: number;
}

export interface WordbeeEmulator {
  readonly url: string;
  /** The API base a client configures (`{url}/api`). */
  readonly apiUrl: string;
  readonly server: EmulatorServer;
  readonly catalog: WordbeeCatalog;
  /** Hostile behaviour (common/knobs.ts): paging of the segment search (scope: `pr7214` …), download ETags. */
  readonly knobs: EmulatorKnobs;
  expiredStatus: 400 | 401;
  /** Invalidate every token issued so far (as 30 idle minutes would). */
  expireTokens(): void;
  /** `n` assets named f-00000… in one folder of a segment, sharing one tiny stored file. */
  seedMany(segmentId: number, locale: string, relativePath: string, n: number): Promise<void>;
  close(): Promise<void>;
}

function wordbeeError(status: number, message: string): unknown {
  if (status === 429) {
    return { error: { type: 'Throttling error', message: 'Requests throttled. Maximum allowed 1000 per 01:00:00.' }, reason: message };
  }
  return {
    error: { operation: null, date: new Date().toISOString(), title: message, details: message, errorurl: null, messages: [{ title: message, details: '' }] },
    reason: message,
  };
}

export function assetRow(a: AssetRecord, scope: string): Record<string, unknown> {
  const q = new URLSearchParams({ locale: a.locale, scope, filename: a.name, v: a.v });
  if (a.relativePath) q.set('relativePath', a.relativePath.replace(/\\/g, '/'));
  return {
    projectId: a.projectId, documentId: a.documentId, segmentId: a.segmentId, locale: a.locale, relativePath: a.relativePath,
    name: a.name, size: a.size, contentType: a.contentType, createdDate: a.createdDate, modifiedDate: a.modifiedDate,
    downloadUrl: `/api/resources/assets/${a.segmentId}?${q}`,
  };
}

export async function startWordbeeEmulator(opts: WordbeeEmulatorOptions = {}): Promise<WordbeeEmulator> {
  const accounts = opts.accounts ?? [{ accountId: 'demo', key: 'demo-key' }];
  const idleMs = opts.tokenIdleMs ?? 30 * 60_000;
  const tokens = new Map<string, { accountId: string; lastUsed: number }>();
  const uploads = new Map<string, { name: string; file: string }>();
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-wordbee-'));
  const catalog = new WordbeeCatalog(dir);
  const state = { expiredStatus: opts.expiredStatus ?? 400 };
  const knobs = newKnobs();
  let downloads = 0;

  const authed = (ctx: Ctx): string => {
    const token = String(ctx.req.headers['x-auth-token'] ?? '');
    const account = String(ctx.req.headers['x-auth-accountid'] ?? '');
    const t = tokens.get(token);
    if (!t || t.accountId !== account || Date.now() - t.lastUsed > idleMs) {
      tokens.delete(token);
      throw new HttpError(state.expiredStatus, 'Token invalid or expired.');
    }
    t.lastUsed = Date.now();
    return token;
  };

  /** The segment, checked against the request's scope. */
  const scopedSegment = (ctx: Ctx, segmentId: number) => {
    const scope = ctx.url.searchParams.get('scope') ?? '';
    const docs = catalog.documentsOf(scope);
    if (!docs) throw new HttpError(400, `Invalid scope "${scope}".`);
    const seg = catalog.segments.get(segmentId);
    if (!seg || !docs.includes(seg.documentId)) throw new HttpError(404, `Segment ${segmentId} not found in scope ${scope}.`);
    return { seg, scope };
  };

  const r = new Router();
  r.on('POST', /^\/api\/auth\/token$/, async (ctx) => {
    const b = await ctx.json<{ accountid?: string; key?: string }>();
    if (!accounts.some((a) => a.accountId === b.accountid && a.key === b.key)) throw new HttpError(400, 'Invalid account id or API key.');
    const token = randomBytes(24).toString('hex');
    tokens.set(token, { accountId: b.accountid!, lastUsed: Date.now() });
    sendJson(ctx.res, 200, token);
  });
  r.on('DELETE', /^\/api\/auth\/token$/, (ctx) => {
    tokens.delete(authed(ctx));
    sendEmpty(ctx.res, 200);
  });
  r.on('POST', /^\/api\/projects\/list$/, (ctx) => {
    authed(ctx);
    const rows = [...catalog.projects.values()].map((p) => ({ id: p.id, reference: p.reference }));
    sendJson(ctx.res, 200, { total: rows.length, count: rows.length, rows });
  });
  r.on('POST', /^\/api\/resources\/segments\/search$/, async (ctx) => {
    authed(ctx);
    const b = await ctx.json<{ scope?: { type?: string; projectid?: number; jobid?: number }; skip?: number; take?: number }>();
    const s = b.scope ?? {};
    const scope = s.type === 'Project' ? `pr${s.projectid}` : s.type === 'Job' ? `jbs${s.jobid}` : s.type === 'Codyt' ? `jbc${s.jobid}` : '';
    const docs = catalog.documentsOf(scope);
    if (!docs) throw new HttpError(400, 'Invalid scope object.');
    const skip = Math.max(0, Number(b.skip ?? 0));
    const take = Math.min(1000, Math.max(1, Number(b.take ?? 100)));
    const all = [...catalog.segments.values()].filter((x) => docs.includes(x.documentId)).sort((a, c) => a.id - c.id);
    const virtual = (i: number) => ({ id: VIRTUAL_SEGMENT_BASE + i, documentId: VIRTUAL_DOCUMENT, projectId: 0, text: `generated segment ${i}` });
    const { rows: page, total } = knobPage(rowsOf(all), virtual, pagingKnobsFor(knobs, scope), skip > 0 ? skip : undefined, take);
    const docMap: Record<string, unknown> = {};
    for (const x of page) {
      const d = catalog.documents.get(x.documentId) ?? { id: x.documentId, name: 'generated.docx', src: 'en', projectId: x.projectId };
      docMap[d.id] = { id: d.id, name: d.name, src: d.src, pid: d.projectId };
    }
    sendJson(ctx.res, 200, {
      result: { rows: page.map((x) => ({ bsid: x.id, did: x.documentId, dsid: x.id, text: x.text })), docs: docMap, users: {}, ...(total === undefined ? {} : { total }) },
    });
  });
  r.on('GET', /^\/api\/resources\/assets\/list$/, (ctx) => {
    authed(ctx);
    const ids = (ctx.url.searchParams.get('segmentIds') ?? '').split(',').filter(Boolean).map(Number);
    const rows = ids.flatMap((id) => {
      const { scope } = scopedSegment(ctx, id);
      return (catalog.assets.get(id) ?? []).map((a) => assetRow(a, scope));
    });
    sendJson(ctx.res, 200, rows);
  });
  r.on('GET', /^\/api\/resources\/assets\/(\d+)\/list$/, (ctx) => {
    authed(ctx);
    const { seg, scope } = scopedSegment(ctx, Number(ctx.params[0]));
    sendJson(ctx.res, 200, (catalog.assets.get(seg.id) ?? []).map((a) => assetRow(a, scope)));
  });
  r.on('GET', /^\/api\/resources\/assets\/(\d+)$/, async (ctx) => {
    authed(ctx);
    const { seg } = scopedSegment(ctx, Number(ctx.params[0]));
    const q = ctx.url.searchParams;
    const a = catalog.find(seg.id, q.get('locale'), q.get('relativePath') ?? '', q.get('filename') ?? '');
    if (!a) throw new HttpError(404, 'Asset not found.');
    const size = (await stat(a.file)).size;
    // Range is not part of the API: the whole file, always (the client must cope).
    // No ETag by default (the docs list none); the knobs add one no listing showed, or a changing one.
    const etag = knobEtag(knobs.download, undefined, downloads++);
    ctx.res.writeHead(200, {
      'content-type': a.contentType,
      'content-length': String(size),
      'content-disposition': `inline; filename="${a.name.replace(/"/g, '')}"`,
      ...(etag ? { etag } : {}),
    });
    if (ctx.req.method === 'HEAD') return void ctx.res.end();
    await new Promise<void>((resolve) => {
      const s = createReadStream(a.file);
      s.on('error', () => ctx.res.destroy());
      ctx.res.on('close', () => { s.destroy(); resolve(); });
      s.pipe(ctx.res);
    });
  });
  r.on('DELETE', /^\/api\/resources\/assets\/(\d+)$/, (ctx) => {
    authed(ctx);
    const { seg } = scopedSegment(ctx, Number(ctx.params[0]));
    const q = ctx.url.searchParams;
    const filename = q.get('filename');
    const locale = q.get('locale');
    const rel = normRelPath(q.get('relativePath'));
    // 200 even when nothing matched; without filename every asset of the segment goes.
    catalog.remove(seg.id, (a) => !filename || (a.name.toLowerCase() === filename.toLowerCase() && (locale === null || a.locale === locale) && a.relativePath.toLowerCase() === rel.toLowerCase()));
    sendEmpty(ctx.res, 200);
  });
  r.on('POST', /^\/api\/media\/upload$/, async (ctx) => {
    authed(ctx);
    const type = String(ctx.req.headers['content-type'] ?? '');
    if (!type.startsWith('multipart/form-data')) throw new HttpError(400, 'Expected a multipart/form-data body.');
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': type }, body: await ctx.body() }).formData();
    const file = [...form.values()].find((v): v is File => typeof v !== 'string');
    if (!file) throw new HttpError(400, 'No file in the form.');
    const token = randomBytes(16).toString('hex');
    const path = join(dir, `upload-${token}`);
    await writeFile(path, Buffer.from(await file.arrayBuffer()));
    const name = ctx.url.searchParams.get('filename') || file.name;
    uploads.set(token, { name, file: path });
    sendJson(ctx.res, 200, { result: { token, name } });
  });
  r.on('POST', /^\/api\/resources\/assets\/(\d+)$/, async (ctx) => {
    authed(ctx);
    const { seg, scope } = scopedSegment(ctx, Number(ctx.params[0]));
    const b = await ctx.json<{ filetoken?: string; locale?: string; relativePath?: string }>();
    const up = uploads.get(b.filetoken ?? '');
    if (!up) throw new HttpError(400, 'Invalid or expired file token.');
    uploads.delete(b.filetoken!);
    const { readFile } = await import('node:fs/promises');
    const rec = await catalog.putAsset(seg.id, b.locale ?? '', b.relativePath ?? '', up.name, await readFile(up.file));
    sendJson(ctx.res, 200, assetRow(rec, scope));
  });

  const server = await startEmulatorServer({
    router: r,
    knobs,
    errorBody: (status, message) => wordbeeError(status, message),
    expireTokens: () => tokens.clear(),
    port: opts.port,
  });

  return {
    url: server.url,
    apiUrl: `${server.url}/api`,
    server,
    catalog,
    knobs,
    get expiredStatus() {
      return state.expiredStatus;
    },
    set expiredStatus(s) {
      state.expiredStatus = s;
    },
    expireTokens: () => tokens.clear(),
    async seedMany(segmentId, locale, relativePath, n) {
      const first = await catalog.putAsset(segmentId, locale, relativePath, 'f-00000.txt', Buffer.from('0'));
      const list = catalog.assets.get(segmentId)!;
      for (let i = 1; i < n; i++) list.push({ ...first, name: `f-${String(i).padStart(5, '0')}.txt` });
    },
    async close() {
      await server.close();
      await catalog.close();
    },
  };
}
