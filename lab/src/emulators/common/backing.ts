/**
 * Where the emulators keep bytes: the real storage servers, so that reads of a platform emulator go
 * through a real storage protocol. Each backing writes directly to its server and hands out signed
 * read URLs on a *public* base (normally a fault proxy in front of the server, which also enforces
 * presigned-URL expiry for s3rver and lets tests inject storage faults and count requests).
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BlobSASPermissions, BlobServiceClient, ContainerClient, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY, S3RVER_KEY } from '../storage-servers.js';
import { s3rverClient } from '../../demo/seed-storage.js';

export interface StoredObject {
  readonly size: number;
  readonly etag: string;
  readonly mtimeMs: number;
}

/** One S3 bucket on s3rver. */
export class S3Backing {
  private readonly direct: S3Client;
  private readonly signer: S3Client;

  constructor(
    readonly directUrl: string,
    readonly publicUrl: string,
    readonly bucket: string,
  ) {
    this.direct = s3rverClient(directUrl);
    this.signer = new S3Client({
      endpoint: publicUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    });
  }

  async put(key: string, data: Buffer): Promise<StoredObject> {
    await this.direct.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data }));
    return (await this.head(key))!;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const h = await this.direct.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: h.ContentLength ?? 0, etag: (h.ETag ?? '').replace(/"/g, ''), mtimeMs: h.LastModified?.getTime() ?? Date.now() };
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw e;
    }
  }

  async remove(key: string): Promise<void> {
    await this.direct.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** A SigV4 presigned GET on the public base; S3 counts its lifetime in whole seconds (≥ 1). */
  presignGet(key: string, ttlMs: number): Promise<string> {
    return getSignedUrl(this.signer, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: Math.max(1, Math.round(ttlMs / 1000)) });
  }

  /** A SigV4 presigned PUT (uploads; the upload engine's issue). */
  presignPut(key: string, ttlMs: number): Promise<string> {
    return getSignedUrl(this.signer, new PutObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: Math.max(1, Math.round(ttlMs / 1000)) });
  }

  close(): void {
    this.direct.destroy();
    this.signer.destroy();
  }
}

/** Azure containers on Azurite (account devstoreaccount1). */
export class AzureBacking {
  private readonly service: BlobServiceClient;
  private readonly cred = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);

  /** `directUrl`/`publicUrl` are account URLs: `http://127.0.0.1:PORT/devstoreaccount1`. */
  constructor(
    readonly directUrl: string,
    readonly publicUrl: string,
  ) {
    this.service = new BlobServiceClient(directUrl, this.cred);
  }

  container(name: string): ContainerClient {
    return this.service.getContainerClient(name);
  }

  async ensureContainer(name: string): Promise<void> {
    await this.container(name).createIfNotExists();
  }

  async put(container: string, blob: string, data: Buffer): Promise<StoredObject> {
    const r = await this.container(container).getBlockBlobClient(blob).uploadData(data, { blockSize: 8 * 1024 * 1024, concurrency: 4 });
    return { size: data.length, etag: (r.etag ?? '').replace(/"/g, ''), mtimeMs: r.lastModified?.getTime() ?? Date.now() };
  }

  async head(container: string, blob: string): Promise<StoredObject | undefined> {
    try {
      const p = await this.container(container).getBlobClient(blob).getProperties();
      return { size: p.contentLength ?? 0, etag: (p.etag ?? '').replace(/"/g, ''), mtimeMs: p.lastModified?.getTime() ?? Date.now() };
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  }

  async list(container: string, prefix = ''): Promise<{ name: string; size: number; etag: string; mtimeMs: number }[]> {
    const out = [];
    for await (const b of this.container(container).listBlobsFlat({ prefix })) {
      out.push({ name: b.name, size: b.properties.contentLength ?? 0, etag: (b.properties.etag ?? '').replace(/"/g, ''), mtimeMs: b.properties.lastModified?.getTime() ?? 0 });
    }
    return out;
  }

  async remove(container: string, blob: string): Promise<void> {
    await this.container(container).getBlobClient(blob).deleteIfExists();
  }

  /** The public container URL and a container SAS (`?sv=…&se=…&sig=…`) valid for `ttlMs`. */
  containerSas(container: string, ttlMs: number, permissions = 'rl'): { baseUri: string; sas: string; expiresOn: Date } {
    const expiresOn = new Date(Date.now() + ttlMs);
    const sas = generateBlobSASQueryParameters(
      { containerName: container, permissions: BlobSASPermissions.parse(permissions.replace('l', '')), startsOn: new Date(Date.now() - 5 * 60_000), expiresOn },
      this.cred,
    ).toString();
    return { baseUri: `${this.publicUrl}/${container}`, sas: `?${sas}`, expiresOn };
  }

  /** A SAS for one blob, for the gateway routes that proxy bearer-authenticated reads. */
  blobSasUrl(container: string, blob: string, ttlMs: number, direct = true): string {
    const expiresOn = new Date(Date.now() + ttlMs);
    const sas = generateBlobSASQueryParameters({ containerName: container, blobName: blob, permissions: BlobSASPermissions.parse('r'), expiresOn }, this.cred).toString();
    const base = direct ? this.directUrl : this.publicUrl;
    return `${base}/${container}/${blob.split('/').map(encodeURIComponent).join('/')}?${sas}`;
  }
}
