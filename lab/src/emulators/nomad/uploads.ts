/**
 * The Nomad emulator's multipart upload (docs/providers.md#nomad, "Uploads"):
 * `POST /api/asset/upload/start`, `POST /api/asset/upload/part/{partId}/complete`,
 * `POST /api/asset/upload/{uploadId}/complete`, `POST /api/asset/upload/{uploadId}/cancel?message=`,
 * and (GUESS, not documented) `GET /api/asset/upload/{uploadId}`: the start answer again, with fresh
 * part URLs and each part's `isCompleted` and `etag`, for resuming and for replacing expired URLs.
 *
 * Invariants:
 *  - Each session is one real S3 multipart upload in the backing bucket (s3rver), on its own key
 *    `assets/<assetId>/<uploadId>`; a part's `url` is a SigV4 presigned UploadPart on the backing's
 *    public base (the expiry-enforcing proxy), minted for every answer with lifetime `partUrlTtlMs`.
 *  - The server cuts the parts: `chunkSize` bytes each, the last one shorter; positions are inclusive
 *    (a guess, docs/providers.md#nomad). chunkSize is at least `minChunkSize` (S3's 5 MiB part minimum: S3 would
 *    refuse smaller parts at completion) and grows so that there are at most 10,000 parts.
 *  - A part counts only after `part/{id}/complete` recorded its ETag. Completing refuses (400) while a
 *    part is missing, and checks the stored object's size against `contentLength` (s3rver, unlike S3,
 *    checks no part ETags).
 *  - Nothing appears in the catalog before completion: missing folders of `relativePath` are created
 *    then, and a file of the same name gets the new bytes and keeps its id (names are unique per folder).
 *  - Completed and cancelled sessions are forgotten: later calls about them answer 404.
 *  - Name clashes follow `uploadOverwriteOption`: Cancel → 400 (GUESS: the docs list 400/401/404 only);
 *    Replace and AssetReplace (the file `existingAssetId`) overwrite; Continue answers the open session
 *    for the same place and size ("continues the upload from where it left off", SDK docs), else starts one.
 */
import { randomUUID } from 'node:crypto';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { HttpError, sendJson, type Ctx, type Router } from '../common/server.js';
import type { S3Backing } from '../common/backing.js';
import { s3rverClient } from '../../demo/seed-storage.js';
import { S3RVER_KEY } from '../storage-servers.js';
import type { AssetRecord, Catalog } from './catalog.js';
import { searchItem } from './shapes.js';
import { checkName } from './folders.js';

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;
const OPTIONS = ['Cancel', 'Continue', 'Replace', 'AssetReplace'] as const;
type OverwriteOption = (typeof OPTIONS)[number];

/** What the upload routes need of the emulator. */
export interface UploadHost {
  readonly catalog: Catalog;
  readonly s3: S3Backing;
  /** Lifetime of presigned part URLs (mutable). */
  partUrlTtlMs: number;
  /** Smallest chunkSize accepted (mutable). */
  minChunkSize: number;
  /** How long a completed upload stays Registering before it is Available; 0 = Available at once. */
  registerMs: number;
  authorize(ctx: Ctx): { userId: string };
  fullUrl(rec: AssetRecord): Promise<string | null>;
}

interface Part {
  readonly id: string;
  readonly number: number;
  readonly start: number;
  /** Inclusive; start - 1 for the single part of an empty file. */
  readonly end: number;
  etag: string | null;
}

interface Session {
  readonly id: string;
  readonly assetId: string;
  readonly key: string;
  readonly s3UploadId: string;
  readonly option: OverwriteOption;
  /** The folder the path starts from, the folder names below it (made at completion), the file name. */
  readonly parentId: string;
  readonly dirs: readonly string[];
  readonly name: string;
  /** AssetReplace: the file whose bytes are replaced. */
  readonly replaceId: string | null;
  readonly contentLength: number;
  readonly chunkSize: number;
  readonly parts: Part[];
  readonly startMs: number;
}

const bad = (ctx: Ctx, msg: string) => new HttpError(400, msg, { instance: ctx.url.pathname });

export class NomadUploads {
  readonly sessions = new Map<string, Session>();
  private readonly partIndex = new Map<string, { session: string; number: number }>();
  private readonly direct: S3Client;
  private readonly signer: S3Client;

  constructor(private readonly host: UploadHost) {
    this.direct = s3rverClient(host.s3.directUrl);
    this.signer = new S3Client({
      endpoint: host.s3.publicUrl, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
      // No checksum parameters in presigned part URLs: the client PUTs plain bytes.
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  close(): void {
    this.direct.destroy();
    this.signer.destroy();
  }

  /** Forgets a session as if the platform had expired it (tests of lost sessions). */
  async expire(uploadId: string): Promise<void> {
    const s = this.sessions.get(uploadId);
    if (s) await this.drop(s);
  }

  register(r: Router): void {
    r.on('POST', /^\/api\/asset\/upload\/start$/, async (ctx) => {
      this.host.authorize(ctx);
      sendJson(ctx.res, 200, await this.answer(await this.start(ctx)));
    });
    r.on('POST', /^\/api\/asset\/upload\/part\/([^/]+)\/complete$/, async (ctx) => {
      this.host.authorize(ctx);
      const b = await ctx.json<{ etag?: unknown }>();
      const at = this.partIndex.get(ctx.params[0]!);
      const part = at && this.sessions.get(at.session)?.parts[at.number - 1];
      if (!part) throw new HttpError(404, `Upload part ${ctx.params[0]} was not found.`, { instance: ctx.url.pathname });
      if (typeof b.etag !== 'string' || !b.etag.replace(/"/g, '')) throw bad(ctx, 'etag is required.');
      part.etag = b.etag.replace(/"/g, '');
      sendJson(ctx.res, 200, { id: part.id, partNumber: part.number, etag: `"${part.etag}"`, isCompleted: true });
    });
    r.on('GET', /^\/api\/asset\/upload\/([^/]+)$/, async (ctx) => {
      this.host.authorize(ctx);
      sendJson(ctx.res, 200, await this.answer(this.session(ctx)));
    });
    r.on('POST', /^\/api\/asset\/upload\/([^/]+)\/complete$/, async (ctx) => {
      this.host.authorize(ctx);
      const rec = await this.complete(ctx, this.session(ctx));
      sendJson(ctx.res, 200, { items: [searchItem(this.host.catalog, rec, undefined, await this.host.fullUrl(rec))], totalItemCount: 1 });
    });
    r.on('POST', /^\/api\/asset\/upload\/([^/]+)\/cancel$/, async (ctx) => {
      this.host.authorize(ctx);
      const s = this.session(ctx);
      await this.drop(s);
      sendJson(ctx.res, 200, { id: s.id });
    });
  }

  private session(ctx: Ctx): Session {
    const s = this.sessions.get(ctx.params[0]!);
    if (!s) throw new HttpError(404, `Upload ${ctx.params[0]} was not found.`, { instance: ctx.url.pathname });
    return s;
  }

  private async start(ctx: Ctx): Promise<Session> {
    const cat = this.host.catalog;
    const b = await ctx.json<Record<string, unknown>>();
    const contentLength = Number(b.contentLength);
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) throw bad(ctx, 'contentLength must be a non-negative integer.');
    const option = OPTIONS.find((o) => o.toLowerCase() === String(b.uploadOverwriteOption ?? 'Cancel').toLowerCase());
    if (!option) throw bad(ctx, `uploadOverwriteOption must be one of ${OPTIONS.join(', ')}.`);
    let chunkSize = b.chunkSize === undefined || b.chunkSize === null ? 8 * MiB : Number(b.chunkSize);
    if (!Number.isSafeInteger(chunkSize) || chunkSize < this.host.minChunkSize) throw bad(ctx, `chunkSize must be an integer of at least ${this.host.minChunkSize} bytes.`);
    chunkSize = Math.max(chunkSize, Math.ceil(contentLength / MAX_PARTS));

    let parentId: string;
    let dirs: string[];
    let name: string;
    let replaceId: string | null = null;
    if (option === 'AssetReplace') {
      // The existing asset decides the place: parentId, relativePath and displayName are ignored (SDK docs).
      const old = typeof b.existingAssetId === 'string' ? cat.get(b.existingAssetId) : undefined;
      if (!old) throw new HttpError(404, `Asset ${String(b.existingAssetId)} was not found.`, { instance: ctx.url.pathname });
      if (old.type !== 'File' || old.parentId === null) throw bad(ctx, `Asset ${old.id} is not a file.`);
      ({ parentId, name } = { parentId: old.parentId, name: old.name });
      dirs = [];
      replaceId = old.id;
    } else {
      // GUESS: without parentId the file would go to the incoming folder, which the emulator does not have.
      if (typeof b.parentId !== 'string' || !b.parentId) throw bad(ctx, 'parentId is required (the emulator has no incoming folder).');
      parentId = b.parentId;
      const parent = cat.get(parentId);
      if (!parent) throw new HttpError(404, `Asset ${parentId} was not found.`, { instance: ctx.url.pathname });
      if (parent.type === 'File') throw bad(ctx, `Asset ${parentId} is a file, not a folder.`);
      const rel = String(b.relativePath ?? '').split('/').filter(Boolean);
      const last = rel.pop();
      name = typeof b.displayName === 'string' && b.displayName ? b.displayName : last ?? '';
      dirs = rel;
      for (const n of [...dirs, name]) checkName(ctx, n);
      // A clash found now fails early; completion checks again (the folder may change meanwhile).
      const { existing } = this.walk(ctx, parentId, dirs, name, false);
      if (existing && existing.type !== 'File') throw bad(ctx, `An asset named "${name}" already exists here and is a folder.`);
      if (existing && option === 'Cancel') throw bad(ctx, `An asset named "${name}" already exists in this folder (uploadOverwriteOption Cancel).`);
      if (option === 'Continue') {
        const open = [...this.sessions.values()].find((s) => s.parentId === parentId && s.name === name && s.dirs.join('/') === dirs.join('/') && s.contentLength === contentLength);
        if (open) return open;
      }
    }

    const id = randomUUID();
    const assetId = replaceId ?? this.walk(ctx, parentId, dirs, name, false).existing?.id ?? randomUUID();
    const key = `assets/${assetId}/${id}`;
    const mp = await this.direct.send(new CreateMultipartUploadCommand({ Bucket: this.host.s3.bucket, Key: key }));
    if (!mp.UploadId) throw new HttpError(500, 'the storage answered no multipart upload id');
    const parts: Part[] = [];
    const count = Math.max(1, Math.ceil(contentLength / chunkSize));
    for (let n = 1; n <= count; n++) {
      const start = (n - 1) * chunkSize;
      parts.push({ id: randomUUID(), number: n, start, end: Math.min(contentLength, start + chunkSize) - 1, etag: null });
    }
    const s: Session = { id, assetId, key, s3UploadId: mp.UploadId, option, parentId, dirs, name, replaceId, contentLength, chunkSize, parts, startMs: Date.now() };
    this.sessions.set(id, s);
    for (const p of parts) this.partIndex.set(p.id, { session: id, number: p.number });
    return s;
  }

  /** The folder `dirs` lead to below `parentId` (made when `create`) and the record named `name` there. */
  private walk(ctx: Ctx, parentId: string, dirs: readonly string[], name: string, create: boolean): { folderId: string | undefined; existing: AssetRecord | undefined } {
    const cat = this.host.catalog;
    let folder = cat.get(parentId);
    if (!folder) throw new HttpError(404, `Asset ${parentId} was not found.`, { instance: ctx.url.pathname });
    for (const d of dirs) {
      const next = cat.child(folder.id, d);
      if (next && next.type === 'File') throw bad(ctx, `"${d}" in the relativePath is a file, not a folder.`);
      if (!next && !create) return { folderId: undefined, existing: undefined };
      folder = next ?? cat.add({ parentId: folder.id, name: d, type: 'Folder', bucketName: folder.bucketName, objectKey: '', assetStatus: 'Available', size: 0, etag: '' });
    }
    return { folderId: folder.id, existing: cat.child(folder.id, name) };
  }

  private async answer(s: Session): Promise<unknown> {
    const ttl = Math.max(1, Math.round(this.host.partUrlTtlMs / 1000));
    const parts = await Promise.all(
      s.parts.map(async (p) => ({
        id: p.id,
        url: await getSignedUrl(this.signer, new UploadPartCommand({ Bucket: this.host.s3.bucket, Key: s.key, UploadId: s.s3UploadId, PartNumber: p.number }), { expiresIn: ttl }),
        partNumber: p.number,
        startingPosition: p.start,
        endingPosition: p.end,
        isCompleted: p.etag !== null,
        etag: p.etag === null ? null : `"${p.etag}"`, // GUESS: the documented part shape has no etag
      })),
    );
    return { id: s.id, assetId: s.assetId, etag: null, url: `${this.host.s3.bucket}::${s.key}`, contentLength: s.contentLength, chunkSize: s.chunkSize, startDate: new Date(s.startMs).toISOString(), parts };
  }

  private async complete(ctx: Ctx, s: Session): Promise<AssetRecord> {
    const cat = this.host.catalog;
    const missing = s.parts.filter((p) => p.etag === null).map((p) => p.number);
    if (missing.length) throw bad(ctx, `Upload ${s.id} is missing part(s) ${missing.slice(0, 10).join(', ')}: complete every part first.`);
    // Checked before the bytes are committed: a place that became invalid leaves the session open.
    let target: AssetRecord | undefined;
    if (s.replaceId) {
      target = cat.get(s.replaceId);
      if (!target) throw new HttpError(404, `Asset ${s.replaceId} was not found.`, { instance: ctx.url.pathname });
    } else {
      const { existing } = this.walk(ctx, s.parentId, s.dirs, s.name, false);
      if (existing && existing.type !== 'File') throw bad(ctx, `An asset named "${s.name}" already exists here and is a folder.`);
      if (existing && s.option === 'Cancel') throw bad(ctx, `An asset named "${s.name}" already exists in this folder (uploadOverwriteOption Cancel).`);
    }
    await this.direct.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.host.s3.bucket, Key: s.key, UploadId: s.s3UploadId,
        MultipartUpload: { Parts: s.parts.map((p) => ({ PartNumber: p.number, ETag: `"${p.etag}"` })) },
      }),
    );
    this.forget(s);
    const stored = await this.host.s3.head(s.key);
    if (!stored || stored.size !== s.contentLength) {
      await this.host.s3.remove(s.key).catch(() => undefined);
      throw bad(ctx, `Upload ${s.id} stored ${stored?.size ?? 0} bytes, but contentLength was ${s.contentLength}.`);
    }
    const status = this.host.registerMs > 0 ? 'Registering' : 'Available';
    if (!target) {
      const { folderId, existing } = this.walk(ctx, s.parentId, s.dirs, s.name, true);
      target = existing ?? cat.add({ id: cat.get(s.assetId) ? undefined : s.assetId, parentId: folderId!, name: s.name, type: 'File', bucketName: cat.get(folderId!)!.bucketName, objectKey: s.key, assetStatus: status, size: stored.size, etag: stored.etag });
    }
    const old = target.objectKey;
    Object.assign(target, { objectKey: s.key, size: stored.size, etag: stored.etag, assetStatus: status });
    cat.touch(target);
    // Shared seed objects stay; a replaced upload's own object goes.
    if (old && old !== s.key && old.startsWith('assets/')) await this.host.s3.remove(old).catch(() => undefined);
    if (this.host.registerMs > 0) {
      const rec = target;
      setTimeout(() => {
        if (cat.get(rec.id) === rec && rec.assetStatus === 'Registering') {
          rec.assetStatus = 'Available';
          cat.touch(rec);
        }
      }, this.host.registerMs).unref();
    }
    return target;
  }

  private forget(s: Session): void {
    this.sessions.delete(s.id);
    for (const p of s.parts) this.partIndex.delete(p.id);
  }

  /** Forgets the session and aborts its storage multipart upload (parts already PUT are discarded). */
  private async drop(s: Session): Promise<void> {
    this.forget(s);
    await this.direct.send(new AbortMultipartUploadCommand({ Bucket: this.host.s3.bucket, Key: s.key, UploadId: s.s3UploadId })).catch(() => undefined);
  }
}
