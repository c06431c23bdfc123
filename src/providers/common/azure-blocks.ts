/**
 * One Azure block-list session (docs/providers.md "Azure block blobs"): staged blocks, then one
 * commit of the list. Used by azure-blob, AMS (through a write locator's SAS) and MK.IO (Azure storage).
 *
 * Invariants:
 *  - Azure keeps no upload session, so the session is ours: a random tag inside every block id
 *    (`<tag>-<6-digit part number>`, base64; all ids of one blob have the same length, as Azure
 *    requires). Resume reads the uncommitted block list and keeps only the blocks carrying our tag.
 *  - The commit lists exactly parts 1..n in order; a journal that lacks one is a lost session.
 *  - After the commit the blob's size is checked against the size uploaded (EIO when it differs).
 *  - Errors are the SDK's own: each caller maps them (its messages name its source).
 */
import { randomBytes } from 'node:crypto';
import type { BlobGetPropertiesResponse, BlockBlobClient } from '@azure/storage-blob';
import { FsError } from '../../core/errors.js';
import type { ConfirmedPart } from '../../upload/types.js';
import { contentTypeOf } from '../../util/content-type.js';

/** A fresh session tag (16 hex digits). */
export const newBlockTag = (): string => randomBytes(8).toString('hex');

export function blockId(tag: string, number: number): string {
  return Buffer.from(`${tag}-${String(number).padStart(6, '0')}`).toString('base64');
}

/** The part number of block `id` when it belongs to session `tag`. */
export function blockPart(tag: string, id: string): number | undefined {
  const m = /^(.+)-(\d{6})$/.exec(Buffer.from(id, 'base64').toString());
  return m && m[1] === tag ? Number(m[2]) : undefined;
}

export class BlockListSession {
  constructor(readonly tag: string) {}

  /** The blocks of this session staged on `blob` and not yet committed. */
  async staged(blob: BlockBlobClient, signal?: AbortSignal): Promise<ConfirmedPart[]> {
    const list = await blob.getBlockList('uncommitted', { abortSignal: signal });
    const out: ConfirmedPart[] = [];
    for (const b of list.uncommittedBlocks ?? []) {
      const n = blockPart(this.tag, b.name);
      if (n !== undefined) out.push({ number: n, etag: b.name, size: b.size });
    }
    return out;
  }

  /** Put Block of part `number`; its receipt is the block id. */
  async stage(blob: BlockBlobClient, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    const id = blockId(this.tag, number);
    await blob.stageBlock(id, data, data.length, { abortSignal: signal });
    return id;
  }

  /** The block ids of `parts` in order, or undefined when they are not exactly this session's parts 1..n. */
  blockList(parts: readonly ConfirmedPart[]): string[] | undefined {
    const ids = [...parts].sort((a, b) => a.number - b.number).map((p) => p.etag);
    return ids.every((id, i) => blockPart(this.tag, id) === i + 1) ? ids : undefined;
  }

  /** Put Block List with the content type of `name`, then the blob's properties, its size checked. */
  async commit(blob: BlockBlobClient, ids: string[], o: { name: string; size: number; signal?: AbortSignal }): Promise<BlobGetPropertiesResponse> {
    await blob.commitBlockList(ids, { blobHTTPHeaders: { blobContentType: contentTypeOf(o.name) }, abortSignal: o.signal });
    const p = await blob.getProperties({ abortSignal: o.signal });
    if ((p.contentLength ?? -1) !== o.size) throw new FsError('EIO', `${o.name} has ${p.contentLength} bytes after the commit, expected ${o.size}`);
    return p;
  }
}
