/**
 * MediaHub uploads in the emulator (docs/providers.md#mediahub, "Uploads"):
 *  1. `POST /v1/files/uploads/?object_key=&pipeline_id=&expires_at=` creates an upload record and answers
 *     `{upload:{form_post_params, form_post_url, status:"UPLOADING", nb_chunks:0, storage_type:"S3",
 *     object_key, pipeline:{id}, file:{id}, id}}`;
 *  2. the client POSTs the form (form-post.ts) to `form_post_url`, once per chunk (GUESS: `chunk` = index
 *     from 0, `chunks` = count; each chunk is stored in s3rver as its own object);
 *  3. `PUT /v1/files/uploads/{id}` `{upload:{nb_chunks:N}}` answers status COMPLETING; the emulator then
 *     joins chunks 0…N-1 into the file's object and marks the upload FINISHED;
 *  4. `GET /v1/files/uploads/{id}` answers the record.
 * GUESSes (the sources show none of this):
 *  - the file id is announced at step 1; an object_key that already names a file is re-uploaded in place
 *    (same file id, like MediahubCatalog.putFile); one that names a folder or archive is refused (400);
 *  - the file record appears in the listing only when the upload is FINISHED (until then the old bytes,
 *    if any, stay readable): nothing is visible under the target name before completion;
 *  - GET answers `received_chunks: [{chunk, size, etag}]` (etag = the chunk object's S3 MD5) and a policy
 *    re-signed once half its lifetime has passed, so a client resuming much later can go on posting;
 *  - `DELETE /v1/files/uploads/{id}` cancels an unfinished upload (its chunks are removed); it answers
 *    like DELETE /files/{id}; a finished upload answers 400;
 *  - PUT with chunks missing answers 400 Invalid Input naming them; a repeated PUT with the same nb_chunks
 *    answers the current record; a failed join leaves status "ERROR" with `error_message`;
 *  - an unknown pipeline_id is refused (400 Invalid Input): pipelines are those holding files or given
 *    in the emulator's options; the 7-day expiry of unused uploads is not emulated (`expire()` is).
 * Chunk objects live at `<key>.<upload id>.chunk-<n>` (the form key `tmp/<pid>/<object_key>` plus the
 * upload id, so that two sessions of one target never overwrite each other's chunks); the joined object
 * goes where MediahubCatalog keeps file bytes, and its S3 MD5 becomes the record's `etag`.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Backing } from '../common/backing.js';
import { HttpError, Router, sendJson, type Ctx } from '../common/server.js';
import { s3rverClient } from '../../demo/seed-storage.js';
import { MediahubCatalog, newId } from './catalog.js';
import { FORM_ACCESS_KEY, PostPolicySigner, S3FormError, parseForm, postResponseXml, s3ErrorXml } from './form-post.js';

export type UploadStatus = 'UPLOADING' | 'COMPLETING' | 'FINISHED' | 'ERROR';

export interface ChunkRec {
  index: number;
  size: number;
  etag: string;
  storageKey: string;
}

export interface UploadSession {
  id: string;
  pipelineId: string;
  objectKey: string;
  fileId: string;
  /** The form's `key` field: `tmp/<pid>/<object_key>`. */
  key: string;
  status: UploadStatus;
  nbChunks: number;
  chunks: Map<number, ChunkRec>;
  createdAtMs: number;
  /** Epoch seconds, 0 = never (as given at creation). */
  expiresAt: number;
  error?: string;
  signed?: { policy: string; signature: string; expMs: number };
  /** The join under way after PUT (tests may await it). */
  joining?: Promise<void>;
}

export interface UploadsOptions {
  catalog: MediahubCatalog;
  s3: S3Backing;
  /** `{emulator url}`: the form_post_url is `{base}/s3-form/<bucket>/`. */
  base(): string;
  /** Pipelines that exist beside those holding files. */
  pipelines: Set<string>;
  policyTtlMs: number;
  maxChunkBytes: number;
}

export class MediahubUploads {
  readonly sessions = new Map<string, UploadSession>();
  private readonly bySignature = new Map<string, string>();
  private readonly policies = new PostPolicySigner();
  private readonly direct: S3Client;

  constructor(readonly o: UploadsOptions) {
    this.direct = s3rverClient(o.s3.directUrl);
  }

  formUrl(): string {
    return `${this.o.base()}/s3-form/${this.o.s3.bucket}/`;
  }

  create(pipelineId: string, objectKey: string, expiresAt: number): UploadSession {
    if (!this.o.pipelines.has(pipelineId) && !this.o.catalog.hasPipeline(pipelineId)) {
      throw new HttpError(400, `Invalid Input: pipeline_id ${pipelineId} is not a pipeline of this account`);
    }
    const existing = this.o.catalog.byKey(pipelineId, objectKey);
    if (existing && existing.type !== 'file') throw new HttpError(400, `Invalid Input: object_key ${objectKey} names a ${existing.type}`);
    const s: UploadSession = {
      id: newId(), pipelineId, objectKey, fileId: existing?.id ?? newId(), key: `tmp/${pipelineId}/${objectKey}`,
      status: 'UPLOADING', nbChunks: 0, chunks: new Map(), createdAtMs: Date.now(), expiresAt,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string): UploadSession {
    const s = this.sessions.get(id);
    if (!s) throw new HttpError(404, 'Requested upload does not exist');
    return s;
  }

  /** The signed policy of an open session, re-signed once half its lifetime has passed. */
  private signed(s: UploadSession): { policy: string; signature: string } {
    const now = Date.now();
    if (s.signed && s.status !== 'UPLOADING') return s.signed; // nothing more to post: no new signatures
    if (!s.signed || s.signed.expMs - now < this.o.policyTtlMs / 2) {
      const expMs = now + this.o.policyTtlMs;
      const { policy, signature } = this.policies.sign({
        expiration: new Date(expMs).toISOString(),
        conditions: [
          { bucket: this.o.s3.bucket }, { key: s.key }, { acl: 'private' }, { success_action_status: '201' },
          ['starts-with', '$name', ''], ['starts-with', '$filename', ''], ['starts-with', '$chunk', ''], ['starts-with', '$chunks', ''],
          ['content-length-range', 0, this.o.maxChunkBytes],
        ],
      });
      s.signed = { policy, signature, expMs };
      this.bySignature.set(signature, s.id);
    }
    return s.signed;
  }

  toApi(s: UploadSession): Record<string, unknown> {
    const { policy, signature } = this.signed(s);
    return {
      form_post_params: {
        name: s.objectKey.split('/').filter(Boolean).pop() ?? s.objectKey, success_action_status: '201', filename: '', chunk: '0', chunks: '1',
        policy, signature, AWSAccessKeyId: FORM_ACCESS_KEY, key: s.key, acl: 'private',
      },
      form_post_url: this.formUrl(), status: s.status, nb_chunks: s.nbChunks, storage_type: 'S3', object_key: s.objectKey,
      pipeline: { id: s.pipelineId }, file: { id: s.fileId }, id: s.id,
      received_chunks: [...s.chunks.values()].sort((a, b) => a.index - b.index).map((c) => ({ chunk: c.index, size: c.size, etag: c.etag })),
      created_at: new Date(s.createdAtMs).toISOString(), expires_at: s.expiresAt,
      ...(s.error ? { error_message: s.error } : {}),
    };
  }

  /** One form POST: checks the policy, stores the chunk. Returns the stored chunk and the form key. */
  async receive(bucket: string, fields: Map<string, string>, file: Buffer): Promise<{ key: string; chunk: ChunkRec }> {
    if (bucket !== this.o.s3.bucket) throw new S3FormError(404, 'NoSuchBucket', 'The specified bucket does not exist');
    this.policies.check(fields, bucket, file.length);
    // A valid signature of a session that is gone (cancelled, expired, finished) no longer admits chunks.
    const s = this.sessions.get(this.bySignature.get(fields.get('signature')!) ?? '');
    if (!s) throw new S3FormError(403, 'AccessDenied', 'Access Denied: the upload this policy was issued for no longer exists');
    if (s.status !== 'UPLOADING') throw new S3FormError(403, 'AccessDenied', `Access Denied: the upload is ${s.status}`);
    const raw = fields.get('chunk') ?? '0';
    if (!/^\d+$/.test(raw)) throw new S3FormError(400, 'InvalidArgument', `chunk must be a non-negative integer, got "${raw}"`);
    const index = Number(raw);
    const storageKey = `${s.key}.${s.id}.chunk-${index}`;
    const stored = await this.o.s3.put(storageKey, file);
    const chunk = { index, size: stored.size, etag: stored.etag, storageKey };
    if (this.sessions.get(s.id) !== s || s.status !== 'UPLOADING') {
      await this.o.s3.remove(storageKey); // cancelled or completed meanwhile: leave nothing behind
      throw new S3FormError(403, 'AccessDenied', 'Access Denied: the upload ended while the chunk arrived');
    }
    s.chunks.set(index, chunk);
    return { key: s.key, chunk };
  }

  /** PUT nb_chunks: checks every chunk is there, answers COMPLETING and joins them in the background. */
  complete(s: UploadSession, nb: number): void {
    if (s.status !== 'UPLOADING') {
      if (s.nbChunks === nb && s.status !== 'ERROR') return;
      throw new HttpError(400, `Invalid Input: the upload is ${s.status}${s.error ? ` (${s.error})` : ''}`);
    }
    const missing = Array.from({ length: nb }, (_, i) => i).filter((i) => !s.chunks.has(i));
    if (missing.length) throw new HttpError(400, `Invalid Input: chunks ${missing.join(', ')} of ${nb} were not received`);
    s.status = 'COMPLETING';
    s.nbChunks = nb;
    s.joining = this.join(s).catch((e: unknown) => {
      s.status = 'ERROR';
      s.error = e instanceof Error ? e.message : String(e);
    });
  }

  private async join(s: UploadSession): Promise<void> {
    const parts: Buffer[] = [];
    for (let i = 0; i < s.nbChunks; i++) {
      const o = await this.direct.send(new GetObjectCommand({ Bucket: this.o.s3.bucket, Key: s.chunks.get(i)!.storageKey }));
      parts.push(Buffer.from(await o.Body!.transformToByteArray()));
    }
    // The record at the key when the join ends wins the id (another upload may have finished first).
    const rec = await this.o.catalog.putFile({ pipelineId: s.pipelineId, objectKey: s.objectKey, id: s.fileId, bytes: Buffer.concat(parts) });
    s.fileId = rec.id;
    await this.dropChunks(s);
    s.status = 'FINISHED';
  }

  private async dropChunks(s: UploadSession): Promise<void> {
    if (s.signed) this.bySignature.delete(s.signed.signature);
    for (const [signature, id] of this.bySignature) if (id === s.id) this.bySignature.delete(signature);
    const chunks = [...s.chunks.values()];
    s.chunks.clear();
    for (const c of chunks) await this.o.s3.remove(c.storageKey);
  }

  /** DELETE of an unfinished upload, and the test hook for the 7-day expiry: the session and its chunks go. */
  async cancel(id: string): Promise<void> {
    const s = this.get(id);
    if (s.status === 'FINISHED' || s.status === 'COMPLETING') throw new HttpError(400, `Invalid Input: the upload is ${s.status}`);
    this.sessions.delete(id);
    await this.dropChunks(s);
  }

  expire(id: string): Promise<void> {
    return this.cancel(id);
  }

  close(): void {
    this.direct.destroy();
  }
}

/** The upload routes: the /v1 API (bearer-authenticated) and the S3 form endpoint (policy-authenticated). */
export function uploadRoutes(router: Router, uploads: MediahubUploads, authorize: (ctx: Ctx) => unknown): void {
  router.on('POST', /^\/v1\/files\/uploads\/?$/, (ctx) => {
    authorize(ctx);
    const q = ctx.url.searchParams;
    const objectKey = q.get('object_key') ?? '';
    const pipelineId = q.get('pipeline_id') ?? '';
    const expires = q.get('expires_at') ?? '';
    if (!pipelineId) throw new HttpError(400, 'Invalid Input: pipeline_id is required');
    if (!objectKey.split('/').some(Boolean) || objectKey.startsWith('/')) throw new HttpError(400, 'Invalid Input: object_key must be a relative path');
    if (expires !== '' && !/^\d+$/.test(expires)) throw new HttpError(400, 'Invalid Input: expires_at must be epoch seconds or 0');
    // GUESS: without expires_at the upload expires after 7 days, as the docs say for unused uploads.
    const expiresAt = expires === '' ? Math.floor(Date.now() / 1000) + 7 * 86_400 : Number(expires);
    sendJson(ctx.res, 200, { upload: uploads.toApi(uploads.create(pipelineId, objectKey, expiresAt)) });
  });

  router.on('GET', /^\/v1\/files\/uploads\/([^/]+)\/?$/, (ctx) => {
    authorize(ctx);
    sendJson(ctx.res, 200, { upload: uploads.toApi(uploads.get(ctx.params[0]!)) });
  });

  router.on('PUT', /^\/v1\/files\/uploads\/([^/]+)\/?$/, async (ctx) => {
    authorize(ctx);
    const s = uploads.get(ctx.params[0]!);
    const body = await ctx.json<{ upload?: { nb_chunks?: unknown }; nb_chunks?: unknown }>();
    const raw = body.upload?.nb_chunks ?? body.nb_chunks;
    const nb = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof nb !== 'number' || !Number.isInteger(nb) || nb < 1) throw new HttpError(400, 'Invalid Input: upload.nb_chunks must be a positive integer');
    uploads.complete(s, nb);
    sendJson(ctx.res, 200, { upload: uploads.toApi(s) });
  });

  router.on('DELETE', /^\/v1\/files\/uploads\/([^/]+)\/?$/, async (ctx) => {
    authorize(ctx);
    await uploads.cancel(ctx.params[0]!);
    sendJson(ctx.res, 200, { result: { status: 'SUCCESS' } });
  });

  router.on('POST', /^\/s3-form\/([^/]+)\/?$/, async (ctx) => {
    const resource = ctx.url.pathname;
    try {
      const { fields, file } = await parseForm(ctx);
      const { key, chunk } = await uploads.receive(ctx.params[0]!, fields, file);
      const location = `${uploads.formUrl()}${key.split('/').map(encodeURIComponent).join('/')}`;
      const status = fields.get('success_action_status');
      const headers = { etag: `"${chunk.etag}"`, location };
      // As S3: 201 answers the PostResponse XML, 200 or absent an empty 204 (200 when asked).
      if (status === '201') sendJson(ctx.res, 201, postResponseXml(location, ctx.params[0]!, key, chunk.etag), { ...headers, 'content-type': 'application/xml' });
      else sendJson(ctx.res, status === '200' ? 200 : 204, '', { ...headers, 'content-type': 'text/plain' });
    } catch (e) {
      const err = e instanceof S3FormError ? e : new S3FormError(500, 'InternalError', e instanceof Error ? e.message : String(e));
      sendJson(ctx.res, err.status, s3ErrorXml(err, resource), { 'content-type': 'application/xml' });
    }
  });
}
