/**
 * Azure block blob uploads: one block-list session per upload (common/azure-blocks.ts), its tag the
 * upload id. Resume reads the uncommitted block list and keeps the blocks carrying our tag.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { normalizeEtag } from '../../core/etag.js';
import { NotFoundError } from '../../core/errors.js';
import type { ConfirmedPart, CompletedUpload, RemoteContent, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { mapStorageError } from '../errors.js';
import { BlockListSession, newBlockTag } from '../common/azure-blocks.js';
import { MAX_PARTS, partSizeFor } from '../common/part-size.js';

export class AzureBlockUploader implements Uploader {
  constructor(
    private readonly container: ContainerClient,
    private readonly prefix: string,
  ) {}

  private blob(t: UploadTarget) {
    return this.container.getBlockBlobClient(this.prefix + t.path.join('/'));
  }

  /** Holds nothing of its own (the provider owns the clients): nothing to release. */
  close(): void {}

  partSize(size: number): number {
    return partSizeFor(size, MAX_PARTS.azureBlocks);
  }

  /** The upload id is the block-list session's tag. */
  async begin(): Promise<string> {
    return newBlockTag();
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[]> {
    try {
      return await new BlockListSession(uploadId).staged(this.blob(t), signal);
    } catch (e) {
      const m = mapStorageError(e, `block list of ${t.path.join('/')}`);
      if (m instanceof NotFoundError) return [];
      throw m;
    }
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    try {
      return await new BlockListSession(uploadId).stage(this.blob(t), number, data, signal);
    } catch (e) {
      throw mapStorageError(e, `stage block ${number} of ${t.path.join('/')}`);
    }
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    const session = new BlockListSession(uploadId);
    const ids = session.blockList(parts);
    if (!ids) throw new SessionLostError('the journal does not hold every block in order');
    try {
      const p = await session.commit(this.blob(t), ids, { name: t.path.at(-1) ?? '', size: info.size, signal });
      return { version: normalizeEtag(p.etag), size: p.contentLength ?? 0 };
    } catch (e) {
      if ((e as { code?: string }).code === 'InvalidBlockList') throw new SessionLostError(`committing ${t.path.join('/')}: a block is missing`);
      throw mapStorageError(e, `commit ${t.path.join('/')}`);
    }
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
