/** `assetfs demo` loads the lab (@assetfs/lab) at run time, and says in one line when it is missing. */
import { describe, expect, it } from 'vitest';
import { loadLab } from '../../src/demo/demo.js';

describe('loading the lab for the demo', () => {
  it('loads the platform lab', async () => {
    const lab = await loadLab();
    expect(typeof lab.startPlatformLab).toBe('function');
  });

  it('a lab that is not there (a production install, or not built) is one line saying what to run', async () => {
    const err = await loadLab('@assetfs/lab/demo/not-there.js').then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^the demo needs the lab \(the package @assetfs\/lab in lab\/\), which is not installed or not built: .*run `npm ci && npm run build`/);
    expect(err?.message).not.toContain('\n');
  });

  it('any other failure of the lab is passed on as it is', async () => {
    const broken = `data:text/javascript,${encodeURIComponent('throw new Error("the lab is broken");')}`;
    await expect(loadLab(broken)).rejects.toThrow(/^the lab is broken$/);
    // A module missing deeper down is named as it is, not taken for a missing lab.
    const deeper = `data:text/javascript,${encodeURIComponent('import "file:///nonexistent-assetfs-dependency/index.js";')}`;
    await expect(loadLab(deeper)).rejects.toThrow(/nonexistent-assetfs-dependency/);
  });
});
