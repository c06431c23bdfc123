/**
 * `azure-blob`: an Azure Blob container. Hierarchical listing with '/' and paging; reads through SAS
 * URLs (a read-only blob SAS minted per object when we hold the account key, else the configured SAS).
 * Refs: a blob's ref is its path below the source prefix; a directory's ref ends in '/'; '' is the root.
 * Versions are the blobs' ETags (listing and Get Blob Properties), the ETag Get Blob carries: locators
 * say `etagIsVersion`.
 */
import { BlobSASPermissions, generateBlobSASQueryParameters, type ContainerClient, type StorageSharedKeyCredential } from '@azure/storage-blob';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { NotFoundError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { SourceConfigOf } from '../../config/schema.js';
import { mapStorageError } from '../errors.js';
import { EntryNumbers } from '../common/entry-numbers.js';
import { pagedList } from '../common/paging.js';
import { AzureBlockUploader } from './upload.js';
import { sourceContainer } from './api.js';
import type { ProviderDeps } from '../common/deps.js';
import { KeyAddressedStore, leafOf, prefixDir } from '../common/ids.js';

export type AzureBlobProviderDeps = ProviderDeps;

export class AzureBlobProvider extends KeyAddressedStore implements Provider {
  readonly type = 'azure-blob';
  readonly name: string;
  readonly caps: { upload: boolean };
  private readonly container: ContainerClient;
  private readonly credential: StorageSharedKeyCredential | undefined;
  private readonly sas: string | undefined;
  private readonly numbers: EntryNumbers;
  /** Created with the provider, closed by close() (docs/design.md "Provider kit"). */
  private readonly up: AzureBlockUploader;

  constructor(
    private readonly cfg: SourceConfigOf<'azure-blob'>,
    private readonly deps: AzureBlobProviderDeps,
  ) {
    super(cfg.prefix, `${cfg.name}: no blob`);
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.numbers = new EntryNumbers({ log: deps.log, what: `azure-blob source "${cfg.name}"` });
    ({ container: this.container, credential: this.credential, sas: this.sas } = sourceContainer(cfg, deps.net, deps.meter));
    this.up = new AzureBlockUploader(this.container, this.prefix);
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
          items.push(prefixDir(ref.slice(dir.length, -1), ref));
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
    const name = leafOf(ref);
    if (ref === '' || ref.endsWith('/')) {
      if (ref === '') return prefixDir(name, ref);
      for await (const _ of this.list(ref, signal)) return prefixDir(name, ref);
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
    return this.up;
  }

  async close(): Promise<void> {
    await this.up.close();
  }
}
