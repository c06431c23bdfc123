/**
 * The S3 API client of every source that talks to S3 (the s3 provider, MK.IO's S3 storage): the AWS
 * SDK's S3Client, bounded and without retries of its own (transports/sdk-clients.ts: retries belong to
 * our retry, src/util/retry.ts, which knows the read deadline).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import { boundedS3Options } from '../../transports/sdk-clients.js';

export interface S3Endpoint {
  region: string;
  /** An S3-compatible endpoint; undefined for AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export function s3Client(e: S3Endpoint, net: NetBounds = DEFAULT_BOUNDS): S3Client {
  return new S3Client({
    region: e.region,
    endpoint: e.endpoint,
    forcePathStyle: e.forcePathStyle,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, sessionToken: e.sessionToken },
    // Streamed aws-chunked trailers corrupt uploads on some S3-compatible servers (s3rver); real S3 is fine either way.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...boundedS3Options(net),
  });
}
