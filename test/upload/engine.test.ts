/**
 * The upload engine against real storage servers (s3rver, Azurite): multipart byte-exact, resume after
 * a crash from the journaled parts, a file changed mid-upload, conflict copies, and failures surfaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { ConfigSchema, type SourceConfig } from '../../src/config/schema.js';
import { createProvider } from '../../src/providers/registry.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, s3rverSource, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { s3rverClient } from '@assetfs/lab/demo/seed-storage.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';
import { conflictName } from '../../src/upload/engine.js';
import { countingUploader, localFile as harnessLocalFile, resumeUpload, testEngine, uploadUntilCrash, uploadWhileAppending } from './harness.js';
import type { Uploader } from '../../src/upload/types.js';
import type { Provider } from '../../src/core/types.js';

const MiB = 1024 * 1024;

interface Backend {
  label: string;
  provider(): Promise<Provider>;
  get(path: string): Promise<Buffer | undefined>;
  put(path: string, data: Buffer): Promise<void>;
  stop(): Promise<void>;
}

async function s3Backend(): Promise<Backend> {
  const server = await startS3rver({ buckets: ['up'] });
  const client = s3rverClient(server.url);
  const cfg = s3rverSource(server.url, 'up', { name: 'dst' });
  return {
    label: 's3 (s3rver)',
    provider: () => createProvider(ConfigSchema.parse({ sources: [cfg] }).sources[0] as SourceConfig, { log: silentLogger }),
    get: async (path) => {
      try {
        return Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'up', Key: path }))).Body!.transformToByteArray());
      } catch {
        return undefined;
      }
    },
    put: async (path, data) => void (await client.send(new PutObjectCommand({ Bucket: 'up', Key: path, Body: data }))),
    stop: async () => {
      client.destroy();
      await server.stop();
    },
  };
}

async function azureBackend(): Promise<Backend> {
  const server: StorageServer = await startAzurite();
  const container = BlobServiceClient.fromConnectionString(azuriteConnectionString(server)).getContainerClient('uploads');
  await container.createIfNotExists();
  const cfg = { name: 'dst', type: 'azure-blob', accountUrl: server.url, container: 'uploads', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY };
  return {
    label: 'azure-blob (Azurite)',
    provider: () => createProvider(ConfigSchema.parse({ sources: [cfg] }).sources[0] as SourceConfig, { log: silentLogger }),
    get: async (path) => {
      try {
        return await container.getBlobClient(path).downloadToBuffer();
      } catch {
        return undefined;
      }
    },
    put: async (path, data) => void (await container.getBlockBlobClient(path).uploadData(data)),
    stop: () => server.stop(),
  };
}

const PART = 5 * MiB;
/** Counts and optionally intercepts part uploads, of 5 MiB (S3's smallest). */
const counting = (inner: Uploader, onPart?: (n: number) => Promise<void> | void) => countingUploader(inner, { partSize: PART, onPart });

for (const make of [s3Backend, azureBackend]) {
  describe.sequential(`upload engine → ${make.name === 's3Backend' ? 's3' : 'azure-blob'}`, () => {
    let be: Backend;
    let provider: Provider;
    let dir: string;
    beforeAll(async () => {
      be = await make();
      provider = await be.provider();
      dir = await mkdtemp(join(tmpdir(), 'assetfs-upload-'));
    });
    afterAll(async () => {
      await provider?.close();
      await be?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const localFile = (name: string, data: Buffer) => harnessLocalFile(dir, name, data);
    const job = (f: { path: string; size: number; mtimeMs: number }, remotePath: string) =>
      ({ localPath: f.path, source: 'dst', remotePath, producer: 'sync' as const, size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });

    it('uploads a file of several parts byte-exact', async () => {
      const data = deterministicBytes('multi', 12 * MiB + 17);
      const f = await localFile('multi.bin', data);
      const journal = new Journal(join(dir, 'j1.db'));
      const { u, sent } = counting(provider.uploader!());
      const e = testEngine(journal, u);
      e.start();
      const j = e.enqueue(job(f, 'in/multi.bin'));
      await e.waitFor(j.id);
      await e.stop();
      expect(sent.sort()).toEqual([1, 2, 3]);
      expect(sha256((await be.get('in/multi.bin'))!)).toBe(sha256(data));
      expect(journal.synced(f.path)).toMatchObject({ size: data.length, sha256: sha256(data) });
      journal.close();
    });

    it('after a crash, resumes from the journal and sends only the parts not yet confirmed', async () => {
      const data = deterministicBytes('resume', 21 * MiB + 5); // 5 parts of 5 MiB
      const f = await localFile('resume.bin', data);
      const dbFile = join(dir, 'j2.db');
      const journal = new Journal(dbFile);
      const id = await uploadUntilCrash(journal, provider.uploader!(), job(f, 'in/resume.bin'), 3, PART);
      expect(journal.get(id)!.state).toBe('uploading');
      expect(journal.parts(id).map((p) => p.number)).toEqual([1, 2]);
      journal.close();

      const second = await resumeUpload(dbFile, provider.uploader!(), id, PART);
      expect(second.sent.sort()).toEqual([3, 4, 5]);
      expect(sha256((await be.get('in/resume.bin'))!)).toBe(sha256(data));
      second.journal.close();
    });

    it('a file modified during its upload is not committed half-old: the upload restarts with the new bytes', async () => {
      const data = deterministicBytes('changing', 11 * MiB);
      const f = await localFile('changing.bin', data);
      const journal = new Journal(join(dir, 'j3.db'));
      await uploadWhileAppending(journal, provider.uploader!(), job(f, 'in/changing.bin'), 'tail written during the upload', { partSize: PART });
      const remote = (await be.get('in/changing.bin'))!;
      expect(sha256(remote)).toBe(sha256(Buffer.concat([data, Buffer.from('tail written during the upload')])));
      journal.close();
    });

    it('a remote file changed since our last upload is kept: ours goes up as a conflict copy', async () => {
      const f = await localFile('report.txt', Buffer.from('ours v2'));
      const journal = new Journal(join(dir, 'j4.db'));
      const up = provider.uploader!();
      await be.put('in/report.txt', Buffer.from('someone else edited this'));
      const e = testEngine(journal, up);
      e.start();
      const j = e.enqueue({ ...job(f, 'in/report.txt'), baseVersion: 'an-older-etag' });
      await e.waitFor(j.id);
      await e.stop();
      const done = journal.get(j.id)!;
      expect(done.remotePath).toMatch(/^in\/report\.conflict-[A-Za-z0-9_-]+-\d{8}T\d{6}Z\.txt$/);
      expect((await be.get('in/report.txt'))!.toString()).toBe('someone else edited this');
      expect((await be.get(done.remotePath))!.toString()).toBe('ours v2');
      journal.close();
    });

    it('a rejected upload surfaces its error to waitFor (fsync) and is retried later', async () => {
      const f = await localFile('rejected.bin', Buffer.from('x'));
      const journal = new Journal(join(dir, 'j5.db'));
      const inner = provider.uploader!();
      let fail = true;
      const u: Uploader = { ...counting(inner).u, begin: async (...a) => (fail ? Promise.reject(new Error('platform says no (injected)')) : inner.begin(...a)) };
      const e = testEngine(journal, u);
      e.start();
      const j = e.enqueue({ ...job(f, 'in/rejected.bin'), producer: 'mount' });
      await expect(e.waitFor(j.id)).rejects.toThrow(/platform says no/);
      expect(journal.get(j.id)).toMatchObject({ state: 'failed', attempts: 1, lastError: expect.stringMatching(/platform says no/) });
      fail = false;
      expect(e.retryNow()).toBe(1);
      await e.waitFor(j.id);
      await e.stop();
      expect((await be.get('in/rejected.bin'))!.toString()).toBe('x');
      journal.close();
    });
  });
}

describe('conflict names', () => {
  it('keep the extension last and carry host and UTC time', () => {
    expect(conflictName('clip.final.mp4', new Date(Date.UTC(2026, 10, 28, 4, 5, 6)), 'edit-01')).toBe('clip.final.conflict-edit-01-20261128T040506Z.mp4');
    expect(conflictName('README', new Date(Date.UTC(2026, 0, 1)), 'h')).toBe('README.conflict-h-20260101T000000Z');
  });
});
