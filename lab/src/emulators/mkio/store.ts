/**
 * The MK.IO emulator's view of its registered storage accounts: where an asset's bytes live and how
 * the emulator lists, probes, signs and deletes them. MK.IO never holds bytes itself; every file is a
 * blob in Azurite or an object in s3rver (docs/providers.md#mkio, "Reads", "Uploads and edits").
 *
 * Layout (emulator choice):
 *  - Azure account: an asset's `container` is an Azure container; a file is the blob `{subPath}/{path}`.
 *  - S3 account: one bucket (the backing's) per account; an asset's `container` is the first key
 *    segment inside it, so a file is the key `{container}/{subPath}/{path}`. (MK.IO registers S3
 *    storage with one fixed `bucketName`, yet keeps (container, storage) unique per asset.)
 * Paths handed in here are already joined (`{subPath}/{path}`, no leading or trailing '/').
 *
 * Uploads (docs/providers.md#mkio, "Uploads and edits"): MK.IO has no upload endpoint, clients write to the registered
 * storage with the customer's own credential. `credential()` hands out such a credential, in the shape
 * of an mkio source's `storage:` key. The real servers check it (Azurite the SAS signature and
 * permissions; s3rver only the access key id, it does not verify SigV4 signatures), and the bytes land
 * where the listing and the gateway read them.
 */
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import type { AzureBacking, S3Backing, StoredObject } from '../common/backing.js';
import { s3rverClient } from '../../demo/seed-storage.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, S3RVER_KEY } from '../storage-servers.js';

export type StorageKind = 'azure' | 's3';

export interface StorageAccount {
  readonly name: string;
  readonly kind: StorageKind;
  /** The storage account's URL as MK.IO registered it (`spec.url`). */
  readonly url: string;
  /** Simulates an expired storage credential: getFileAccessInfo then fails (docs/providers.md#mkio, "Reads"). */
  credentialExpired: boolean;
}

export interface FolderListing {
  files: { name: string; size: number; etag: string; mtimeMs: number }[];
  folders: { name: string }[];
}

/** An mkio source's `storage:` key (src/config/schema.ts StorageCredential). */
export interface StorageCredentialConfig {
  type: StorageKind;
  url?: string;
  sasToken?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  bucket?: string;
}

export interface CredentialOptions {
  /** Azure: a container SAS on this container's URL instead of an account SAS on the account URL. */
  container?: string;
  /** Azure SAS lifetime; default 1 h. */
  ttlMs?: number;
  /** Azure SAS permissions; default `racwdl` (everything an uploader does). */
  permissions?: string;
}

export const AZURE_ACCOUNT = 'primary-azure';
export const S3_ACCOUNT = 'primary-s3';

const statusOf = (e: unknown) => (e as { statusCode?: number; $metadata?: { httpStatusCode?: number } }).statusCode ?? (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

export class AssetStore {
  readonly accounts = new Map<string, StorageAccount>();
  private readonly s3c: S3Client | undefined;

  constructor(
    readonly azure: AzureBacking | undefined,
    readonly s3: S3Backing | undefined,
  ) {
    if (azure) this.accounts.set(AZURE_ACCOUNT, { name: AZURE_ACCOUNT, kind: 'azure', url: azure.publicUrl, credentialExpired: false });
    if (s3) {
      this.accounts.set(S3_ACCOUNT, { name: S3_ACCOUNT, kind: 's3', url: s3.publicUrl, credentialExpired: false });
      this.s3c = s3rverClient(s3.directUrl);
    }
  }

  account(name: string): StorageAccount | undefined {
    return this.accounts.get(name);
  }

  /** The default account of a kind (seeding API). */
  accountOf(kind: StorageKind): StorageAccount {
    const a = [...this.accounts.values()].find((x) => x.kind === kind);
    if (!a) throw new Error(`the MK.IO emulator was started without ${kind} storage`);
    return a;
  }

  /** A storage credential for the registered account of `kind` (see the header). */
  credential(kind: StorageKind, opts: CredentialOptions = {}): StorageCredentialConfig {
    const acct = this.accountOf(kind);
    if (kind === 's3') return { type: 's3', url: acct.url, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, region: 'us-east-1', bucket: this.s3b().bucket };
    const key = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
    const expiresOn = new Date(Date.now() + (opts.ttlMs ?? 3_600_000));
    const startsOn = new Date(Date.now() - 5 * 60_000); // clock skew
    const permissions = opts.permissions ?? 'racwdl';
    if (opts.container) {
      const sas = generateBlobSASQueryParameters({ containerName: opts.container, permissions: ContainerSASPermissions.parse(permissions), startsOn, expiresOn }, key).toString();
      return { type: 'azure', url: `${acct.url}/${opts.container}`, sasToken: `?${sas}` };
    }
    const sas = generateAccountSASQueryParameters(
      { permissions: AccountSASPermissions.parse(permissions), resourceTypes: AccountSASResourceTypes.parse('sco').toString(), services: AccountSASServices.parse('b').toString(), startsOn, expiresOn },
      key,
    ).toString();
    return { type: 'azure', url: acct.url, sasToken: `?${sas}` };
  }

  private az(): AzureBacking {
    if (!this.azure) throw new Error('no Azure backing');
    return this.azure;
  }

  private s3b(): S3Backing {
    if (!this.s3) throw new Error('no S3 backing');
    return this.s3;
  }

  async ensureContainer(kind: StorageKind, container: string): Promise<void> {
    if (kind === 'azure') await this.az().ensureContainer(container);
  }

  put(kind: StorageKind, container: string, path: string, data: Buffer): Promise<StoredObject> {
    return kind === 'azure' ? this.az().put(container, path, data) : this.s3b().put(`${container}/${path}`, data);
  }

  async head(kind: StorageKind, container: string, path: string): Promise<StoredObject | undefined> {
    if (kind === 's3') return this.s3b().head(`${container}/${path}`);
    try {
      return await this.az().head(container, path);
    } catch (e) {
      if (statusOf(e) === 404) return undefined; // container missing
      throw e;
    }
  }

  async remove(kind: StorageKind, container: string, path: string): Promise<void> {
    if (kind === 'azure') await this.az().remove(container, path);
    else await this.s3b().remove(`${container}/${path}`);
  }

  /** One level below `prefix` ('' or ending in '/'): files and sub-folders, sorted by name. */
  async list(kind: StorageKind, container: string, prefix: string): Promise<FolderListing> {
    const out: FolderListing = { files: [], folders: [] };
    if (kind === 'azure') {
      try {
        for await (const item of this.az().container(container).listBlobsByHierarchy('/', { prefix })) {
          if (item.kind === 'prefix') out.folders.push({ name: item.name.slice(prefix.length, -1) });
          else out.files.push({ name: item.name.slice(prefix.length), size: item.properties.contentLength ?? 0, etag: (item.properties.etag ?? '').replace(/"/g, ''), mtimeMs: item.properties.lastModified?.getTime() ?? 0 });
        }
      } catch (e) {
        if (statusOf(e) !== 404) throw e; // a container never written to lists as empty
      }
    } else {
      const full = `${container}/${prefix}`;
      let token: string | undefined;
      do {
        const page = await this.s3c!.send(new ListObjectsV2Command({ Bucket: this.s3b().bucket, Prefix: full, Delimiter: '/', ContinuationToken: token }));
        for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.folders.push({ name: p.Prefix.slice(full.length, -1) });
        for (const o of page.Contents ?? []) {
          if (!o.Key || o.Key === full) continue;
          out.files.push({ name: o.Key.slice(full.length), size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/"/g, ''), mtimeMs: o.LastModified?.getTime() ?? 0 });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    }
    const dedupe = <T extends { name: string }>(xs: T[]) => [...new Map(xs.map((x) => [x.name, x])).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { files: dedupe(out.files), folders: dedupe(out.folders) };
  }

  /** Every file below `prefix`, recursively (paths relative to it). */
  async listDeep(kind: StorageKind, container: string, prefix: string): Promise<string[]> {
    const l = await this.list(kind, container, prefix);
    const nested = await Promise.all(l.folders.map(async (f) => (await this.listDeep(kind, container, `${prefix}${f.name}/`)).map((p) => `${f.name}/${p}`)));
    return [...l.files.map((f) => f.name), ...nested.flat()];
  }

  /** A signed GET of one file on the account's public base (through the fault proxy when there is one). */
  signedGet(kind: StorageKind, container: string, path: string, ttlMs: number): Promise<string> {
    if (kind === 'azure') return Promise.resolve(this.az().blobSasUrl(container, path, ttlMs, false));
    return this.s3b().presignGet(`${container}/${path}`, ttlMs);
  }

  /** containerDeletionPolicy=Delete: the asset's whole container goes with it. */
  async dropContainer(kind: StorageKind, container: string): Promise<void> {
    if (kind === 'azure') {
      await this.az().container(container).deleteIfExists();
      return;
    }
    for (const p of await this.listDeep(kind, container, '')) {
      await this.s3c!.send(new DeleteObjectCommand({ Bucket: this.s3b().bucket, Key: `${container}/${p}` }));
    }
  }

  close(): void {
    this.s3c?.destroy();
  }
}
