/** `assetfs status`: asks the running daemon over its control socket and prints for people or scripts. */
import { formatBytes } from '../config/units.js';
import { callControl } from './control.js';
import cliProgress from 'cli-progress';
import type { UploadJobStatus, UploadsStatus } from '../upload/service.js';
import { isUp } from './health.js';
import type { SourceStatus, StatusDoc } from './status-doc.js';

export type { SourceStatus, StatusDoc };
import type { ClusterHost } from '../farm/heartbeat.js';
import type { SharedTierStatus } from '../farm/index.js';

export interface ClusterDoc {
  /** The asking daemon's owner id. */
  self: string;
  /** False when Redis did not answer (the list is then empty). */
  available: boolean;
  hosts: ClusterHost[];
}

const BAR = 24;

const failing = (sources: readonly SourceStatus[]) => sources.filter((s) => s.health && !isUp(s.health.state)).length;

function bar(done: number, total: number): string {
  const f = total > 0 ? Math.min(1, done / total) : 1;
  return cliProgress.Format.BarFormat(f, { barsize: BAR, barCompleteString: '█'.repeat(BAR), barIncompleteString: '░'.repeat(BAR), barGlue: '' });
}

function eta(sec: number | null): string {
  if (sec === null) return '';
  return sec >= 3600 ? `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, '0')}m` : sec >= 60 ? `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s` : `${sec}s`;
}

function uploadLine(j: UploadJobStatus): string {
  const pct = j.size > 0 ? Math.floor((100 * j.bytesDone) / j.size) : 100;
  return `  ${bar(j.bytesDone, j.size)} ${String(pct).padStart(3)}%  ${formatBytes(j.bytesDone)}/${formatBytes(j.size)}  ${formatBytes(j.rate)}/s  ETA ${eta(j.etaSec) || '?'}  ${j.remote}`;
}

export function renderUploads(u: UploadsStatus | undefined): string[] {
  if (!u) return ['uploads:    (daemon without an upload engine)'];
  const lines = [`uploads:    ${u.active.length} uploading, ${u.queued.length} queued, ${u.failed.length} failed${u.syncs.length ? `; watching ${u.syncs.map((s) => `${s.local} → ${s.remote}`).join(', ')}` : ''}`];
  for (const s of u.syncs) if (s.paused) lines.push(`  PAUSED    ${s.local} → ${s.remote}: ${s.paused.message}`);
  for (const j of u.active) lines.push(uploadLine(j));
  for (const j of u.queued) lines.push(`  queued    ${formatBytes(j.size).padStart(9)}  ${j.remote}${j.lastError ? `  (${j.lastError})` : ''}`);
  for (const j of u.failed) {
    lines.push(j.needsAttention
      ? `  ATTENTION ${formatBytes(j.size).padStart(9)}  ${j.remote}  refused at attempt ${j.attempts}, not retried until assetfs retry: ${j.lastError}`
      : `  FAILED    ${formatBytes(j.size).padStart(9)}  ${j.remote}  attempt ${j.attempts}, retry in ${j.nextAttemptInSec}s (assetfs retry: now): ${j.lastError}`);
  }
  for (const j of u.recent.slice(0, 5)) lines.push(`  ${j.state === 'done' ? 'done     ' : 'cancelled'} ${formatBytes(j.size).padStart(9)}  ${j.remote}${j.state !== 'done' && j.lastError ? `  (${j.lastError})` : ''}${j.conflictOf ? `  (CONFLICT: ${j.conflictOf} had changed; ours went up beside it)` : ''}`);
  const more = (n: number | undefined, shown: number) => (n !== undefined && n > shown ? [`  … and ${n - shown} more`] : []);
  lines.push(...more(u.counts?.queued, u.queued.length), ...more(u.counts?.failed, u.failed.length));
  if (u.journal?.setAside) lines.push(`  JOURNAL SET ASIDE as ${u.journal.setAside} (${u.journal.setAsideCause}); a fresh one was started and staged files rescanned`);
  if (u.journal?.lastError) lines.push(`  JOURNAL ERROR ${u.journal.lastError.at} in ${u.journal.lastError.op}: ${u.journal.lastError.code}: ${u.journal.lastError.message} (${u.journal.errors} so far)`);
  return lines;
}

export function renderWrites(w: StatusDoc['writes']): string[] {
  if (!w) return [];
  const lines = [`writes:     ${w.files} staged (${formatBytes(w.bytes)}), ${w.attention.length} need${w.attention.length === 1 ? 's' : ''} attention`];
  for (const a of w.attention) lines.push(`  ATTENTION ${formatBytes(a.size).padStart(9)}  ${a.path}  kept at ${a.staged}: ${a.reason} (assetfs retry ${a.path}: upload it as it is; assetfs discard ${a.path}: delete it)`);
  return lines;
}

/** `HH:MM:SS` of an ISO time (the day is today's for a running daemon; --json has the full time). */
const clock = (iso: string) => iso.slice(11, 19);

/** One line per source: its state, since when, the last error and the fix. */
export function renderSources(sources: readonly SourceStatus[]): string[] {
  const width = Math.max(...sources.map((s) => `${s.name} [${s.type}]`.length));
  return sources.map((s) => {
    const label = `${s.name} [${s.type}]`.padEnd(width);
    const h = s.health;
    if (!h) return `  ${label}`;
    const err = h.lastError;
    if (isUp(h.state)) {
      const state = h.state === 'ok' ? 'ok' : 'not used yet';
      return `  ${label}  ${state}${err ? `  (last error ${clock(err.time)}, ${err.state}: ${err.message})` : ''}`;
    }
    return `  ${label}  ${h.state.toUpperCase()} since ${clock(h.since)}: ${err?.message ?? ''}${h.fix ? `; fix: ${h.fix}` : ''}`;
  });
}

/** How ranged reads were received: on the fast path, or handed to undici and why. */
function receiveLine(r: NonNullable<StatusDoc['receive']>): string {
  const handed = Object.entries(r.fallback);
  const why = handed.map(([reason, n]) => `${reason}: ${n}`).join(', ');
  const total = handed.reduce((a, [, n]) => a + n, 0);
  return `receive:    ${r.fast} ranged reads straight into the cache, ${total} through undici${total ? ` (${why})` : ''}${r.resent ? `, ${r.resent} resent after an idle close` : ''}`;
}

const pct = (hits: number, misses: number) => `${hits + misses ? ((100 * hits) / (hits + misses)).toFixed(1) : '0.0'}%`;

/** The shared tier: the breaker's state (and why), hit rate, what was shared, Redis's memory. */
export function sharedLine(t: SharedTierStatus): string {
  const b = t.blocks;
  const state = t.breaker.state === 'closed' ? 'ok' : `${t.breaker.state.toUpperCase()} (${t.breaker.condition}) since ${clock(t.breaker.since)}${t.breaker.lastError ? `: ${t.breaker.lastError.message}` : ''}; reading from the origin`;
  const mem = t.memory ? `, Redis ${formatBytes(t.memory.used)}${t.memory.max ? ` of ${formatBytes(t.memory.max)}` : ' (no maxmemory)'}${t.memory.policy ? ` ${t.memory.policy}` : ''}` : '';
  return `shared:     ${t.redis} as ${t.host}: ${state}; hit rate ${pct(b.hits, b.misses)} (${b.hits}/${b.hits + b.misses}), ${b.waitHits} after waiting for another host, ${b.corrupt} failed their check; shared ${b.writes} blocks (${formatBytes(b.bytesWritten)})${mem}`;
}

export async function fetchCluster(socket: string): Promise<ClusterDoc> {
  return (await callControl(socket, 'GET', '/cluster')) as ClusterDoc;
}

/** `assetfs status --cluster`: one line per host of the farm. */
export function renderCluster(c: ClusterDoc): string {
  if (!c.available) return 'cluster: the shared tier (Redis) does not answer; no view of the other hosts';
  const up = c.hosts.filter((h) => h.state === 'up').length;
  const lines = [`cluster: ${c.hosts.length} host${c.hosts.length === 1 ? '' : 's'}, ${up} up`];
  const width = Math.max(4, ...c.hosts.map((h) => h.host.length));
  for (const h of c.hosts) {
    const state = h.state === 'up' ? 'up' : h.state === 'stopped' ? `stopped ${h.silentSec}s ago` : `GONE (silent ${h.silentSec}s)`;
    const k = h.cache;
    lines.push(
      `  ${h.host.padEnd(width)}  ${state.padEnd(8)}  pid ${h.pid}${h.owner === c.self ? ' (this host)' : ''}  cache ${formatBytes(k.memoryBytes)}/${formatBytes(k.memoryLimit)} memory, ${formatBytes(k.diskBytes)}/${formatBytes(k.diskLimit)} disk, hit rate ${pct(k.hits, k.misses)}` +
        `  shared ${h.shared.state === 'closed' ? 'ok' : h.shared.state.toUpperCase()} hit rate ${pct(h.shared.hits, h.shared.misses)}  uploads ${h.uploads.uploading} uploading, ${h.uploads.queued} queued, ${h.uploads.failed} failed`,
    );
  }
  return lines.join('\n');
}

export async function fetchStatus(socket: string): Promise<StatusDoc> {
  return (await callControl(socket, 'GET', '/status')) as StatusDoc;
}

export function renderStatus(s: StatusDoc): string {
  const m = s.cache.memory;
  const lookups = m.hits + m.misses;
  const lines = [
    `assetfs at ${s.mountpoint} (pid ${s.pid}, up ${s.uptimeSec}s)`,
    `sources:    ${s.sources.length}${failing(s.sources) ? `, ${failing(s.sources)} failing` : ''}`,
    ...renderSources(s.sources),
    `cache:      memory ${formatBytes(m.bytes)} of ${formatBytes(m.limit)}, hit rate ${lookups ? ((100 * m.hits) / lookups).toFixed(1) : '0.0'}% (${m.hits}/${lookups})`,
    ...(s.cache.disk ? [`            disk ${formatBytes(s.cache.disk.bytes)} of ${formatBytes(s.cache.disk.limit)}, ${s.cache.disk.hits} hits`] : []),
    `network:    ${s.network?.requests ?? 0} requests, ${formatBytes(s.network?.bytesFetched ?? 0)} fetched`,
    ...(s.receive ? [receiveLine(s.receive)] : []),
    ...(s.shared ? [sharedLine(s.shared)] : []),
    `open files: ${s.openFiles}`,
    ...renderUploads(s.uploads),
    ...renderWrites(s.writes),
    ...(s.pins?.length
      ? [`pinned:     ${s.pins.length} path${s.pins.length === 1 ? '' : 's'}`, ...s.pins.map((p) => `  ${bar(p.cachedBytes, p.bytes)} ${formatBytes(p.cachedBytes)}/${formatBytes(p.bytes)}  ${p.files} files  ${p.state}${p.error ? ` (${p.error})` : ''}  ${p.path}`)]
      : ['pinned:     none']),
  ];
  if (s.errors.length) {
    lines.push('last errors:');
    for (const e of s.errors.slice(-10)) lines.push(`  ${e.time}  ${e.path ?? ''}  ${e.message}`);
  } else {
    lines.push('last errors: none');
  }
  return lines.join('\n');
}
