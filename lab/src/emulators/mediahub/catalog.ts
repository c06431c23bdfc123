/**
 * The MediaHub emulator's data: file records (docs/providers.md#mediahub) per pipeline, their bytes in an S3
 * bucket on s3rver (S3Backing), as MediaHub keeps files in S3 and hands out presigned S3 URLs.
 *
 * Record shape choices where docs/providers.md#mediahub says Guess (the provider stays tolerant of others):
 *  - `created_at`/`updated_at` are ISO-8601 strings with milliseconds; `updated_at` changes when a
 *    file's bytes are replaced (same pipeline + object_key keeps its id, like a re-upload in place).
 *  - `etag` is the hex MD5 the bytes have in S3 (the storage ETag), so a reader can tell versions apart.
 *  - an archive record carries `items: [{name, size, object_key, etag}]`; downloads list one URL per item
 *    in that order.
 *  - a file not yet readable carries `status` (e.g. "UPLOADING"); ready files carry no status.
 * Invariants: ids are unique 24-hex strings; (pipeline, object_key) is unique when object_key is set;
 * names are not unique; list order is by created_at then insertion (stable for paging).
 */
import { randomBytes } from 'node:crypto';
import type { S3Backing } from '../common/backing.js';

export type FileType = 'file' | 'folder' | 'archive';

export interface ArchiveItem {
  name: string;
  size: number;
  object_key: string;
  etag: string;
  /** Where the item's bytes are in the bucket (not part of the API answer). */
  storageKey: string;
}

export interface FileRec {
  id: string;
  pipelineId: string;
  objectKey: string | null;
  name: string;
  type: FileType;
  size: number;
  etag: string;
  createdAtMs: number;
  updatedAtMs: number;
  /** Insertion counter: the tie-break that keeps paging order stable. */
  seq: number;
  jobId: string | null;
  status?: string;
  /** Bucket key of the bytes (files); shared by the records of seedMany. */
  storageKey?: string;
  items?: ArchiveItem[];
}

const MIME: Record<string, string> = {
  mp4: 'video/mp4', mov: 'video/quicktime', mkv: 'video/x-matroska', webm: 'video/webm', mp3: 'audio/mpeg',
  wav: 'audio/wav', jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', srt: 'application/x-subrip',
  vtt: 'text/vtt', txt: 'text/plain', json: 'application/json', zip: 'application/zip', bin: 'application/octet-stream',
};

const extOf = (name: string) => (name.includes('.') ? name.split('.').pop()!.toLowerCase() : '');
export const newId = () => randomBytes(12).toString('hex');

export interface PutFileInput {
  pipelineId: string;
  /** The id of a new record (an upload announces its file id up front); ignored when the key already has a record. */
  id?: string;
  /** Path-like key inside the pipeline; null/absent for a file with no object key. */
  objectKey?: string | null;
  /** Defaults to the last segment of objectKey. */
  name?: string;
  bytes?: Buffer;
  type?: 'file' | 'folder';
  /** A not-yet-readable state ("UPLOADING", "PROCESSING"); absent = ready. */
  status?: string;
  jobId?: string | null;
}

export interface PutArchiveInput {
  pipelineId: string;
  objectKey?: string | null;
  name?: string;
  items: { name: string; bytes: Buffer }[];
}

export class MediahubCatalog {
  readonly files = new Map<string, FileRec>();
  private seq = 0;
  private lastStamp = 0;
  /** Bumped on every change: invalidates the sorted view. */
  private generation = 0;
  private sorted: { generation: number; recs: FileRec[] } | undefined;

  constructor(private readonly backing: S3Backing) {}

  /** A strictly increasing timestamp, so that two quick changes never share a time. */
  private stamp(): number {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  private changed(): void {
    this.generation++;
  }

  /** Whether any record lives in the pipeline (the emulator knows pipelines only through their files). */
  hasPipeline(pipelineId: string): boolean {
    for (const r of this.files.values()) if (r.pipelineId === pipelineId) return true;
    return false;
  }

  byKey(pipelineId: string, objectKey: string): FileRec | undefined {
    for (const r of this.files.values()) if (r.pipelineId === pipelineId && r.objectKey === objectKey) return r;
    return undefined;
  }

  private nameOf(input: { objectKey?: string | null; name?: string }): string {
    const name = input.name ?? input.objectKey?.split('/').filter(Boolean).pop();
    if (!name) throw new Error('mediahub emulator: a file needs a name or an object key');
    return name;
  }

  /** Adds a file (or folder record), or replaces the bytes of the file at the same pipeline + object_key. */
  async putFile(input: PutFileInput): Promise<FileRec> {
    const objectKey = input.objectKey ? input.objectKey : null;
    const existing = objectKey ? this.byKey(input.pipelineId, objectKey) : undefined;
    const id = existing?.id ?? input.id ?? newId();
    const type = input.type ?? 'file';
    let size = 0;
    let etag = '';
    let storageKey: string | undefined;
    if (type === 'file') {
      storageKey = `${input.pipelineId}/${id}`;
      const stored = await this.backing.put(storageKey, input.bytes ?? Buffer.alloc(0));
      size = stored.size;
      etag = stored.etag;
    }
    const now = this.stamp();
    const rec: FileRec = {
      id, pipelineId: input.pipelineId, objectKey, name: this.nameOf(input), type, size, etag, storageKey,
      createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now, seq: existing?.seq ?? ++this.seq,
      jobId: input.jobId ?? null, status: input.status,
    };
    this.files.set(id, rec);
    this.changed();
    return rec;
  }

  /** An archive: one record whose items are stored one object each. */
  async putArchive(input: PutArchiveInput): Promise<FileRec> {
    const objectKey = input.objectKey ? input.objectKey : null;
    const existing = objectKey ? this.byKey(input.pipelineId, objectKey) : undefined;
    const id = existing?.id ?? newId();
    const items: ArchiveItem[] = [];
    for (const [i, it] of input.items.entries()) {
      const storageKey = `${input.pipelineId}/${id}/items/${i}`;
      const stored = await this.backing.put(storageKey, it.bytes);
      items.push({ name: it.name, size: stored.size, etag: stored.etag, storageKey, object_key: `${objectKey ?? id}/${it.name}` });
    }
    const now = this.stamp();
    const rec: FileRec = {
      id, pipelineId: input.pipelineId, objectKey, name: this.nameOf(input), type: 'archive',
      size: items.reduce((n, it) => n + it.size, 0), etag: '', items,
      createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now, seq: existing?.seq ?? ++this.seq, jobId: null,
    };
    this.files.set(id, rec);
    this.changed();
    return rec;
  }

  /**
   * `n` files `<prefix>f-00000 …` in one folder of one pipeline, quickly: catalog records only, all
   * sharing one small stored object (its bytes are `shared`). Returns the folder's path in the tree.
   */
  async seedMany(pipelineId: string, prefix: string, n: number, shared: Buffer = Buffer.from('many\n')): Promise<string> {
    const dir = prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix;
    const storageKey = `${pipelineId}/shared/${newId()}`;
    const stored = await this.backing.put(storageKey, shared);
    for (let i = 0; i < n; i++) {
      const id = newId();
      const now = this.stamp();
      const name = `f-${String(i).padStart(5, '0')}`;
      this.files.set(id, {
        id, pipelineId, objectKey: `${dir}${name}`, name, type: 'file', size: stored.size, etag: stored.etag,
        storageKey, createdAtMs: now, updatedAtMs: now, seq: ++this.seq, jobId: null,
      });
    }
    this.changed();
    return `${pipelineId}/${dir}`;
  }

  /** DELETE /files/{id}: the record and its stored bytes (unless shared). */
  async remove(id: string): Promise<boolean> {
    const rec = this.files.get(id);
    if (!rec) return false;
    this.files.delete(id);
    this.changed();
    const keys = [rec.storageKey, ...(rec.items ?? []).map((i) => i.storageKey)].filter((k): k is string => !!k && !k.includes('/shared/'));
    for (const k of keys) await this.backing.remove(k);
    return true;
  }

  /** Records in list order (created_at, then insertion), cached until the next change. */
  inOrder(): readonly FileRec[] {
    if (this.sorted?.generation !== this.generation) {
      const recs = [...this.files.values()].sort((a, b) => a.createdAtMs - b.createdAtMs || a.seq - b.seq);
      this.sorted = { generation: this.generation, recs };
    }
    return this.sorted.recs;
  }
}

/** The API form of a record (docs/providers.md#mediahub field names). */
export function toApi(r: FileRec, apiBase: string): Record<string, unknown> {
  const ext = extOf(r.name);
  const out: Record<string, unknown> = {
    storage: 'intern',
    title: r.name.replace(/\./g, '_'),
    name: r.name,
    type: r.type,
    subtype: r.type === 'file' ? ext || null : null,
    job: r.jobId ? { id: r.jobId, href: `${apiBase}/jobs/${r.jobId}` } : null,
    autograph: null,
    container: null,
    mime_type: r.type === 'file' ? MIME[ext] ?? 'application/octet-stream' : r.type === 'archive' ? 'application/zip' : null,
    size: r.size,
    size_on_disk: r.size,
    id: r.id,
    created_at: new Date(r.createdAtMs).toISOString(),
    updated_at: new Date(r.updatedAtMs).toISOString(),
    object_key: r.objectKey,
    pipeline: { id: r.pipelineId },
  };
  if (r.type === 'file') out.etag = r.etag;
  if (r.status) out.status = r.status;
  if (r.items) out.items = r.items.map(({ name, size, object_key, etag }) => ({ name, size, object_key, etag }));
  return out;
}
