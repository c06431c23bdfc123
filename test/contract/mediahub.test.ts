import { runProviderContract } from './provider-suite.js';
import { MediahubProvider } from '../../src/providers/mediahub/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { startS3BackedStorage } from '../helpers/s3-backed.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';
import { MEDIAHUB_CLIENT, VIRTUAL_PIPELINE, startMediahubEmulator } from '@assetfs/lab/emulators/mediahub/index.js';

const PIPELINE = '5f1e0c2a9b3d4e6f70819a2b';

// Bytes live in s3rver; presigned URLs point at an expiry-enforcing fault proxy in front of it.
runProviderContract('mediahub (emulator)', async () => {
  const storage = await startS3BackedStorage('mediahub');
  const emu = await startMediahubEmulator({ s3: storage.backing });
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'xvid', type: 'mediahub', baseUrl: emu.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret, urlTtl: urlTtlMs }],
      }).sources[0] as SourceConfigOf<'mediahub'>;
      return new MediahubProvider(cfg, { log: silentLogger, listPageSize });
    },
    base: `${PIPELINE}/contract/`,
    nested: true,
    put: async (path, data) => {
      if (!path.startsWith(`${PIPELINE}/`)) throw new Error(`fixture writes only under ${PIPELINE}/`);
      await emu.putFile({ pipelineId: PIPELINE, objectKey: path.slice(PIPELINE.length + 1), bytes: data });
    },
    putMany: (count) => emu.seedMany(PIPELINE, 'many/', count),
    missingRefs: ['f:000000000000000000000000', `d:${PIPELINE}/nope/`, 'd:no-such-pipeline/', 'a:000000000000000000000000', 'i:000000000000000000000000:0'],
    teardown: async () => {
      await emu.close();
      await storage.close();
    },
  };
});

// The hostile-server cases (hostile-suite.ts): the MediaHub API behind one fault proxy, the download
// links (presigned S3 GETs) on the expiry-enforcing proxy in front of s3rver.
const HOSTILE_FILE = { path: `${PIPELINE}/hostile/hostile.bin`, data: deterministicBytes('hostile-mediahub', 300_001) };
runHostileSuite('mediahub (emulator)', { handsBackUrls: true }, async () => {
  const storage = await startS3BackedStorage('mediahub-hostile');
  const emu = await startMediahubEmulator({ s3: storage.backing });
  const api = await startFaultProxy(emu.url);
  await emu.putFile({ pipelineId: PIPELINE, objectKey: 'hostile/hostile.bin', bytes: HOSTILE_FILE.data });
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'xvid', type: 'mediahub', baseUrl: emu.baseUrl.replace(emu.url, api.url), clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret }],
      }).sources[0] as SourceConfigOf<'mediahub'>;
      return new MediahubProvider(cfg, { log: silentLogger, net });
    },
    api,
    storage: storage.proxy,
    storageTarget: storage.s3.url,
    format: 'json',
    file: HOSTILE_FILE,
    secrets: [MEDIAHUB_CLIENT.secret],
    listCall: (r) => r.method === 'GET' && /\/files\/?$/.test(r.path),
    readCall: (r) => r.method === 'GET', // the storage proxy serves only reads (writes go to s3rver directly)
    urlCall: (r) => r.method === 'GET' && r.path.endsWith('/files/downloads'),
    teardown: async () => {
      await api.close();
      await emu.close();
      await storage.close();
    },
  };
});

// MediaHub's listing is one flat catalog paged by start/limit: its knobs scope is '' (no pipeline
// filter), and generated files sit in VIRTUAL_PIPELINE/virtual/. Bytes in s3rver behind the proxy.
runPagingSuite('mediahub (emulator)', async () => {
  const storage = await startS3BackedStorage('mediahub');
  const emu = await startMediahubEmulator({ s3: storage.backing });
  await emu.putFile({ pipelineId: PIPELINE, objectKey: 'paging/download.bin', bytes: PAGING_DOWNLOAD });
  const folder = await emu.seedMany(PIPELINE, 'paged/', PAGED_ENTRIES);
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'xvid', type: 'mediahub', baseUrl: emu.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret }],
      }).sources[0] as SourceConfigOf<'mediahub'>;
      return new MediahubProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: emu.knobs,
    folder: { path: folder, scope: '', names: Array.from({ length: PAGED_ENTRIES }, (_, i) => `f-${String(i).padStart(5, '0')}`) },
    virtual: { path: `${VIRTUAL_PIPELINE}/virtual/`, scope: '', name: (i) => virtualName(i, '.bin') },
    tokens: false,
    parallelPages: true,
    download: { path: `${PIPELINE}/paging/download.bin`, knobs: storage.proxy.knobs, versionIsStorageEtag: false },
    listRequests: () => emu.server.requests().filter((r) => r.method === 'GET' && /\/v1\/files\/?$/.test(r.path)).length,
    teardown: async () => {
      await emu.close();
      await storage.close();
    },
  };
});
