/** `assetfs status`: asks the running daemon over its control socket and prints for people or scripts. */
import { formatBytes } from '../config/units.js';
import { callControl } from './control.js';

interface StatusDoc {
  mountpoint: string;
  pid: number;
  uptimeSec: number;
  sources: Array<{ name: string; type: string }>;
  cache: { memory: { bytes: number; limit: number; hits: number; misses: number }; disk?: { bytes: number; limit: number; hits: number; misses: number } };
  network?: { requests?: number; bytes?: number };
  openFiles: number;
  errors: Array<{ time: string; message: string; path?: string }>;
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
    `network:    ${s.network?.requests ?? 0} requests, ${formatBytes(s.network?.bytes ?? 0)} fetched`,
    `open files: ${s.openFiles}`,
    `uploads:    none (the upload engine is not built yet)`,
  ];
  if (s.errors.length) {
    lines.push('last errors:');
    for (const e of s.errors.slice(-10)) lines.push(`  ${e.time}  ${e.path ?? ''}  ${e.message}`);
  } else {
    lines.push('last errors: none');
  }
  return lines.join('\n');
}
