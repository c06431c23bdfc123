/**
 * The hostile-server suite (docs/semantics.md, "Bounded calls" and "Credentials and origins"): each
 * provider's platform API and storage sit behind the fault proxy, which misbehaves once per case as
 * servers that the platforms' documentation allows do. A case survives when the operation either gives
 * the right answer or fails with an FsError (never a hang: the bounds end it; never wrong bytes), no
 * credential reaches another origin, and the same provider then works again against its configured URL.
 *
 * Figures (printed at the end, for the README): cases tried, cases survived, bytes read wrong (must be
 * 0), and the peak RSS of this test process (the provider, the transport and the emulators all run in
 * it; the storage servers are child processes and not counted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Provider, RemoteEntry, SignedLocator } from '../../src/core/types.js';
import { FsError } from '../../src/core/errors.js';
import { HttpTransport } from '../../src/transports/http.js';
import type { NetBounds } from '../../src/transports/bounds.js';
import type { FaultProxy, Misbehaviour, RequestMatch } from '@assetfs/lab/emulators/fault-proxy.js';
import { credentialsSeen, startElsewhere, wrongBytes } from '../helpers/hostile-server.js';
import { walk } from './provider-suite.js';

export interface HostileFixture {
  /** A provider over the seeded platform whose API calls go through `api`, bounded by `net`. */
  provider(net: NetBounds): Provider;
  /** The proxy in front of the platform API (for S3 and Azure: of the storage service). */
  readonly api: FaultProxy;
  /** The proxy in front of the storage the provider's read URLs point at (may be `api`). */
  readonly storage: FaultProxy;
  /** Where `storage` forwards to: the other origin forwards there too, so a presigned URL still reads. */
  readonly storageTarget: string;
  readonly format: 'json' | 'xml';
  /** A seeded file (mount-relative path, at least two folders deep is not required) and its bytes. */
  readonly file: { readonly path: string; readonly data: Buffer };
  /** Configured secrets (keys, passwords, tokens) that must never reach another origin. */
  readonly secrets: readonly string[];
  /** API calls that list a folder on the way to the file (where API faults are aimed). */
  readonly listCall: RequestMatch;
  /** Storage requests that read the file's bytes (where read faults are aimed). */
  readonly readCall: RequestMatch;
  /** The API call whose answer carries the file's read URL, when the platform hands one back. */
  readonly urlCall?: RequestMatch;
  /** The origin of the read URLs that answer carries (default: `storage`'s). */
  readonly readOrigin?: string;

  /** Rewrites a listing answer so that its continuation points at `elsewhere` (AMS, MK.IO nextLinks). */
  readonly pointNextElsewhere?: (body: string, elsewhere: string) => string;
  teardown(): Promise<void>;
}

/** Bounds tight enough for a short suite, loose enough for a loaded two-core machine. */
const NET: NetBounds = { stallMs: 1_000, deadlineMs: 2_500, maxApiBodyBytes: 1024 * 1024 };
const CASE_TIMEOUT = 30_000;

interface Tally {
  tried: number;
  survived: number;
  wrongBytes: number;
  peakRss: number;
}

/** What a platform does that some cases need (known before setup, when the cases are declared). */
export interface HostileCaps {
  /** Its API hands back read URLs (`urlCall`). */
  readonly handsBackUrls?: boolean;
  /** Its listings carry continuation links (`pointNextElsewhere`). */
  readonly nextLinks?: boolean;
  /** It hands a storage credential along with a read URL (see HostileFixture.handsCredentialsWithUrls). */
  readonly handsCredentialsWithUrls?: boolean;
}

export function runHostileSuite(label: string, caps: HostileCaps, setup: () => Promise<HostileFixture>): void {
  describe(`Hostile servers: ${label}`, () => {
    let fx: HostileFixture;
    let elsewhere: FaultProxy;
    const transport = new HttpTransport({ requestTimeoutMs: NET.stallMs, deadlineMs: NET.deadlineMs });
    const tally: Tally = { tried: 0, survived: 0, wrongBytes: 0, peakRss: 0 };
    const providers: Provider[] = [];

    beforeAll(async () => {
      fx = await setup();
      elsewhere = await startElsewhere(fx.storageTarget);
    }, 300_000);
    afterAll(async () => {
      await Promise.allSettled(providers.map((p) => p.close()));
      await transport.close();
      await elsewhere?.close();
      await fx?.teardown();
      tally.peakRss = Math.max(tally.peakRss, process.resourceUsage().maxRSS * 1024);
      // The README's figures: one line per provider.
      console.log(`hostile suite [${label}]: ${tally.tried} cases tried, ${tally.survived} survived, ${tally.wrongBytes} bytes read wrong, peak RSS ${(tally.peakRss / 2 ** 20).toFixed(0)} MiB (test process)`);
    });

    const fresh = () => {
      const p = fx.provider(NET);
      providers.push(p);
      return p;
    };
    const objOf = (p: Provider, e: RemoteEntry) => ({ source: p.name, ref: e.ref, version: e.version, size: e.size });

    /** Runs one case: `body` asserts; the case survived when it returned. */
    const hostileCase = (name: string, body: () => Promise<void>, opts: { handedCredentials?: boolean } = {}) =>
      it(name, async () => {
        tally.tried++;
        elsewhere.clearLog();
        try {
          await body();
          const seen = credentialsSeen(elsewhere.requests(), fx.secrets);
          expect(opts.handedCredentials ? seen.filter((s) => / carries a secret$| in the URL$/.test(s)) : seen).toEqual([]);
          tally.survived++;
        } finally {
          fx.api.behave();
          fx.storage.behave();
          // Each case's providers go (AMS holds at most 5 locators per asset, and a provider keeps its own).
          await Promise.allSettled(providers.splice(0).map((p) => p.close()));
          tally.peakRss = Math.max(tally.peakRss, process.memoryUsage().rss);
        }
      }, CASE_TIMEOUT);

    /**
     * Walking to the file settles with the right entry or an FsError (its outcome is returned), and the
     * same provider then finds the file again through its configured URL.
     */
    async function listingSurvives(p: Provider, arm: () => void): Promise<unknown> {
      arm();
      const outcome = await walk(p, fx.file.path).then((e) => e, (e: unknown) => e);
      if (!(outcome instanceof Error)) expect(outcome).toMatchObject({ kind: 'file', size: fx.file.data.length });
      else expect(outcome).toBeInstanceOf(FsError);
      fx.api.behave();
      expect((await walk(p, fx.file.path)).size).toBe(fx.file.data.length);
      return outcome;
    }

    /** The file's bytes through `loc` are right, or the read fails with an FsError. */
    async function readSurvives(loc: SignedLocator, obj: ReturnType<typeof objOf>): Promise<Buffer | FsError> {
      const got = await transport.readRange(loc, { start: 0, end: obj.size }, obj).then((b) => b, (e: unknown) => e);
      if (got instanceof Buffer) {
        tally.wrongBytes += wrongBytes(got, fx.file.data);
        expect(wrongBytes(got, fx.file.data)).toBe(0);
        return got;
      }
      expect(got).toBeInstanceOf(FsError);
      return got as FsError;
    }

    const pending = (proxy: FaultProxy) => proxy.misbehaved();
    const apiFault = (m: Misbehaviour) => () => fx.api.misbehave(m, { match: fx.listCall });

    // ---- the platform API misbehaves --------------------------------------------------------------

    const apiCases: Array<[string, () => Misbehaviour]> = [
      ['an API answer trickled a byte at a time fails within the deadline', () => ({ kind: 'trickle', intervalMs: 400 })],
      ['an API answer whose body never comes fails on the stall timeout', () => ({ kind: 'stall' })],
      ['an API answer cut short of its Content-Length fails', () => ({ kind: 'length', delta: 4096 })],
      ['a malformed API answer fails, and lists nothing', () => ({ kind: 'body', body: fx.format === 'json' ? '{"value":[{"name":"x' : '<?xml version="1.0"?><EnumerationResults><Blobs><Blob><Name>x', contentType: fx.format === 'json' ? 'application/json' : 'application/xml' })],
      ['a huge API answer (chunked) is cut off at retry.maxApiBody', () => ({ kind: 'huge', bytes: 32 * NET.maxApiBodyBytes, format: fx.format })],
      ['a huge API answer (declared) is refused before it is read', () => ({ kind: 'huge', bytes: 32 * NET.maxApiBodyBytes, format: fx.format, declared: true })],
      ['an API 307 within the origin never moves the base URL', () => ({ kind: 'redirect', to: `${fx.api.url}/moved`, status: 307 })],
      ['an API 301 within the origin never moves the base URL', () => ({ kind: 'redirect', to: `${fx.api.url}/moved`, status: 301 })],
    ];
    for (const [name, m] of apiCases) {
      hostileCase(name, async () => {
        const p = fresh();
        const before = pending(fx.api);
        const outcome = await listingSurvives(p, apiFault(m()));
        expect(pending(fx.api)).toBeGreaterThan(before);
        if (!name.includes('within the origin')) expect(outcome).toBeInstanceOf(FsError);
      });
    }
    for (const status of [301, 302, 307, 308]) {
      hostileCase(`an API ${status} to another origin sends it no credential, and the base URL stays`, async () => {
        const p = fresh();
        expect(await listingSurvives(p, apiFault({ kind: 'redirect', to: elsewhere.url, status }))).toBeInstanceOf(FsError);
        // Not followed at all (API clients and storage SDKs follow no redirect to another origin), and the
        // recovery walk in listingSurvives went to the configured URL.
        expect(elsewhere.requests()).toEqual([]);
      });
    }
    if (caps.nextLinks) {
      hostileCase('a continuation link to another origin is not followed with credentials', async () => {
        const p = fresh();
        expect(fx.pointNextElsewhere).toBeTypeOf('function');
        let rewritten = 0;
        const edit = (b: string) => {
          const out = fx.pointNextElsewhere!(b, elsewhere.url);
          if (out !== b) rewritten++;
          return out;
        };
        await listingSurvives(p, () => fx.api.misbehave({ kind: 'rewrite', edit }, { match: fx.listCall, times: Infinity }));
        expect(rewritten).toBeGreaterThan(0);
        expect(elsewhere.requests()).toEqual([]);
      });
    }

    // ---- the storage misbehaves on the read path --------------------------------------------------

    const readCases: Array<[string, () => Misbehaviour, 'fails' | 'either']> = [
      ['a read trickled a byte at a time fails within the deadline', () => ({ kind: 'trickle', intervalMs: 400 }), 'fails'],
      ['a read whose body never comes fails on the stall timeout', () => ({ kind: 'stall' }), 'fails'],
      ['a read cut short of its Content-Length fails', () => ({ kind: 'length', delta: 4096 }), 'fails'],
      ['a read declaring fewer bytes than the range fails', () => ({ kind: 'length', delta: -1 }), 'fails'],
      ['a Content-Range naming other bytes is never taken for them', () => ({ kind: 'range', shift: 1 }), 'either'],
      ['a huge body in place of the range is refused', () => ({ kind: 'huge', bytes: 8 * NET.maxApiBodyBytes, format: 'xml' }), 'fails'],
      ['a read redirected within its origin reads the right bytes', () => ({ kind: 'redirect', to: fx.storage.url, status: 302 }), 'either'],
      ['a read redirected to another origin takes no credential there', () => ({ kind: 'redirect', to: elsewhere.url, status: 307 }), 'either'],
    ];
    for (const [name, m, expectation] of readCases) {
      hostileCase(name, async () => {
        const p = fresh();
        const e = await walk(p, fx.file.path);
        const obj = objOf(p, e);
        const loc = await p.locate(obj);
        const before = pending(fx.storage);
        fx.storage.misbehave(m(), { match: fx.readCall });
        const got = await readSurvives(loc, obj);
        expect(pending(fx.storage)).toBeGreaterThan(before); // the fault was met, not missed
        if (expectation === 'fails') expect(got).toBeInstanceOf(FsError);
        const again = await transport.readRange(await p.locate(obj), { start: 0, end: obj.size }, obj);
        expect(wrongBytes(again, fx.file.data)).toBe(0);
      });
    }
    if (caps.handsBackUrls) {
      hostileCase('a read URL handed back at another origin takes no credential there', async () => {
        const p = fresh();
        expect(fx.urlCall).toBeTypeOf('function');
        const from = fx.readOrigin ?? fx.storage.url;
        fx.api.misbehave({ kind: 'rewrite', edit: (b) => b.split(from).join(elsewhere.url) }, { match: fx.urlCall!, times: Infinity });
        // Stat may already use the URL (MK.IO probes it): any step may fail, with an FsError.
        const outcome = await (async () => {
          const obj = objOf(p, await walk(p, fx.file.path));
          const loc = await p.locate(obj);
          expect(new URL(loc.url).origin).toBe(new URL(elsewhere.url).origin);
          return readSurvives(loc, obj);
        })().catch((e: unknown) => e);
        if (outcome instanceof Error) expect(outcome).toBeInstanceOf(FsError);
        expect(elsewhere.requests().length).toBeGreaterThan(0); // the URL handed back was used
      }, { handedCredentials: caps.handsCredentialsWithUrls });
    }
  });
}
