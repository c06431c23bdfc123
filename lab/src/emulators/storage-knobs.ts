/**
 * The behaviour knobs of common/knobs.ts applied to real storage servers, by the fault proxy in front
 * of s3rver and Azurite: S3 ListObjectsV2 (`list-type=2`) and Azure List Blobs (`comp=list`) answers,
 * and the ETag of object GETs. Paging knobs apply to listings whose `prefix` is the knobs' `scope`
 * (every listing when unset):
 *  - `pageCap`: the request's `max-keys` / `maxresults` is lowered to the cap before it goes on;
 *  - `emptyFirstPage`: the first request is answered here with no entries and a continuation
 *    (`knob-empty`), which is dropped again when it comes back;
 *  - `repeatPage`: every continuation is replaced by the first one the client sent (the server
 *    answers the same page, with the same next token where its tokens are deterministic);
 *  - `endless` / `virtualRows`: the listing is generated here, page by page (`knob:<offset>` tokens),
 *    blobs `<prefix>v-0000000.bin`… of one byte; nothing is held.
 * `omitTotal` means nothing here: neither protocol states a total.
 * Azure listings are signed over their query by SharedKey: knobbed Azure listings need a SAS client.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { knobEtag, knobPage, newKnobs, virtualName, VIRTUAL_MTIME_MS, type EmulatorKnobs, type PagingKnobs } from './common/knobs.js';

const EMPTY_TOKEN = 'knob-empty';
const GEN = 'knob:';
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Listing {
  readonly kind: 's3' | 'azure';
  readonly prefix: string;
  readonly tokenParam: string;
  readonly sizeParam: string;
  readonly defaultSize: number;
  readonly token: string | null;
}

function listingOf(req: IncomingMessage, url: URL): Listing | undefined {
  if (req.method !== 'GET') return undefined;
  const q = url.searchParams;
  const prefix = q.get('prefix') ?? '';
  if (q.get('list-type') === '2') {
    return { kind: 's3', prefix, tokenParam: 'continuation-token', sizeParam: 'max-keys', defaultSize: 1000, token: q.get('continuation-token') };
  }
  if (q.get('comp') === 'list' && q.get('restype') === 'container') {
    return { kind: 'azure', prefix, tokenParam: 'marker', sizeParam: 'maxresults', defaultSize: 5000, token: q.get('marker') };
  }
  return undefined;
}

export class StorageKnobs {
  readonly knobs: EmulatorKnobs = newKnobs();
  private gets = 0;
  private firstToken: string | undefined;

  /**
   * A listing request under the paging knobs: the URL to forward (possibly rewritten), or 'answered'
   * when the answer was written here.
   */
  forward(req: IncomingMessage, res: ServerResponse, url: URL): URL | 'answered' {
    const l = listingOf(req, url);
    const k = l && this.pagingFor(l);
    if (!l || !k) return url;
    const asked = Number(url.searchParams.get(l.sizeParam) ?? l.defaultSize) || l.defaultSize;
    if (k.endless || k.virtualRows !== undefined) {
      const at = l.token?.startsWith(GEN) ? Number(l.token.slice(GEN.length)) : undefined;
      const page = knobPage({ count: 0, at: () => '' }, (i) => `${l.prefix}${virtualName(i, '.bin')}`, k, at, asked);
      const next = page.next === undefined ? undefined : `${GEN}${page.next}`;
      writeListing(res, l, url, page.rows, next);
      return 'answered';
    }
    if (!l.token && k.emptyFirstPage) {
      writeListing(res, l, url, [], EMPTY_TOKEN);
      return 'answered';
    }
    const out = new URL(url);
    if (l.token === EMPTY_TOKEN) out.searchParams.delete(l.tokenParam);
    else if (l.token && k.repeatPage) {
      this.firstToken ??= l.token;
      out.searchParams.set(l.tokenParam, this.firstToken);
    }
    if (k.pageCap !== undefined) out.searchParams.set(l.sizeParam, String(Math.min(asked, k.pageCap)));
    return out;
  }

  /** The ETag an object GET's answer carries under the download knobs. */
  etag(req: IncomingMessage, url: URL, status: number, real: string | undefined): string | undefined {
    if (req.method !== 'GET' || (status !== 200 && status !== 206) || listingOf(req, url)) return real;
    return knobEtag(this.knobs.download, real, this.gets++);
  }

  private pagingFor(l: Listing): PagingKnobs | undefined {
    const p = this.knobs.paging;
    if (p.scope !== undefined && p.scope !== l.prefix) return undefined;
    const active = p.pageCap !== undefined || p.emptyFirstPage || p.repeatPage || p.endless || p.virtualRows !== undefined;
    return active ? p : undefined;
  }
}

function writeListing(res: ServerResponse, l: Listing, url: URL, keys: readonly string[], next: string | undefined): void {
  const lastModified = new Date(VIRTUAL_MTIME_MS);
  let body: string;
  const headers: Record<string, string> = { 'content-type': 'application/xml' };
  if (l.kind === 's3') {
    const contents = keys.map((k) => `<Contents><Key>${xml(k)}</Key><LastModified>${lastModified.toISOString()}</LastModified><ETag>&quot;c4ca4238a0b923820dcc509a6f75849b&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>`).join('');
    const bucket = decodeURIComponent(url.pathname.split('/').filter(Boolean)[0] ?? '');
    body = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xml(bucket)}</Name><Prefix>${xml(l.prefix)}</Prefix>`
      + `<KeyCount>${keys.length}</KeyCount><MaxKeys>${url.searchParams.get('max-keys') ?? 1000}</MaxKeys><Delimiter>/</Delimiter><IsTruncated>${next !== undefined}</IsTruncated>`
      + (l.token ? `<ContinuationToken>${xml(l.token)}</ContinuationToken>` : '') + (next !== undefined ? `<NextContinuationToken>${xml(next)}</NextContinuationToken>` : '')
      + `${contents}</ListBucketResult>`;
  } else {
    const [account = '', container = ''] = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const blobs = keys.map((k) => `<Blob><Name>${xml(k)}</Name><Properties><Creation-Time>${lastModified.toUTCString()}</Creation-Time><Last-Modified>${lastModified.toUTCString()}</Last-Modified>`
      + `<Etag>0x8D000000000${String(k.length).padStart(4, '0')}</Etag><Content-Length>1</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>`
      + `<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState></Properties></Blob>`).join('');
    body = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="${xml(`${url.origin}/${account}`)}" ContainerName="${xml(container)}">`
      + `<Prefix>${xml(l.prefix)}</Prefix>${l.token ? `<Marker>${xml(l.token)}</Marker>` : ''}<MaxResults>${url.searchParams.get('maxresults') ?? 5000}</MaxResults><Delimiter>/</Delimiter>`
      + `<Blobs>${blobs}</Blobs><NextMarker>${next === undefined ? '' : xml(next)}</NextMarker></EnumerationResults>`;
    headers['x-ms-version'] = '2021-10-04';
    headers['x-ms-request-id'] = '00000000-0000-0000-0000-000000000000';
  }
  res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(body)) }).end(body);
}
