import { randomUUID } from 'node:crypto';
import { runProviderContract } from './provider-suite.js';
import { NomadProvider } from '../../src/providers/nomad/index.js';
import { startNomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { startS3rver } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { silentLogger } from '../../src/util/logger.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';

const USER = { userName: 'contract@nomad.example', password: 'contract-pw' };

// Bytes in s3rver behind an expiry-enforcing proxy: fullUrls are real presigned S3 GETs that expire.
runProviderContract('nomad (emulator)', async () => {
  const s3 = await startS3rver({ buckets: ['nomad-media'] });
  const proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  const backing = new S3Backing(s3.url, proxy.url, 'nomad-media');
  const emu = await startNomadEmulator({ s3: backing, users: [USER] });
  const base = 'contract-bucket/contract/';
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      // Nomad decides URL lifetimes itself: the fixture tells the emulator.
      emu.urlTtlMs = urlTtlMs;
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'nomad', type: 'nomad', baseUrl: emu.url, username: USER.userName, password: USER.password, applicationId: randomUUID() }],
      }).sources[0] as SourceConfigOf<'nomad'>;
      return new NomadProvider(cfg, { log: silentLogger, listPageSize });
    },
    base,
    nested: true,
    put: async (path, data) => void (await emu.putPath(path, data)),
    putMany: async (count) => {
      await emu.seedMany(emu.ensurePath(`${base}many`), count);
      return `${base}many/`;
    },
    missingRefs: [randomUUID(), randomUUID()],
    expiredStatuses: [403],
    teardown: async () => {
      await emu.close();
      backing.close();
      await proxy.close();
      await s3.stop();
    },
  };
});

// The hostile-server cases (hostile-suite.ts): the Nomad API behind one fault proxy, the presigned
// fullUrls on the expiry-enforcing proxy in front of s3rver.
const HOSTILE_FILE = { path: 'hostile-bucket/hostile/hostile.bin', data: deterministicBytes('hostile-nomad', 300_001) };
runHostileSuite('nomad (emulator)', { handsBackUrls: true }, async () => {
  const s3 = await startS3rver({ buckets: ['nomad-hostile'] });
  const storage = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  const backing = new S3Backing(s3.url, storage.url, 'nomad-hostile');
  const emu = await startNomadEmulator({ s3: backing, users: [USER] });
  const api = await startFaultProxy(emu.url);
  await emu.putPath(HOSTILE_FILE.path, HOSTILE_FILE.data);
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'nomad', type: 'nomad', baseUrl: api.url, username: USER.userName, password: USER.password, applicationId: randomUUID() }],
      }).sources[0] as SourceConfigOf<'nomad'>;
      return new NomadProvider(cfg, { log: silentLogger, net });
    },
    api,
    storage,
    storageTarget: s3.url,
    format: 'json',
    file: HOSTILE_FILE,
    secrets: [USER.password],
    listCall: (r) => r.method === 'POST' && r.path === '/api/admin/search',
    readCall: (r) => r.method === 'GET', // the storage proxy serves only reads (writes go to s3rver directly)
    urlCall: (r) => r.path === '/api/admin/search' || r.path.startsWith('/api/admin/asset/'),
    teardown: async () => {
      await api.close();
      await emu.close();
      backing.close();
      await storage.close();
      await s3.stop();
    },
  };
});

// Nomad's listing is the search of one folder (pageOffset counts pages); bytes in s3rver behind the
// fault proxy, whose knobs change download ETags.
runPagingSuite('nomad (emulator)', async () => {
  const s3 = await startS3rver({ buckets: ['nomad-media'] });
  const proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  const backing = new S3Backing(s3.url, proxy.url, 'nomad-media');
  const emu = await startNomadEmulator({ s3: backing, users: [USER] });
  await emu.putPath('paging-bucket/download.bin', PAGING_DOWNLOAD);
  const paged = emu.ensurePath('paging-bucket/paged');
  const names = (await emu.seedMany(paged, PAGED_ENTRIES)).map((id) => emu.catalog.get(id)!.name);
  const virtual = emu.ensurePath('paging-bucket/virtual');
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'nomad', type: 'nomad', baseUrl: emu.url, username: USER.userName, password: USER.password, applicationId: randomUUID() }],
      }).sources[0] as SourceConfigOf<'nomad'>;
      return new NomadProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: emu.knobs,
    folder: { path: 'paging-bucket/paged/', scope: paged, names },
    virtual: { path: 'paging-bucket/virtual/', scope: virtual, name: (i) => virtualName(i, '.bin') },
    tokens: false,
    parallelPages: true,
    download: { path: 'paging-bucket/download.bin', knobs: proxy.knobs, versionIsStorageEtag: false },
    listRequests: () => emu.server.requests().filter((r) => r.path.endsWith('/search')).length,
    teardown: async () => {
      await emu.close();
      backing.close();
      await proxy.close();
      await s3.stop();
    },
  };
});
