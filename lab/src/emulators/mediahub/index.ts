/**
 * A loopback emulator of the Xvid MediaHub API (docs/providers.md#mediahub), base path `/v1/` (a provider's
 * baseUrl is `{url}/v1`). Implemented: OAuth2 client-credentials tokens, the flat paged file listing,
 * one file, download links (JSON or 302 to a presigned S3 URL), DELETE of a file, and uploads through an
 * S3 POST form (uploads.ts, form-post.ts).
 *
 * Invariants:
 *  - Every /v1 call but the token call needs `Authorization: Bearer <token>`; a missing, forged or
 *    expired token (also after the `expire-tokens` fault) answers 403 0x0000003, as the real platform.
 *  - A download URL lives exactly `expiry_time − now` (at least 1 s, whole seconds as S3 counts them),
 *    enforced by the fault proxy the backing's public URL points at.
 *  - Error bodies are `{"error":{"error_code","error_message"}}` with the documented codes.
 * The S3 backing (s3rver behind an expiry-enforcing fault proxy) is the caller's: close() leaves it running.
 */
import type { S3Backing } from '../common/backing.js';
import { HttpError, Router, sendEmpty, sendJson, startEmulatorServer, type Ctx, type EmulatorServer } from '../common/server.js';
import { Signer, bearer } from '../common/signing.js';
import { MediahubCatalog, toApi, type FileRec, type PutArchiveInput, type PutFileInput } from './catalog.js';
import { MediahubUploads, uploadRoutes } from './uploads.js';
import { knobPage, newKnobs, pagingKnobsFor, rowsOf, virtualName, VIRTUAL_MTIME_MS, type EmulatorKnobs } from '../common/knobs.js';

export { MediahubCatalog, toApi, type FileRec, type PutArchiveInput, type PutFileInput } from './catalog.js';
export { MediahubUploads, type UploadSession, type UploadStatus } from './uploads.js';
export { FORM_ACCESS_KEY } from './form-post.js';

export const MEDIAHUB_CLIENT = { id: 'mediahub-demo-client', secret: 'mediahub-demo-secret' } as const;

const SCOPES = new Set(['mediahub', 'mediahub_read', 'mediahub_write', 'mediahub_download_files', 'me', 'autograph']);
const MAX_LIMIT = 5000;
const DEFAULT_LIMIT = 1000;

/** The documented error codes; 429 and unknown statuses use GUESSed neighbours. */
export function errorCode(status: number): string {
  switch (status) {
    case 400: return '0x0230001';
    case 401: return '0x0000002'; // GUESS: bad client credentials at the token endpoint
    case 403: return '0x0000003';
    case 404: return '0x0230002';
    case 429: return '0x0000004'; // GUESS
    default: return status >= 500 ? '0x0000001' : '0x0230001';
  }
}

export interface MediahubEmulatorOptions {
  s3: S3Backing;
  /** Accepted client credentials; default [MEDIAHUB_CLIENT]. */
  clients?: { id: string; secret: string }[];
  /** Lifetime of access tokens (the answer's expires_in, in seconds). Default 7200 s. */
  tokenTtlMs?: number;
  /** Lifetime of download URLs requested without expiry_time. Default 15 min. */
  urlTtlMs?: number;
  port?: number;
  /** Pipelines that take uploads before they hold any file (those holding files always do). */
  pipelines?: string[];
  /** Lifetime of the S3 POST policies of uploads. Default 24 h (GUESS). */
  policyTtlMs?: number;
  /** The policy's content-length-range maximum per chunk. Default 5 GiB (S3's POST limit). */
  maxChunkBytes?: number;
}

export interface MediahubEmulator {
  readonly url: string;
  /** `{url}/v1`: what a provider's baseUrl is set to. */
  readonly baseUrl: string;
  readonly server: EmulatorServer;
  readonly catalog: MediahubCatalog;
  readonly backing: S3Backing;
  /** Upload sessions (uploads.ts): tests look at chunks and expire sessions. */
  readonly uploads: MediahubUploads;
  /** Lets uploads into a pipeline that holds no file yet. */
  addPipeline(id: string): void;
  /** Mutable at runtime: the lifetime of tokens issued from now on. */
  tokenTtlMs: number;
  /** Mutable at runtime: lifetime of download URLs requested without expiry_time. */
  urlTtlMs: number;
  /** Tokens issued (login count), for tests. */
  readonly tokensIssued: number;
  /**
   * Hostile behaviour (common/knobs.ts): paging of the file listing (scope: the `pipeline.id` asked
   * for, '' for the whole catalog; generated files sit in `<scope or VIRTUAL_PIPELINE>/virtual/`);
   * downloads are s3rver's (knob them on the fault proxy in front of it).
   */
  readonly knobs: EmulatorKnobs;
  putFile(input: PutFileInput): Promise<Record<string, unknown>>;
  putArchive(input: PutArchiveInput): Promise<Record<string, unknown>>;
  /** `n` files `f-00000…` in `<pipeline>/<prefix>`; returns that folder's path in the mount tree. */
  seedMany(pipelineId: string, prefix: string, n: number, shared?: Buffer): Promise<string>;
  removeFile(id: string): Promise<boolean>;
  /** Every token issued so far is refused from now on (403, as if expired). */
  expireTokens(): void;
  close(): Promise<void>;
}

/** The pipeline of generated files when the knobs name no scope. */
export const VIRTUAL_PIPELINE = 'f1f1f1f1f1f1f1f1f1f1f1f1';

function intParam(q: URLSearchParams, name: string, dflt: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return dflt;
  if (!/^\d+$/.test(raw)) throw new HttpError(400, `Invalid Input: ${name} must be a non-negative integer`);
  return Number(raw);
}

async function formOrJson(ctx: Ctx): Promise<URLSearchParams> {
  const raw = (await ctx.body()).toString('utf8');
  const type = String(ctx.req.headers['content-type'] ?? '');
  if (type.includes('application/json')) {
    try {
      const j = JSON.parse(raw || '{}') as Record<string, unknown>;
      return new URLSearchParams(Object.entries(j).map(([k, v]): [string, string] => [k, String(v)]));
    } catch {
      throw new HttpError(400, 'Invalid Input: body is not valid JSON');
    }
  }
  return new URLSearchParams(raw);
}

export async function startMediahubEmulator(opts: MediahubEmulatorOptions): Promise<MediahubEmulator> {
  const signer = new Signer();
  const catalog = new MediahubCatalog(opts.s3);
  const knobs = newKnobs();
  const clients = opts.clients ?? [MEDIAHUB_CLIENT];
  let issued = 0;
  const router = new Router();
  // `state` is the returned object: tokenTtlMs/urlTtlMs are read from it at request time.
  const state = { tokenTtlMs: opts.tokenTtlMs ?? 7_200_000, urlTtlMs: opts.urlTtlMs ?? 15 * 60_000 };
  let apiBase = '';
  let emuUrl = '';
  const pipelines = new Set(opts.pipelines ?? []);
  const uploads = new MediahubUploads({
    catalog, s3: opts.s3, base: () => emuUrl, pipelines,
    policyTtlMs: opts.policyTtlMs ?? 24 * 3_600_000, maxChunkBytes: opts.maxChunkBytes ?? 5 * 1024 ** 3,
  });

  const authorize = (ctx: Ctx) => {
    const v = signer.verify<{ cid: string }>(bearer(ctx.req.headers.authorization));
    if (!v.ok) throw new HttpError(403, 'Invalid access token');
    return v.claims;
  };
  const fileOr404 = (id: string): FileRec => {
    const rec = catalog.files.get(id);
    if (!rec) throw new HttpError(404, 'Requested file does not exist');
    return rec;
  };

  router.on('POST', /^\/v1\/oauth2\/token\/?$/, async (ctx) => {
    const f = await formOrJson(ctx);
    const grant = f.get('grant_type');
    if (grant !== 'client_credential' && grant !== 'client_credentials') throw new HttpError(400, 'Invalid Input: grant_type must be client_credential');
    const client = clients.find((c) => c.id === f.get('client_id') && c.secret === f.get('client_secret'));
    if (!client) throw new HttpError(401, 'Invalid client credentials');
    const scope = (f.get('scope') ?? 'mediahub').split(',').map((s) => s.trim()).filter(Boolean);
    if (!scope.length || scope.some((s) => !SCOPES.has(s))) throw new HttpError(400, 'Invalid Input: unknown scope');
    const asked = f.get('expires_in');
    if (asked !== null && !/^\d+$/.test(asked)) throw new HttpError(400, 'Invalid Input: expires_in must be seconds');
    const ttl = asked ? Math.min(Number(asked) * 1000, state.tokenTtlMs) : state.tokenTtlMs;
    issued++;
    sendJson(ctx.res, 200, {
      access_token: signer.issue({ cid: client.id, scope: scope.join(',') }, ttl),
      expires_in: String(Math.max(1, Math.round(ttl / 1000))),
      token_type: 'Bearer',
    });
  });

  uploadRoutes(router, uploads, (ctx) => authorize(ctx));

  router.on('GET', /^\/v1\/files\/downloads\/?$/, async (ctx) => {
    authorize(ctx);
    const q = ctx.url.searchParams;
    const id = q.get('file_id');
    let rec: FileRec | undefined;
    if (id) rec = fileOr404(id);
    else if (q.get('object_key') && q.get('pipeline_id')) rec = catalog.byKey(q.get('pipeline_id')!, q.get('object_key')!);
    else throw new HttpError(400, 'Invalid Input: file_id or object_key and pipeline_id are required');
    if (!rec) throw new HttpError(404, 'Requested file does not exist');
    if (rec.type === 'folder') throw new HttpError(400, 'Invalid Input: a folder has no download');
    if (rec.status) throw new HttpError(400, `Invalid Input: file is not ready for download (${rec.status})`);
    const expiry = q.get('expiry_time');
    if (expiry !== null && !/^\d+$/.test(expiry)) throw new HttpError(400, 'Invalid Input: expiry_time must be epoch seconds');
    // Counted from the start of the current second: a presigned URL's X-Amz-Date is truncated to the
    // second, so `expiry_time − now` rounded would end the URL up to a second before expiry_time (a
    // 1 s URL signed at x.95 s was refused 50 ms later).
    const ttlMs = Math.max(1000, expiry ? (Number(expiry) - Math.floor(Date.now() / 1000)) * 1000 : state.urlTtlMs);
    const redirect = q.get('redirect') === 'true' || q.get('redirect') === '1';
    if (rec.type === 'archive') {
      if (redirect) throw new HttpError(400, 'Invalid Input: an archive has one URL per item and cannot redirect');
      const urls = await Promise.all((rec.items ?? []).map((it) => opts.s3.presignGet(it.storageKey, ttlMs)));
      return sendJson(ctx.res, 200, { urls });
    }
    const url = await opts.s3.presignGet(rec.storageKey!, ttlMs);
    if (redirect) return sendEmpty(ctx.res, 302, { location: url });
    sendJson(ctx.res, 200, { url });
  });

  router.on('GET', /^\/v1\/files\/?$/, (ctx) => {
    authorize(ctx);
    const q = ctx.url.searchParams;
    const start = intParam(q, 'start', 0);
    let limit = intParam(q, 'limit', DEFAULT_LIMIT);
    if (limit > MAX_LIMIT) throw new HttpError(400, `Invalid Input: limit may be at most ${MAX_LIMIT}`);
    if (limit === 0) limit = Number.MAX_SAFE_INTEGER; // the older docs: 0 means no limit
    const types = (q.get('type') ?? 'file,folder,archive').split(',').filter(Boolean);
    if (types.some((t) => !['file', 'folder', 'archive'].includes(t))) throw new HttpError(400, 'Invalid Input: type');
    const sort = q.get('sort') ?? 'created_at';
    if (!['created_at', 'name', 'size'].includes(sort)) throw new HttpError(400, 'Invalid Input: sort');
    const direction = q.get('direction') ?? '1';
    if (direction !== '1' && direction !== '-1') throw new HttpError(400, 'Invalid Input: direction must be 1 or -1');
    const pipeline = q.get('pipeline.id') ?? q.get('pipeline_id');
    const job = q.get('job.id');
    let recs = catalog.inOrder().filter((r) => types.includes(r.type) && (!pipeline || r.pipelineId === pipeline) && (!job || r.jobId === job));
    if (sort !== 'created_at') {
      const key = (r: FileRec) => (sort === 'name' ? r.name : r.size);
      recs = [...recs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.seq - b.seq));
    }
    if (direction === '-1') recs = [...recs].reverse();
    const knobbed = pagingKnobsFor(knobs, pipeline ?? '');
    const virtual = (i: number): FileRec => ({
      id: i.toString(16).padStart(24, '0'), pipelineId: knobs.paging.scope || VIRTUAL_PIPELINE, objectKey: `virtual/${virtualName(i, '.bin')}`, name: virtualName(i, '.bin'),
      type: 'file', size: 1, etag: '', createdAtMs: VIRTUAL_MTIME_MS, updatedAtMs: VIRTUAL_MTIME_MS, seq: i, jobId: null,
    });
    const { rows, total } = knobPage(rowsOf(recs), virtual, knobbed, start > 0 ? start : undefined, limit);
    const page = rows.map((r) => toApi(r, apiBase));
    sendJson(ctx.res, 200, { files: page, ...(total === undefined ? {} : { total }), start, limit: limit === Number.MAX_SAFE_INTEGER ? 0 : limit });
  });

  router.on('GET', /^\/v1\/files\/([^/]+)\/?$/, (ctx) => {
    authorize(ctx);
    sendJson(ctx.res, 200, { file: toApi(fileOr404(ctx.params[0]!), apiBase) });
  });

  router.on('DELETE', /^\/v1\/files\/([^/]+)\/?$/, async (ctx) => {
    authorize(ctx);
    fileOr404(ctx.params[0]!);
    await catalog.remove(ctx.params[0]!);
    sendJson(ctx.res, 200, { result: { status: 'SUCCESS' } });
  });

  const server = await startEmulatorServer({
    router,
    port: opts.port,
    knobs,
    errorBody: (status, message, extra) => ({
      error: { error_code: typeof extra.code === 'string' ? extra.code : errorCode(status), error_message: message },
    }),
    expireTokens: () => signer.revokeAll(),
  });
  apiBase = `${server.url}/v1`;
  emuUrl = server.url;

  const emu: MediahubEmulator = {
    knobs,
    url: server.url,
    baseUrl: apiBase,
    server,
    catalog,
    backing: opts.s3,
    uploads,
    addPipeline: (id) => void pipelines.add(id),
    get tokenTtlMs() { return state.tokenTtlMs; },
    set tokenTtlMs(v: number) { state.tokenTtlMs = v; },
    get urlTtlMs() { return state.urlTtlMs; },
    set urlTtlMs(v: number) { state.urlTtlMs = v; },
    get tokensIssued() { return issued; },
    putFile: async (input) => toApi(await catalog.putFile(input), apiBase),
    putArchive: async (input) => toApi(await catalog.putArchive(input), apiBase),
    seedMany: (pipelineId, prefix, n, shared) => catalog.seedMany(pipelineId, prefix, n, shared),
    removeFile: (id) => catalog.remove(id),
    expireTokens: () => signer.revokeAll(),
    close: async () => {
      await server.close();
      uploads.close();
    },
  };
  return emu;
}
