/**
 * The storage side of MK.IO reads, as the emulator serves it: the `url` getFileAccessInfo returns
 * points here, and the client GETs `{url}/{subPath}/{file}` with `Authorization: Bearer <jwt>`.
 *  - `/blob/{account}/{container}/{blob}` stands in for an Azure container URL (bearer Get Blob);
 *  - `/s3/{bucket}/{container}/{key}` stands in for a plain S3 bucket URL taking the jwt as bearer.
 *
 * Invariants:
 *  - The jwt is really checked: signature, expiry (Signer), and scope (it names one storage account
 *    and one container; any other container is 403). Expired or invalid → Azure 401
 *    InvalidAuthenticationInfo / S3 403 AccessDenied, in the storage's own XML error shape.
 *  - GET is proxied to the real storage server through a signed URL the gateway mints itself on the
 *    account's public base (so the fault proxy in front of s3rver/Azurite sees it), passing Range
 *    through and Content-Range, ETag, Content-Length, Last-Modified back. HEAD is answered from a
 *    direct HEAD of the object.
 *  - `x-ms-version` is accepted and ignored (a guess, docs/providers.md#mkio).
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import type { Ctx, Router } from '../common/server.js';
import { bearer, type Signer } from '../common/signing.js';
import { knobEtag, type EmulatorKnobs } from '../common/knobs.js';
import type { AssetStore, StorageKind } from './store.js';

/** What a getFileAccessInfo jwt grants: read of one container of one storage account. */
export interface AccessClaims {
  acct: string;
  container: string;
  scope: 'read';
}

const PASS_HEADERS = ['content-length', 'content-range', 'content-type', 'etag', 'last-modified', 'accept-ranges'];

function storageError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
}

export function addGatewayRoutes(router: Router, store: AssetStore, signer: Signer, knobs?: EmulatorKnobs): { close(): Promise<void> } {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  let gets = 0;

  async function serve(ctx: Ctx, kind: StorageKind, acct: string, container: string, path: string): Promise<void> {
    const { req, res } = ctx;
    req.resume();
    const deny = (status: number, azureCode: string, message: string) =>
      kind === 'azure' ? storageError(res, status, azureCode, message) : storageError(res, 403, 'AccessDenied', message);
    const token = bearer(req.headers.authorization);
    if (!token) return deny(401, 'NoAuthenticationInformation', 'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.');
    const v = signer.verify<AccessClaims>(token);
    if (!v.ok) {
      return deny(401, 'InvalidAuthenticationInfo', v.reason === 'expired' ? 'Lifetime validation failed. The token is expired.' : 'Server failed to authenticate the request.');
    }
    if (v.claims.acct !== acct || v.claims.container !== container || v.claims.scope !== 'read') {
      return storageError(res, 403, kind === 'azure' ? 'AuthorizationPermissionMismatch' : 'AccessDenied', 'This request is not authorized to perform this operation.');
    }
    if (req.method === 'HEAD') {
      const h = await store.head(kind, container, path);
      if (!h) return void res.writeHead(404, { 'content-length': '0' }).end();
      res.writeHead(200, { 'content-length': String(h.size), etag: `"${h.etag}"`, 'last-modified': new Date(h.mtimeMs).toUTCString(), 'accept-ranges': 'bytes' }).end();
      return;
    }
    const upstream = await request(await store.signedGet(kind, container, path, 60_000), {
      method: 'GET',
      headers: req.headers.range ? { range: req.headers.range } : {},
      dispatcher: agent,
    });
    const headers: Record<string, string> = {};
    for (const n of PASS_HEADERS) {
      const val = upstream.headers[n];
      if (val !== undefined) headers[n] = Array.isArray(val) ? val[0]! : val;
    }
    if (knobs) {
      const etag = knobEtag(knobs.download, headers.etag, gets++);
      if (etag === undefined) delete headers.etag;
      else headers.etag = etag;
    }
    res.writeHead(upstream.statusCode, headers);
    await pipeline(upstream.body, res);
  }

  router.on('GET', /^\/blob\/([^/]+)\/([^/]+)\/(.+)$/, (ctx) => {
    const [acct, container, path] = ctx.params as [string, string, string];
    const a = store.account(acct);
    if (a?.kind !== 'azure') return storageError(ctx.res, 404, 'ResourceNotFound', 'The specified resource does not exist.');
    return serve(ctx, 'azure', acct, container, path);
  });
  router.on('GET', /^\/s3\/([^/]+)\/([^/]+)\/(.+)$/, (ctx) => {
    const [bucket, container, path] = ctx.params as [string, string, string];
    const a = [...store.accounts.values()].find((x) => x.kind === 's3');
    if (!a || store.s3?.bucket !== bucket) return storageError(ctx.res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    return serve(ctx, 's3', a.name, container, path);
  });
  return { close: () => agent.close() };
}
