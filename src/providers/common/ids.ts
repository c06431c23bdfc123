/** Helpers the providers share for platform ids (Provider.idOf/byId/ancestry; docs/semantics.md#platform-ids). */
import type { Ref, RemoteEntry } from '../../core/types.js';
import { NotFoundError } from '../../core/errors.js';

/**
 * The folder refs above a slash-separated ref, top first, each ending in '/': `a/b/c` → `a/`, `a/b/`
 * (S3 keys, blob names). `base` is a fixed head they all start with (an MK.IO asset's `name/`).
 */
export function slashAncestry(ref: Ref, base = ''): Ref[] {
  const segs = ref.slice(base.length).replace(/\/$/, '').split('/').slice(0, -1);
  return segs.map((_, i) => `${base}${segs.slice(0, i + 1).join('/')}/`);
}

/** The last segment of a slash-separated ref (a folder's ref ends in '/'). */
export const leafOf = (ref: Ref): string => ref.replace(/\/$/, '').split('/').pop() ?? '';

/** A folder entry of a store where folders are name prefixes (no times, sizes or versions of their own). */
export const prefixDir = (name: string, ref: Ref): RemoteEntry => ({ name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' });

/**
 * What S3 and Azure Blob sources share, as stores addressed by key below a source prefix: a file's ref
 * is its key below the prefix, a folder's ref ends in '/' ('' is the root); a file's id is its whole
 * key, the prefix included; prefixes are not objects and have no id.
 */
export abstract class KeyAddressedStore {
  /** The source prefix, '' or ending in '/'. */
  protected readonly prefix: string;

  protected constructor(
    prefix: string,
    /** Names the source and what it holds in messages, e.g. `src: no object`. */
    private readonly noSuch: string,
  ) {
    this.prefix = prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix;
  }

  abstract stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry>;

  idOf(entry: RemoteEntry): string | undefined {
    return entry.kind === 'file' ? this.prefix + entry.ref : undefined;
  }

  /** One stat of the key; NotFoundError for a key outside the prefix or a folder's. */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!id.startsWith(this.prefix) || id.length === this.prefix.length || id.endsWith('/')) {
      throw new NotFoundError(`${this.noSuch} ${id} below the source prefix`);
    }
    return this.stat(id.slice(this.prefix.length), signal);
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    return slashAncestry(entry.ref);
  }
}
