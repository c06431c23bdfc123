/**
 * Uploads to Xvid MediaHub (docs/providers.md#mediahub, "Uploads"): an upload record (`POST files/uploads/`), one S3
 * POST form per chunk to its `form_post_url`, `PUT files/uploads/{id}` with `nb_chunks`, then polling
 * `GET files/uploads/{id}` until FINISHED. A part is a chunk: part n is posted with `chunk` = n-1.
 *
 * Targets are `<pipeline id>/<object_key segments…>` (the provider's tree); uploads use expires_at=0, as
 * an upload that no job uses is otherwise deleted after 7 days.
 *
 * Choices where the platform is silent (GUESSes, kept tolerant):
 *  - The journaled upload id is `<platform upload id>:<chunk count>`: every form POST carries `chunks`
 *    (the count, fixed by the file's size and partSize), and part() after a restart has no other way to
 *    know it. Ids without the suffix are accepted (the form's own `chunks` value is then sent).
 *  - The form parameters (policy, signature, key…) are kept in memory by upload id. After a restart, or
 *    when the form endpoint refuses the policy (403: expired), they are fetched again with
 *    `GET files/uploads/{id}`, which answers the same record as the POST; a 404 there is SessionLostError.
 *  - confirmed() reads `received_chunks: [{chunk, size, etag}]` from that record; without the field it
 *    answers 'unknown' (the engine then trusts its journal and complete() is the check). A record that is
 *    COMPLETING or FINISHED answers 'unknown' too (its chunks are already joined); ERROR answers undefined.
 *  - Checksums: each chunk's S3 ETag (the MD5 of the chunk, from the 201 answer) is compared with the
 *    MD5 of the bytes sent; the finished file is checked by size and object_key (the platform returns no
 *    whole-file checksum we could compare with the SHA-256 the engine computes).
 *  - abort() tries `DELETE files/uploads/{id}` (undocumented: errors are ignored). It never deletes the
 *    file id the upload announced, because a re-upload in place announces the id of the existing file.
 *  - Names resolve through a per-pipeline listing (`pipeline.id` filter) kept 2 s, and a cache of ids by
 *    target; every hit is confirmed with a fresh `GET files/{id}`, so versions are never stale, while a
 *    file someone else created in the last 2 s may be missed.
 * Hooks: remove (DELETE files/{id}, which also removes the bytes). MediaHub has no rename or folder API,
 * so mkdir/rmdir/rename are absent.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FsError, NotFoundError, TransientError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import { errorMessage } from '../common/api-client.js';
import type { CompletedUpload, ConfirmedPart, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { FILE_NOT_FOUND, MAX_PAGE, num, type MediahubApi, type MhFile } from './api.js';
import { NO_PIPELINE, fileVersion, fileEntry, recordPath } from './tree.js';
import { partSizeFor } from '../common/part-size.js';

/** GUESS: no documented chunk-count limit; 10,000 as S3's multipart. */
const MAX_CHUNKS = 10_000;
const INDEX_MAX_AGE_MS = 2000;

interface UploadRecord {
  id?: string;
  status?: string;
  form_post_url?: string;
  form_post_params?: Record<string, unknown>;
  file?: { id?: string } | null;
  object_key?: string;
  received_chunks?: { chunk?: number | string; size?: number | string; etag?: string }[];
  error_message?: string;
}

interface Session {
  url: string;
  params: [string, string][];
  fileId: string | undefined;
}

export interface MediahubUploaderOptions {
  /** Names the source in messages. */
  name: string;
  /** Bytes per chunk (at least this; more for files beyond MAX_CHUNKS chunks). Default 8 MiB. */
  partSize?: number;
  /** Longest wait for COMPLETING → FINISHED. Default 30 min (the platform joins the chunks). */
  completeTimeoutMs?: number;
  /** Called after a file was created, replaced or removed (the provider drops its listing snapshot). */
  onChange?(): void;
}

/** `<platform id>:<chunks>` ↔ parts. */
export function splitUploadId(journaled: string): { id: string; chunks: number | undefined } {
  const m = /^(.+):(\d+)$/.exec(journaled);
  return m ? { id: m[1]!, chunks: Number(m[2]) } : { id: journaled, chunks: undefined };
}

/** A multipart/form-data body: the fields in order, then `file` last (S3 ignores fields after it). */
function formBody(fields: [string, string][], fileName: string, data: Buffer): FormData {
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, v);
  form.append('file', new Blob([data], { type: 'application/octet-stream' }), fileName);
  return form;
}

export class MediahubUploader implements Uploader {
  private readonly sessions = new Map<string, Session>();
  /** File id by `<pipeline>\0<path>`: our own uploads and earlier look-ups (always re-checked). */
  private readonly ids = new Map<string, string>();
  private readonly index = new Map<string, { at: number; records: Promise<MhFile[]> }>();

  constructor(
    private readonly api: MediahubApi,
    private readonly opts: MediahubUploaderOptions,
  ) {}

  private what(t: UploadTarget): string {
    return `mediahub source "${this.opts.name}": ${t.path.join('/')}`;
  }

  /** Holds nothing of its own (the provider owns the clients): nothing to release. */
  close(): void {}

  /** Pipeline and object_key of a target; a pipeline alone is no file. */
  private split(t: UploadTarget): { pipeline: string; key: string } {
    const [pipeline, ...rest] = t.path;
    if (!pipeline || !rest.length) throw new FsError('EISDIR', `${this.what(t)}: a pipeline is a folder, files go below it`);
    if (pipeline === NO_PIPELINE) throw new FsError('EACCES', `${this.what(t)}: ${NO_PIPELINE} holds files without a pipeline; uploads need a pipeline id`);
    return { pipeline, key: rest.join('/') };
  }

  partSize(size: number): number {
    return partSizeFor(size, MAX_CHUNKS, this.opts.partSize);
  }

  async begin(t: UploadTarget, size: number, signal?: AbortSignal): Promise<string> {
    const { pipeline, key } = this.split(t);
    const r = await this.api.http.json<{ upload?: UploadRecord }>({
      method: 'POST', path: 'files/uploads/', signal, query: { object_key: key, pipeline_id: pipeline, expires_at: 0 },
    });
    const up = r?.upload;
    if (!up?.id) throw new TransientError(`${this.what(t)}: the upload answer carries no id`);
    this.remember(t, up.id, up);
    return `${up.id}:${Math.max(1, Math.ceil(size / this.partSize(size)))}`;
  }

  private remember(t: UploadTarget, id: string, up: UploadRecord): Session {
    if (!up.form_post_url || !up.form_post_params) throw new TransientError(`${this.what(t)}: upload ${id} carries no form_post_url/form_post_params`);
    const s: Session = {
      url: up.form_post_url,
      params: Object.entries(up.form_post_params).map(([k, v]): [string, string] => [k, v === null || v === undefined ? '' : String(v)]),
      fileId: up.file?.id,
    };
    this.sessions.set(id, s);
    return s;
  }

  /** GET files/uploads/{id}; undefined when the platform no longer knows it. */
  private async record(t: UploadTarget, id: string, signal?: AbortSignal): Promise<UploadRecord | undefined> {
    try {
      const r = await this.api.http.send({ path: `files/uploads/${encodeURIComponent(id)}`, signal, accept: [400] });
      if (r.status === 400) {
        if (r.text.includes(FILE_NOT_FOUND)) return undefined;
        throw new FsError('EIO', `${this.what(t)}: GET upload ${id}: ${errorMessage(r.text)}`);
      }
      const up = (JSON.parse(r.text) as { upload?: UploadRecord }).upload;
      if (!up) throw new TransientError(`${this.what(t)}: GET upload ${id}: no upload in the answer`);
      if (up.form_post_url && up.form_post_params) this.remember(t, id, up);
      return up;
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      if (e instanceof SyntaxError) throw new TransientError(`${this.what(t)}: GET upload ${id}: answer is not JSON`);
      throw e;
    }
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined | 'unknown'> {
    const up = await this.record(t, splitUploadId(uploadId).id, signal);
    if (!up) return undefined;
    const status = (up.status ?? 'UPLOADING').toUpperCase();
    if (status === 'ERROR' || status === 'FAILED') return undefined;
    if (status !== 'UPLOADING' || !Array.isArray(up.received_chunks)) return 'unknown';
    return up.received_chunks
      .filter((c) => /^\d+$/.test(String(c.chunk)))
      .map((c) => ({ number: Number(c.chunk) + 1, etag: normalizeEtag(c.etag), size: num(c.size) }));
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    const { id, chunks } = splitUploadId(uploadId);
    for (let attempt = 0; ; attempt++) {
      let s = this.sessions.get(id);
      if (!s || attempt > 0) {
        if (!(await this.record(t, id, signal))) throw new SessionLostError(`${this.what(t)}: upload ${id} is gone`);
        s = this.sessions.get(id)!;
      }
      const fields = s.params.map(([k, v]): [string, string] => {
        if (k === 'chunk') return [k, String(number - 1)];
        if (k === 'chunks' && chunks !== undefined) return [k, String(chunks)];
        return [k, v];
      });
      if (!fields.some(([k]) => k === 'chunk')) fields.push(['chunk', String(number - 1)]);
      const name = s.params.find(([k]) => k === 'name')?.[1] || t.path.at(-1) || 'file';
      // The form endpoint is S3's, authenticated by the policy: no bearer token goes there.
      const r = await this.api.http.send({ method: 'POST', path: s.url, multipart: formBody(fields, name, data), auth: false, signal, accept: [403] });
      if (r.status === 403) {
        if (attempt === 0) continue; // an expired policy: fetch the record (fresh params) and try once more
        throw new FsError('EACCES', `${this.what(t)}: chunk ${number - 1} refused by storage: ${errorMessage(r.text)}`);
      }
      const h = r.headers.etag;
      const etag = normalizeEtag((Array.isArray(h) ? h[0] : h) ?? /<ETag>([^<]*)<\/ETag>/.exec(r.text)?.[1]?.replace(/&quot;/g, '"'));
      if (/^[0-9a-f]{32}$/i.test(etag)) {
        const md5 = createHash('md5').update(data).digest('hex');
        if (etag.toLowerCase() !== md5) throw new TransientError(`${this.what(t)}: chunk ${number - 1} stored with MD5 ${etag}, sent ${md5}`);
      }
      return etag || `chunk-${number - 1}-${data.length}`;
    }
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    const { id } = splitUploadId(uploadId);
    const nb = parts.length;
    if (parts.some((p, i) => p.number !== i + 1)) throw new Error(`${this.what(t)}: parts to complete are not 1…${nb}`);
    let up = await this.record(t, id, signal);
    if (!up) throw new SessionLostError(`${this.what(t)}: upload ${id} is gone`);
    const lost = async (why: string) => {
      await this.abort(t, uploadId);
      return new SessionLostError(`${this.what(t)}: upload ${id}: ${why}`);
    };
    if ((up.status ?? 'UPLOADING').toUpperCase() === 'UPLOADING') {
      if (Array.isArray(up.received_chunks)) {
        const held = new Map(up.received_chunks.map((c) => [Number(c.chunk), normalizeEtag(c.etag)]));
        const missing = parts.filter((p) => held.get(p.number - 1) !== p.etag).map((p) => p.number - 1);
        if (missing.length) throw await lost(`the platform lacks chunks ${missing.join(', ')}`);
      }
      const r = await this.api.http.json<{ upload?: UploadRecord }>({ method: 'PUT', path: `files/uploads/${encodeURIComponent(id)}`, json: { upload: { nb_chunks: nb } }, signal });
      up = r?.upload ?? up;
    }
    const deadline = Date.now() + (this.opts.completeTimeoutMs ?? 30 * 60_000);
    for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
      const status = (up.status ?? '').toUpperCase();
      if (status === 'FINISHED' || status === 'SUCCESS' || status === 'COMPLETED') break;
      if (status === 'ERROR' || status === 'FAILED') throw await lost(`the platform failed to join the chunks: ${up.error_message ?? status}`);
      if (Date.now() > deadline) throw new TransientError(`${this.what(t)}: upload ${id} still ${up.status} after ${this.opts.completeTimeoutMs ?? 1_800_000} ms`);
      await sleep(wait, undefined, { signal });
      up = await this.record(t, id, signal);
      if (!up) throw new SessionLostError(`${this.what(t)}: upload ${id} vanished while completing`);
    }
    const fileId = up.file?.id ?? this.sessions.get(id)?.fileId;
    if (!fileId) throw new TransientError(`${this.what(t)}: finished upload ${id} names no file`);
    this.sessions.delete(id);
    const { pipeline } = this.split(t);
    this.ids.set(`${pipeline}\0${t.path.slice(1).join('/')}`, fileId);
    this.changed(pipeline);
    const f = await this.api.getFile(fileId, signal);
    const e = fileEntry(f);
    if (!this.matches(f, t)) throw new Error(`${this.what(t)}: the uploaded file ${fileId} is at ${f.pipeline?.id}/${f.object_key}`);
    if (e.unreadable) throw new TransientError(`${this.what(t)}: finished upload ${id}, but file ${fileId} is not ready: ${e.unreadable.reason}`);
    if (e.size !== info.size) throw new Error(`${this.what(t)}: file ${fileId} has ${e.size} bytes after upload, expected ${info.size}`);
    return { version: e.version, size: e.size };
  }

  async abort(t: UploadTarget, uploadId: string): Promise<void> {
    const { id } = splitUploadId(uploadId);
    this.sessions.delete(id);
    await this.api.http.send({ method: 'DELETE', path: `files/uploads/${encodeURIComponent(id)}` }).catch(() => undefined);
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const f = await this.find(t, signal);
    if (!f) throw new NotFoundError(`${this.what(t)}: no such file`);
    await this.api.http.send({ method: 'DELETE', path: `files/${encodeURIComponent(f.id)}`, signal });
    this.ids.delete(`${t.path[0]}\0${t.path.slice(1).join('/')}`);
    this.changed(t.path[0]!);
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    const f = await this.find(t, signal);
    return f ? fileVersion(f) : undefined;
  }

  private changed(pipeline: string): void {
    this.index.delete(pipeline);
    this.opts.onChange?.();
  }

  /** Whether a record is the file at target `t` (as the provider's tree places it). */
  private matches(f: MhFile, t: UploadTarget): boolean {
    if ((f.type ?? 'file').toLowerCase() !== 'file') return false;
    if ((f.pipeline?.id || NO_PIPELINE) !== t.path[0]) return false;
    const p = recordPath(f);
    return p.length === t.path.length - 1 && p.every((s, i) => s === t.path[i + 1]);
  }

  /** The file record at the target, fetched fresh; undefined when there is none. */
  private async find(t: UploadTarget, signal?: AbortSignal): Promise<MhFile | undefined> {
    const [pipeline, ...rest] = t.path;
    if (!pipeline || !rest.length) return undefined;
    const cacheKey = `${pipeline}\0${rest.join('/')}`;
    const fresh = async (id: string) => {
      const f = await this.api.getFile(id, signal).catch((e: unknown) => {
        if (e instanceof NotFoundError) return undefined;
        throw e;
      });
      return f && this.matches(f, t) ? f : undefined;
    };
    const cached = this.ids.get(cacheKey);
    if (cached) {
      const f = await fresh(cached);
      if (f) return f;
      this.ids.delete(cacheKey);
    }
    for (const candidate of (await this.pipelineRecords(pipeline, signal)).filter((f) => this.matches(f, t))) {
      const f = await fresh(candidate.id);
      if (f) {
        this.ids.set(cacheKey, f.id);
        return f;
      }
    }
    return undefined;
  }

  /** One pipeline's records, listed once per INDEX_MAX_AGE_MS (single flight). */
  private pipelineRecords(pipeline: string, signal?: AbortSignal): Promise<MhFile[]> {
    signal?.throwIfAborted();
    const hit = this.index.get(pipeline);
    if (hit && Date.now() - hit.at < INDEX_MAX_AGE_MS) return hit.records;
    const records = (async () => {
      const out: MhFile[] = [];
      // Shared by concurrent callers: not bound to one caller's signal.
      for await (const f of this.api.listAll(MAX_PAGE, undefined, pipeline)) out.push(f);
      return out;
    })();
    const entry = { at: Date.now(), records };
    this.index.set(pipeline, entry);
    records.catch(() => this.index.get(pipeline) === entry && this.index.delete(pipeline));
    return records;
  }
}
