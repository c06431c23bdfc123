/**
 * Behaviour knobs: where an emulator (or the fault proxy in front of s3rver/Azurite) stops being a
 * polite server and does what a platform's documentation allows or a broken server does. Every knob
 * lives here, named for what the client sees; an emulator exposes them as `knobs` and each listing or
 * download route asks this module what to send. Unset knobs: the emulator's ordinary behaviour.
 *
 * Paging knobs shape the pages of one listing (`scope`, in the emulator's own terms: a folder id, an
 * asset id, a scope such as pr7214, a key prefix; every paged listing when unset):
 *  - `pageCap`: at most this many rows per page, whatever the client asked (a server-side cap);
 *  - `omitTotal`: no total count in the answers;
 *  - `totalDelta`: the stated total is off by this many rows (a total that lies: above or below the truth);
 *  - `emptyFirstPage`: the first answer has no rows but a continuation (token APIs only);
 *  - `repeatPage`: every continuation is answered with the second page and, where the API has tokens,
 *    the same token (a paging loop: a server ignoring the token or the offset);
 *  - `endless`: rows never end, a continuation is always offered, no total;
 *  - `virtualRows`: the folder holds this many generated rows, made per page and never held (a listing
 *    of a million entries costs what the pages asked for, not a million records).
 * Download knobs change the ETag of download responses: `absent` (none), `foreign` (one fixed ETag no
 * listing showed), `changing` (another one on every response, as if the object were rewritten between
 * requests). In-process, set an emulator's `knobs`; from another process, POST `/__knobs`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface PagingKnobs {
  scope?: string;
  pageCap?: number;
  omitTotal?: boolean;
  totalDelta?: number;
  emptyFirstPage?: boolean;
  repeatPage?: boolean;
  endless?: boolean;
  virtualRows?: number;
}

export type DownloadEtagKnob = 'as-is' | 'absent' | 'foreign' | 'changing';

export interface DownloadKnobs {
  etag?: DownloadEtagKnob;
}

export interface EmulatorKnobs {
  paging: PagingKnobs;
  download: DownloadKnobs;
}

export function newKnobs(): EmulatorKnobs {
  return { paging: {}, download: {} };
}

/**
 * `/__knobs` for other processes (the demo, mount tests): GET answers the knobs, POST replaces the
 * parts its JSON body names (`{"paging": {…}, "download": {…}}`), DELETE resets them.
 */
export async function knobsControl(k: EmulatorKnobs, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = '';
  for await (const c of req) raw += c;
  try {
    if (req.method === 'DELETE') Object.assign(k, newKnobs());
    else if (req.method === 'POST') {
      const b = JSON.parse(raw || '{}') as Partial<EmulatorKnobs>;
      if (b.paging !== undefined) k.paging = { ...b.paging };
      if (b.download !== undefined) k.download = { ...b.download };
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(k));
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String((e as Error).message));
  }
}

/** Rows of a listing by index, so that generated listings need not exist as arrays. */
export interface RowSource<T> {
  /** Infinity for an endless listing. */
  readonly count: number;
  at(index: number): T;
}

export const rowsOf = <T>(rows: readonly T[]): RowSource<T> => ({ count: rows.length, at: (i) => rows[i]! });

/** The paging knobs that apply to a listing of `scope`, or undefined when none do. */
export function pagingKnobsFor(k: EmulatorKnobs, scope: string): PagingKnobs | undefined {
  const p = k.paging;
  if (p.scope !== undefined && p.scope !== scope) return undefined;
  const active = p.pageCap !== undefined || p.omitTotal || p.totalDelta !== undefined || p.emptyFirstPage || p.repeatPage || p.endless || p.virtualRows !== undefined;
  return active ? p : undefined;
}

export interface KnobPage<T> {
  readonly rows: T[];
  /** The row offset a continuation must carry; undefined when the listing is over. */
  readonly next?: number;
  /** The total to state; undefined when the knobs leave it out. */
  readonly total?: number;
  /** Where this page starts (after the knobs moved it). */
  readonly offset: number;
}

/** Zero-padded index, so generated names sort like their indexes. */
/** The modification time of every generated row: a plausible date (a 1970 one is a server error the providers log). */
export const VIRTUAL_MTIME_MS = Date.UTC(2026, 0, 1);

export const virtualName = (index: number, ext = '') => `v-${String(index).padStart(7, '0')}${ext}`;

/**
 * One page of `real` (or of generated rows) as the knobs `k` make it. `at` is the row offset the
 * client asked to continue from (from a token, or its own offset); undefined for the first request.
 * `asked` is the page size it asked for.
 */
export function knobPage<T>(real: RowSource<T>, generate: (index: number) => T, k: PagingKnobs | undefined, at: number | undefined, asked: number): KnobPage<T> {
  const src: RowSource<T> = k?.endless ? { count: Infinity, at: generate } : k?.virtualRows !== undefined ? { count: k.virtualRows, at: generate } : real;
  const size = Math.max(1, Math.min(asked, k?.pageCap ?? asked));
  const total = k?.omitTotal || k?.endless ? undefined : Math.max(0, src.count + (k?.totalDelta ?? 0));
  if (at === undefined && k?.emptyFirstPage) return { rows: [], next: 0, total, offset: 0 };
  const offset = k?.repeatPage && at !== undefined && at > 0 ? size : Math.max(0, at ?? 0);
  const rows: T[] = [];
  for (let i = offset; i < offset + size && i < src.count; i++) rows.push(src.at(i));
  const end = offset + rows.length;
  return { rows, next: end < src.count ? end : undefined, total, offset };
}

/** The ETag a download response carries under the knobs; `n` counts responses (for `changing`). */
export function knobEtag(k: DownloadKnobs, real: string | undefined, n: number): string | undefined {
  switch (k.etag) {
    case 'absent':
      return undefined;
    case 'foreign':
      return '"f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"';
    case 'changing':
      return `"c${String(n).padStart(31, '0')}"`;
    default:
      return real;
  }
}
