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
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type NewJob } from '../src/upload/journal.js';
import { StagedRecords } from '../src/vfs/write/records.js';

const QUEUED = Number(process.env.BENCH_JOURNAL_JOBS ?? 100_000);
const CALLS = 200;

const job = (n: number): NewJob => ({
  localPath: `/data/watched/folder-${n % 100}/file-${n}.mov`, source: 's3', remotePath: `uploads/folder-${n % 100}/file-${n}.mov`,
  producer: n % 2 ? 'sync' : 'mount', size: 1_000_000 + n, mtimeMs: 1_700_000_000_000 + n, partSize: 8 << 20, baseVersion: null,
});

/**
 * Each call's time on the event loop: until it returns (a promise it returns is awaited untimed: its
 * file I/O runs off the loop).
 */
interface Timing {
  median: number;
  p99: number;
  max: number;
}

async function timeCalls(f: (i: number) => unknown, calls = CALLS): Promise<Timing> {
  const ms: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint();
    const r = f(i);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r instanceof Promise) await r;
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]!, max: ms.at(-1)! };
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
    journal.db.pragma('wal_checkpoint(TRUNCATE)'); // the bulk insert's WAL is not what a running daemon carries
    const results: [string, Timing][] = [];
    const now = Date.now();
    let next = QUEUED;
    results.push(['due (the engine\'s tick)', await timeCalls(() => journal.due(now, 4))]);
    results.push(['enqueue (a new file)', await timeCalls(() => journal.enqueue(job(next++)))]);
    results.push(['get', await timeCalls((i) => journal.get(1 + ((i * 997) % QUEUED)))]);
    results.push(['pendingFor (the watcher)', await timeCalls((i) => journal.pendingFor('s3', job((i * 991) % QUEUED).remotePath))]);
    results.push(['setState', await timeCalls((i) => journal.setState(1000 + i, 'uploading'))]);
    results.push(['recordPart', await timeCalls((i) => journal.recordPart(1000 + (i % 50), { number: 1 + i, etag: `"etag-${i}"`, size: 8 << 20 }))]);
    results.push(['finish', await timeCalls((i) => journal.finish(2000 + i, 'f'.repeat(64), `"v${i}"`))]);
    results.push(['staged record put', await timeCalls((i) => records.put({ id: `bench-${i}`, path: `/s3/x/${i}`, source: 's3', remotePath: `x/${i}`, baseVersion: null, state: 'open', jobId: null, reason: null }))]);
    results.push(['staged record put, durable (what close and fsync wait for: one fsync)', await timeCalls((i) => records.put({ id: `bench-d-${i}`, path: `/s3/y/${i}`, source: 's3', remotePath: `y/${i}`, baseVersion: null, state: 'sealed', jobId: null, reason: null }, true))]);
    results.push(['staged record remove', await timeCalls((i) => records.removeRecord(`bench-${i}`))]);
    results.push(['status: counts + 3 lists of ≤ 100 + recent', await timeCalls(() => {
      journal.counts();
      for (const st of ['uploading', 'queued', 'failed'] as const) journal.list([st], 100);
      journal.recent(10);
    }, 50)]);
    const everything = await timeCalls(() => journal.list(['queued', 'failed']), 5);
    journal.close();
    const worst = results.reduce((a, b) => (b[1].median > a[1].median ? b : a));
    const f = (x: number) => x.toFixed(2);
    return [
      [
        `journal calls with ${QUEUED.toLocaleString('en')} queued jobs (${CALLS} of each, SQLite in WAL mode on the cache dir's disk; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
        `slowest median: ${worst[0]} ${f(worst[1].median)} ms`,
        `aim: a few ms. median / p99 / max per call, ms — ${results.map(([n, r]) => `${n}: ${f(r.median)} / ${f(r.p99)} / ${f(r.max)}`).join('; ')}. The tails are the machine's load (a WAL checkpoint on a worker thread of its own did not change them) and WAL checkpoints. Listing every queued job, as the engine's tick did every 500 ms: ${f(everything.median)} ms`,
      ],
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('journal.js')) {
  for (const r of await journalBench()) process.stdout.write(`| ${r.join(' | ')} |\n`);
}
