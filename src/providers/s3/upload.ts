/**
 * S3 multipart uploads (CreateMultipartUpload / UploadPart / CompleteMultipartUpload). Resume asks
 * ListParts; servers without it (s3rver) answer something else, and then the journal is trusted and
 * CompleteMultipartUpload is the check: a missing part there means the session is lost, and the engine
 * begins again.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { normalizeEtag } from '../../core/etag.js';
import { NotFoundError } from '../../core/errors.js';
import type { ConfirmedPart, CompletedUpload, RemoteContent, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { mapStorageError } from '../errors.js';
import { contentTypeOf } from '../../util/content-type.js';
import { MAX_PARTS, partSizeFor } from '../common/part-size.js';

const errName = (e: unknown) => (e as { name?: string; Code?: string }).name ?? (e as { Code?: string }).Code ?? '';

export class S3Uploader implements Uploader {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  private key(t: UploadTarget): string {
    return this.prefix + t.path.join('/');
  }

  /** Holds nothing of its own (the provider owns the clients): nothing to release. */
  close(): void {}

  partSize(size: number): number {
    return partSizeFor(size, MAX_PARTS.s3);
  }

  async begin(t: UploadTarget, _size: number, signal?: AbortSignal): Promise<string> {
    try {
      const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(t), ContentType: contentTypeOf(t.path.at(-1) ?? '') }), { abortSignal: signal });
      if (!r.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
      return r.UploadId;
    } catch (e) {
      throw mapStorageError(e, `start upload of ${this.key(t)}`);
    }
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined | 'unknown'> {
    const out: ConfirmedPart[] = [];
    let marker: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: this.key(t), UploadId: uploadId, PartNumberMarker: marker }), { abortSignal: signal });
        for (const p of r.Parts ?? []) out.push({ number: p.PartNumber ?? 0, etag: normalizeEtag(p.ETag), size: p.Size ?? 0 });
        marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
      } while (marker);
      return out;
    } catch (e) {
      if (errName(e) === 'NoSuchUpload') return undefined;
      return 'unknown';
    }
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    try {
      const r = await this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: this.key(t), UploadId: uploadId, PartNumber: number, Body: data, ContentLength: data.length }),
        { abortSignal: signal },
      );
      return normalizeEtag(r.ETag);
    } catch (e) {
      if (errName(e) === 'NoSuchUpload') throw new SessionLostError(`upload session of ${this.key(t)} is gone`);
      throw mapStorageError(e, `upload part ${number} of ${this.key(t)}`);
    }
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket, Key: this.key(t), UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: `"${p.etag}"` })) },
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      if (['NoSuchUpload', 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall'].includes(errName(e))) {
        throw new SessionLostError(`completing ${this.key(t)}: ${errName(e)}`);
      }
      throw mapStorageError(e, `complete upload of ${this.key(t)}`);
    }
    const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(t) }), { abortSignal: signal }).catch((e: unknown) => {
      throw mapStorageError(e, `check ${this.key(t)}`);
    });
    if ((h.ContentLength ?? -1) !== info.size) throw new Error(`${this.key(t)} has ${h.ContentLength} bytes after upload, expected ${info.size}`);
    return { version: normalizeEtag(h.ETag), size: h.ContentLength ?? 0 };
  }

  async abort(t: UploadTarget, uploadId: string): Promise<void> {
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(t), UploadId: uploadId })).catch(() => undefined);
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(t) }), { abortSignal: signal }).catch((e: unknown) => {
      throw mapStorageError(e, `delete ${this.key(t)}`);
    });
  }

  async remoteContent(t: UploadTarget, signal?: AbortSignal): Promise<RemoteContent | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(t) }), { abortSignal: signal });
      return { version: normalizeEtag(h.ETag), size: h.ContentLength ?? -1, s3Etag: normalizeEtag(h.ETag) };
    } catch (e) {
      const m = mapStorageError(e, `stat ${this.key(t)}`);
      if (m instanceof NotFoundError) return undefined;
      throw m;
    }
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(t) }), { abortSignal: signal });
      return normalizeEtag(h.ETag);
    } catch (e) {
      const m = mapStorageError(e, `stat ${this.key(t)}`);
      if (m instanceof NotFoundError) return undefined;
      throw m;
    }
  }
}
