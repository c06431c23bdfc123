/**
 * The host's own tiers with the shared tier behind them, itself a BlockCache: get() looks in memory,
 * then disk, then the shared tier (promoting a shared hit into the host's tiers), and a miss there
 * is the block source's to fetch from the origin. put() stores in the host's tiers at once and shares
 * the block in the background, so a cold read never waits for Redis.
 *
 * Invariant: only blocks fetched from the origin are shared (put/putOwned); a block that came from the
 * shared tier goes into the host's tiers only, and nothing else is written back.
 */
import type { BlockCache, CacheStats, ObjectVersion, Ref } from '../core/types.js';
import { blockRange } from '../core/blocks.js';
import type { SharedBlocks } from './shared-blocks.js';

/** The host's tiers as the shared tier needs them: with recycled buffers (TieredBlockCache). */
export type LocalTiers = BlockCache & Required<Pick<BlockCache, 'takeBuffer' | 'putOwned' | 'giveBack'>>;

export class SharedTierCache implements BlockCache {
  readonly blockSize: number;

  constructor(
    readonly local: LocalTiers,
    readonly shared: SharedBlocks,
  ) {
    this.blockSize = local.blockSize;
  }

  get(obj: ObjectVersion, index: number): Promise<Buffer | undefined> {
    return this.getOrWait(obj, index);
  }

  async getOrWait(obj: ObjectVersion, index: number, onWait?: () => void): Promise<Buffer | undefined> {
    const own = await this.local.get(obj, index);
    if (own) return own;
    const { start, end } = blockRange(index, this.blockSize, obj.size);
    const data = await this.shared.lookup(obj, index, end - start, onWait);
    if (!data) return undefined;
    const buf = this.local.takeBuffer();
    if (buf.length < data.length) {
      this.local.giveBack(buf);
      const copy = Buffer.from(data);
      await this.local.put(obj, index, copy);
      return copy;
    }
    const view = buf.subarray(0, data.length);
    data.copy(view);
    this.local.putOwned(obj, index, view, buf);
    return view;
  }

  async put(obj: ObjectVersion, index: number, data: Buffer): Promise<void> {
    this.shared.share(obj, index, data);
    await this.local.put(obj, index, data);
  }

  putOwned(obj: ObjectVersion, index: number, data: Buffer, owned: Buffer): void {
    this.shared.share(obj, index, data);
    this.local.putOwned(obj, index, data, owned);
  }

  peek(obj: ObjectVersion, index: number): Buffer | undefined {
    return this.local.peek?.(obj, index);
  }

  takeBuffer(): Buffer {
    return this.local.takeBuffer();
  }

  giveBack(buf: Buffer): void {
    this.local.giveBack(buf);
  }

  reserve(obj: ObjectVersion, index: number, bytes: number): void {
    this.local.reserve?.(obj, index, bytes);
  }

  unreserve(obj: ObjectVersion, index: number): void {
    this.local.unreserve?.(obj, index);
  }

  demote(obj: ObjectVersion, index: number): void {
    this.local.demote?.(obj, index);
  }

  /** The host's copies only: shared blocks are keyed by version, and a new version never meets them. */
  dropObject(source: string, ref: Ref): Promise<void> {
    return this.local.dropObject(source, ref);
  }

  stats(): CacheStats {
    return this.local.stats();
  }
}
