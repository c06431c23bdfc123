import { BlobServiceClient } from '@azure/storage-blob';
import { putManyFiles, runProviderContract } from './provider-suite.js';
import { AzureBlobProvider } from '../../src/providers/azure-blob/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite } from '../../src/emulators/storage-servers.js';
import { silentLogger } from '../../src/util/logger.js';

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
