/**
 * Azure block blob uploads: staged blocks and one block-list commit. Azure keeps no upload session, so
 * the "upload id" is ours: a random tag inside every block id (`<tag>-<part number>`, all ids of one
 * blob the same length). Resume reads the uncommitted block list and keeps the blocks carrying our tag.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { normalizeEtag } from '../../core/etag.js';
import { NotFoundError } from '../../core/errors.js';
import type { ConfirmedPart, CompletedUpload, RemoteContent, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { mapStorageError } from '../errors.js';
import { contentTypeOf } from '../../util/content-type.js';

const MiB = 1024 * 1024;

export function blockId(uploadId: string, number: number): string {
  return Buffer.from(`${uploadId}-${String(number).padStart(6, '0')}`).toString('base64');
}

function partOf(uploadId: string, id: string): number | undefined {
  const m = /^(.+)-(\d{6})$/.exec(Buffer.from(id, 'base64').toString());
  return m && m[1] === uploadId ? Number(m[2]) : undefined;
}

export class AzureBlockUploader implements Uploader {
  constructor(
    private readonly container: ContainerClient,
    private readonly prefix: string,
  ) {}

  private blob(t: UploadTarget) {
    return this.container.getBlockBlobClient(this.prefix + t.path.join('/'));
  }

  partSize(size: number): number {
    return Math.max(8 * MiB, Math.ceil(size / 50_000 / MiB) * MiB); // ≤ 50,000 blocks per blob
  }

  async begin(): Promise<string> {
    return randomBytes(8).toString('hex');
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[]> {
    try {
      const list = await this.blob(t).getBlockList('uncommitted', { abortSignal: signal });
      const out: ConfirmedPart[] = [];
      for (const b of list.uncommittedBlocks ?? []) {
        const n = partOf(uploadId, b.name);
        if (n !== undefined) out.push({ number: n, etag: b.name, size: b.size });
      }
      return out;
    } catch (e) {
      const m = mapStorageError(e, `block list of ${t.path.join('/')}`);
      if (m instanceof NotFoundError) return [];
      throw m;
    }
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    const id = blockId(uploadId, number);
    try {
      await this.blob(t).stageBlock(id, data, data.length, { abortSignal: signal });
      return id;
    } catch (e) {
      throw mapStorageError(e, `stage block ${number} of ${t.path.join('/')}`);
    }
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    const ids = [...parts].sort((a, b) => a.number - b.number).map((p) => p.etag);
    if (ids.some((id, i) => partOf(uploadId, id) !== i + 1)) throw new SessionLostError('the journal does not hold every block in order');
    try {
      await this.blob(t).commitBlockList(ids, { blobHTTPHeaders: { blobContentType: contentTypeOf(t.path.at(-1) ?? '') }, abortSignal: signal });
    } catch (e) {
      if ((e as { code?: string }).code === 'InvalidBlockList') throw new SessionLostError(`committing ${t.path.join('/')}: a block is missing`);
      throw mapStorageError(e, `commit ${t.path.join('/')}`);
    }
    const p = await this.blob(t).getProperties({ abortSignal: signal }).catch((e: unknown) => {
      throw mapStorageError(e, `check ${t.path.join('/')}`);
    });
    if ((p.contentLength ?? -1) !== info.size) throw new Error(`${t.path.join('/')} has ${p.contentLength} bytes after upload, expected ${info.size}`);
    return { version: normalizeEtag(p.etag), size: p.contentLength ?? 0 };
  }

  async abort(): Promise<void> {
    // Uncommitted blocks are dropped by Azure after a week; nothing to release.
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    await this.blob(t).deleteIfExists({ abortSignal: signal }).catch((e: unknown) => {
      throw mapStorageError(e, `delete ${t.path.join('/')}`);
    });
  }

  async remoteContent(t: UploadTarget, signal?: AbortSignal): Promise<RemoteContent | undefined> {
    try {
      const p = await this.blob(t).getProperties({ abortSignal: signal });
      return { version: normalizeEtag(p.etag), size: p.contentLength ?? -1, ...(p.contentMD5 ? { md5: Buffer.from(p.contentMD5).toString('hex') } : {}) };
    } catch (e) {
      const m = mapStorageError(e, `stat ${t.path.join('/')}`);
      if (m instanceof NotFoundError) return undefined;
      throw m;
    }
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    try {
      return normalizeEtag((await this.blob(t).getProperties({ abortSignal: signal })).etag);
    } catch (e) {
      const m = mapStorageError(e, `stat ${t.path.join('/')}`);
      if (m instanceof NotFoundError) return undefined;
      throw m;
    }
  }
}
