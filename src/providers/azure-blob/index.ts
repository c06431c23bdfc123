/**
 * `azure-blob`: an Azure Blob container. Hierarchical listing with '/' and paging; reads through SAS
 * URLs (a read-only blob SAS minted per object when we hold the account key, else the configured SAS).
 * Refs: a blob's ref is its path below the source prefix; a directory's ref ends in '/'; '' is the root.
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
import { AzureBlockUploader } from './upload.js';

export interface AzureBlobProviderDeps {
  log: Logger;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Blobs per listing page (Azure's maximum is 5000). */
  listPageSize?: number;
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
    const retryOptions = { maxTries: 1 }; // retries belong to our pacer
    if (accountKey) this.credential = new StorageSharedKeyCredential(accountName, accountKey);
    else this.sas = (cfg.sasToken ?? '').replace(/^\?/, '');
    const pipeline = newPipeline(this.credential ?? new AnonymousCredential(), { retryOptions });
    if (deps.meter) pipeline.factories.unshift(countingAzurePolicy(deps.meter));
    this.container = new BlobServiceClient(this.credential ? cfg.accountUrl : `${cfg.accountUrl}?${this.sas}`, pipeline).getContainerClient(cfg.container);
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const prefix = this.prefix + dir;
    const pages = this.container.listBlobsByHierarchy('/', { prefix, abortSignal: signal }).byPage({ maxPageSize: this.deps.listPageSize ?? 5000 });
    try {
      for await (const page of pages) {
        for (const p of page.segment.blobPrefixes ?? []) {
          const ref = p.name.slice(this.prefix.length);
          yield { name: ref.slice(dir.length, -1), kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
        }
        for (const b of page.segment.blobItems) {
          if (b.name === prefix) continue;
          const ref = b.name.slice(this.prefix.length);
          const name = ref.slice(dir.length);
          const numbers = this.numbers.file(ref, name, { size: b.properties.contentLength, mtime: b.properties.lastModified });
          yield { name, kind: 'file', ref, ...numbers, version: normalizeEtag(b.properties.etag) };
        }
      }
    } catch (e) {
      throw mapStorageError(e, `list ${this.name}/${dir}`);
    }
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
      return { name, kind: 'file', ref, ...this.numbers.file(ref, name, { size: p.contentLength, mtime: p.lastModified }), version: normalizeEtag(p.etag) };
    } catch (e) {
      throw mapStorageError(e, `stat ${this.name}/${ref}`);
    }
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
      return { url: `${base}?${sas}`, expiresAt: expiresOn.getTime() };
    }
    const se = new URLSearchParams(this.sas).get('se');
    return { url: `${base}?${this.sas}`, expiresAt: se ? Date.parse(se) : Number.POSITIVE_INFINITY };
  }

  uploader(): AzureBlockUploader {
    return new AzureBlockUploader(this.container, this.prefix);
  }

  async close(): Promise<void> {}
}
