/**
 * The daemon's own robustness, through a real daemon: errors injected into it (the test-only fault
 * route, src/daemon/crash-policy.ts faultRoutes) as an unhandled rejection and as an uncaught EPIPE
 * are logged and the mount keeps serving; an uncaught TypeError prints one line, unmounts cleanly and
 * exits 70, leaving nothing mounted (not even a stale mount).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { isMounted, mountDaemon, type MountedDaemon, until } from '../helpers/mount.js';
import { callControl } from '../../src/daemon/control.js';

let storage: ProxiedBucket;
beforeAll(async () => {
  storage = await startProxiedBucket('media', { files: [{ path: 'a.txt', data: Buffer.from('still here\n') }] });
});
afterAll(async () => storage?.close());

describe.sequential('escaped errors in a running daemon', () => {
  let d: MountedDaemon;
  afterAll(async () => d?.stop());
  const socket = () => join(d.dir, 'cache', 'control.sock');
  const inject = (kind: string) => callControl(socket(), 'POST', '/test/fault', { kind });
  const logged = (text: string) => d.logs().includes(text);

  it('an unhandled rejection and an uncaught connection error are logged; the mount keeps serving', async () => {
    d = await mountDaemon({ sources: [storage.directSource()] }, { env: { ASSETFS_TEST_FAULTS: '1' } });
    await until(() => callControl(socket(), 'GET', '/status').then(() => true, () => false), 'the control socket');
    expect(await inject('rejection')).toEqual({ injected: 'rejection' });
    await until(async () => logged('unhandled promise rejection (Error: injected rejection); the daemon keeps serving'), 'the rejection in the log');
    expect(await inject('connection')).toEqual({ injected: 'connection' });
    await until(async () => logged('uncaught connection error (Error: write EPIPE (injected)); the daemon keeps serving'), 'the EPIPE in the log');
    expect(await readFile(join(d.mountpoint, 's3', 'a.txt'), 'utf8')).toBe('still here\n');
    expect(d.child.exitCode).toBeNull();
    expect(((await callControl(socket(), 'GET', '/status')) as { mountpoint: string }).mountpoint).toBe(d.mountpoint);
  });

  it('an uncaught exception exits 70 with one line, after a clean unmount', async () => {
    const exited = new Promise<number | null>((r) => d.child.once('exit', (code) => r(code)));
    await inject('exception');
    expect(await exited).toBe(70);
    expect(d.logs()).toContain(`assetfs: internal error (TypeError: injected exception): unmounting ${d.mountpoint} and exiting; the log has the details\n`);
    expect(d.logs()).toContain('"msg":"uncaught exception (TypeError: injected exception): unmounting and exiting"');
    expect(d.logs()).toMatch(/"msg":"unmounting"/);
    expect(d.logs()).toMatch(/"msg":"stopped"/);
    expect(await isMounted(d.mountpoint)).toBe(false);
  });
});
