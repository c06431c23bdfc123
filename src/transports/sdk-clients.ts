/**
 * The HTTP layer under the storage SDKs (@aws-sdk/client-s3, @azure/storage-blob), bounded like every
 * other call (bounds.ts, docs/semantics.md "Bounded calls"). The SDKs' own clients have no deadline,
 * no stall timeout on Azure, and read any answer whole into memory.
 *
 * Invariants:
 *  - Connect and stall timeouts of `stallMs`; a deadline per call of deadlineFor(bytes of its body),
 *    which also covers the streaming of the answer; an answer body larger than `maxApiBodyBytes` fails
 *    the call (the daemon reads objects through presigned/SAS URLs on the read transport, never through
 *    an SDK, so every SDK answer is a listing, a header set or an error document).
 *  - A call its deadline cut short fails with a TransientError naming the bound; a call its caller
 *    aborted fails as the SDK reports an abort.
 *  - The SDKs never retry on their own (S3 maxAttempts 1, Azure maxTries 1): retries belong to our
 *    retry (util/retry.ts), which knows the read deadline. Neither follows a redirect to another origin (the AWS SDK
 *    follows none; Azure's redirect policy stays within the origin and drops Authorization).
 */
import { Transform, type Readable } from 'node:stream';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createDefaultHttpClient, createHttpHeaders, createPipelineRequest, type HttpClient } from '@azure/core-rest-pipeline';
import { toCompatResponse, type CompatResponse, type RequestPolicy, type WebResourceLike } from '@azure/core-http-compat';
import { TransientError } from '../core/errors.js';
import { redactUrl } from '../util/redact.js';
import { Deadline, deadlineFor, type NetBounds } from './bounds.js';

/** A body's length when it is known up front (a Buffer or string), else 0. */
function bodyBytes(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

/** `body` passed through while it stays within `cap` bytes; past it, the stream fails. `done` runs once at its end. */
function capped(body: Readable, cap: number, what: string, done: () => void): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > cap) return cb(new TransientError(`${what}: answer larger than ${cap} bytes (retry.maxApiBody)`));
      cb(null, chunk);
    },
  });
  body.on('error', (e) => out.destroy(e));
  out.on('close', done);
  out.on('error', () => body.destroy());
  return body.pipe(out);
}

type S3Request = Parameters<NodeHttpHandler['handle']>[0];
type S3HandlerOptions = NonNullable<Parameters<NodeHttpHandler['handle']>[1]>;
type S3Answer = Awaited<ReturnType<NodeHttpHandler['handle']>>;

/** The S3 client's request handler: @smithy's NodeHttpHandler with our timeouts, deadline and answer cap. */
export class BoundedS3Handler {
  private readonly inner: NodeHttpHandler;

  constructor(private readonly bounds: NetBounds) {
    this.inner = new NodeHttpHandler({
      connectionTimeout: bounds.stallMs,
      socketTimeout: bounds.stallMs,
      requestTimeout: bounds.deadlineMs,
      throwOnRequestTimeout: true,
    });
  }

  get metadata() {
    return this.inner.metadata;
  }

  async handle(request: S3Request, options: S3HandlerOptions = {}): Promise<S3Answer> {
    const what = `${request.method} ${redactUrl(`${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ''}${request.path}`)}`;
    const deadline = new Deadline(deadlineFor(this.bounds, bodyBytes(request.body)), options.abortSignal as AbortSignal | undefined);
    try {
      const { response } = await this.inner.handle(request, { ...options, abortSignal: deadline.signal, requestTimeout: deadline.ms });
      const body = response.body as Readable | undefined;
      if (body && typeof body.pipe === 'function') {
        response.body = capped(body, this.bounds.maxApiBodyBytes, what, () => deadline.clear());
      } else {
        deadline.clear();
      }
      return { response };
    } catch (e) {
      deadline.clear();
      if (deadline.expired) throw deadline.error(what);
      throw e;
    }
  }

  updateHttpClientConfig(...args: Parameters<NodeHttpHandler['updateHttpClientConfig']>): void {
    this.inner.updateHttpClientConfig(...args);
  }

  httpHandlerConfigs() {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy();
  }
}

/**
 * The Azure Storage pipeline's HTTP client (its public `httpClient` option): Azure's default Node client
 * under our deadline and answer cap. Answers are read here, as a stream, so that the cap holds.
 */
export class BoundedAzureHttpClient implements RequestPolicy {
  private readonly inner: HttpClient = createDefaultHttpClient();

  constructor(private readonly bounds: NetBounds) {}

  async sendRequest(w: WebResourceLike): Promise<CompatResponse> {
    const what = `${w.method} ${redactUrl(w.url)}`;
    const deadline = new Deadline(deadlineFor(this.bounds, bodyBytes(w.body)), w.abortSignal as AbortSignal | undefined);
    const request = createPipelineRequest({
      url: w.url,
      method: w.method,
      headers: createHttpHeaders(w.headers.toJson({ preserveCase: true })),
      body: w.body,
      abortSignal: deadline.signal,
      // Until the headers: Azure's client has no stall timeout of its own, so the headers get `stallMs`.
      timeout: Math.min(this.bounds.stallMs, deadline.ms),
      disableKeepAlive: w.keepAlive === false,
      onUploadProgress: w.onUploadProgress,
      onDownloadProgress: w.onDownloadProgress,
      streamResponseStatusCodes: new Set([Number.POSITIVE_INFINITY]),
      allowInsecureConnection: true,
    });
    try {
      const res = await this.inner.sendRequest(request);
      const stream = res.readableStreamBody as Readable | undefined;
      const wanted = w.streamResponseStatusCodes?.has(res.status) || w.streamResponseStatusCodes?.has(Number.POSITIVE_INFINITY);
      if (stream && wanted) {
        res.readableStreamBody = capped(stream, this.bounds.maxApiBodyBytes, what, () => deadline.clear());
      } else {
        res.readableStreamBody = undefined;
        res.bodyAsText = stream ? await readText(capped(stream, this.bounds.maxApiBodyBytes, what, () => undefined)) : undefined;
        deadline.clear();
      }
      const compat = toCompatResponse(res);
      // The pipeline finds the operation an answer belongs to by its request object: keep the original.
      compat.request = w;
      return compat;
    } catch (e) {
      deadline.clear();
      if (deadline.expired) throw deadline.error(what);
      throw e;
    }
  }
}

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** S3Client options that bound every call and leave retries to our retry (util/retry.ts). */
export function boundedS3Options(bounds: NetBounds): { requestHandler: BoundedS3Handler; maxAttempts: number } {
  return { requestHandler: new BoundedS3Handler(bounds), maxAttempts: 1 };
}

/** Azure Storage client options that bound every call and leave retries to our retry (util/retry.ts). */
export function boundedAzureOptions(bounds: NetBounds): { retryOptions: { maxTries: number }; httpClient: BoundedAzureHttpClient } {
  return { retryOptions: { maxTries: 1 }, httpClient: new BoundedAzureHttpClient(bounds) };
}
