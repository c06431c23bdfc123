/**
 * The daemon's metrics: one prom-client Registry per daemon, owned by it and handed to the parts that
 * count (no default registry, nothing at module level). Every series is listed in docs/operations.md
 * ("Metrics"); names follow Prometheus conventions: base units (seconds, bytes), `_total` on counters.
 *
 * Two ways in:
 *  - counted: the FUSE adapter, the read path, the dir and locator caches and the upload engine hold
 *    meters (FuseMeter, SourceMeter) whose series they increment directly, without allocating;
 *  - read at scrape time: figures the components already keep (cache sizes and hit counts, metadata
 *    lookups, upload queue, the health board's state of each source), through the readers given to
 *    readFrom().
 */
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { FsError, NotFoundError, ExpiredError, AuthError, StaleError, TransientError, isAbort } from '../core/errors.js';
import { CounterFamily, GaugeFamily, HistogramFamily, type Family, type HistogramSeries, type Series } from './families.js';

export type OriginKind = 'api' | 'read' | 'upload';
export type CacheTier = 'memory' | 'disk';

/** FUSE request durations: 50 µs (answered from memory) to 30 s (a read waiting out retries). */
const FUSE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Time to the first byte of a ranged GET. */
const FIRST_BYTE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20];

/** errno → name; of two names for one number (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP) the first listed. */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno as Record<string, number>).reverse().map(([name, n]) => [n, name]));

/** What the scrape reads from the components (set once the daemon has built them). */
export interface MetricReaders {
  caches(): Record<CacheTier, { bytes: number; hits: number; misses: number; evictions: number }>;
  /** Name lookups answered by the dir cache (vfs/dir-cache.ts). */
  metadata(): { hit: number; miss: number; negative: number };
  uploads(): { queued: number; uploading: number; failed: number };
  /** Whether a source is up on the health board (daemon/health.ts isUp). */
  sourceUp(source: string): boolean;
  /** The farm's shared tier (src/farm), when configured: no shared series without it. */
  shared?(): { state: 'closed' | 'open' | 'half-open'; hits: number; misses: number; corrupt: number; bytesRead: number; bytesWritten: number };
}

/** The meter of one FUSE operation: a request ends with its result (negative: an errno). */
export class OpMeter {
  private readonly errors = new Map<number, Series>();

  constructor(
    private readonly op: string,
    private readonly requests: Series,
    private readonly duration: HistogramSeries,
    private readonly errorFamily: CounterFamily,
  ) {}

  /** `startedMs` from performance.now() when the request came in. */
  end(startedMs: number, result: number): void {
    this.requests.value++;
    this.duration.observe((performance.now() - startedMs) / 1000);
    if (result < 0) this.error(-result).value++;
  }

  private error(errno: number): Series {
    let s = this.errors.get(errno);
    if (!s) this.errors.set(errno, (s = this.errorFamily.with(this.op, ERRNO_NAMES.get(errno) ?? `errno${errno}`)));
    return s;
  }
}

export class FuseMeter {
  private readonly ops = new Map<string, OpMeter>();

  constructor(
    private readonly requests: CounterFamily,
    private readonly duration: HistogramFamily,
    private readonly errors: CounterFamily,
  ) {}

  /** The meter of `op` (a FUSE operation name: a fixed set): keep it. */
  op(op: string): OpMeter {
    let m = this.ops.get(op);
    if (!m) this.ops.set(op, (m = new OpMeter(op, this.requests.with(op), this.duration.with(op), this.errors)));
    return m;
  }
}

/**
 * The `code` label of an origin request: the HTTP status when the origin answered (from the error
 * when the request failed: a TransientError's status, the status an error class stands for, or the
 * `HTTP nnn` both HTTP clients put in their messages), `error` when no answer came (reset, timeout,
 * refused connection), `aborted` when we gave up on it.
 */
export function originCode(e: unknown, success = 200): number | string {
  if (e === undefined) return success;
  if (isAbort(e)) return 'aborted';
  if (e instanceof TransientError && e.status !== undefined) return e.status;
  if (e instanceof NotFoundError) return 404;
  if (e instanceof StaleError) return 412;
  const http = e instanceof Error ? /\bHTTP (\d{3})\b/.exec(e.message) : null;
  if (http) return Number(http[1]);
  if (e instanceof ExpiredError || e instanceof AuthError) return 403;
  return e instanceof FsError && e.code !== 'EIO' ? e.code : 'error';
}

/** The counting side of one source (its name is the only label value these series add). */
export class SourceMeter {
  private readonly requests: Record<OriginKind, Map<number | string, Series>> = { api: new Map(), read: new Map(), upload: new Map() };
  private readonly bytesIn: Series;
  private readonly bytesOut: Series;
  private readonly firstByteSeries: HistogramSeries;
  private readonly uploadBytes: Series;
  private readonly uploadFailures: Series;
  private readonly refreshes: Record<'expired' | 'refused', Series>;

  constructor(
    readonly source: string,
    private readonly metricFamilies: Families,
  ) {
    this.bytesIn = metricFamilies.originBytes.with(source, 'in');
    this.bytesOut = metricFamilies.originBytes.with(source, 'out');
    this.firstByteSeries = metricFamilies.firstByte.with(source);
    this.uploadBytes = metricFamilies.uploadBytes.with(source);
    this.uploadFailures = metricFamilies.uploadFailures.with(source);
    this.refreshes = { expired: metricFamilies.urlRefreshes.with(source, 'expired'), refused: metricFamilies.urlRefreshes.with(source, 'refused') };
  }

  /** One request to the origin ended; `e` is its error, if it failed. */
  request(kind: OriginKind, e?: unknown, success = 200): void {
    const code = originCode(e, success);
    const byCode = this.requests[kind];
    let s = byCode.get(code);
    if (!s) byCode.set(code, (s = this.metricFamilies.originRequests.with(this.source, kind, String(code))));
    s.value++;
  }

  /**
   * One ranged GET of `bytes` bytes: `get` runs it with an onProgress that notes the time to the first
   * byte before passing progress on; the request is counted with its outcome, its bytes on success.
   */
  async rangedGet(bytes: number, onProgress: (filled: number) => void, get: (onProgress: (filled: number) => void) => Promise<void>): Promise<void> {
    const sentMs = performance.now();
    let waiting = true;
    try {
      await get((filled) => {
        if (waiting) {
          waiting = false;
          this.firstByteSeries.observe((performance.now() - sentMs) / 1000);
        }
        onProgress(filled);
      });
    } catch (e) {
      this.request('read', e);
      throw e;
    }
    this.request('read', undefined, 206);
    this.bytesIn.value += bytes;
  }

  bytes(direction: 'in' | 'out', n: number): void {
    (direction === 'in' ? this.bytesIn : this.bytesOut).value += n;
  }

  /** A signed URL was minted again: `expired` (its lifetime ran out), `refused` (the origin answered 401/403). */
  urlRefresh(reason: 'expired' | 'refused'): void {
    this.refreshes[reason].value++;
  }

  /**
   * One upload part of `bytes` bytes, sent by `send`: counted as a request (kind upload) with its
   * outcome and as bytes out; its bytes count as uploaded once the platform confirmed it.
   */
  async uploadPart<T>(bytes: number, send: () => Promise<T>): Promise<T> {
    this.bytesOut.value += bytes;
    let receipt: T;
    try {
      receipt = await send();
    } catch (e) {
      this.request('upload', e);
      throw e;
    }
    this.request('upload');
    this.uploadBytes.value += bytes;
    return receipt;
  }

  /** An upload attempt failed (it is retried later). */
  uploadFailed(): void {
    this.uploadFailures.value++;
  }
}

type Families = ReturnType<typeof families>;

function families(registry: Registry, readers: () => MetricReaders | undefined, sources: () => Iterable<SourceMeter>) {
  /** Sets a family's series from a reader at scrape time (nothing before the daemon gave its readers). */
  const from = <T>(read: (r: MetricReaders) => T, set: (f: Family<Series>, v: T) => void) => (f: Family<Series>) => {
    const r = readers();
    if (r) set(f, read(r));
  };
  const perTier = (set: (f: Family<Series>, tier: string, s: ReturnType<MetricReaders['caches']>[CacheTier]) => void) =>
    from((r) => r.caches(), (f, caches) => {
      for (const [tier, s] of Object.entries(caches)) set(f, tier, s);
    });
  return {
    fuseRequests: new CounterFamily(registry, 'assetfs_fuse_requests_total', 'FUSE requests answered, by operation.', ['op']),
    fuseDuration: new HistogramFamily(registry, 'assetfs_fuse_request_duration_seconds', 'Time from a FUSE request to its answer.', ['op'], FUSE_BUCKETS),
    fuseErrors: new CounterFamily(registry, 'assetfs_fuse_errors_total', 'FUSE requests answered with an error, by operation and errno.', ['op', 'errno']),
    originRequests: new CounterFamily(registry, 'assetfs_origin_requests_total', 'Requests to the origin, by source, kind (api, read, upload) and HTTP status (or error).', ['source', 'kind', 'code']),
    firstByte: new HistogramFamily(registry, 'assetfs_origin_first_byte_seconds', 'Time from a ranged GET to the first byte of its body.', ['source'], FIRST_BYTE_BUCKETS),
    originBytes: new CounterFamily(registry, 'assetfs_origin_bytes_total', 'Payload bytes moved to or from the origin: reads (in) and upload parts sent (out).', ['source', 'direction']),
    cacheLookups: new CounterFamily(registry, 'assetfs_cache_lookups_total', 'Block cache lookups, by tier and result.', ['tier', 'result'], perTier((f, tier, s) => {
      f.with(tier, 'hit').value = s.hits;
      f.with(tier, 'miss').value = s.misses;
    })),
    cacheBytes: new GaugeFamily(registry, 'assetfs_cache_bytes', 'Bytes held by the block cache, by tier (on disk: pinned blocks included).', ['tier'], perTier((f, tier, s) => {
      f.with(tier).value = s.bytes;
    })),
    cacheEvictions: new CounterFamily(registry, 'assetfs_cache_evictions_total', 'Blocks evicted to make room, by tier.', ['tier'], perTier((f, tier, s) => {
      f.with(tier).value = s.evictions;
    })),
    metadataLookups: new CounterFamily(
      registry, 'assetfs_metadata_lookups_total', 'Name lookups in directory listings: hit (cached listing), miss (listing fetched), negative (no such name, from cache).', ['result'],
      from((r) => r.metadata(), (f, m) => {
        for (const result of ['hit', 'miss', 'negative'] as const) f.with(result).value = m[result];
      }),
    ),
    uploads: new GaugeFamily(registry, 'assetfs_uploads', 'Upload jobs, by state (queued, uploading, failed).', ['state'], from((r) => r.uploads(), (f, u) => {
      for (const state of ['queued', 'uploading', 'failed'] as const) f.with(state).value = u[state];
    })),
    uploadBytes: new CounterFamily(registry, 'assetfs_upload_bytes_total', 'Bytes of upload parts the platform confirmed.', ['source']),
    uploadFailures: new CounterFamily(registry, 'assetfs_upload_failures_total', 'Upload attempts that failed (each is retried later).', ['source']),
    urlRefreshes: new CounterFamily(registry, 'assetfs_url_refreshes_total', 'Signed read URLs minted again, by reason (expired, refused).', ['source', 'reason']),
    sharedState: new GaugeFamily(registry, 'assetfs_shared_state', "The shared tier's circuit breaker: 1 for its current state (closed: in use; open or half-open: reads go to the origin).", ['state'], (f) => {
      const s = readers()?.shared?.();
      if (s) for (const state of ['closed', 'open', 'half-open'] as const) f.with(state).value = s.state === state ? 1 : 0;
    }),
    sharedLookups: new CounterFamily(registry, 'assetfs_shared_lookups_total', 'Blocks looked up in the shared tier after missing memory and disk: hit, miss (fetched from the origin), corrupt (failed its check, refetched).', ['result'], (f) => {
      const s = readers()?.shared?.();
      if (s) {
        f.with('hit').value = s.hits;
        f.with('miss').value = s.misses;
        f.with('corrupt').value = s.corrupt;
      }
    }),
    sharedBytes: new CounterFamily(registry, 'assetfs_shared_bytes_total', 'Block bytes read from (in) and written to (out) the shared tier.', ['direction'], (f) => {
      const s = readers()?.shared?.();
      if (s) {
        f.with('in').value = s.bytesRead;
        f.with('out').value = s.bytesWritten;
      }
    }),
    sourceUp: new GaugeFamily(
      registry, 'assetfs_source_up', '1 while the source is ok (or not used yet), 0 while it fails: login refused, unreachable or misconfigured (as assetfs status shows).', ['source'],
      (f) => {
        const r = readers();
        for (const m of sources()) f.with(m.source).value = r && !r.sourceUp(m.source) ? 0 : 1;
      },
    ),
  };
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly fuse: FuseMeter;
  private readonly sources = new Map<string, SourceMeter>();
  private readers: MetricReaders | undefined;

  constructor(sources: readonly string[]) {
    collectDefaultMetrics({ register: this.registry });
    const f = families(this.registry, () => this.readers, () => this.sources.values());
    this.fuse = new FuseMeter(f.fuseRequests, f.fuseDuration, f.fuseErrors);
    for (const s of sources) this.sources.set(s, new SourceMeter(s, f));
  }

  /** The meter of a configured source (undefined for any other name: label values stay bounded). */
  source(name: string): SourceMeter | undefined {
    return this.sources.get(name);
  }

  /** Figures read at scrape time from components built after the meters. */
  readFrom(readers: MetricReaders): void {
    this.readers = readers;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format (Prometheus 0.0.4). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
