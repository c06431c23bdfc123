import { describe, expect, it } from 'vitest';
import { startWordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { knobPage, rowsOf } from '@assetfs/lab/emulators/common/knobs.js';

describe('behaviour knobs', () => {
  it('shape pages as named: a cap, no total, an empty first page, a repeated page, endless and generated rows', () => {
    const rows = rowsOf(Array.from({ length: 10 }, (_, i) => `r${i}`));
    const gen = (i: number) => `g${i}`;
    expect(knobPage(rows, gen, { pageCap: 3 }, undefined, 5)).toEqual({ rows: ['r0', 'r1', 'r2'], next: 3, total: 10, offset: 0 });
    expect(knobPage(rows, gen, { omitTotal: true }, 8, 5)).toEqual({ rows: ['r8', 'r9'], next: undefined, total: undefined, offset: 8 });
    expect(knobPage(rows, gen, { emptyFirstPage: true }, undefined, 5)).toMatchObject({ rows: [], next: 0 });
    expect(knobPage(rows, gen, { repeatPage: true }, 8, 4)).toMatchObject({ rows: ['r4', 'r5', 'r6', 'r7'], offset: 4 });
    expect(knobPage(rows, gen, { endless: true }, 1_000_000, 2)).toEqual({ rows: ['g1000000', 'g1000001'], next: 1_000_002, total: undefined, offset: 1_000_000 });
    expect(knobPage(rows, gen, { virtualRows: 1_000_000 }, 999_999, 5)).toEqual({ rows: ['g999999'], next: undefined, total: 1_000_000, offset: 999_999 });
  });

  it('are set from another process through /__knobs on an emulator and on the fault proxy', async () => {
    const emu = await startWordbeeEmulator();
    const proxy = await startFaultProxy(emu.url);
    try {
      for (const [url, knobs] of [[emu.url, emu.knobs], [proxy.url, proxy.knobs]] as const) {
        const r = await fetch(`${url}/__knobs`, { method: 'POST', body: JSON.stringify({ paging: { pageCap: 7, omitTotal: true }, download: { etag: 'absent' } }) });
        expect(r.status).toBe(200);
        expect(knobs).toEqual({ paging: { pageCap: 7, omitTotal: true }, download: { etag: 'absent' } });
        expect(await (await fetch(`${url}/__knobs`, { method: 'DELETE' })).json()).toEqual({ paging: {}, download: {} });
        expect(knobs).toEqual({ paging: {}, download: {} });
      }
    } finally {
      await proxy.close();
      await emu.close();
    }
  });
});
