/**
 * Source type → Provider. The only switch over source types. Each provider's module (and the SDK it
 * pulls in) is imported on first use: a mount of one S3 bucket does not load the Azure SDK and four
 * platform clients, which keeps the daemon's heap small (every major GC walks all of it).
 */
import type { Provider } from '../core/types.js';
import type { SourceConfig, SourceConfigOf } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import type { ApiMeter } from './common/api-client.js';
import type { NetBounds } from '../transports/bounds.js';
import type { ListingLimits } from './common/paging.js';

/**
 * What every provider is built with: its logger, its network bounds and the bounds of its listings
 * (config `retry`, `listing`), and the meter that counts its API requests (metrics/metrics.ts).
 */
type Deps = { log: Logger; net?: NetBounds; listing?: ListingLimits; meter?: ApiMeter };
type Loaders = { [T in SourceConfig['type']]: (cfg: SourceConfigOf<T>, deps: Deps) => Promise<Provider> };

const loaders: Loaders = {
  s3: async (cfg, deps) => new (await import('./s3/index.js')).S3Provider(cfg, deps),
  'azure-blob': async (cfg, deps) => new (await import('./azure-blob/index.js')).AzureBlobProvider(cfg, deps),
  wordbee: async (cfg, deps) => new (await import('./wordbee/index.js')).WordbeeProvider(cfg, deps),
  mkio: async (cfg, deps) => new (await import('./mkio/index.js')).MkioProvider(cfg, deps),
  ams: async (cfg, deps) => new (await import('./ams/index.js')).AmsProvider(cfg, deps),
  nomad: async (cfg, deps) => new (await import('./nomad/index.js')).NomadProvider(cfg, deps),
  mediahub: async (cfg, deps) => new (await import('./mediahub/index.js')).MediahubProvider(cfg, deps),
};

export function createProvider(cfg: SourceConfig, deps: Deps): Promise<Provider> {
  return (loaders[cfg.type] as (c: SourceConfig, d: Deps) => Promise<Provider>)(cfg, deps);
}
