/**
 * Faults an emulator injects on request, in order, one per matching request:
 *  - `status`: answer `status` (5xx, or 429 with `retryAfterSec`) with the platform's error body;
 *  - `reset`: destroy the connection without an answer;
 *  - `slow`: hold the answer back `delayMs`, then serve it normally;
 *  - `expire-tokens`: forget every token issued so far (the next call is refused as expired), then serve.
 *  - `hang`: never answer nor serve it; it is dropped when its client goes away (a daemon killed while
 *    the platform held its request).
 * `pathPrefix` limits a fault to matching paths (e.g. only downloads); `pathPattern` (a regular
 * expression's source) to paths it matches. Other processes queue faults
 * with `POST /__faults {kind, n, status?, retryAfterSec?, delayMs?, pathPrefix?}` (the demo and mount tests).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface FaultSpec {
  kind: 'status' | 'reset' | 'slow' | 'expire-tokens' | 'hang';
  /** How many matching requests it applies to. Default 1. */
  n?: number;
  status?: number;
  retryAfterSec?: number;
  delayMs?: number;
  pathPrefix?: string;
  pathPattern?: string;
}

interface Queued {
  kind: FaultSpec['kind'];
  status: number;
  retryAfterSec: number | undefined;
  delayMs: number;
  pathPrefix: string;
  pathPattern: RegExp | undefined;
}

export type Applied = undefined | 'handled' | { status: number; message: string; headers: Record<string, string> };

export class FaultQueue {
  private readonly queue: Queued[] = [];
  private injected = 0;

  constructor(private readonly hooks: { expireTokens?(): void }) {}

  add(spec: FaultSpec): void {
    if (!['status', 'reset', 'slow', 'expire-tokens', 'hang'].includes(spec.kind)) throw new Error(`unknown fault kind ${spec.kind}`);
    for (let i = 0; i < (spec.n ?? 1); i++) {
      this.queue.push({ kind: spec.kind, status: spec.status ?? 500, retryAfterSec: spec.retryAfterSec, delayMs: spec.delayMs ?? 2000, pathPrefix: spec.pathPrefix ?? '', pathPattern: spec.pathPattern === undefined ? undefined : new RegExp(spec.pathPattern) });
    }
  }

  /** Faults applied so far. */
  count(): number {
    return this.injected;
  }

  pending(): number {
    return this.queue.length;
  }

  clear(): void {
    this.queue.splice(0);
  }

  async apply(req: IncomingMessage, res: ServerResponse, path: string): Promise<Applied> {
    const i = this.queue.findIndex((f) => path.startsWith(f.pathPrefix) && (!f.pathPattern || f.pathPattern.test(path)));
    if (i < 0) return undefined;
    const [f] = this.queue.splice(i, 1);
    this.injected++;
    switch (f!.kind) {
      case 'hang':
        await new Promise((r) => req.socket.once('close', r));
        return 'handled';
      case 'reset':
        req.socket.destroy();
        res.destroy();
        return 'handled';
      case 'slow':
        await new Promise((r) => setTimeout(r, f!.delayMs));
        return undefined;
      case 'expire-tokens':
        this.hooks.expireTokens?.();
        return undefined;
      default: {
        const headers: Record<string, string> = {};
        if (f!.retryAfterSec !== undefined) headers['retry-after'] = String(f!.retryAfterSec);
        req.resume();
        return { status: f!.status, message: f!.status === 429 ? 'Too many requests (injected)' : `injected fault ${f!.status}`, headers };
      }
    }
  }

  async control(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const c of req) raw += c;
    try {
      if (req.method === 'DELETE') this.clear();
      else this.add(JSON.parse(raw || '{}') as FaultSpec);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pending: this.queue.length, injected: this.injected }));
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String((e as Error).message));
    }
  }
}
