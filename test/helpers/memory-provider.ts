/**
 * A Provider and a BlockSource over a tree held in memory, for unit tests of the VFS and the write
 * path: no network, but the same contract as the real ones (refs are opaque, listings are per folder
 * ref, reads are by (ref, version) in fixed-size blocks, a wrong version is refused).
 */
import { NotFoundError, StaleError } from '../../src/core/errors.js';
import type { BlockSource, ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../src/core/types.js';

interface Node {
  readonly parent: Ref;
  readonly entry: RemoteEntry;
  readonly bytes?: Buffer;
}

export class MemoryProvider implements Provider {
  readonly type = 'memory';
  readonly caps = { upload: false };
  private readonly nodes = new Map<Ref, Node>();
  /** Calls of list() per folder ref, and of byId(). */
  readonly listCalls: Ref[] = [];
  byIdCalls = 0;
  /** Set to false to have no ids (no `.by-id/` folder). */
  byId?: (id: string) => Promise<RemoteEntry>;

  constructor(readonly name: string, withIds = true) {
    if (withIds) {
      this.byId = async (id: string) => {
        this.byIdCalls++;
        const n = [...this.nodes.values()].find((x) => x.entry.id === id);
        if (!n) throw new NotFoundError(`no entry with id ${id}`);
        return n.entry;
      };
    }
  }

  /** Adds a file (remote name as it is, any characters) under the folder `parent`; returns its ref. */
  file(parent: Ref, name: string, bytes: Buffer | string, extra: Partial<RemoteEntry> = {}): Ref {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const ref = extra.ref ?? `${parent}/${name}#${this.nodes.size}`;
    const entry: RemoteEntry = { name, kind: 'file', ref, size: data.length, mtimeMs: 1_700_000_000_123, version: `v${this.nodes.size}`, ...extra };
    this.nodes.set(ref, { parent, entry, bytes: data });
    return ref;
  }

  dir(parent: Ref, name: string, extra: Partial<RemoteEntry> = {}): Ref {
    const ref = extra.ref ?? `${parent}/${name}/#${this.nodes.size}`;
    this.nodes.set(ref, { parent, entry: { name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '', ...extra } });
    return ref;
  }

  /** The entry of a ref, as list() and stat() give it. */
  entry(ref: Ref): RemoteEntry {
    const n = this.nodes.get(ref);
    if (!n) throw new NotFoundError(`no entry ${ref}`);
    return n.entry;
  }

  bytesOf(ref: Ref): Buffer {
    const b = this.nodes.get(ref)?.bytes;
    if (!b) throw new NotFoundError(`no file ${ref}`);
    return b;
  }

  versionOf(ref: Ref): string {
    const n = this.nodes.get(ref);
    if (!n) throw new NotFoundError(`no file ${ref}`);
    return n.entry.version;
  }

  async *list(dir: Ref): AsyncIterable<RemoteEntry> {
    this.listCalls.push(dir);
    if (dir !== '' && this.nodes.get(dir)?.entry.kind !== 'dir') throw new NotFoundError(`no folder ${dir}`);
    for (const n of this.nodes.values()) if (n.parent === dir) yield n.entry;
  }

  async stat(ref: Ref): Promise<RemoteEntry> {
    const n = this.nodes.get(ref);
    if (!n) throw new NotFoundError(`no entry ${ref}`);
    return n.entry;
  }

  idOf(entry: RemoteEntry): string | undefined {
    return entry.id;
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    const out: Ref[] = [];
    for (let p = this.nodes.get(entry.ref)?.parent; p; p = this.nodes.get(p)?.parent) out.unshift(p);
    return out;
  }

  async locate(): Promise<SignedLocator> {
    throw new Error('MemoryProvider has no URLs: read through MemoryBlocks');
  }

  async close(): Promise<void> {}
}

/** Blocks of `blockSize` bytes cut from the providers' files; counts the blocks read. */
export class MemoryBlocks implements BlockSource {
  readonly reads: Array<{ ref: Ref; index: number }> = [];
  constructor(
    private readonly providers: ReadonlyMap<string, MemoryProvider>,
    readonly blockSize = 16,
  ) {}

  async readBlock(obj: ObjectVersion, index: number): Promise<Buffer> {
    const p = this.providers.get(obj.source);
    if (!p) throw new NotFoundError(`no source ${obj.source}`);
    if (p.versionOf(obj.ref) !== obj.version) throw new StaleError(`${obj.ref} is not at version ${obj.version}`);
    this.reads.push({ ref: obj.ref, index });
    return Buffer.from(p.bytesOf(obj.ref).subarray(index * this.blockSize, (index + 1) * this.blockSize));
  }

  prefetch(): void {}
  async invalidate(): Promise<void> {}
}
