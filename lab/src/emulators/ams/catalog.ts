/**
 * The state behind the AMS emulator: assets, asset files, access policies and locators, with the bytes
 * in Azurite (one container `asset-<guid>` per asset).
 *
 * Invariants:
 *  - A SAS locator is a stored access policy (signed identifier) on its asset's container, and its URL
 *    a container SAS naming it (`si=`), as AMS did: Azurite itself then enforces the start time, the
 *    expiry and revocation (deleting the locator removes the identifier, and the URL stops working).
 *  - At most 5 locators exist per asset at once (Azure's limit of 5 stored access policies per
 *    container); expired ones count until deleted, as in AMS. The slot is taken synchronously, before
 *    any await, so concurrent creations cannot overshoot.
 *  - Container ACL writes are serialised per asset and always write the current set of locators, so the
 *    last write reflects the latest state.
 */
import { randomUUID } from 'node:crypto';
import { generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { AzureBacking } from '../common/backing.js';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../storage-servers.js';

export const MAX_LOCATORS_PER_ASSET = 5;

export interface AssetRec {
  readonly Id: string;
  Name: string;
  State: number;
  readonly Created: number;
  LastModified: number;
  AlternateId: string | null;
  /** 0 None, 1 StorageEncrypted, 2 CommonEncryptionProtected, 4 EnvelopeEncryptionProtected. */
  Options: number;
  readonly FormatOption: number;
  readonly container: string;
}

export interface FileRec {
  readonly Id: string;
  readonly Name: string;
  ContentFileSize: number;
  readonly ParentAssetId: string;
  IsPrimary: boolean;
  MimeType: string;
  IsEncrypted: boolean;
  EncryptionScheme: string | null;
  readonly Created: number;
  LastModified: number;
  /**
   * GUESS/emulator choice: the storage ETag of the blob (AMS documents an MD5 set by the uploader). It
   * lets a client tie the bytes it reads to the record it listed; null for records without a blob.
   */
  ContentChecksum: string | null;
}

export interface PolicyRec {
  readonly Id: string;
  readonly Name: string;
  readonly DurationInMinutes: number;
  readonly Permissions: number;
  readonly Created: number;
}

export interface LocatorRec {
  readonly Id: string;
  /** The signed identifier on the container (the locator's GUID). */
  readonly guid: string;
  readonly AssetId: string;
  readonly AccessPolicyId: string;
  readonly Type: number;
  readonly StartTime: number;
  readonly ExpirationDateTime: number;
  /** When Azurite starts accepting the URL (later than StartTime when a propagation delay is emulated). */
  readonly aclStart: number;
  readonly permissions: string;
  readonly BaseUri: string;
  readonly ContentAccessComponent: string;
}

const MIME: Record<string, string> = {
  mp4: 'video/mp4', mov: 'video/quicktime', mkv: 'video/x-matroska', mp3: 'audio/mpeg', wav: 'audio/wav',
  png: 'image/png', jpg: 'image/jpeg', srt: 'application/x-subrip', vtt: 'text/vtt', txt: 'text/plain', json: 'application/json',
};
export const mimeOf = (name: string) => MIME[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';

const cid = () => `nb:cid:UUID:${randomUUID()}`;

/** Permissions bits (1 Read, 2 Write, 4 Delete, 8 List) → a container ACL permission string. */
export function aclPermissions(bits: number): string {
  return [[1, 'r'], [2, 'w'], [4, 'd'], [8, 'l']].filter(([b]) => (bits & (b as number)) !== 0).map(([, c]) => c).join('');
}

export class Catalog {
  readonly assets = new Map<string, AssetRec>();
  /** Assets in creation order: the order of `GET Assets` and of `$skip`. */
  readonly assetList: AssetRec[] = [];
  readonly files = new Map<string, FileRec>();
  readonly filesOf = new Map<string, FileRec[]>();
  readonly policies = new Map<string, PolicyRec>();
  readonly locators = new Map<string, LocatorRec>();
  private readonly locatorsOf = new Map<string, Set<string>>();
  private readonly cred = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  private readonly containers = new Map<string, Promise<void>>();
  private readonly aclChain = new Map<string, Promise<void>>();
  /** The public account URL the SAS URLs are built on. */
  readonly publicBase: string;

  constructor(private readonly azure: AzureBacking) {
    // A fault proxy in front of Azurite forwards paths unchanged, so its bare origin still needs the
    // account segment that Azurite's path-style URLs carry.
    const pub = azure.publicUrl.replace(/\/+$/, '');
    this.publicBase = new URL(pub).pathname.length > 1 ? pub : `${pub}/${AZURITE_ACCOUNT}`;
  }

  createAsset(name: string, opts: { options?: number; alternateId?: string } = {}): AssetRec {
    const id = cid();
    const now = Date.now();
    const a: AssetRec = {
      Id: id, Name: name, State: 0, Created: now, LastModified: now, AlternateId: opts.alternateId ?? null,
      Options: opts.options ?? 0, FormatOption: 0, container: `asset-${id.slice('nb:cid:UUID:'.length)}`,
    };
    this.assets.set(id, a);
    this.assetList.push(a);
    this.filesOf.set(id, []);
    return a;
  }

  findAsset(name: string): AssetRec | undefined {
    return this.assetList.find((a) => a.Name === name);
  }

  asset(id: string): AssetRec {
    const a = this.assets.get(id);
    if (!a) throw new Error(`no asset ${id}`);
    return a;
  }

  private ensureContainer(name: string): Promise<void> {
    let p = this.containers.get(name);
    if (!p) {
      p = this.azure.ensureContainer(name);
      p.catch(() => this.containers.delete(name));
      this.containers.set(name, p);
    }
    return p;
  }

  /** A file record (no bytes). Replaces the record of the same name, keeping its Id. */
  private record(a: AssetRec, name: string, size: number, mtimeMs: number, checksum: string | null): FileRec {
    const list = this.filesOf.get(a.Id)!;
    const encrypted = (a.Options & 1) !== 0;
    let f = list.find((x) => x.Name === name);
    if (f) {
      Object.assign(f, { ContentFileSize: size, LastModified: mtimeMs, ContentChecksum: checksum });
    } else {
      f = {
        Id: cid(), Name: name, ContentFileSize: size, ParentAssetId: a.Id, IsPrimary: list.length === 0, MimeType: mimeOf(name),
        IsEncrypted: encrypted, EncryptionScheme: encrypted ? 'StorageEncryption' : null, Created: mtimeMs, LastModified: mtimeMs, ContentChecksum: checksum,
      };
      list.push(f);
      this.files.set(f.Id, f);
    }
    a.LastModified = Math.max(a.LastModified, mtimeMs);
    return f;
  }

  /** Uploads the bytes as blob `name` of the asset's container and records the AssetFile. */
  async putFile(assetId: string, name: string, data: Buffer): Promise<FileRec> {
    const a = this.asset(assetId);
    await this.ensureContainer(a.container);
    const stored = await this.azure.put(a.container, name, data);
    return this.record(a, name, stored.size, stored.mtimeMs, stored.etag);
  }

  /** File records without bytes (large listings); reading them fails in storage with 404. */
  seedFiles(assetId: string, names: readonly string[], size = 1): FileRec[] {
    const a = this.asset(assetId);
    const now = Date.now();
    return names.map((n) => this.record(a, n, size, now, null));
  }

  // --- writes (uploads, mkdir/rename/delete) -------------------------------------------------------

  /**
   * CreateFileInfos: an AssetFile for every committed blob of the asset's container that has none yet
   * (uncommitted blocks are not blobs). Existing records are left as they are: MERGE updates them.
   */
  async createFileInfos(assetId: string): Promise<FileRec[]> {
    const a = this.asset(assetId);
    await this.ensureContainer(a.container);
    const known = new Set(this.filesOf.get(a.Id)!.map((f) => f.Name));
    return (await this.azure.list(a.container)).filter((b) => !known.has(b.name)).map((b) => this.record(a, b.name, b.size, b.mtimeMs, b.etag));
  }

  /**
   * MERGE of an AssetFile. LastModified moves to now; ContentChecksum is the client's when it sends one,
   * else (emulator choice, see FileRec) it follows the blob's current ETag, so an overwritten blob gets a
   * new checksum and hence a new version for clients.
   */
  async mergeFile(f: FileRec, patch: { ContentFileSize?: number; MimeType?: string; IsPrimary?: boolean; ContentChecksum?: string }): Promise<void> {
    const a = this.asset(f.ParentAssetId);
    const blob = patch.ContentChecksum === undefined ? await this.azure.head(a.container, f.Name) : undefined;
    if (patch.ContentFileSize !== undefined) f.ContentFileSize = patch.ContentFileSize;
    if (patch.MimeType !== undefined) f.MimeType = patch.MimeType;
    if (patch.IsPrimary !== undefined) f.IsPrimary = patch.IsPrimary;
    f.ContentChecksum = patch.ContentChecksum ?? blob?.etag ?? f.ContentChecksum;
    f.LastModified = Math.max(Date.now(), f.LastModified + 1);
    a.LastModified = Math.max(a.LastModified, f.LastModified);
  }

  /** Deletes the AssetFile and its blob. */
  async deleteFile(f: FileRec): Promise<void> {
    const a = this.asset(f.ParentAssetId);
    const list = this.filesOf.get(a.Id)!;
    list.splice(list.indexOf(f), 1);
    this.files.delete(f.Id);
    a.LastModified = Date.now();
    await this.azure.remove(a.container, f.Name);
  }

  /**
   * Deletes the asset, its files, its locators (GUESS: AMS deleted them with the asset) and its
   * container with every blob in it.
   */
  async deleteAsset(a: AssetRec): Promise<void> {
    for (const f of this.filesOf.get(a.Id) ?? []) this.files.delete(f.Id);
    for (const id of this.locatorsOf.get(a.Id) ?? []) this.locators.delete(id);
    this.locatorsOf.delete(a.Id);
    this.filesOf.delete(a.Id);
    this.assets.delete(a.Id);
    this.assetList.splice(this.assetList.indexOf(a), 1);
    await (this.aclChain.get(a.Id) ?? Promise.resolve()).catch(() => undefined);
    this.aclChain.delete(a.Id);
    this.containers.delete(a.container);
    await this.azure.container(a.container).deleteIfExists();
  }

  // --- access policies and locators ----------------------------------------------------------------

  addPolicy(name: string, minutes: number, permissions: number): PolicyRec {
    const p: PolicyRec = { Id: `nb:pid:UUID:${randomUUID()}`, Name: name, DurationInMinutes: minutes, Permissions: permissions, Created: Date.now() };
    this.policies.set(p.Id, p);
    return p;
  }

  locatorCount(assetId?: string): number {
    return assetId === undefined ? this.locators.size : (this.locatorsOf.get(assetId)?.size ?? 0);
  }

  /**
   * Takes a locator slot synchronously (or returns 'limit'), then writes the container ACL. A failed
   * ACL write gives the slot back.
   */
  async addLocator(a: AssetRec, p: PolicyRec, start: number, expiry: number, delayMs: number): Promise<LocatorRec | 'limit'> {
    const mine = this.locatorsOf.get(a.Id) ?? new Set<string>();
    if (mine.size >= MAX_LOCATORS_PER_ASSET) return 'limit';
    const guid = randomUUID();
    const sas = generateBlobSASQueryParameters({ containerName: a.container, identifier: guid }, this.cred).toString();
    const l: LocatorRec = {
      Id: `nb:lid:UUID:${guid}`, guid, AssetId: a.Id, AccessPolicyId: p.Id, Type: 1, StartTime: start, ExpirationDateTime: expiry,
      aclStart: delayMs > 0 ? Math.max(start, Date.now() + delayMs) : start, permissions: aclPermissions(p.Permissions),
      BaseUri: `${this.publicBase}/${a.container}`, ContentAccessComponent: `?${sas}`,
    };
    mine.add(l.Id);
    this.locatorsOf.set(a.Id, mine);
    this.locators.set(l.Id, l);
    try {
      await this.syncAcl(a);
    } catch (e) {
      this.dropLocator(l);
      throw e;
    }
    return l;
  }

  async deleteLocator(id: string): Promise<boolean> {
    const l = this.locators.get(id);
    if (!l) return false;
    this.dropLocator(l);
    await this.syncAcl(this.asset(l.AssetId));
    return true;
  }

  private dropLocator(l: LocatorRec): void {
    this.locators.delete(l.Id);
    this.locatorsOf.get(l.AssetId)?.delete(l.Id);
  }

  /** Writes the asset's current locators as the container's signed identifiers (serialised per asset). */
  private syncAcl(a: AssetRec): Promise<void> {
    const run = async () => {
      await this.ensureContainer(a.container);
      const ids = [...(this.locatorsOf.get(a.Id) ?? [])].map((id) => this.locators.get(id)!).map((l) => ({
        id: l.guid,
        accessPolicy: { permissions: l.permissions, startsOn: new Date(l.aclStart), expiresOn: new Date(l.ExpirationDateTime) },
      }));
      await this.azure.container(a.container).setAccessPolicy(undefined, ids);
    };
    const next = (this.aclChain.get(a.Id) ?? Promise.resolve()).catch(() => undefined).then(run);
    this.aclChain.set(a.Id, next);
    return next;
  }
}
