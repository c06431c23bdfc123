import { BlobServiceClient } from '@azure/storage-blob';
import { putManyFiles, runProviderContract } from './provider-suite.js';
import { AzureBlobProvider } from '../../src/providers/azure-blob/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite } from '../../src/emulators/storage-servers.js';
import { silentLogger } from '../../src/util/logger.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '../../src/demo/sample-media.js';
import { startFaultProxy } from '../../src/emulators/fault-proxy.js';

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
