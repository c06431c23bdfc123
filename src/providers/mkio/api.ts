/**
 * MK.IO Media API calls (docs/providers.md#mkio) over the shared ApiClient: asset paging, one asset, the
 * storage listing of an asset folder, getFileAccessInfo. Kept apart from the Provider so an upload
 * engine can reuse the same client and token.
 *
 * Invariants:
 *  - Paging never builds a `$skiptoken`: it takes it from the answer (an explicit field, else the
 *    `$skiptoken` inside `@odata.nextLink`), or follows a nextLink that carries none as given.
 *  - Paging (common/paging.ts) ends when the running count reaches `pagination.total`, or when no
 *    continuation is offered. A short page is not an end: MK.IO's docs say `records < $top` ends a
 *    listing, but a server that caps `$top` below what we asked would then lose every later asset,
 *    so only an offered continuation, or its absence, counts. An empty page with a continuation goes on.
 *  - The personal API token is static: a 401/403 is retried once by ApiClient, then is an AuthError.
 */
import { FsError } from '../../core/errors.js';
import type { Logger } from '../../util/logger.js';
import { ApiClient, type ApiMeter } from '../common/api-client.js';
import type { NetBounds } from '../../transports/bounds.js';
import { pagedList, type ListingLimits } from '../common/paging.js';

export interface MkioAsset {
  name: string;
  properties?: {
    assetId?: string;
    container?: string;
    storageAccountName?: string;
    subPath?: string | null;
    created?: string;
    lastModified?: string;
  };
}

interface ListPage {
  value?: MkioAsset[];
  supplemental?: { pagination?: { start?: number; end?: number; records?: number; total?: number; skiptoken?: string; skipToken?: string } };
  '@odata.nextLink'?: string;
  skipToken?: string;
  $skiptoken?: string;
}

export interface StorageFileRow {
  name: string;
  size?: number | string;
  /** Not in the documented shape; used when a server adds them. */
  etag?: string;
  eTag?: string;
  lastModified?: string;
}

export interface StorageListing {
  metadata?: { id?: string; name?: string };
  spec?: { container?: string; path?: string; files?: StorageFileRow[]; folders?: { name: string }[] };
}

export interface FileAccessInfo {
  storageAccountName?: string;
  containerName?: string;
  jwt?: string;
  url: string;
  subPath?: string | null;
}

/** A registered storage account (`GET …/media/storage`, docs/providers.md#mkio). */
export interface MkioStorageAccount {
  name: string;
  spec?: { type?: string; url?: string; bucketName?: string; description?: string };
}

/** `properties` of an asset creation (docs/providers.md#mkio, "Uploads and edits"). */
export interface AssetCreation {
  storageAccountName: string;
  container: string;
  subPath?: string;
  description?: string;
  containerDeletionPolicy?: 'Retain' | 'Delete';
}

export class MkioApi {
  readonly client: ApiClient;
  private readonly base: string;
  private readonly origin: string;
  private readonly what: string;

  constructor(opts: { baseUrl: string; project: string; token: string; what: string; timeoutMs?: number; bounds?: NetBounds; meter?: ApiMeter }) {
    this.client = new ApiClient({
      baseUrl: opts.baseUrl,
      what: opts.what,
      timeoutMs: opts.timeoutMs,
      bounds: opts.bounds,
      meter: opts.meter,
      auth: { headers: async () => ({ authorization: `Bearer ${opts.token}` }), invalidate: () => undefined },
    });
    this.base = `api/v1/projects/${encodeURIComponent(opts.project)}/media/`;
    this.origin = new URL(opts.baseUrl).origin;
    this.what = opts.what;
  }

  private assetPath(name: string): string {
    return `${this.base}assets/${encodeURIComponent(name)}`;
  }

  /** Every asset of the project, in pages of `pageSize` (MK.IO's maximum is 1000). */
  assets(pageSize: number, o: { log: Logger; limits?: ListingLimits; signal?: AbortSignal }): AsyncIterable<MkioAsset> {
    const top = Math.max(1, Math.min(1000, Math.floor(pageSize)));
    type Req = { path: string; query: Record<string, string | number> | undefined };
    const first: Req = { path: `${this.base}assets`, query: { $top: top, $orderby: 'name' } };
    return pagedList<MkioAsset, Req>({
      what: `${this.what}: assets`,
      log: o.log,
      limits: o.limits,
      first,
      key: (a) => a.name,
      token: (r) => `${r.path}?${JSON.stringify(r.query ?? {})}`,
      fetch: async (req) => {
        const page = await this.client.json<ListPage>({ path: req.path, query: req.query, signal: o.signal });
        const items = (page?.value ?? []).filter((r) => typeof r?.name === 'string');
        const pg = page?.supplemental?.pagination;
        const link = page?.['@odata.nextLink'];
        const token = pg?.skiptoken ?? pg?.skipToken ?? page?.skipToken ?? page?.$skiptoken ?? (link ? new URL(link, this.origin).searchParams.get('$skiptoken') ?? undefined : undefined);
        let next: Req | undefined;
        if (token) next = { path: first.path, query: { ...first.query, $skiptoken: token } };
        else if (link) next = { path: new URL(link, this.origin).href, query: undefined };
        return { items, next, total: pg?.total };
      },
    });
  }

  asset(name: string, signal?: AbortSignal): Promise<MkioAsset> {
    return this.client.json<MkioAsset>({ path: this.assetPath(name), signal });
  }

  /** The listing of `path` ('' = the asset's subPath itself) below the asset's subPath. */
  storage(name: string, path: string, signal?: AbortSignal): Promise<StorageListing> {
    return this.client.json<StorageListing>({ path: `${this.assetPath(name)}/storage/`, query: { path: path || undefined }, signal });
  }

  async fileAccessInfo(name: string, signal?: AbortSignal): Promise<FileAccessInfo> {
    const info = await this.client.json<FileAccessInfo>({ method: 'POST', path: `${this.assetPath(name)}/getFileAccessInfo`, signal });
    if (!info || typeof info.url !== 'string') throw new FsError('EIO', `${name}: getFileAccessInfo answered without a url`);
    return info;
  }

  /** Registered storage accounts of the project (one page: projects hold a handful). */
  async storageAccounts(signal?: AbortSignal): Promise<MkioStorageAccount[]> {
    const r = await this.client.json<{ value?: MkioStorageAccount[] }>({ path: `${this.base}storage`, signal });
    return (r?.value ?? []).filter((a) => typeof a?.name === 'string');
  }

  /**
   * `PUT assets/{name}`. 409 (the container already belongs to another asset of this storage) is an
   * answer, not an error, so the caller can pick another container: `undefined` then.
   */
  async createAsset(name: string, properties: AssetCreation, signal?: AbortSignal): Promise<MkioAsset | undefined> {
    const r = await this.client.send({ method: 'PUT', path: this.assetPath(name), json: { properties }, accept: [409], signal });
    if (r.status === 409) return undefined;
    try {
      return JSON.parse(r.text) as MkioAsset;
    } catch {
      return { name, properties }; // created; a body is a courtesy
    }
  }

  /** `DELETE assets/{name}`: the container stays unless the asset's containerDeletionPolicy is Delete. */
  async deleteAsset(name: string, signal?: AbortSignal): Promise<void> {
    await this.client.send({ method: 'DELETE', path: this.assetPath(name), signal });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
