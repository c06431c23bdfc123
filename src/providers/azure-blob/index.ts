/**
 * `azure-blob`: an Azure Blob container. Hierarchical listing with '/' and paging; reads through SAS
 * URLs (a read-only blob SAS minted per object when we hold the account key, else the configured SAS).
 * Refs: a blob's ref is its path below the source prefix; a directory's ref ends in '/'; '' is the root.
 * Versions are the blobs' ETags (listing and Get Blob Properties), the ETag Get Blob carries: locators
 * say `etagIsVersion`.
 */
import {
  BlobSASPermissions,
  AnonymousCredential,
  BlobServiceClient,
  ContainerClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  newPipeline,
} from '@azure/storage-blob';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { NotFoundError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { ApiMeter } from '../common/api-client.js';
import { mapStorageError } from '../errors.js';
import { EntryNumbers } from '../common/entry-numbers.js';
import { countingAzurePolicy } from '../common/sdk-meters.js';
import { pagedList, type ListingLimits } from '../common/paging.js';
import { AzureBlockUploader } from './upload.js';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import { boundedAzureOptions } from '../../transports/sdk-clients.js';
import { slashAncestry } from '../common/ids.js';

export interface AzureBlobProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Blobs per listing page (Azure's maximum is 5000). */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
}

/** Account name and key from a connection string, if it has them. */
function fromConnectionString(cs: string): { name?: string; key?: string; endpoint?: string } {
  const parts = Object.fromEntries(cs.split(';').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { name: parts.AccountName, key: parts.AccountKey, endpoint: parts.BlobEndpoint };
}

export class AzureBlobProvider implements Provider {
  readonly type = 'azure-blob';
  readonly name: string;
  readonly caps: { upload: boolean };
  private readonly container: ContainerClient;
  private readonly credential: StorageSharedKeyCredential | undefined;
  private readonly sas: string | undefined;
  private readonly prefix: string;
  private readonly numbers: EntryNumbers;

  constructor(
    private readonly cfg: SourceConfigOf<'azure-blob'>,
    private readonly deps: AzureBlobProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.prefix = cfg.prefix && !cfg.prefix.endsWith('/') ? `${cfg.prefix}/` : cfg.prefix;
    this.numbers = new EntryNumbers({ log: deps.log, what: `azure-blob source "${cfg.name}"` });
    const cs = cfg.connectionString ? fromConnectionString(cfg.connectionString) : {};
    const accountName = cfg.accountName ?? cs.name ?? new URL(cfg.accountUrl).pathname.split('/').filter(Boolean)[0] ?? new URL(cfg.accountUrl).hostname.split('.')[0]!;
    const accountKey = cfg.accountKey ?? cs.key;
    // Bounded calls; no retries of its own (they belong to our pacer).
    if (accountKey) this.credential = new StorageSharedKeyCredential(accountName, accountKey);
    else this.sas = (cfg.sasToken ?? '').replace(/^\?/, '');
    const pipeline = newPipeline(this.credential ?? new AnonymousCredential(), boundedAzureOptions(deps.net ?? DEFAULT_BOUNDS));
    if (deps.meter) pipeline.factories.unshift(countingAzurePolicy(deps.meter));
    this.container = new BlobServiceClient(this.credential ? cfg.accountUrl : `${cfg.accountUrl}?${this.sas}`, pipeline).getContainerClient(cfg.container);
  }

  /**
   * List Blobs pages, one request each (common/paging.ts): a page may hold fewer blobs than asked, or
   * none, and still carry a NextMarker; the listing ends where Azure says, with an empty NextMarker.
   */
  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const prefix = this.prefix + dir;
    const maxPageSize = this.deps.listPageSize ?? 5000;
    yield* pagedList<RemoteEntry, string | undefined>({
      what: `azure-blob source "${this.name}": ${dir || '/'}`,
      log: this.deps.log,
      limits: this.deps.listing,
      first: undefined,
      key: (e) => `${e.kind}:${e.ref}`,
      token: (marker) => marker ?? '',
      fetch: async (marker) => {
        let page;
        try {
          const pages = this.container.listBlobsByHierarchy('/', { prefix, abortSignal: signal }).byPage({ maxPageSize, continuationToken: marker });
          page = (await pages.next()).value;
        } catch (e) {
          throw mapStorageError(e, `list ${this.name}/${dir}`);
        }
        const items: RemoteEntry[] = [];
        for (const p of page?.segment.blobPrefixes ?? []) {
          const ref = p.name.slice(this.prefix.length);
          items.push({ name: ref.slice(dir.length, -1), kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' });
        }
        for (const b of page?.segment.blobItems ?? []) {
          if (b.name === prefix) continue;
          const ref = b.name.slice(this.prefix.length);
          const name = ref.slice(dir.length);
          items.push({ name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: b.properties.contentLength, mtime: b.properties.lastModified }), version: normalizeEtag(b.properties.etag), contentType: b.properties.contentType || undefined });
        }
        return { items, next: page?.continuationToken || undefined };
      },
    });
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    const name = ref.replace(/\/$/, '').split('/').pop() ?? '';
    if (ref === '' || ref.endsWith('/')) {
      if (ref === '') return { name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
      for await (const _ of this.list(ref, signal)) return { name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
      throw new NotFoundError(`${this.name}/${ref} not found`);
    }
    try {
      const p = await this.container.getBlobClient(this.prefix + ref).getProperties({ abortSignal: signal });
      return { name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: p.contentLength, mtime: p.lastModified }), version: normalizeEtag(p.etag),
        contentType: p.contentType || undefined };
    } catch (e) {
      throw mapStorageError(e, `stat ${this.name}/${ref}`);
    }
  }

  /** A blob's id is its whole name (the source prefix included); prefixes are not blobs and have none. */
  idOf(entry: RemoteEntry): string | undefined {
    return entry.kind === 'file' ? this.prefix + entry.ref : undefined;
  }

  /** One Get Blob Properties of the name. */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!id.startsWith(this.prefix) || id.length === this.prefix.length || id.endsWith('/')) {
      throw new NotFoundError(`${this.name}: no blob ${id} below the source prefix`);
    }
    return this.stat(id.slice(this.prefix.length), signal);
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    return slashAncestry(entry.ref);
  }

  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    const blob = this.container.getBlobClient(this.prefix + obj.ref);
    const base = blob.url.split('?')[0]!;
    if (this.credential) {
      const startsOn = new Date(Date.now() - 5 * 60_000); // clock skew
      const expiresOn = new Date(Date.now() + this.cfg.urlTtl);
      const sas = generateBlobSASQueryParameters(
        { containerName: this.cfg.container, blobName: this.prefix + obj.ref, permissions: BlobSASPermissions.parse('r'), startsOn, expiresOn },
        this.credential,
      ).toString();
      return { url: `${base}?${sas}`, expiresAt: expiresOn.getTime(), etagIsVersion: true };
    }
    const se = new URLSearchParams(this.sas).get('se');
    return { url: `${base}?${this.sas}`, expiresAt: se ? Date.parse(se) : Number.POSITIVE_INFINITY, etagIsVersion: true };
  }

  uploader(): AzureBlockUploader {
    return new AzureBlockUploader(this.container, this.prefix);
  }

  async close(): Promise<void> {}
}
