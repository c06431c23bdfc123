/**
 * The Wordbee emulator's data: projects, jobs, documents, segments, and the assets attached to
 * segments (per locale and relativePath). Bytes are kept on local disk under a temp dir: Wordbee
 * stores assets on its own servers, not in customer Azure/S3 storage, so there is no storage server
 * to put them in. Server layout as documented: assets/{docId}/{segId%1000}/{segId}/{locale}/{relativePath}/.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Segment {
  readonly id: number;
  readonly documentId: number;
  readonly projectId: number;
  /** Source text, only for the search answer. */
  readonly text: string;
}

export interface Document {
  readonly id: number;
  readonly projectId: number;
  readonly name: string;
  readonly src: string;
}

export interface AssetRecord {
  projectId: number;
  documentId: number;
  segmentId: number;
  locale: string;
  /** Backslash-separated, as Wordbee answers it ('' at the locale's root). */
  relativePath: string;
  name: string;
  size: number;
  contentType: string;
  createdDate: string;
  modifiedDate: string;
  /** Content version (part of downloadUrl's `v`). */
  v: string;
  /** Where the bytes are on disk. */
  file: string;
}

const CONTENT_TYPES: Record<string, string> = {
  mp4: 'video/mp4', mov: 'video/quicktime', jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png',
  srt: 'application/x-subrip', vtt: 'text/vtt', txt: 'text/plain', pdf: 'application/pdf', xml: 'application/xml',
};

export function contentTypeOf(name: string): string {
  return CONTENT_TYPES[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
}

/** Normalises a client relativePath ('/' or '\' separated) to Wordbee's backslash form, without edge separators. */
export function normRelPath(p: string | null | undefined): string {
  return (p ?? '').split(/[\\/]+/).filter(Boolean).join('\\');
}

export class WordbeeCatalog {
  readonly projects = new Map<number, { id: number; reference: string }>();
  readonly jobs = new Map<number, { id: number; projectId: number; codyt: boolean; documentIds: number[] }>();
  readonly documents = new Map<number, Document>();
  readonly segments = new Map<number, Segment>();
  /** segmentId → its assets. */
  readonly assets = new Map<number, AssetRecord[]>();
  private nextId = 27_665_601;

  constructor(private readonly dir: string) {}

  addProject(id: number): void {
    this.projects.set(id, { id, reference: `PRJ-${id}` });
  }

  addJob(id: number, projectId: number, documentIds: number[], codyt = false): void {
    this.jobs.set(id, { id, projectId, codyt, documentIds });
  }

  addDocument(projectId: number, id: number, name: string, src = 'en'): Document {
    if (!this.projects.has(projectId)) this.addProject(projectId);
    const d = { id, projectId, name, src };
    this.documents.set(id, d);
    return d;
  }

  addSegment(documentId: number, id?: number, text = ''): Segment {
    const doc = this.documents.get(documentId);
    if (!doc) throw new Error(`no document ${documentId}`);
    const s = { id: id ?? this.nextId++, documentId, projectId: doc.projectId, text: text || `Segment text ${id ?? this.nextId}` };
    this.segments.set(s.id, s);
    return s;
  }

  private pathFor(a: Pick<AssetRecord, 'documentId' | 'segmentId' | 'locale' | 'relativePath' | 'name'>): string {
    const hash = createHash('sha1').update(`${a.relativePath}\0${a.name}`).digest('hex').slice(0, 16);
    return join(this.dir, 'assets', String(a.documentId), String(a.segmentId % 1000), String(a.segmentId), a.locale || '_', hash);
  }

  /** Attaches (or replaces) an asset; returns its record. */
  async putAsset(segmentId: number, locale: string, relativePath: string, name: string, data: Buffer): Promise<AssetRecord> {
    const seg = this.segments.get(segmentId);
    if (!seg) throw new Error(`no segment ${segmentId}`);
    const rel = normRelPath(relativePath);
    const list = this.assets.get(segmentId) ?? [];
    const now = new Date().toISOString();
    const existing = list.find((a) => a.locale === locale && a.relativePath.toLowerCase() === rel.toLowerCase() && a.name.toLowerCase() === name.toLowerCase());
    const file = this.pathFor({ documentId: seg.documentId, segmentId, locale, relativePath: rel, name });
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, data);
    const v = createHash('md5').update(data).update(now).digest('hex').slice(0, 12);
    if (existing) {
      Object.assign(existing, { size: data.length, modifiedDate: now, v });
      return existing;
    }
    const rec: AssetRecord = {
      projectId: seg.projectId, documentId: seg.documentId, segmentId, locale, relativePath: rel, name,
      size: data.length, contentType: contentTypeOf(name), createdDate: now, modifiedDate: now, v, file,
    };
    list.push(rec);
    this.assets.set(segmentId, list);
    return rec;
  }

  find(segmentId: number, locale: string | null, relativePath: string, filename: string): AssetRecord | undefined {
    // relativePath wins over a path written into filename (docs/providers.md#wordbee).
    const parts = filename.split(/[\\/]+/).filter(Boolean);
    const name = parts.pop() ?? '';
    const rel = normRelPath(relativePath) || parts.join('\\');
    return (this.assets.get(segmentId) ?? []).find(
      (a) => (locale === null || a.locale === locale) && a.relativePath.toLowerCase() === rel.toLowerCase() && a.name.toLowerCase() === name.toLowerCase(),
    );
  }

  remove(segmentId: number, pred: (a: AssetRecord) => boolean): number {
    const list = this.assets.get(segmentId) ?? [];
    const keep = list.filter((a) => !pred(a));
    this.assets.set(segmentId, keep);
    return list.length - keep.length;
  }

  /** Document ids a scope (pr…, jbs…, jbc…) can see; undefined when the scope is unknown. */
  documentsOf(scope: string): number[] | undefined {
    const m = /^(pr|jbs|jbc)(\d+)$/.exec(scope);
    if (!m) return undefined;
    const id = Number(m[2]);
    if (m[1] === 'pr') {
      if (!this.projects.has(id)) return undefined;
      return [...this.documents.values()].filter((d) => d.projectId === id).map((d) => d.id);
    }
    const job = this.jobs.get(id);
    if (!job || job.codyt !== (m[1] === 'jbc')) return undefined;
    return job.documentIds;
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
