/**
 * The reported Wordbee case through a real mount (daemon in a child process, emulator in this one):
 * a server that caps its segment search at 20 rows whatever `take` asks, and whose downloads carry an
 * ETag no listing showed, once made the source incomplete (only the documents of the first page) and
 * unreadable (every read a changed object). Also a scope of a million generated segments: the daemon
 * lists up to listing.maxEntriesPerFolder, says so in its log, and its peak RSS stays bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { mountDaemon, sh, type MountedDaemon } from '../helpers/mount.js';
import { VIRTUAL_DOCUMENT, startWordbeeEmulator, type WordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';

const DOCS = 60;
const CLIP = deterministicBytes('hostile-paging-clip', 3 * 1024 * 1024 + 5);
const CAP = 3000;

describe.sequential('a hostile Wordbee server through a real mount', () => {
  let emu: WordbeeEmulator;
  let d: MountedDaemon;

  beforeAll(async () => {
    emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
    for (let i = 0; i < DOCS; i++) {
      emu.catalog.addDocument(7214, 50_000 + i, `doc-${i}.docx`);
      emu.catalog.addSegment(50_000 + i, 60_000_000 + i);
    }
    await emu.catalog.putAsset(60_000_000 + DOCS - 1, 'en', 'media', 'clip.bin', CLIP);
    emu.catalog.addProject(7215);
    d = await mountDaemon({
      sources: [{ name: 'wordbee', type: 'wordbee', baseUrl: emu.apiUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214', 'pr7215'] }],
      listing: { maxEntriesPerFolder: CAP },
    });
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
    await emu?.close();
  });

  it('a search capped below the page size asked still shows every document, and a download with a foreign ETag reads byte-exact', async () => {
    emu.knobs.paging = { scope: 'pr7214', pageCap: 20 };
    emu.knobs.download = { etag: 'foreign' };
    const docs = (await sh(`ls ${d.mountpoint}/wordbee/pr7214`)).split('\n').filter(Boolean);
    expect(docs.sort()).toEqual(Array.from({ length: DOCS }, (_, i) => String(50_000 + i)).sort());
    const clip = `${d.mountpoint}/wordbee/pr7214/${50_000 + DOCS - 1}/${60_000_000 + DOCS - 1}/en/media/clip.bin`;
    expect((await sh(`sha256sum ${clip}`)).split(' ')[0]).toBe(sha256(CLIP));
  });

  it('a scope of a million segments lists up to the entry cap, with one log line', async () => {
    emu.knobs.paging = { scope: 'pr7215', virtualRows: 1_000_000 };
    const segs = (await sh(`ls -f ${d.mountpoint}/wordbee/pr7215/${VIRTUAL_DOCUMENT}`)).split('\n').filter((n) => /^\d+$/.test(n));
    expect(segs.length).toBe(CAP);
    expect(d.logs()).toMatch(/segments of pr7215: listing stopped at 3000 entries: .*listing\.maxEntriesPerFolder/);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${d.child.pid}/status`, 'utf8'))?.[1];
    console.log(`daemon peak RSS after the hostile listings: ${Math.round(Number(hwm) / 1024)} MiB`);
  });
});
