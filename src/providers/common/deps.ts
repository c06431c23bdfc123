/** What every provider is built with (the registry passes the config's `retry` and `listing`). */
import type { Logger } from '../../util/logger.js';
import type { NetBounds } from '../../transports/bounds.js';
import type { ListingLimits } from './paging.js';
import type { ApiMeter } from './api-client.js';

export interface ProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Entries per listing page; each provider's default is its platform's maximum or documented example. */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** The smallest upload part (tests use small parts); default common/part-size.ts DEFAULT_PART_BYTES. */
  uploadPartSize?: number;
}
