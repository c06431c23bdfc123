/**
 * `s3`: an S3 bucket (any S3-compatible endpoint). Listing with delimiter '/' and paging; reads through
 * presigned GET URLs, the same signed-URL path the media platforms use.
 * Refs: a file's ref is its key below the source prefix; a directory's ref ends in '/'; '' is the root.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { NotFoundError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { SourceConfigOf } from '../../config/schema.js';
import { mapStorageError } from '../errors.js';
import { EntryNumbers } from '../common/entry-numbers.js';
import { pagedList } from '../common/paging.js';
import { S3Uploader } from './upload.js';
import { s3Client } from './api.js';
import { countS3Requests } from '../common/sdk-meters.js';
import type { ProviderDeps } from '../common/deps.js';
import { KeyAddressedStore, leafOf, prefixDir } from '../common/ids.js';

export type S3ProviderDeps = ProviderDeps;

export class S3Provider extends KeyAddressedStore implements Provider {
  readonly type = 's3';
  readonly name: string;
  readonly caps: { upload: boolean };
  private readonly client: S3Client;
  private readonly numbers: EntryNumbers;
  /** Created with the provider, closed by close() (docs/design.md "Provider kit"). */
  private readonly up: S3Uploader;

  constructor(
    private readonly cfg: SourceConfigOf<'s3'>,
    private readonly deps: S3ProviderDeps,
  ) {
    super(cfg.prefix, `${cfg.name}: no object`);
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.numbers = new EntryNumbers({ log: deps.log, what: `s3 source "${cfg.name}"` });
    this.client = s3Client(cfg, deps.net);
    if (deps.meter) countS3Requests(this.client, deps.meter);
    this.up = new S3Uploader(this.client, cfg.bucket, this.prefix);
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
          items.push(prefixDir(ref.slice(dir.length, -1), ref));
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
    const name = leafOf(ref);
    if (ref === '' || ref.endsWith('/')) {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: this.prefix + ref, MaxKeys: 1 }), { abortSignal: signal })
        .catch((e: unknown) => Promise.reject(mapStorageError(e, `stat ${this.name}/${ref}`)));
      if (ref !== '' && !page.KeyCount) throw new NotFoundError(`${this.name}/${ref} not found`);
      return prefixDir(name, ref);
    }
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.prefix + ref }), { abortSignal: signal });
      return { name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: h.ContentLength, mtime: h.LastModified }), version: normalizeEtag(h.ETag) };
    } catch (e) {
      throw mapStorageError(e, `stat ${this.name}/${ref}`);
    }
  }

  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    const ttlSec = Math.max(1, Math.floor(this.cfg.urlTtl / 1000));
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.prefix + obj.ref }), { expiresIn: ttlSec });
    // The version is the object's ETag from ListObjectsV2 or HEAD: the same ETag its GETs carry.
    return { url, expiresAt: Date.now() + ttlSec * 1000, etagIsVersion: true };
  }

  uploader(): S3Uploader {
    return this.up;
  }

  async close(): Promise<void> {
    await this.up.close();
    this.client.destroy();
  }
}
