import { putManyFiles, runProviderContract } from './provider-suite.js';
import { AzureBlobProvider } from '../../src/providers/azure-blob/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite } from '@assetfs/lab/emulators/storage-servers.js';
import { silentLogger } from '../../src/util/logger.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { BlobServiceClient, ContainerSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import pLimit from 'p-limit';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';

// Azurite checks SAS signatures and expiry itself.
runProviderContract('azure-blob (Azurite)', async () => {
  const server = await startAzurite();
  const container = BlobServiceClient.fromConnectionString(azuriteConnectionString(server)).getContainerClient('media');
  await container.createIfNotExists();
  const put = async (path: string, data: Buffer) => void (await container.getBlockBlobClient(path).uploadData(data));
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'blob', type: 'azure-blob', accountUrl: server.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, urlTtl: urlTtlMs }],
      }).sources[0] as SourceConfigOf<'azure-blob'>;
      return new AzureBlobProvider(cfg, { log: silentLogger, listPageSize });
    },
    base: 'media/',
    nested: true,
    missingRefs: ['media/nope.bin', 'nope/'],
    put,
    putMany: (count) => putManyFiles(put, 'many/', count),
    teardown: () => server.stop(),
  };
});

// The hostile-server cases (hostile-suite.ts): the SDK's calls and the SAS reads go through a fault
// proxy in front of Azurite (SharedKey and SAS signatures do not cover the host, so Azurite accepts them).
const HOSTILE_FILE = { path: 'dir/hostile.bin', data: deterministicBytes('hostile-azure', 300_001) };
runHostileSuite('azure-blob (Azurite)', {}, async () => {
  const server = await startAzurite();
  const account = new URL(server.url);
  const proxy = await startFaultProxy(account.origin);
  const container = BlobServiceClient.fromConnectionString(azuriteConnectionString(server)).getContainerClient('hostile');
  await container.createIfNotExists();
  await container.getBlockBlobClient(HOSTILE_FILE.path).uploadData(HOSTILE_FILE.data);
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'blob', type: 'azure-blob', accountUrl: `${proxy.url}${account.pathname}`, container: 'hostile', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY }],
      }).sources[0] as SourceConfigOf<'azure-blob'>;
      return new AzureBlobProvider(cfg, { log: silentLogger, net });
    },
    api: proxy,
    storage: proxy,
    storageTarget: account.origin,
    format: 'xml',
    file: HOSTILE_FILE,
    secrets: [AZURITE_KEY],
    listCall: (r) => r.method === 'GET' && r.query.includes('comp=list'),
    readCall: (r) => r.method === 'GET' && r.path.endsWith('/hostile.bin'),
    teardown: async () => {
      await proxy.close();
      await server.stop();
    },
  };
});

// Azure listings go through the fault proxy, whose knobs rewrite `maxresults`, answer an empty page
// with a NextMarker, repeat a marker or generate the listing. SharedKey signs the query, so this
// provider reads with a container SAS (as a user's `sasToken`); versions are the blobs' ETags.
runPagingSuite('azure-blob (Azurite behind the fault proxy)', async () => {
  const server = await startAzurite();
  const proxy = await startFaultProxy(server.url);
  const container = BlobServiceClient.fromConnectionString(azuriteConnectionString(server)).getContainerClient('media');
  await container.createIfNotExists();
  const names = Array.from({ length: PAGED_ENTRIES }, (_, i) => `p-${String(i).padStart(5, '0')}`);
  const limit = pLimit(16);
  const put = (path: string, data: Buffer) => limit(async () => void (await container.getBlockBlobClient(path).uploadData(data)));
  await Promise.all([put('paging/download.bin', PAGING_DOWNLOAD), put('virtual/seed.bin', Buffer.from('seed')), ...names.map((n) => put(`paged/${n}`, Buffer.from(n)))]);
  const sas = generateBlobSASQueryParameters(
    { containerName: 'media', permissions: ContainerSASPermissions.parse('rl'), startsOn: new Date(Date.now() - 300_000), expiresOn: new Date(Date.now() + 3_600_000) },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'blob', type: 'azure-blob', accountUrl: `${proxy.url}/${AZURITE_ACCOUNT}`, container: 'media', sasToken: sas }],
      }).sources[0] as SourceConfigOf<'azure-blob'>;
      return new AzureBlobProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: proxy.knobs,
    folder: { path: 'paged/', scope: 'paged/', names },
    virtual: { path: 'virtual/', scope: 'virtual/', name: (i) => virtualName(i, '.bin') },
    tokens: true,
    download: { path: 'paging/download.bin', knobs: proxy.knobs, versionIsStorageEtag: true },
    listRequests: () => proxy.requests().filter((r) => r.query.includes('comp=list')).length,
    teardown: async () => {
      await proxy.close();
      await server.stop();
    },
  };
});
