/**
 * The fast receive path against the real storage servers: a multi-MiB object read in parts into 1 MiB
 * buffers through FastHttpTransport, from s3rver and from Azurite, is the object (sha256), every part
 * answered on the fast path over kept-alive connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, s3rverSource, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { seedAzure, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { createProvider } from '../../src/providers/registry.js';
import { silentLogger } from '../../src/util/logger.js';
import type { SourceConfig } from '../../src/config/schema.js';

const MiB = 1024 * 1024;
const OBJECT = randomBytes(12 * MiB + 12_345);
const sha256 = (b: Buffer | Buffer[]) => {
  const h = createHash('sha256');
  for (const x of Array.isArray(b) ? b : [b]) h.update(x);
  return h.digest('hex');
};

const SERVERS: Array<[string, () => Promise<{ server: StorageServer; source: Record<string, unknown> }>]> = [
  ['s3rver', async () => {
    const server = await startS3rver({ buckets: ['media'] });
    await seedS3(server.url, 'media', [{ path: 'big.bin', data: OBJECT }], 1);
    return { server, source: s3rverSource(server.url, 'media') };
  }],
  ['Azurite', async () => {
    const server = await startAzurite();
    await seedAzure(server, 'media', [{ path: 'big.bin', data: OBJECT }], 1);
    return { server, source: { name: 'blob', type: 'azure-blob', accountUrl: server.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY } };
  }],
];

describe.each(SERVERS)('FastHttpTransport against %s', (_name, start) => {
  let server: StorageServer;
  let source: SourceConfig;
  beforeAll(async () => {
    const s = await start();
    server = s.server;
    source = ConfigSchema.parse({ sources: [s.source] }).sources[0]!;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('reads a multi-MiB object in parts into 1 MiB buffers, byte-exact, on the fast path', async () => {
    const provider = await createProvider(source, { log: silentLogger });
    const transport = new FastHttpTransport({ requestTimeoutMs: 10_000 });
    try {
      const st = await provider.stat('big.bin');
      const obj = { source: source.name, ref: st.ref, version: st.version, size: st.size };
      const loc = await provider.locate(obj);
      const blocks: Buffer[] = [];
      const part = 5 * MiB - 3; // parts and blocks out of step, so parts end inside blocks
      const parts = [];
      for (let start = 0; start < st.size; start += part) parts.push({ start, end: Math.min(st.size, start + part) });
      // Two at a time, as readahead keeps several parts in flight.
      for (let i = 0; i < parts.length; i += 2) {
        const batch = parts.slice(i, i + 2).map((r) => {
          const into: Buffer[] = [];
          for (let at = r.start; at < r.end; ) {
            const len = Math.min(MiB - (at % MiB), r.end - at);
            into.push(Buffer.alloc(len));
            at += len;
          }
          return { r, into };
        });
        await Promise.all(batch.map(({ r, into }) => transport.readRangeInto(loc, r, obj, into)));
        for (const { into } of batch) blocks.push(...into);
      }
      expect(sha256(blocks)).toBe(sha256(OBJECT));
      expect(transport.stats()).toEqual({ fast: parts.length, fallback: {}, resent: 0 });
    } finally {
      await transport.close();
      await provider.close();
    }
  });
});
