/**
 * The directory tree of a MediaHub catalog (docs/providers.md#mediahub: `<pipeline id>/<object_key path…>`, files with no
 * object key under `<pipeline id>/_files/`), built from one pass over the flat listing.
 *
 * Refs (opaque to the rest of assetfs, stable across snapshots):
 *  - ''                         the source root (lists the pipelines);
 *  - 'd:<pipeline>/<seg>/…/'     a folder made of object_key segments (or `_files`);
 *  - 'f:<id>'                   a file record;
 *  - 'a:<id>'                   an archive record, shown as a folder of its items;
 *  - 'i:<id>:<index>'           item `index` of archive `id`.
 * Names are not unique (two `_files/x.mp4`, or a file `a` beside the folder `a/`): entries carry their
 * record id and the VFS adds suffixes. Empty object_key segments are skipped (`a//b` is `a/b`).
 */
import type { Ref, RemoteEntry, Unreadable } from '../../core/types.js';
import { normalizeEtag } from '../../core/etag.js';
import { num, timeMs, type MhFile, type MhItem } from './api.js';
import { EntryNumbers, checkTime } from '../common/entry-numbers.js';
import { silentLogger } from '../../util/logger.js';

/** Where records without a pipeline go (GUESS: the listing always names one). */
export const NO_PIPELINE = '_no_pipeline';
export const LOOSE_FILES = '_files';

/** States in which a record's bytes can be read; any other `status` makes it unreadable (EAGAIN). */
const READY = new Set(['', 'READY', 'FINISHED', 'SUCCESS', 'AVAILABLE', 'COMPLETE', 'COMPLETED', 'DONE', 'ACTIVE']);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface DirNode {
  /** The same object as in the parent's children, so that mtime updates show in both. */
  entry: Mutable<RemoteEntry>;
  children: RemoteEntry[];
  /** Sub-folders made of path segments, by name (archives are not merged into them). */
  sub: Map<string, Ref>;
}

export const fileRef = (id: string): Ref => `f:${id}`;
export const archiveRef = (id: string): Ref => `a:${id}`;
export const itemRef = (id: string, index: number): Ref => `i:${id}:${index}`;

export type ParsedRef =
  | { kind: 'root' }
  | { kind: 'dir'; ref: Ref }
  | { kind: 'file'; id: string }
  | { kind: 'archive'; id: string }
  | { kind: 'item'; id: string; index: number }
  | { kind: 'bad' };

export function parseRef(ref: Ref): ParsedRef {
  if (ref === '') return { kind: 'root' };
  if (ref.startsWith('d:') && ref.endsWith('/') && ref.length > 3) return { kind: 'dir', ref };
  if (ref.startsWith('f:') && ref.length > 2) return { kind: 'file', id: ref.slice(2) };
  if (ref.startsWith('a:') && ref.length > 2) return { kind: 'archive', id: ref.slice(2) };
  const m = /^i:(.+):(\d+)$/.exec(ref);
  if (m) return { kind: 'item', id: m[1]!, index: Number(m[2]) };
  return { kind: 'bad' };
}

function keySegments(key: string | null | undefined): string[] {
  return (key ?? '').split('/').filter((s) => s !== '');
}

function unreadableOf(f: MhFile): Unreadable | undefined {
  const s = typeof f.status === 'string' ? f.status.toUpperCase() : '';
  return READY.has(s) ? undefined : { code: 'EAGAIN', reason: `MediaHub file ${f.id} is ${f.status} (not ready for download)` };
}

/** The record's name in its folder: the last object_key segment, else its name/title, else its id. */
export function leafName(f: MhFile): string {
  return placement(f).leaf;
}

/** The record's path below its pipeline, as the tree shows it (what upload targets name). */
export function recordPath(f: MhFile): string[] {
  const { parent, leaf } = placement(f);
  return [...parent, leaf];
}

/** The folder segments (below the pipeline) that hold the record, or make it for a folder record. */
function placement(f: MhFile): { parent: string[]; leaf: string } {
  const segs = keySegments(f.object_key);
  if (segs.length) return { parent: segs.slice(0, -1), leaf: segs[segs.length - 1]! };
  return { parent: [LOOSE_FILES], leaf: f.name || f.title || f.id };
}

/** A version that changes with the bytes: the storage ETag when the record has one, else id+size+time. */
export function fileVersion(f: MhFile): string {
  const tag = normalizeEtag(f.etag ?? f.md5);
  if (tag) return tag;
  return `${f.id}:${num(f.size ?? f.size_on_disk)}:${f.updated_at ?? f.created_at ?? ''}`;
}

/** A record's time as sent, numbers read as seconds or ms like timeMs() does (checked by entry-numbers.ts). */
const rawTime = (f: MhFile): unknown => {
  const v = f.updated_at ?? f.created_at;
  return typeof v === 'number' || (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) ? timeMs(v) : v;
};

/** Entries built without a source's checker (the uploader's read-back) check alike but log nothing. */
const unlogged = () => new EntryNumbers({ log: silentLogger, what: 'mediahub' });

export function fileEntry(f: MhFile, numbers = unlogged()): RemoteEntry {
  const unreadable = unreadableOf(f);
  const ref = fileRef(f.id);
  const name = leafName(f);
  return {
    name, kind: 'file', ref, id: f.id, ...numbers.file(ref, name, { size: f.size ?? f.size_on_disk, mtime: rawTime(f) }),
    version: fileVersion(f), ...(unreadable ? { unreadable } : {}),
    ...(f.status ? { status: f.status } : {}), ...(f.mime_type ? { contentType: f.mime_type } : {}),
  };
}

export function archiveEntry(f: MhFile, numbers = unlogged()): RemoteEntry {
  const ref = archiveRef(f.id);
  return { name: leafName(f), kind: 'dir', ref, id: f.id, size: 0, mtimeMs: numbers.mtime(ref, leafName(f), rawTime(f)), version: '',
    ...(f.status ? { status: f.status } : {}) };
}

export function itemEntries(f: MhFile, numbers = unlogged()): RemoteEntry[] {
  const unreadable = unreadableOf(f);
  return (f.items ?? []).map((it: MhItem, i) => {
    const tag = normalizeEtag(it.etag ?? it.md5);
    const ref = itemRef(f.id, i);
    const name = it.name || keySegments(it.object_key).pop() || `item-${i}`;
    return {
      name, kind: 'file' as const, ref, id: `${f.id}:${i}`, ...numbers.file(ref, name, { size: it.size, mtime: rawTime(f) }),
      version: tag || `${f.id}:${i}:${num(it.size)}:${f.updated_at ?? f.created_at ?? ''}`, ...(unreadable ? { unreadable } : {}),
    };
  });
}

/** One consistent picture of the catalog. */
export class Tree {
  readonly dirs = new Map<Ref, DirNode>();
  /** Files and archive items by ref: what locate() consults for `unreadable` without an API call. */
  readonly files = new Map<Ref, RemoteEntry>();
  /** How many records the listing gave. */
  count = 0;

  constructor(
    records: Iterable<MhFile>,
    private readonly numbers = unlogged(),
  ) {
    this.dirs.set('', { entry: { name: '', kind: 'dir', ref: '', size: 0, mtimeMs: 0, version: '' }, children: [], sub: new Map() });
    for (const f of records) {
      this.count++;
      this.add(f);
    }
  }

  get(ref: Ref): DirNode | undefined {
    return this.dirs.get(ref);
  }

  /** The folder for `segments` below the root, made on the way; folders' mtimes follow their newest child. */
  private ensure(segments: string[], mtimeMs: number): DirNode {
    let node = this.dirs.get('')!;
    let ref = 'd:';
    for (const seg of segments) {
      ref += `${seg}/`;
      let next = node.sub.get(seg);
      if (!next) {
        const entry: Mutable<RemoteEntry> = { name: seg, kind: 'dir', ref, id: ref, size: 0, mtimeMs: 0, version: '' };
        node.children.push(entry);
        node.sub.set(seg, ref);
        this.dirs.set(ref, { entry, children: [], sub: new Map() });
        next = ref;
      }
      node = this.dirs.get(next)!;
      if (mtimeMs > node.entry.mtimeMs) node.entry.mtimeMs = mtimeMs;
    }
    return node;
  }

  private add(f: MhFile): void {
    const pipeline = f.pipeline?.id || NO_PIPELINE;
    const t = checkTime(rawTime(f));
    const mtime = t.ok ? t.value : 0; // a bad time is logged with the record's own entry
    const { parent, leaf } = placement(f); // leafName(f) === leaf: stat() names entries alike
    const type = (f.type ?? 'file').toLowerCase();
    if (type === 'folder') {
      this.ensure([pipeline, ...parent, leaf], mtime);
      return;
    }
    const dir = this.ensure([pipeline, ...parent], mtime);
    if (type === 'archive') {
      const entry: Mutable<RemoteEntry> = archiveEntry(f, this.numbers);
      dir.children.push(entry);
      const items = itemEntries(f, this.numbers);
      for (const it of items) this.files.set(it.ref, it);
      this.dirs.set(entry.ref, { entry, children: items, sub: new Map() });
      return;
    }
    const entry = fileEntry(f, this.numbers);
    dir.children.push(entry);
    this.files.set(entry.ref, entry);
  }
}

/**
 * The refs of the folders that hold a record, top first (the pipeline, then its object_key segments,
 * or `_files`): what Provider.ancestry() gives for it. A folder record's own folder is not among them.
 */
export function ancestorRefs(f: MhFile): Ref[] {
  const { parent } = placement(f);
  const segs = [f.pipeline?.id || NO_PIPELINE, ...parent];
  return segs.map((_, i) => `d:${segs.slice(0, i + 1).join('/')}/`);
}

/** The folder a `type: folder` record stands for (the tree merges it with the prefix of the same path). */
export function folderEntry(f: MhFile, numbers = unlogged()): RemoteEntry {
  const { parent, leaf } = placement(f);
  const ref = `d:${[f.pipeline?.id || NO_PIPELINE, ...parent, leaf].join('/')}/`;
  return { name: leaf, kind: 'dir', ref, id: ref, size: 0, mtimeMs: numbers.mtime(ref, leaf, rawTime(f)), version: '' };
}
