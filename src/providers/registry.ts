/** Source type → Provider. The only switch over source types. */
import type { Provider } from '../core/types.js';
import type { SourceConfig } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { S3Provider } from './s3/index.js';
import { AzureBlobProvider } from './azure-blob/index.js';
import { WordbeeProvider } from './wordbee/index.js';
import { MediahubProvider } from './mediahub/index.js';
import { NomadProvider } from './nomad/index.js';
import { MkioProvider } from './mkio/index.js';
import { AmsProvider } from './ams/index.js';

export function createProvider(cfg: SourceConfig, deps: { log: Logger }): Provider {
  switch (cfg.type) {
    case 's3':
      return new S3Provider(cfg, deps);
    case 'azure-blob':
      return new AzureBlobProvider(cfg, deps);
    case 'wordbee':
      return new WordbeeProvider(cfg, deps);
    case 'mkio':
      return new MkioProvider(cfg, deps);
    case 'ams':
      return new AmsProvider(cfg, deps);
    case 'nomad':
      return new NomadProvider(cfg, deps);
    case 'mediahub':
      return new MediahubProvider(cfg, deps);
  }
}
