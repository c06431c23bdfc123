/**
 * The control socket (src/daemon/control.ts): 0600 from the moment it exists (bound in a private 0700
 * directory, renamed into place), refused by the kernel to users other than its owner and root,
 * bodies capped, error replies redacted to one line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_BODY_BYTES, callControl, listenPrivately, startControlServer } from '../../src/daemon/control.js';

const pexec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-control-'));
  await chmod(dir, 0o755); // what keeps other users out must be the socket itself, not this directory
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** POST `body` (raw) and resolve with the status code and the parsed answer. */
function post(path: string, url: string, body: string | Buffer): Promise<{ status: number; json: { error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method: 'POST', path: url }, (res) => {
      let raw = '';
      res.on('data', (d: Buffer) => (raw += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(raw) as { error?: string } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('control socket', () => {
  it('is never reachable with a wider mode: bound inside a private 0700 directory, published 0600', async () => {
    const path = join(dir, 'private.sock');
    const server = createServer();
    let boundIn: { dir: string; mode: number; uid: number } | undefined;
    server.on('listening', () => {
      // The moment the socket exists: where is it, and who could reach it there?
      const bound = String(server.address());
      const st = statSync(dirname(bound));
      boundIn = { dir: dirname(bound), mode: st.mode & 0o777, uid: st.uid };
    });
    const old = process.umask(0); // a plain listen() would now create a 0777 socket
    try {
      await listenPrivately(server, path);
    } finally {
      process.umask(old);
    }
    expect(boundIn).toBeDefined();
    expect(boundIn!.dir).not.toBe(dir);
    expect(boundIn!.mode).toBe(0o700);
    expect(boundIn!.uid).toBe(process.getuid?.());
    const st = await stat(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((n) => n.startsWith('.control-'))).toEqual([]);
    await new Promise((r) => server.close(r));
  });

  it.skipIf(!isRoot)('another user is refused by the kernel (EACCES); with a wider mode they would get in', async () => {
    const path = join(dir, 'peer.sock');
    const control = await startControlServer(path, { 'GET /status': async () => ({ ok: true }) });
    const probe = `require('net').connect(${JSON.stringify(path)}).on('connect', () => { console.log('CONNECTED'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`;
    const asNobody = async () => (await pexec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe])).stdout.trim();
    try {
      expect(await asNobody()).toBe('EACCES');
      expect(await callControl(path, 'GET', '/status')).toEqual({ ok: true }); // root (and the daemon's own user) may
      await chmod(path, 0o666);
      expect(await asNobody()).toBe('CONNECTED'); // the probe can tell the difference
    } finally {
      await control.close();
    }
  });

  it('caps request bodies and keeps serving; refuses bodies that are not JSON', async () => {
    const path = join(dir, 'cap.sock');
    const control = await startControlServer(path, { 'POST /pin': async (b) => ({ got: b }) });
    try {
      const big = await post(path, '/pin', Buffer.alloc(MAX_BODY_BYTES + 1, 'a'));
      expect(big).toEqual({ status: 413, json: { error: `request body over ${MAX_BODY_BYTES} bytes` } });
      expect(await post(path, '/pin', '{not json')).toEqual({ status: 400, json: { error: 'the request body is not JSON' } });
      expect(await callControl(path, 'POST', '/pin', { path: '/x' })).toEqual({ got: { path: '/x' } });
    } finally {
      await control.close();
    }
  });

  it('error replies are one redacted line', async () => {
    const path = join(dir, 'redact.sock');
    const control = await startControlServer(path, {
      'POST /retry': async () => {
        throw new Error('GET https://acct.blob.core.windows.net/c/x.mp4?sv=1&sig=SECRETSIG failed: Authorization: Bearer eyJSECRET.TOKEN\n    at stack (frame.js:1:1)');
      },
    });
    try {
      const r = await post(path, '/retry', '');
      expect(r.status).toBe(500);
      expect(r.json.error).toBe('GET https://acct.blob.core.windows.net/c/x.mp4?… failed: Authorization: Bearer [redacted]');
    } finally {
      await control.close();
    }
  });
});
