// The provider contract against the MK.IO emulator, twice: once with the asset's bytes in Azurite
// (Azure-backed storage, read through the bearer-jwt gateway) and once in s3rver behind the
// expiry-enforcing fault proxy (S3-backed storage). `putMany` makes assets at the project root, so the
// large folder exercises MK.IO's $skiptoken asset paging.
import { runProviderContract } from './provider-suite.js';
import { MkioProvider } from '../../src/providers/mkio/index.js';
import { MKIO_DEFAULT_TOKEN, startMkioEmulator, type StorageKind } from '@assetfs/lab/emulators/mkio/index.js';
import { AzureBacking, S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { startAzurite } from '@assetfs/lab/emulators/storage-servers.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { startS3BackedStorage } from '../helpers/s3-backed.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';

function contract(kind: StorageKind, label: string): void {
  runProviderContract(label, async () => {
    const stops: (() => Promise<void>)[] = [];
    let backing: { azure?: AzureBacking; s3?: S3Backing };
    if (kind === 'azure') {
      const az = await startAzurite();
      stops.push(() => az.stop());
      backing = { azure: new AzureBacking(az.url, az.url) };
    } else {
      const storage = await startS3BackedStorage('mkio');
      stops.push(() => storage.close());
      backing = { s3: storage.backing };
    }
    const emu = await startMkioEmulator(backing);
    const asset = async (name: string) => emu.createAsset(name, { storage: kind, subPath: 'incoming' });
    return {
      provider: ({ listPageSize, urlTtlMs }) => {
        emu.urlTtlMs = urlTtlMs; // MK.IO decides the jwt lifetime, not the client
        const cfg = ConfigSchema.parse({ sources: [{ name: 'mkio', type: 'mkio', baseUrl: emu.url, project: emu.project, token: MKIO_DEFAULT_TOKEN }] }).sources[0] as SourceConfigOf<'mkio'>;
        return new MkioProvider(cfg, { log: silentLogger, listPageSize });
      },
      base: 'contract-asset/',
      nested: true,
      put: async (path, data) => {
        const [name, ...rest] = path.split('/');
        await asset(name!);
        await emu.putFile(name!, rest.join('/'), data);
      },
      putMany: async (count) => {
        emu.seedMany(count, { storage: kind });
        return '';
      },
      missingRefs: ['contract-asset/nope.bin', 'no-such-asset/', 'contract-asset/nope/'],
      // Azure answers an expired bearer token 401 InvalidAuthenticationInfo; S3 403 AccessDenied.
      expiredStatuses: [401, 403],
      teardown: async () => {
        await emu.close();
        for (const stop of stops) await stop();
      },
    };
  });
}

contract('azure', 'mkio (emulator, asset on Azure-backed storage in Azurite)');
contract('s3', 'mkio (emulator, asset on S3-backed storage in s3rver behind an expiry-enforcing proxy)');

// The hostile-server cases (hostile-suite.ts): the MK.IO API behind one fault proxy, the asset's
// S3-backed storage (presigned reads) behind the expiry-enforcing proxy of startS3BackedStorage.
const HOSTILE_FILE = { path: 'hostile-asset/hostile.bin', data: deterministicBytes('hostile-mkio', 300_001) };
runHostileSuite('mkio (emulator, S3-backed storage)', { handsBackUrls: true, nextLinks: true, handsCredentialsWithUrls: true }, async () => {
  const storage = await startS3BackedStorage('mkio-hostile');
  const emu = await startMkioEmulator({ s3: storage.backing });
  const api = await startFaultProxy(emu.url);
  await emu.createAsset('hostile-asset', { storage: 's3', subPath: 'incoming' });
  await emu.putFile('hostile-asset', 'hostile.bin', HOSTILE_FILE.data);
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({ sources: [{ name: 'mkio', type: 'mkio', baseUrl: api.url, project: emu.project, token: MKIO_DEFAULT_TOKEN }] }).sources[0] as SourceConfigOf<'mkio'>;
      return new MkioProvider(cfg, { log: silentLogger, net });
    },
    api,
    storage: storage.proxy,
    storageTarget: storage.s3.url,
    format: 'json',
    file: HOSTILE_FILE,
    secrets: [MKIO_DEFAULT_TOKEN],
    listCall: (r) => r.method === 'GET' && /\/media\/assets/.test(r.path),
    readCall: (r) => r.method === 'GET' && r.path.endsWith('/hostile.bin'),
    urlCall: (r) => r.method === 'POST' && r.path.endsWith('/getFileAccessInfo'),
    // Read URLs are the emulator's storage gateway, with a jwt MK.IO hands along for that URL only.
    readOrigin: emu.url,
    // The asset list says more follows, only through a nextLink at another origin (no $skiptoken to reuse).
    pointNextElsewhere: (body, elsewhere) => {
      const j = JSON.parse(body) as { value?: unknown; supplemental?: { pagination?: Record<string, unknown> }; [k: string]: unknown };
      if (!Array.isArray(j.value)) return body;
      delete j.skipToken;
      delete j.$skiptoken;
      const pg = j.supplemental?.pagination;
      if (pg) {
        delete pg.skiptoken;
        delete pg.skipToken;
        pg.total = 1_000_000;
      }
      j['@odata.nextLink'] = `${elsewhere}/api/v1/projects/${emu.project}/media/assets?page=2`;
      return JSON.stringify(j);
    },
    teardown: async () => {
      await api.close();
      await emu.close();
      await storage.close();
    },
  };
});

// MK.IO's paged listing is the project's asset list ($skiptoken continuations); a file's version is
// its storage ETag (from a HEAD through the gateway), so a GET with another ETag is a changed file.
runPagingSuite('mkio (emulator, Azure-backed storage)', async () => {
  const az = await startAzurite();
  const emu = await startMkioEmulator({ azure: new AzureBacking(az.url, az.url) });
  await emu.createAsset('download', { storage: 'azure', subPath: 'incoming' });
  await emu.putFile('download', 'download.bin', PAGING_DOWNLOAD);
  const names = [...emu.seedMany(PAGED_ENTRIES, { prefix: 'p-', storage: 'azure' }), 'download'];
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({ sources: [{ name: 'mkio', type: 'mkio', baseUrl: emu.url, project: emu.project, token: MKIO_DEFAULT_TOKEN }] }).sources[0] as SourceConfigOf<'mkio'>;
      return new MkioProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: emu.knobs,
    folder: { path: '', scope: 'assets', names },
    virtual: { path: '', scope: 'assets', name: (i) => virtualName(i) },
    tokens: true,
    download: { path: 'download/download.bin', knobs: emu.knobs, versionIsStorageEtag: true },
    listRequests: () => emu.server.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/assets')).length,
    teardown: async () => {
      await emu.close();
      await az.stop();
    },
  };
});
