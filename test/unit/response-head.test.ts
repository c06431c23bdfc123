import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { parseResponseHead } from '../../src/transports/response-head.js';

const raw = (s: string) => Buffer.from(s, 'latin1');

describe('parseResponseHead', () => {
  it('reads the head node:http sends for a 206, and where its body starts', async () => {
    const srv = createServer((_req, res) => {
      res.writeHead(206, { 'content-range': 'bytes 0-4/10', 'content-length': '5', etag: '"abc"', 'set-cookie': ['a=1', 'b=2'] }).end('hello');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const bytes = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const s = connect((srv.address() as AddressInfo).port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
    });
    await new Promise<void>((r) => srv.close(() => r()));
    const head = parseResponseHead(bytes);
    expect(head).toMatchObject({ kind: 'head', status: 206, contentLength: 5, transferEncoded: false, keepAlive: false });
    if (head.kind !== 'head') return;
    expect(head.headers).toMatchObject({ 'content-range': 'bytes 0-4/10', etag: '"abc"', 'set-cookie': ['a=1', 'b=2'] });
    expect(bytes.subarray(head.length).toString()).toBe('hello');
  });

  it('is incomplete until the blank line', () => {
    expect(parseResponseHead(raw('HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n')).kind).toBe('incomplete');
    expect(parseResponseHead(raw('HTTP/1.1 2')).kind).toBe('incomplete');
    expect(parseResponseHead(raw('')).kind).toBe('incomplete');
  });

  it('takes a status line without a reason, repeated equal lengths, keep-alive hints', () => {
    const h = parseResponseHead(raw('HTTP/1.1 200\r\nContent-Length: 7\r\ncontent-length: 7\r\nKeep-Alive: timeout=5, max=100\r\n\r\n'));
    expect(h).toMatchObject({ kind: 'head', status: 200, contentLength: 7, keepAlive: true, keepAliveMs: 5000 });
    expect(parseResponseHead(raw('HTTP/1.1 206 OK\r\nConnection: keep-alive, Close\r\n\r\n'))).toMatchObject({ keepAlive: false });
  });

  it('says a Transfer-Encoding overrides any Content-Length', () => {
    const h = parseResponseHead(raw('HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'));
    expect(h).toMatchObject({ kind: 'head', transferEncoded: true, contentLength: undefined });
  });

  it('calls odd what it does not handle', () => {
    const odd = [
      'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n',
      'HTTP/2 200\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 206 OK\r\nX-A: 1\r\n  folded\r\n\r\n',
      'HTTP/1.1 206 OK\r\nBad Header: 1\r\n\r\n',
      'HTTP/1.1 206 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
      'HTTP/1.1 206 OK\r\nContent-Length: 5, 6\r\n\r\n',
      'HTTP/1.1 206 OK\r\nContent-Length: -5\r\n\r\n',
      'HTTP/1.1 206 OK\r\nContent-Length: 0x10\r\n\r\n',
      'HTTP/1.1 206 OK\nContent-Length: 5\n\nhello',
      'HTTP/1.1 206 OK\r\nX-A: a\rb\r\n\r\n',
    ];
    for (const s of odd) expect(parseResponseHead(raw(s)).kind, JSON.stringify(s)).toBe('odd');
  });
});
