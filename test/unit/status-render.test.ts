import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../src/daemon/status.js';

const base = {
  mountpoint: '/mnt/a',
  pid: 1,
  uptimeSec: 5,
  sources: [{ name: 's3', type: 's3' }],
  cache: { memory: { bytes: 0, limit: 1024, hits: 0, misses: 0 } },
  openFiles: 0,
  errors: [],
};

describe('renderStatus, the receive line', () => {
  it('says how many ranged reads went straight into the cache, how many through undici and why', () => {
    const text = renderStatus({ ...base, receive: { fast: 40, fallback: { 'HTTP 302': 2, 'Transfer-Encoding': 1 }, resent: 3 } });
    expect(text).toContain('receive:    40 ranged reads straight into the cache, 3 through undici (HTTP 302: 2, Transfer-Encoding: 1), 3 resent after an idle close');
    expect(renderStatus({ ...base, receive: { fast: 7, fallback: {}, resent: 0 } })).toContain('receive:    7 ranged reads straight into the cache, 0 through undici\n');
  });
});
