/**
 * The Azure Blob API clients of every source that talks to Azure storage (azure-blob, AMS through its
 * write locators' SAS URLs, MK.IO's Azure storage): the SDK's clients, bounded and without retries of
 * their own (transports/sdk-clients.ts: retries belong to our retry, src/util/retry.ts).
 */
import {
  AnonymousCredential,
  BlobServiceClient,
  ContainerClient,
  StorageSharedKeyCredential,
  newPipeline,
  type Pipeline,
} from '@azure/storage-blob';
import type { SourceConfigOf } from '../../config/schema.js';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import { boundedAzureOptions } from '../../transports/sdk-clients.js';
import type { ApiMeter } from '../common/api-client.js';
import { countingAzurePolicy } from '../common/sdk-meters.js';

/** A container and how it is reached: the account key (SAS minted per blob) or a configured SAS. */
export interface AzureContainer {
  readonly container: ContainerClient;
  readonly credential?: StorageSharedKeyCredential;
  /** The configured SAS without its '?', when there is no account key. */
  readonly sas?: string;
}

/** Account name and key from a connection string, if it has them. */
function fromConnectionString(cs: string): { name?: string; key?: string } {
  const parts = Object.fromEntries(cs.split(';').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { name: parts.AccountName, key: parts.AccountKey };
}

/** The container of an azure-blob source. */
export function sourceContainer(cfg: SourceConfigOf<'azure-blob'>, net: NetBounds = DEFAULT_BOUNDS, meter?: ApiMeter): AzureContainer {
  const cs = cfg.connectionString ? fromConnectionString(cfg.connectionString) : {};
  const url = new URL(cfg.accountUrl);
  const accountName = cfg.accountName ?? cs.name ?? url.pathname.split('/').filter(Boolean)[0] ?? url.hostname.split('.')[0]!;
  const accountKey = cfg.accountKey ?? cs.key;
  const credential = accountKey ? new StorageSharedKeyCredential(accountName, accountKey) : undefined;
  const sas = credential ? undefined : (cfg.sasToken ?? '').replace(/^\?/, '');
  const pipeline = newPipeline(credential ?? new AnonymousCredential(), boundedAzureOptions(net));
  if (meter) pipeline.factories.unshift(countingAzurePolicy(meter));
  const container = new BlobServiceClient(credential ? cfg.accountUrl : `${cfg.accountUrl}?${sas}`, pipeline).getContainerClient(cfg.container);
  return { container, credential, sas };
}

/**
 * Container `name` under `url` with an optional SAS: `url` is the account URL, or that container's
 * own URL (a container SAS reaches only it).
 */
export function sasContainer(url: string, sasToken: string | undefined, name: string, net: NetBounds = DEFAULT_BOUNDS): ContainerClient {
  const sas = (sasToken ?? '').replace(/^\?/, '');
  const base = url.replace(/\/+$/, '');
  const withSas = (u: string) => (sas ? `${u}?${sas}` : u);
  const options = boundedAzureOptions(net);
  if (new URL(base).pathname.split('/').filter(Boolean).at(-1) === name) return new ContainerClient(withSas(base), undefined, options);
  return new BlobServiceClient(withSas(base), undefined, options).getContainerClient(name);
}

/** The pipeline for blob URLs that carry their own SAS (AMS locators). */
export function sasPipeline(net: NetBounds = DEFAULT_BOUNDS): Pipeline {
  return newPipeline(new AnonymousCredential(), boundedAzureOptions(net));
}
