/**
 * The journal never stalls the event loop (issue 19, part 5): with 100,000 queued jobs, every call the
 * daemon makes on the journal — the engine's scheduling (due), a job's life (get, setState, recordPart,
 * finish), a new write (enqueue, the staged record), and `assetfs status` (counts, lists, recent) —
 * timed one by one on a real SQLite file on the cache dir's disk. The row reports the slowest call of
 * each kind (and its 99th percentile); for comparison, what listing every queued job (the engine's
 * tick before, every 500 ms) costs. Not a test: nothing here asserts.
 *
 *   node dist/bench/journal.js           (alone), or as part of `npm run bench` (bench/run.ts)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type NewJob } from '../src/upload/journal.js';
import { StagedRecords } from '../src/vfs/write/records.js';

const QUEUED = Number(process.env.BENCH_JOURNAL_JOBS ?? 100_000);
const CALLS = 200;

const job = (n: number): NewJob => ({
  localPath: `/data/watched/folder-${n % 100}/file-${n}.mov`, source: 's3', remotePath: `uploads/folder-${n % 100}/file-${n}.mov`,
  producer: n % 2 ? 'sync' : 'mount', size: 1_000_000 + n, mtimeMs: 1_700_000_000_000 + n, partSize: 8 << 20, baseVersion: null,
});

function timeCalls(f: (i: number) => unknown, calls = CALLS): { max: number; p99: number } {
  const ms: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint();
    f(i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { max: ms.at(-1)!, p99: ms[Math.floor(ms.length * 0.99)]! };
}

export async function journalBench(): Promise<string[][]> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-bench-journal-'));
  try {
    const journal = new Journal(join(dir, 'journal.db'));
    const records = new StagedRecords(journal, dir);
    // The queue: 100,000 jobs, inserted in transactions (this setup is not timed).
    const insert = journal.db.transaction((from: number, to: number) => {
      for (let n = from; n < to; n++) journal.enqueue(job(n));
    });
    for (let n = 0; n < QUEUED; n += 10_000) insert(n, Math.min(QUEUED, n + 10_000));
    for (let n = 0; n < 500; n++) journal.setState(n + 1, 'done');
    const results: [string, { max: number; p99: number }][] = [];
    const now = Date.now();
    let next = QUEUED;
    results.push(['due (the engine\'s tick)', timeCalls(() => journal.due(now, 4))]);
    results.push(['enqueue (a new file)', timeCalls(() => journal.enqueue(job(next++)))]);
    results.push(['get', timeCalls((i) => journal.get(1 + ((i * 997) % QUEUED)))]);
    results.push(['pendingFor (the watcher)', timeCalls((i) => journal.pendingFor('s3', job((i * 991) % QUEUED).remotePath))]);
    results.push(['setState', timeCalls((i) => journal.setState(1000 + i, 'uploading'))]);
    results.push(['recordPart', timeCalls((i) => journal.recordPart(1000 + (i % 50), { number: 1 + i, etag: `"etag-${i}"`, size: 8 << 20 }))]);
    results.push(['finish', timeCalls((i) => journal.finish(2000 + i, 'f'.repeat(64), `"v${i}"`))]);
    results.push(['staged record put + remove', timeCalls((i) => {
      void records.put({ id: `bench-${i}`, path: `/s3/x/${i}`, source: 's3', remotePath: `x/${i}`, baseVersion: null, state: 'open', jobId: null, reason: null });
      void records.removeRecord(`bench-${i}`);
    })]);
    results.push(['status: counts + 3 lists of ≤ 100 + recent', timeCalls(() => {
      journal.counts();
      for (const st of ['uploading', 'queued', 'failed'] as const) journal.list([st], 100);
      journal.recent(10);
    }, 50)]);
    const everything = timeCalls(() => journal.list(['queued', 'failed']), 5);
    journal.close();
    const worst = results.reduce((a, b) => (b[1].max > a[1].max ? b : a));
    const f = (x: number) => x.toFixed(2);
    return [
      [
        `journal calls with ${QUEUED.toLocaleString('en')} queued jobs (${CALLS} of each, SQLite on the cache dir's disk, synchronous=FULL)`,
        `slowest: ${worst[0]} ${f(worst[1].max)} ms`,
        `aim: a few ms. max (p99) per call — ${results.map(([n, r]) => `${n}: ${f(r.max)} (${f(r.p99)})`).join('; ')}. Listing every queued job, as the engine's tick did every 500 ms: ${f(everything.max)} ms`,
      ],
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('journal.js')) {
  for (const r of await journalBench()) process.stdout.write(`| ${r.join(' | ')} |\n`);
}
