/**
 * The five media platforms through a real mount (daemon in a child process, emulators in this one):
 * byte-exact reads, a 10,000-entry folder listed completely, reads that outlive their token and signed
 * URL, and unreadable assets with the promised errno.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mountDaemon, sh, shResult, type MountedDaemon } from '../helpers/mount.js';
import { startPlatformLab, type PlatformLab, type PlatformName } from '@assetfs/lab/demo/lab.js';
import { bigBytesOf } from '@assetfs/lab/demo/lab-content.js';
import { mediaDir, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';

const MANY = 10_000;
const URL_TTL_MS = 4_000;
const PLATFORMS: PlatformName[] = ['wordbee', 'mkio', 'ams', 'nomad', 'mediahub'];
/** Platforms whose sample content holds assets that are listed but cannot be read (archived, uploading). */
const HAS_UNREADABLE: PlatformName[] = ['nomad', 'mediahub'];
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe.sequential('platform sources through a real mount', () => {
  let lab: PlatformLab;
  let d: MountedDaemon;
  let videoSha: string;

  beforeAll(async () => {
    videoSha = sha256(await readFile(join(mediaDir(), 'sample.mp4')));
    lab = await startPlatformLab({ log: silentLogger, bigFileBytes: 1024 * 1024, manyCount: MANY, urlTtlMs: URL_TTL_MS });
    d = await mountDaemon({
      sources: lab.sources,
      metadataTtl: '60s',
      // Small readahead, so that the second half of a file is fetched after the expiry, not before it.
      cache: { memory: '128MiB', disk: 0, blockSize: '1MiB' },
      readahead: { max: '1MiB', part: '1MiB' },
    });
  }, 300_000);
  afterAll(async () => {
    await d?.stop();
    await lab?.stop();
  });

  it('shows all seven sources at the root', async () => {
    expect((await sh(`ls ${d.mountpoint}`)).split('\n').filter(Boolean).sort()).toEqual(['ams', 'blob', 'mediahub', 'mkio', 'nomad', 's3', 'wordbee']);
  });

  for (const p of PLATFORMS) {
    describe(p, () => {
      const at = (rel: string) => join(d.mountpoint, p, rel);

      it('reads the sample video byte-exact (sha256)', async () => {
        expect((await sh(`sha256sum ${q(at(lab.paths[p].video))}`)).split(' ')[0]).toBe(videoSha);
      });

      it(`lists a folder of ${MANY} entries completely`, async () => {
        const out = await sh(`ls -f ${q(at(lab.paths[p].many))}`, { timeoutMs: 240_000 });
        const names = out.split('\n').filter((n) => /^(f-|bulk-)\d{5}/.test(n));
        expect(names.length).toBe(MANY);
        expect(new Set(names).size).toBe(MANY);
      });

      it('a read survives token and signed-URL expiry in its middle', async () => {
        const file = q(at(lab.paths[p].big));
        const head = await sh(`dd if=${file} bs=1M count=1 status=none | sha256sum`);
        lab.expire(p); // every token and URL issued so far is refused from now on …
        await new Promise((r) => setTimeout(r, URL_TTL_MS + 500)); // … and the URLs' lifetime has passed too
        const all = await sh(`sha256sum ${file}`);
        const want = bigBytesOf(p);
        expect(all.split(' ')[0]).toBe(sha256(want));
        expect(head.split(' ')[0]).toBe(sha256(want.subarray(0, 1024 * 1024)));
      });

      if (HAS_UNREADABLE.includes(p)) it('shows unreadable assets, and reading them fails with the promised errno', async () => {
        const list = lab.paths[p].unreadable;
        expect(list.length).toBeGreaterThan(0);
        for (const u of list) {
          const dir = q(at(u.path.split('/').slice(0, -1).join('/')));
          expect(await sh(`ls ${dir}`)).toContain(u.path.split('/').pop());
          const r = await shResult(`cat ${q(at(u.path))} > /dev/null`);
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(u.errno === 'EACCES' ? /Permission denied/ : /Resource temporarily unavailable/);
        }
        expect(d.logs()).toMatch(/cannot be read now/);
      });
    });
  }
});
