/**
 * API request counting (assetfs_origin_requests_total{kind="api"}) for the storage SDKs, which do not
 * go through ApiClient. Requests carrying the uploads' parts are left out: the upload engine counts
 * each part it sends (kind upload), whatever client carries it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { RequestPolicyFactory } from '@azure/storage-blob';
import type { ApiMeter } from './api-client.js';

const S3_PART_COMMANDS = new Set(['UploadPartCommand', 'PutObjectCommand']);

/** The HTTP status an SDK error carries, else the error itself (no answer: counted as `error`). */
function countFailure(meter: ApiMeter, e: unknown, status: number | undefined): void {
  if (status !== undefined) meter.request('api', undefined, status);
  else meter.request('api', e);
}

export function countS3Requests(client: S3Client, meter: ApiMeter): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (S3_PART_COMMANDS.has(context.commandName ?? '')) return next(args);
      try {
        const out = await next(args);
        meter.request('api', undefined, (out.response as { statusCode?: number }).statusCode ?? 200);
        return out;
      } catch (e) {
        countFailure(meter, e, (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode);
        throw e;
      }
    },
    { step: 'deserialize', name: 'assetfsCountRequests' },
  );
}

/** A pipeline policy for Azure Blob clients (first in `pipeline.factories`). */
export function countingAzurePolicy(meter: ApiMeter): RequestPolicyFactory {
  return {
    create: (next) => ({
      async sendRequest(req) {
        const part = req.method === 'PUT' && /[?&]comp=block(&|$)/.test(req.url);
        try {
          const res = await next.sendRequest(req);
          if (!part) meter.request('api', undefined, res.status);
          return res;
        } catch (e) {
          if (!part) countFailure(meter, e, (e as { statusCode?: number }).statusCode);
          throw e;
        }
      },
    }),
  };
}
