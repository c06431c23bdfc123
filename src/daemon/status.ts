/** `assetfs status`: asks the running daemon over its control socket and prints for people or scripts. */
import { formatBytes } from '../config/units.js';
import { callControl } from './control.js';
import cliProgress from 'cli-progress';
import type { UploadJobStatus, UploadsStatus } from '../upload/service.js';
import type { BlockSourceStats } from '../read/block-source.js';

interface StatusDoc {
  mountpoint: string;
  pid: number;
  uptimeSec: number;
  sources: Array<{ name: string; type: string }>;
  cache: { memory: { bytes: number; limit: number; hits: number; misses: number }; disk?: { bytes: number; limit: number; hits: number; misses: number } };
  /** The read path's counters (read/block-source.ts): the same counts as assetfs_origin_*{kind="read"}. */
  network?: BlockSourceStats;
  openFiles: number;
  errors: Array<{ time: string; message: string; path?: string }>;
  uploads?: UploadsStatus;
  pins?: Array<{ path: string; files: number; bytes: number; cachedBytes: number; state: string; error?: string }>;
  fuse?: { workerLocals: number };
}

const BAR = 24;

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
  for (const j of u.active) lines.push(uploadLine(j));
  for (const j of u.queued) lines.push(`  queued    ${formatBytes(j.size).padStart(9)}  ${j.remote}${j.lastError ? `  (${j.lastError})` : ''}`);
  for (const j of u.failed) lines.push(`  FAILED    ${formatBytes(j.size).padStart(9)}  ${j.remote}  attempt ${j.attempts}, retry in ${j.nextAttemptInSec}s (assetfs retry: now): ${j.lastError}`);
  for (const j of u.recent.slice(0, 5)) lines.push(`  ${j.state === 'done' ? 'done     ' : 'cancelled'} ${formatBytes(j.size).padStart(9)}  ${j.remote}${j.state !== 'done' && j.lastError ? `  (${j.lastError})` : ''}`);
  return lines;
}

export async function fetchStatus(socket: string): Promise<StatusDoc> {
  return (await callControl(socket, 'GET', '/status')) as StatusDoc;
}

export function renderStatus(s: StatusDoc): string {
  const m = s.cache.memory;
  const lookups = m.hits + m.misses;
  const lines = [
    `assetfs at ${s.mountpoint} (pid ${s.pid}, up ${s.uptimeSec}s)`,
    `sources:    ${s.sources.map((x) => `${x.name} [${x.type}]`).join(', ')}`,
    `cache:      memory ${formatBytes(m.bytes)} of ${formatBytes(m.limit)}, hit rate ${lookups ? ((100 * m.hits) / lookups).toFixed(1) : '0.0'}% (${m.hits}/${lookups})`,
    ...(s.cache.disk ? [`            disk ${formatBytes(s.cache.disk.bytes)} of ${formatBytes(s.cache.disk.limit)}, ${s.cache.disk.hits} hits`] : []),
    `network:    ${s.network?.requests ?? 0} requests, ${formatBytes(s.network?.bytesFetched ?? 0)} fetched`,
    `open files: ${s.openFiles}`,
    ...renderUploads(s.uploads),
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
