/**
 * Wordbee uploads: the two documented steps — `POST /media/upload` (multipart/form-data) gives a file
 * token, `POST /resources/assets/{segmentid}?scope=` attaches it to the segment with its locale and
 * relativePath. Wordbee has no multipart sessions, so a file is one part; the token is the part's
 * receipt, and a token that expired before the attach (a crash in between) makes the engine begin anew.
 * Target paths are `<scope>/<documentId>/<segmentId>/<locale or _>/<relativePath…>/<name>`.
 */
import { randomBytes } from 'node:crypto';
import { FsError } from '../../core/errors.js';
import type { ApiClient } from '../common/api-client.js';
import type { CompletedUpload, ConfirmedPart, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { NO_LOCALE } from './refs.js';
import { contentTypeOf } from '../../util/content-type.js';

/** Wordbee takes an asset in one request: larger files are refused up front rather than held in memory. */
export const WORDBEE_MAX_ASSET = 1024 * 1024 * 1024;

interface Place {
  scope: string;
  seg: number;
  locale: string;
  rel: string[];
  name: string;
}

export interface WordbeeRowLookup {
  /** The version the provider lists for the asset at this place, or undefined when there is none. */
  versionAt(scope: string, seg: number, locale: string, rel: readonly string[], name: string, signal?: AbortSignal): Promise<{ version: string; size: number } | undefined>;
}

export class WordbeeUploader implements Uploader {
  constructor(
    private readonly api: ApiClient,
    private readonly lookup: WordbeeRowLookup,
  ) {}

  private place(t: UploadTarget): Place {
    const [scope, , seg, locale, ...rest] = t.path;
    const name = rest.pop();
    if (!scope || !seg || !/^\d+$/.test(seg) || locale === undefined || !name) {
      throw new FsError('EROFS', `wordbee: files go into <scope>/<document>/<segment>/<locale>/…, not ${t.path.join('/')}`);
    }
    return { scope, seg: Number(seg), locale: locale === NO_LOCALE ? '' : locale, rel: rest, name };
  }

  /** Holds nothing of its own (the provider owns the clients): nothing to release. */
  close(): void {}

  partSize(size: number): number {
    return Math.max(1, size);
  }

  async begin(t: UploadTarget, size: number): Promise<string> {
    this.place(t);
    if (size > WORDBEE_MAX_ASSET) throw new FsError('EINVAL', `wordbee: ${t.path.at(-1)} is larger than the 1 GiB an asset upload takes`);
    return `wb-${randomBytes(6).toString('hex')}`;
  }

  async confirmed(): Promise<'unknown'> {
    return 'unknown'; // a file token cannot be queried; an expired one fails the attach, and the engine begins anew
  }

  async part(t: UploadTarget, _uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    if (number !== 1) throw new FsError('EINVAL', 'wordbee: an asset is uploaded in one part');
    const p = this.place(t);
    const form = new FormData();
    form.append('file', new Blob([data], { type: contentTypeOf(p.name) }), p.name);
    const r = await this.api.json<{ result?: { token?: string } }>({ method: 'POST', path: 'media/upload', query: { filename: p.name }, multipart: form, signal });
    const token = r?.result?.token;
    if (!token) throw new FsError('EIO', 'wordbee: media upload answered no file token');
    return token;
  }

  async complete(t: UploadTarget, _uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    const p = this.place(t);
    const token = parts.find((x) => x.number === 1)?.etag;
    if (!token) throw new SessionLostError('wordbee: no file token recorded');
    try {
      await this.api.send({
        method: 'POST', path: `resources/assets/${p.seg}`, query: { scope: p.scope },
        json: { filetoken: token, locale: p.locale, relativePath: p.rel.join('/') }, signal,
      });
    } catch (e) {
      if (e instanceof FsError && /file token/i.test(e.message)) throw new SessionLostError(`wordbee: ${e.message}`);
      throw e;
    }
    const now = await this.lookup.versionAt(p.scope, p.seg, p.locale, p.rel, p.name, signal);
    if (!now) throw new FsError('EIO', `wordbee: ${p.name} is not listed after its upload`);
    if (now.size !== info.size) throw new FsError('EIO', `wordbee: ${p.name} has ${now.size} bytes after upload, expected ${info.size}`);
    return now;
  }

  async abort(): Promise<void> {
    // An unattached file token expires on the server.
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const p = this.place(t);
    const query: Record<string, string> = { scope: p.scope, filename: p.name, locale: p.locale };
    if (p.rel.length) query.relativePath = p.rel.join('/');
    await this.api.send({ method: 'DELETE', path: `resources/assets/${p.seg}`, query, signal });
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    const p = this.place(t);
    return (await this.lookup.versionAt(p.scope, p.seg, p.locale, p.rel, p.name, signal))?.version;
  }
}
