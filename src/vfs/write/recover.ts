/**
 * The staging folder at start (Staging.recover): every file in it, every record of it, accounted for.
 *
 *  - a copy with a record: kept; `open` (its writer never closed it) becomes `attention`;
 *  - a copy with only a sidecar (the journal was set aside): its record is rebuilt from the sidecar,
 *    `open` again becoming `attention`, and a file queued before is due again (`sealed`);
 *  - a copy with neither (a copy-on-open copy nobody wrote to): deleted, nothing was acknowledged;
 *  - a sidecar or a record without its copy: deleted (logged when the copy had been closed).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../util/logger.js';
import { isSidecar, type StagedRecord, type StagedRecords } from './records.js';

export const INCOMPLETE = 'the daemon stopped while a program was writing it: it may be incomplete, so it was not uploaded';

/** The records that survive, each with its copy's size: `attention`, `sealed` or `queued`. */
export async function scanStaging(dir: string, records: StagedRecords, log: Logger): Promise<{ record: StagedRecord; size: number }[]> {
  const names = new Set(await readdir(dir));
  const byId = new Map(records.all().map((r) => [r.id, r]));
  for (const name of names) {
    if (isSidecar(name) || byId.has(name)) continue;
    const side = await records.sidecar(name);
    if (!side) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    log.warn({ path: side.path, staged: join(dir, name) }, 'staged file found without a journal record (the journal was set aside): recovered from its sidecar');
    const state = side.state === 'open' || side.state === 'attention' ? 'attention' : 'sealed';
    const r = { ...side, state, jobId: null, reason: side.state === 'open' ? INCOMPLETE : side.reason } as const;
    await records.put(r);
    byId.set(name, { ...r, updatedAt: side.updatedAt ?? Date.now() });
  }
  for (const name of names) if (isSidecar(name) && !byId.has(name.slice(0, -'.json'.length))) await rm(join(dir, name), { force: true });
  const out: { record: StagedRecord; size: number }[] = [];
  for (const r of byId.values()) {
    if (!names.has(r.id)) {
      if (r.state !== 'open') log.error({ path: r.path, staged: join(dir, r.id) }, 'a staged file recorded in the journal is missing from the staging folder');
      await records.removeRecord(r.id);
      continue;
    }
    const { size } = await stat(join(dir, r.id));
    if (r.state === 'open') {
      const kept = { ...r, state: 'attention', reason: INCOMPLETE } as const;
      await records.put(kept);
      log.warn({ path: r.path, staged: join(dir, r.id) }, `needs attention: ${INCOMPLETE}; \`assetfs retry ${r.path}\` uploads it as it is, \`assetfs discard ${r.path}\` deletes it`);
      out.push({ record: kept, size });
    } else {
      out.push({ record: r, size });
    }
  }
  return out;
}
