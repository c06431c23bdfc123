/**
 * `s3`: an S3 bucket (any S3-compatible endpoint). Listing with delimiter '/' and paging; reads through
 * presigned GET URLs, the same signed-URL path the media platforms use.
 * Refs: a file's ref is its key below the source prefix; a directory's ref ends in '/'; '' is the root.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { NotFoundError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { ApiMeter } from '../common/api-client.js';
import { mapStorageError } from '../errors.js';
import { EntryNumbers } from '../common/entry-numbers.js';
import { countS3Requests } from '../common/sdk-meters.js';
import { pagedList, type ListingLimits } from '../common/paging.js';
import { S3Uploader } from './upload.js';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import { boundedS3Options } from '../../transports/sdk-clients.js';
import { slashAncestry } from '../common/ids.js';

export interface S3ProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Keys per listing page (S3's maximum and default is 1000). */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
}

export class S3Provider implements Provider {
  readonly type = 's3';
  readonly name: string;
  readonly caps: { upload: boolean };
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly numbers: EntryNumbers;

  constructor(
    private readonly cfg: SourceConfigOf<'s3'>,
    private readonly deps: S3ProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.prefix = cfg.prefix && !cfg.prefix.endsWith('/') ? `${cfg.prefix}/` : cfg.prefix;
    this.numbers = new EntryNumbers({ log: deps.log, what: `s3 source "${cfg.name}"` });
    this.client = new S3Client({
      region: cfg.region,
      endpoint: cfg.endpoint,
      forcePathStyle: cfg.forcePathStyle,
      credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey, sessionToken: cfg.sessionToken },
      // Streamed aws-chunked trailers corrupt uploads on some S3-compatible servers (s3rver); real S3 is fine either way.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Bounded calls; no retries of its own (they belong to our pacer, which knows the read deadline).
      ...boundedS3Options(deps.net ?? DEFAULT_BOUNDS),
    });
    if (deps.meter) countS3Requests(this.client, deps.meter);
  }

  /**
   * ListObjectsV2 pages (common/paging.ts): a page may hold fewer keys than MaxKeys, or none, and still
   * be followed by more; the listing ends where S3 says, with IsTruncated false. A truncated page
   * without a NextContinuationToken cannot be continued: the listing stops there with a warning.
   * Common prefixes some S3-compatible servers repeat on every page are listed once.
   */
  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const prefix = this.prefix + dir;
    const what = `s3 source "${this.name}": ${dir || '/'}`;
    const rows = pagedList<RemoteEntry, string | undefined>({
      what,
      log: this.deps.log,
      limits: this.deps.listing,
      first: undefined,
      key: (e) => `${e.kind}:${e.ref}`,
      token: (t) => t ?? '',
      fetch: async (token) => {
        let page;
        try {
          page = await this.client.send(
            new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token, MaxKeys: this.deps.listPageSize ?? 1000 }),
            { abortSignal: signal },
          );
        } catch (e) {
          throw mapStorageError(e, `list ${this.name}/${dir}`);
        }
        const items: RemoteEntry[] = [];
        for (const p of page.CommonPrefixes ?? []) {
          if (!p.Prefix) continue;
          const ref = p.Prefix.slice(this.prefix.length);
          items.push({ name: ref.slice(dir.length, -1), kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' });
        }
        for (const o of page.Contents ?? []) {
          if (!o.Key || o.Key === prefix) continue; // the folder marker of `dir` itself
          const ref = o.Key.slice(this.prefix.length);
          const name = ref.slice(dir.length);
          items.push({ name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: o.Size, mtime: o.LastModified }), version: normalizeEtag(o.ETag) });
        }
        if (page.IsTruncated && !page.NextContinuationToken) {
          this.deps.log.warn({ listing: what }, `${what}: the server says the listing is truncated but sends no continuation token; listing stops here`);
        }
        return { items, next: page.IsTruncated ? page.NextContinuationToken || undefined : undefined };
      },
    });
    const seenDirs = new Set<string>(); // bounded by the listing's entry cap
    for await (const e of rows) {
      if (e.kind === 'dir') {
        if (seenDirs.has(e.ref)) continue;
        seenDirs.add(e.ref);
      }
      yield e;
    }
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    const name = ref.replace(/\/$/, '').split('/').pop() ?? '';
    if (ref === '' || ref.endsWith('/')) {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: this.prefix + ref, MaxKeys: 1 }), { abortSignal: signal })
        .catch((e: unknown) => Promise.reject(mapStorageError(e, `stat ${this.name}/${ref}`)));
      if (ref !== '' && !page.KeyCount) throw new NotFoundError(`${this.name}/${ref} not found`);
      return { name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
    }
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.prefix + ref }), { abortSignal: signal });
      return { name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: h.ContentLength, mtime: h.LastModified }), version: normalizeEtag(h.ETag) };
    } catch (e) {
      throw mapStorageError(e, `stat ${this.name}/${ref}`);
    }
  }

  /** A file's id is its whole key (the source prefix included); prefixes are not objects and have none. */
  idOf(entry: RemoteEntry): string | undefined {
    return entry.kind === 'file' ? this.prefix + entry.ref : undefined;
  }

  /** One HeadObject of the key. */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!id.startsWith(this.prefix) || id.length === this.prefix.length || id.endsWith('/')) {
      throw new NotFoundError(`${this.name}: no object ${id} below the source prefix`);
    }
    return this.stat(id.slice(this.prefix.length), signal);
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    return slashAncestry(entry.ref);
  }

  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    const ttlSec = Math.max(1, Math.floor(this.cfg.urlTtl / 1000));
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.prefix + obj.ref }), { expiresIn: ttlSec });
    // The version is the object's ETag from ListObjectsV2 or HEAD: the same ETag its GETs carry.
    return { url, expiresAt: Date.now() + ttlSec * 1000, etagIsVersion: true };
  }

  uploader(): S3Uploader {
    return new S3Uploader(this.client, this.cfg.bucket, this.prefix);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
