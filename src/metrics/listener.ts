/**
 * The optional TCP listener for Prometheus (`metrics.listen`): GET /metrics and nothing else. It binds
 * only the address given, and a non-loopback one only with `metrics.allowRemote` (the config check
 * refuses it first; this refuses it again for callers that skip the config).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackHost, parseListen } from './listen-address.js';

export interface MetricsSource {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export interface MetricsListener {
  /** Where it listens (the port the system chose when 0 was asked). */
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export class RemoteListenRefused extends Error {}

export async function startMetricsListener(listen: string, metrics: MetricsSource, opts: { allowRemote?: boolean } = {}): Promise<MetricsListener> {
  const { host, port } = parseListen(listen);
  if (!isLoopbackHost(host) && !opts.allowRemote) {
    throw new RemoteListenRefused(`metrics.listen ${listen} is not a loopback address: set metrics.allowRemote: true to serve metrics to the network`);
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    metrics.scrape().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
