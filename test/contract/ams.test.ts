import { runProviderContract } from './provider-suite.js';
import { AmsProvider } from '../../src/providers/ams/index.js';
import { startAmsEmulator } from '@assetfs/lab/emulators/ams/index.js';
import { AzureBacking } from '@assetfs/lab/emulators/common/backing.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { startAzurite } from '@assetfs/lab/emulators/storage-servers.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';

// Bytes live in Azurite, which checks the locators' SAS (stored access policies) itself; the platform API
// is the AMS emulator. An asset is one flat container, so the suite's folder is an asset. The backing's
// public URL is the proxy's bare origin (as the demo passes it); the emulator adds Azurite's account segment.
runProviderContract('ams (emulator)', async () => {
  const azurite = await startAzurite();
  const proxy = await startFaultProxy(azurite.url);
  const emu = await startAmsEmulator({ azure: new AzureBacking(azurite.url, proxy.url) });
  const assetId = (name: string) => emu.findAsset(name) ?? emu.createAsset(name);
  const base = assetId('contract-asset');
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'ams', type: 'ams', restUrl: emu.apiUrl, tokenUrl: emu.tokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, urlTtl: urlTtlMs }],
      }).sources[0] as SourceConfigOf<'ams'>;
      return new AmsProvider(cfg, { log: silentLogger, listPageSize });
    },
    base: 'contract-asset/',
    nested: false,
    put: async (path, data) => {
      const [asset, file, ...rest] = path.split('/');
      if (!asset || !file || rest.length) throw new Error(`AMS paths are <asset>/<file>, not ${path}`);
      await emu.putFile(assetId(asset), file, data);
    },
    putMany: async (count) => {
      emu.seedFiles(assetId('many'), Array.from({ length: count }, (_, i) => `f-${String(i).padStart(5, '0')}.bin`));
      return 'many/';
    },
    missingRefs: ['nb:cid:UUID:00000000-0000-0000-0000-000000000000/', `${base}/nb:cid:UUID:00000000-0000-0000-0000-000000000001`],
    teardown: async () => {
      await emu.close();
      await proxy.close();
      await azurite.stop();
    },
  };
});

// The hostile-server cases (hostile-suite.ts): the AMS API behind one fault proxy, the asset's storage
// (Azurite, SAS locators) behind another. The token endpoint is configured apart, as in real AMS.
const HOSTILE_FILE = { path: 'hostile-asset/hostile.bin', data: deterministicBytes('hostile-ams', 300_001) };
runHostileSuite('ams (emulator)', { handsBackUrls: true, nextLinks: true }, async () => {
  const azurite = await startAzurite();
  const storage = await startFaultProxy(azurite.url);
  const emu = await startAmsEmulator({ azure: new AzureBacking(azurite.url, storage.url) });
  const api = await startFaultProxy(emu.url);
  await emu.putFile(emu.createAsset('hostile-asset'), 'hostile.bin', HOSTILE_FILE.data);
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'ams', type: 'ams', restUrl: `${api.url}/api/`, tokenUrl: emu.tokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret }],
      }).sources[0] as SourceConfigOf<'ams'>;
      return new AmsProvider(cfg, { log: silentLogger, net });
    },
    api,
    storage,
    storageTarget: new URL(azurite.url).origin,
    format: 'json',
    file: HOSTILE_FILE,
    secrets: [emu.clientSecret],
    listCall: (r) => r.method === 'GET' && /\/api\/Assets/.test(r.path) && /(\$|%24)skip/.test(r.query),
    readCall: (r) => r.method === 'GET' && r.path.endsWith('/hostile.bin'),
    urlCall: (r) => r.method === 'POST' && r.path.endsWith('/Locators'),
    // Every listing page claims that more follows, at another origin (verbose `__next` and light `odata.nextLink`).
    pointNextElsewhere: (body, elsewhere) => {
      const j = JSON.parse(body) as { d?: { results?: unknown[]; __next?: string }; 'odata.nextLink'?: string };
      const next = `${elsewhere}/api/Assets?$skip=1`;
      if (j.d && Array.isArray(j.d.results)) j.d.__next = next;
      else j['odata.nextLink'] = next;
      return JSON.stringify(j);
    },
    teardown: async () => {
      await api.close();
      await emu.close();
      await storage.close();
      await azurite.stop();
    },
  };
});

// AMS pages sets with $skip/$top; a knobbed page is cut without a __next. Bytes in Azurite behind the
// fault proxy, whose knobs change download ETags; versions are AMS revisions, not blob ETags.
runPagingSuite('ams (emulator)', async () => {
  const azurite = await startAzurite();
  const proxy = await startFaultProxy(azurite.url);
  const emu = await startAmsEmulator({ azure: new AzureBacking(azurite.url, proxy.url) });
  const dl = emu.createAsset('paging-download');
  await emu.putFile(dl, 'download.bin', PAGING_DOWNLOAD);
  const paged = emu.createAsset('paging-paged');
  const names = Array.from({ length: PAGED_ENTRIES }, (_, i) => `p-${String(i).padStart(5, '0')}.bin`);
  emu.seedFiles(paged, names);
  const virtual = emu.createAsset('paging-virtual');
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'ams', type: 'ams', restUrl: emu.apiUrl, tokenUrl: emu.tokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret }],
      }).sources[0] as SourceConfigOf<'ams'>;
      return new AmsProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: emu.knobs,
    folder: { path: 'paging-paged/', scope: `Assets('${paged}')/Files`, names },
    virtual: { path: 'paging-virtual/', scope: `Assets('${virtual}')/Files`, name: (i) => virtualName(i, '.bin') },
    tokens: false,
    download: { path: 'paging-download/download.bin', knobs: proxy.knobs, versionIsStorageEtag: false },
    listRequests: () => emu.server.requests().filter((r) => r.method === 'GET' && /\/Files\/?$/.test(r.path)).length,
    teardown: async () => {
      await emu.close();
      await proxy.close();
      await azurite.stop();
    },
  };
});
