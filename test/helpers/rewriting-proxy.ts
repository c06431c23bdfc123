/**
 * A reverse proxy that rewrites the bodies of a server's answers: the test server of cases where a
 * platform (or storage) sends what its documentation allows but our emulators never would, such as
 * bad numbers in a listing. JSON and XML answers are buffered and handed to `rewrite`; everything
 * else streams through untouched.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

export interface RewrittenAnswer {
  readonly method: string;
  /** Path and query of the request. */
  readonly url: string;
  readonly contentType: string;
}

export interface RewritingProxy {
  /** The proxy's base URL: the target's origin swapped for the proxy's (paths stay as they are). */
  readonly url: string;
  /** How many answers `rewrite` changed. */
  readonly rewritten: number;
  close(): Promise<void>;
}

export async function startRewritingProxy(targetBaseUrl: string, rewrite: (body: string, a: RewrittenAnswer) => string): Promise<RewritingProxy> {
  const target = new URL(targetBaseUrl);
  const agent = new Agent({ connections: 16 });
  let rewritten = 0;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const { expect: _e, connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, 'accept-encoding': _a, ...rest } = req.headers;
    const upstream = await request(new URL(req.url ?? '/', target), {
      method: (req.method ?? 'GET') as 'GET',
      headers: { ...rest, host: target.host },
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      dispatcher: agent,
    });
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive') headers[k] = v;
    const contentType = String(upstream.headers['content-type'] ?? '');
    if (req.method === 'HEAD' || !/json|xml/i.test(contentType)) {
      res.writeHead(upstream.statusCode, headers);
      await pipeline(upstream.body, res);
      return;
    }
    const body = await upstream.body.text();
    const out = rewrite(body, { method: req.method ?? 'GET', url: req.url ?? '/', contentType });
    if (out !== body) rewritten++;
    delete headers['transfer-encoding'];
    headers['content-length'] = String(Buffer.byteLength(out));
    res.writeHead(upstream.statusCode, headers).end(out);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => (res.headersSent ? res.destroy() : res.writeHead(502).end('proxy error')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}${target.pathname.replace(/\/$/, '')}`,
    get rewritten() {
      return rewritten;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await agent.close();
    },
  };
}

/** A JSON body with every value under one of `keys` replaced (at any depth); other bodies as they are. */
export function rewriteJsonKeys(body: string, values: Readonly<Record<string, unknown>>): string {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return body;
  }
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, Object.hasOwn(values, k) ? values[k] : walk(x)]));
    }
    return v;
  };
  return JSON.stringify(walk(doc));
}
