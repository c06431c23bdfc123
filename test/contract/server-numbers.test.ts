/**
 * Numbers from a server are checked (providers/common/entry-numbers.ts), on every source type: each
 * platform's API (and S3's, Azure's storage listing) is reached through a proxy that rewrites the size
 * and time fields of its answers into values the platform's documentation does not rule out but no
 * sane file has — negative, fractional, 2^64−1, .NET's year 1, 1970, garbage. Every file of a listed
 * folder must come out with size 0, unreadable (EIO), mtime unknown, and one log line per entry and
 * field however often the folder is listed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { ConfigSchema, type SourceConfig } from '../../src/config/schema.js';
import { createProvider } from '../../src/providers/registry.js';
import { UNKNOWN_MTIME } from '../../src/providers/common/entry-numbers.js';
import { startPlatformLab, type PlatformLab } from '@assetfs/lab/demo/lab.js';
import { silentLogger } from '../../src/util/logger.js';
import { capturingLogger } from '../helpers/capture-log.js';
import { rewriteJsonKeys, startRewritingProxy, type RewritingProxy } from '../helpers/rewriting-proxy.js';

interface Case {
  /** The lab's source name. */
  source: string;
  /** The config key holding the URL to put the proxy in front of. */
  urlKey: string;
  /** The folder to list (mount-relative below the source); '' = the first folder with files. */
  folder: string;
  rewrite(body: string): string;
}

const CASES: Case[] = [
  {
    source: 's3', urlKey: 'endpoint', folder: '',
    rewrite: (b) => b.replace(/<Size>\d+<\/Size>/g, '<Size>-1</Size>').replace(/<LastModified>[^<]*<\/LastModified>/g, '<LastModified>1970-01-01T00:00:00.000Z</LastModified>'),
  },
  {
    source: 'blob', urlKey: 'accountUrl', folder: '',
    rewrite: (b) => b.replace(/<Content-Length>\d+<\/Content-Length>/g, '<Content-Length>-7</Content-Length>')
      .replace(/<Last-Modified>[^<]*<\/Last-Modified>/g, '<Last-Modified>Thu, 01 Jan 1970 00:00:00 GMT</Last-Modified>'),
  },
  { source: 'wordbee', urlKey: 'baseUrl', folder: 'pr7214/19641/27665601/en/videos', rewrite: (b) => rewriteJsonKeys(b, { size: 1.5, modifiedDate: '0001-01-01T00:00:00' }) },
  { source: 'mkio', urlKey: 'baseUrl', folder: 'launch-teaser', rewrite: (b) => rewriteJsonKeys(b, { size: '-1', lastModified: 'not a date' }) },
  { source: 'ams', urlKey: 'restUrl', folder: 'Launch Teaser', rewrite: (b) => rewriteJsonKeys(b, { ContentFileSize: '18446744073709551615', LastModified: '/Date(-62135596800000)/' }) },
  { source: 'nomad', urlKey: 'baseUrl', folder: 'media-bucket/Projects/2026/Launch', rewrite: (b) => rewriteJsonKeys(b, { contentLength: -5, lastModifiedDate: '9999-12-31T23:59:59Z', createdDate: null }) },
  { source: 'mediahub', urlKey: 'baseUrl', folder: 'pl-launch/uploads', rewrite: (b) => rewriteJsonKeys(b, { size: Number.MAX_SAFE_INTEGER * 4, updated_at: 0, created_at: 0 }) },
];

let lab: PlatformLab;

beforeAll(async () => {
  lab = await startPlatformLab({ log: silentLogger, bigFileBytes: 64 * 1024 });
  lab.mkio.listingDetail = true; // rows then carry etag and lastModified: the listing's numbers are what the entry shows
}, 300_000);
afterAll(async () => lab?.stop());

async function list(p: Provider, ref: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(ref)) out.push(e);
  return out;
}

/** The folder at `path`, or (path '') the first folder with files, breadth first. */
async function folderRef(p: Provider, path: string): Promise<string> {
  let ref = '';
  for (const seg of path.split('/').filter(Boolean)) {
    const next = (await list(p, ref)).find((e) => e.name === seg && e.kind === 'dir');
    if (!next) throw new Error(`no folder "${seg}" on the way to ${path}`);
    ref = next.ref;
  }
  if (path) return ref;
  const queue = [''];
  while (queue.length) {
    const r = queue.shift()!;
    const entries = await list(p, r);
    if (entries.some((e) => e.kind === 'file')) return r;
    queue.push(...entries.filter((e) => e.kind === 'dir').map((e) => e.ref));
  }
  throw new Error('no folder with files');
}

describe.each(CASES)('numbers from $source', (c) => {
  let proxy: RewritingProxy;
  let p: Provider;
  let captured: ReturnType<typeof capturingLogger>;
  beforeAll(async () => {
    const base = lab.sources.find((s) => s.name === c.source)!;
    proxy = await startRewritingProxy(String(base[c.urlKey]), c.rewrite);
    captured = capturingLogger();
    const cfg = ConfigSchema.parse({ sources: [{ ...base, [c.urlKey]: proxy.url }] }).sources[0] as SourceConfig;
    p = await createProvider(cfg, { log: captured.log });
  });
  afterAll(async () => {
    await p?.close();
    await proxy?.close();
  });

  it('shows no bad size or time as real: size 0, unreadable EIO, time unknown; one log line per entry', async () => {
    const ref = await folderRef(p, c.folder);
    await list(p, ref);
    const files = (await list(p, ref)).filter((e) => e.kind === 'file');
    expect(proxy.rewritten).toBeGreaterThan(0);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(f.size, f.name).toBe(0);
      expect(f.unreadable?.code, f.name).toBe('EIO');
      expect(f.unreadable?.reason).toMatch(/the server sent (size|no size)/);
      expect(f.mtimeMs, f.name).toBe(UNKNOWN_MTIME);
    }
    await new Promise((r) => setImmediate(r));
    const refs = new Set(files.map((f) => f.ref));
    const sizeLines = captured.lines.filter((l) => l.field === 'size' && refs.has(String(l.ref)));
    expect(sizeLines.map((l) => l.ref).sort()).toEqual([...refs].sort()); // once each, though listed twice
    expect(sizeLines[0]!.msg).toMatch(new RegExp(`^${c.source === 'blob' ? 'azure-blob' : c.source} source "${c.source}": ".+": the server sent size`));
  });
});
