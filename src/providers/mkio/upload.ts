/**
 * MK.IO uploads (docs/providers.md#mkio, "Uploads and edits"). MK.IO has no
 * upload endpoint: the bytes go straight into the asset's registered storage with the credential of the
 * source's `storage:` key, and MK.IO's storage listing shows them from there.
 *  - Azure storage (`url` + `sasToken`): staged blocks and one block-list commit of the blob
 *    `{subPath}/{path}` in the asset's container (AzureBlockUploader). `url` is the account URL (with an
 *    account SAS), or the asset's container URL (with a container SAS: then only that asset is writable).
 *  - S3 storage (`url`, keys, `region`, `bucket`): a multipart upload of the key
 *    `{container}/{subPath}/{path}` in the registered bucket (S3Uploader). GUESS: MK.IO does not document
 *    how an asset's container maps onto a bucket; the container as the first key segment is how the
 *    emulator lays S3 storage out (lab/src/emulators/mkio/store.ts).
 *
 * Invariants:
 *  - A target is [asset name, …file path below the asset's subPath], the provider's tree. Files live only
 *    inside assets: a file target at the project root is EPERM.
 *  - Uploads go only into assets on the storage account the credential belongs to: the project's
 *    registered account (`GET …/media/storage`) of the credential's type whose url (Azure) or bucket (S3)
 *    matches, else the first of that type. An asset on another account is EACCES, never a write of
 *    stray bytes into the credential's storage.
 *  - An asset's container, subPath and storage are fixed once it exists, so a lookup is trusted for
 *    ASSET_TTL_MS; a lookup answering 404 during part()/complete() is SessionLostError (begin again).
 *  - Versions are normalised storage ETags of the very object the provider HEADs through
 *    getFileAccessInfo (or reads from a listing row that carries an etag): remoteVersion(), complete()
 *    and the provider's RemoteEntry.version agree.
 *  - mkdir at the root creates an asset on the credential's account, container derived from the name
 *    (`^[a-z0-9]+(-[a-z0-9]+)*$`, 3–63 chars; on 409 "container taken" a random suffix), policy Retain.
 *    Deeper mkdir is a no-op: folders are name prefixes and exist once a file is written into them.
 *  - begin() into a missing asset creates it the same way (a sync of a new top-level folder); one
 *    creation per name at a time, so parallel files of a new asset do not race.
 *  - rmdir of an empty asset is `DELETE assets/{name}` (a non-empty one is ENOTEMPTY; the Retain policy
 *    keeps the then empty container in storage). Deeper rmdir deletes nothing: a prefix with no file in
 *    it does not exist.
 *  - remove deletes the blob/object in storage (MK.IO cannot delete single files). No rename: an asset's
 *    name is its key, storage has no server-side move, so the mount copies (EXDEV).
 */
import { createHash, randomBytes } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { FsError, NotFoundError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { CompletedUpload, ConfirmedPart, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { AzureBlockUploader } from '../azure-blob/upload.js';
import { S3Uploader } from '../s3/upload.js';
import type { MkioApi, MkioAsset, MkioStorageAccount } from './api.js';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import { boundedAzureOptions, boundedS3Options } from '../../transports/sdk-clients.js';

export type MkioStorageCredential = NonNullable<SourceConfigOf<'mkio'>['storage']>;

const MiB = 1024 * 1024;
/** How long an asset's container/subPath answer is used without asking MK.IO again. */
const ASSET_TTL_MS = 30_000;
const CONTAINER_TRIES = 5;

interface Bound {
  readonly asset: MkioAsset;
  /** The storage uploader of this asset, its prefix ending at the asset's subPath. */
  readonly inner: Uploader;
}

/** A container name for a new asset: its name as `^[a-z0-9]+(-[a-z0-9]+)*$`, 3–63 characters. */
export function containerFor(name: string, suffix = ''): string {
  let c = name.normalize('NFKD').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!c) c = `asset-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
  else if (c.length < 3) c = `asset-${c}`;
  const room = 63 - (suffix ? suffix.length + 1 : 0);
  c = c.slice(0, room).replace(/-+$/, '');
  return suffix ? `${c}-${suffix}` : c;
}

const isAzureType = (t: string | undefined) => /azure|microsoft/i.test(t ?? '');
const isS3Type = (t: string | undefined) => /s3|aws/i.test(t ?? '');

/** `origin + path` without trailing '/', host case-insensitive; undefined when not a URL. */
function urlKey(u: string | undefined): string | undefined {
  if (!u) return undefined;
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host.toLowerCase()}${x.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
}

export class MkioUploader implements Uploader {
  private readonly assets = new Map<string, { at: number; bound: Promise<Bound> }>();
  private readonly creating = new Map<string, Promise<void>>();
  private account: Promise<MkioStorageAccount> | undefined;
  private s3: S3Client | undefined;

  constructor(
    private readonly api: MkioApi,
    private readonly cred: MkioStorageCredential,
    private readonly what: string,
    private readonly net: NetBounds = DEFAULT_BOUNDS,
  ) {}

  // ---- where an asset's bytes go ----------------------------------------------------------------

  /** The registered storage account the credential writes to (shared single flight, retried after a failure). */
  private storageAccount(): Promise<MkioStorageAccount> {
    this.account ??= this.api.storageAccounts().then((list) => {
      const mine = list.filter((a) => (this.cred.type === 'azure' ? isAzureType(a.spec?.type) : isS3Type(a.spec?.type)));
      const want = urlKey(this.cred.url);
      const match = mine.find((a) => {
        if (this.cred.type === 's3' && this.cred.bucket) return a.spec?.bucketName === this.cred.bucket;
        const have = urlKey(a.spec?.url);
        return !!want && !!have && (want === have || want.startsWith(`${have}/`)); // account URL, or a container URL in it
      });
      const acct = match ?? mine[0];
      if (!acct) throw new FsError('EACCES', `${this.what}: the project has no registered ${this.cred.type} storage account for the configured storage credential`);
      return acct;
    });
    this.account.catch(() => (this.account = undefined));
    return this.account;
  }

  private bind(name: string): Promise<Bound> {
    const hit = this.assets.get(name);
    if (hit && Date.now() - hit.at < ASSET_TTL_MS) return hit.bound;
    const entry = { at: Date.now(), bound: this.lookup(name) };
    this.assets.set(name, entry);
    entry.bound.catch(() => this.assets.get(name) === entry && this.assets.delete(name));
    return entry.bound;
  }

  private async lookup(name: string): Promise<Bound> {
    const [asset, acct] = await Promise.all([this.api.asset(name), this.storageAccount()]);
    const p = asset?.properties ?? {};
    if (!p.container) throw new FsError('EIO', `${this.what}: asset "${name}" names no container`);
    if (p.storageAccountName !== acct.name) {
      throw new FsError('EACCES', `${this.what}: asset "${name}" lives in storage account "${p.storageAccountName}"; the configured storage credential is for "${acct.name}"`);
    }
    const sub = (p.subPath ?? '').split('/').filter(Boolean).join('/');
    if (this.cred.type === 'azure') return { asset, inner: new AzureBlockUploader(this.containerClient(p.container), sub ? `${sub}/` : '') };
    const bucket = this.cred.bucket ?? acct.spec?.bucketName;
    if (!bucket) throw new FsError('EINVAL', `${this.what}: the S3 storage credential names no bucket, and MK.IO reports none for "${acct.name}"`);
    return { asset, inner: new S3Uploader(this.s3Client(), bucket, `${[p.container, sub].filter(Boolean).join('/')}/`) };
  }

  private containerClient(container: string): ContainerClient {
    if (!this.cred.url) throw new FsError('EINVAL', `${this.what}: storage.url (the Azure account URL) is required to upload`);
    const sas = (this.cred.sasToken ?? '').replace(/^\?/, '');
    const base = this.cred.url.replace(/\/+$/, '');
    const withSas = (u: string) => (sas ? `${u}?${sas}` : u);
    const options = boundedAzureOptions(this.net); // bounded; retries belong to the upload engine
    if (new URL(base).pathname.split('/').filter(Boolean).at(-1) === container) return new ContainerClient(withSas(base), undefined, options);
    return new BlobServiceClient(withSas(base), undefined, options).getContainerClient(container);
  }

  private s3Client(): S3Client {
    const { accessKeyId, secretAccessKey } = this.cred;
    if (!accessKeyId || !secretAccessKey) throw new FsError('EINVAL', `${this.what}: storage.accessKeyId and storage.secretAccessKey are required to upload to S3 storage`);
    this.s3 ??= new S3Client({
      region: this.cred.region ?? 'us-east-1',
      endpoint: this.cred.url,
      forcePathStyle: !!this.cred.url,
      credentials: { accessKeyId, secretAccessKey },
      // As the s3 provider: aws-chunked trailers corrupt uploads on some S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...boundedS3Options(this.net), // bounded; retries belong to the upload engine
    });
    return this.s3;
  }

  /** The bound asset of a file target; a vanished asset means the session is gone. */
  private async session(t: UploadTarget): Promise<Bound> {
    try {
      return await this.bind(this.fileTarget(t).asset);
    } catch (e) {
      if (e instanceof NotFoundError) throw new SessionLostError(`${this.what}: asset "${t.path[0]}" is gone`);
      throw e;
    }
  }

  private fileTarget(t: UploadTarget): { asset: string; target: UploadTarget } {
    if (t.path.length < 2) throw new FsError('EPERM', `${this.what}: "${t.path.join('/')}" is not a file inside an asset; the project root holds assets only`);
    return { asset: t.path[0]!, target: { source: t.source, path: t.path.slice(1) } };
  }

  private ensureAsset(name: string): Promise<void> {
    let p = this.creating.get(name);
    if (!p) {
      p = this.create(name).finally(() => this.creating.delete(name));
      this.creating.set(name, p);
    }
    return p;
  }

  /** Not tied to one caller's signal: parallel begin()s of one new asset share it. */
  private async create(name: string): Promise<void> {
    const acct = await this.storageAccount();
    for (let i = 0; i < CONTAINER_TRIES; i++) {
      const container = containerFor(name, i ? randomBytes(3).toString('hex') : '');
      const made = await this.api.createAsset(name, { storageAccountName: acct.name, container, description: '', containerDeletionPolicy: 'Retain' });
      this.assets.delete(name);
      if (made) return;
    }
    throw new FsError('EEXIST', `${this.what}: no free container for asset "${name}" after ${CONTAINER_TRIES} tries`);
  }

  // ---- Uploader ------------------------------------------------------------------------------

  partSize(size: number): number {
    // The storage's limits: ≥ 5 MiB parts and ≤ 10,000 of them on S3, ≤ 50,000 blocks on Azure.
    const maxParts = this.cred.type === 'azure' ? 50_000 : 10_000;
    return Math.max(8 * MiB, Math.ceil(size / maxParts / MiB) * MiB);
  }

  async begin(t: UploadTarget, size: number, signal?: AbortSignal): Promise<string> {
    const { asset, target } = this.fileTarget(t);
    let b: Bound;
    try {
      b = await this.bind(asset);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      await this.ensureAsset(asset);
      b = await this.bind(asset);
    }
    return b.inner.begin(target, size, signal);
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined | 'unknown'> {
    const { asset, target } = this.fileTarget(t);
    let b: Bound;
    try {
      b = await this.bind(asset);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined; // the asset went away, and its session with it
      throw e;
    }
    return b.inner.confirmed(target, uploadId, signal);
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    return (await this.session(t)).inner.part(this.fileTarget(t).target, uploadId, number, data, signal);
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number; sha256: string }, signal?: AbortSignal): Promise<CompletedUpload> {
    return (await this.session(t)).inner.complete(this.fileTarget(t).target, uploadId, parts, info, signal);
  }

  async abort(t: UploadTarget, uploadId: string): Promise<void> {
    const b = await this.session(t).catch(() => undefined);
    await b?.inner.abort(this.fileTarget(t).target, uploadId).catch(() => undefined);
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    if (t.path.length < 2) return undefined; // the root and assets are folders: no version
    const { asset, target } = this.fileTarget(t);
    let b: Bound;
    try {
      b = await this.bind(asset);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
    return b.inner.remoteVersion(target, signal);
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const { asset, target } = this.fileTarget(t);
    await (await this.bind(asset)).inner.remove!(target, signal);
  }

  async mkdir(t: UploadTarget, signal?: AbortSignal): Promise<void | 'prefix'> {
    if (t.path.length === 0) throw new FsError('EEXIST', `${this.what}: the project root exists`);
    if (t.path.length > 1) return 'prefix'; // it exists remotely once a file is written into it
    const name = t.path[0]!;
    const exists = await this.api.asset(name, signal).then(
      () => true,
      (e: unknown) => (e instanceof NotFoundError ? false : Promise.reject(e)),
    );
    if (exists) throw new FsError('EEXIST', `${this.what}: asset "${name}" exists`);
    await this.ensureAsset(name);
  }

  async rmdir(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    if (t.path.length === 0) throw new FsError('EPERM', `${this.what}: the project root cannot be removed`);
    if (t.path.length > 1) return; // an empty prefix does not exist; nothing to delete
    const name = t.path[0]!;
    const spec = (await this.api.storage(name, '', signal))?.spec ?? {};
    if (spec.files?.length || spec.folders?.length) throw new FsError('ENOTEMPTY', `${this.what}: asset "${name}" is not empty`);
    await this.api.deleteAsset(name, signal);
    this.assets.delete(name);
  }

  close(): void {
    this.s3?.destroy();
    this.s3 = undefined;
  }
}
