import { runProviderContract } from './provider-suite.js';
import { WordbeeProvider } from '../../src/providers/wordbee/index.js';
import { encodeRef } from '../../src/providers/wordbee/refs.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { VIRTUAL_DOCUMENT, VIRTUAL_SEGMENT_BASE, startWordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';

const SEGMENT = 27_665_601;
const LOCALE_DIR = `pr7214/19641/${SEGMENT}/en/`;

// Wordbee's access is an API token, not a signed URL: the suite revokes it instead of waiting for a TTL.
runProviderContract('wordbee (emulator)', async () => {
  const emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
  emu.catalog.addDocument(7214, 19641, 'folder\\contract.docx');
  emu.catalog.addSegment(19641, SEGMENT);
  return {
    provider: ({ listPageSize }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'wb', type: 'wordbee', baseUrl: emu.apiUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214'] }],
      }).sources[0] as SourceConfigOf<'wordbee'>;
      return new WordbeeProvider(cfg, { log: silentLogger, listPageSize });
    },
    base: `${LOCALE_DIR}contract/`,
    nested: true,
    put: async (path, data) => {
      const parts = path.slice(LOCALE_DIR.length).split('/');
      const name = parts.pop()!;
      await emu.catalog.putAsset(SEGMENT, 'en', parts.join('\\'), name, data);
    },
    putMany: async (count) => {
      await emu.seedMany(SEGMENT, 'en', 'many', count);
      return `${LOCALE_DIR}many/`;
    },
    missingRefs: [
      encodeRef({ kind: 'file', scope: 'pr7214', doc: 19641, seg: SEGMENT, locale: 'en', rel: ['contract'], name: 'nope.bin' }),
      encodeRef({ kind: 'dir', scope: 'pr7214', doc: 99999, rel: [] }),
    ],
    expiredStatuses: [400, 401],
    revokeAccess: async () => emu.expireTokens(),
    teardown: () => emu.close(),
  };
});

// The hostile-server cases (hostile-suite.ts): Wordbee's downloads are API GETs with the session's
// X-Auth-Token, so one fault proxy in front of the emulator is both the API and the storage.
const HOSTILE_KEY = 'hostile-wordbee-api-key';
const HOSTILE_FILE = { path: `${LOCALE_DIR}hostile/hostile.bin`, data: deterministicBytes('hostile-wordbee', 300_001) };
runHostileSuite('wordbee (emulator)', {}, async () => {
  const emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: HOSTILE_KEY }] });
  emu.catalog.addDocument(7214, 19641, 'folder\\hostile.docx');
  emu.catalog.addSegment(19641, SEGMENT);
  await emu.catalog.putAsset(SEGMENT, 'en', 'hostile', 'hostile.bin', HOSTILE_FILE.data);
  const api = await startFaultProxy(emu.url);
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'wb', type: 'wordbee', baseUrl: `${api.url}/api`, accountId: 'acme', apiKey: HOSTILE_KEY, scopes: ['pr7214'] }],
      }).sources[0] as SourceConfigOf<'wordbee'>;
      return new WordbeeProvider(cfg, { log: silentLogger, net });
    },
    api,
    storage: api,
    storageTarget: emu.url,
    format: 'json',
    file: HOSTILE_FILE,
    secrets: [HOSTILE_KEY],
    listCall: (r) => /\/list$/.test(r.path) || r.path.endsWith('/segments/search'),
    readCall: (r) => r.method === 'GET' && /^\/api\/resources\/assets\/\d+$/.test(r.path) && r.query.includes('hostile.bin'),
    teardown: async () => {
      await api.close();
      await emu.close();
    },
  };
});

// Wordbee's only paged listing is the segment search of a scope (skip/take): the paged folder is a
// document of many segments; generated segments belong to VIRTUAL_DOCUMENT.
runPagingSuite('wordbee (emulator)', async () => {
  const emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
  emu.catalog.addDocument(7214, 19641, 'download.docx');
  emu.catalog.addSegment(19641, SEGMENT);
  await emu.catalog.putAsset(SEGMENT, 'en', '', 'download.bin', PAGING_DOWNLOAD);
  emu.catalog.addDocument(7214, 19642, 'paged.docx');
  const names = Array.from({ length: PAGED_ENTRIES }, (_, i) => String(emu.catalog.addSegment(19642, 30_000_000 + i).id));
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 'wb', type: 'wordbee', baseUrl: emu.apiUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214'] }],
      }).sources[0] as SourceConfigOf<'wordbee'>;
      return new WordbeeProvider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: emu.knobs,
    folder: { path: 'pr7214/19642/', scope: 'pr7214', names },
    virtual: { path: `pr7214/${VIRTUAL_DOCUMENT}/`, scope: 'pr7214', name: (i) => String(VIRTUAL_SEGMENT_BASE + i) },
    tokens: false,
    parallelPages: true,
    download: { path: `${LOCALE_DIR}download.bin`, knobs: emu.knobs, versionIsStorageEtag: false },
    listRequests: () => emu.server.requests().filter((r) => r.path.endsWith('/segments/search')).length,
    teardown: () => emu.close(),
  };
});
