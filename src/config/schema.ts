/**
 * Every setting, with its default and meaning, in one place. `check-config` and `mount` both validate
 * through `ConfigSchema`; errors carry the key path (e.g. `sources[2].bucket`).
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { DEFAULT_PART_BYTES } from '../core/blocks.js';
import { isLoopbackListen } from '../metrics/listen-address.js';

/** Mount options of libfuse 2 that libfuse 3 (our fuse-native's) rejects, failing the mount. */
export const LIBFUSE2_ONLY = new Set(['big_writes', 'nonempty', 'large_read', 'atomic_o_trunc', 'no_remote_lock']);

const size = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `${what}: expected a size like 512MiB, 20GiB or a byte count, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `${what}: expected a duration like 60s, 5m or 250ms, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const httpUrl = z.string().refine((s) => /^https?:\/\/[^\s]+$/.test(s) && URL.canParse(s), 'expected an http(s) URL');

/** A source name is one path segment of the mount: it must be safe as a directory name. */
const sourceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');

const common = {
  name: sourceName,
  /** How long signed read URLs we mint live (where we mint them). */
  urlTtl: duration('urlTtl').default(15 * 60_000),
  /** Override the global metadata TTL for this source. */
  metadataTtl: duration('metadataTtl').optional(),
  readOnly: z.boolean().default(false),
};

const S3Source = z.strictObject({
  ...common,
  type: z.literal('s3'),
  endpoint: httpUrl.optional(),
  bucket: z.string().min(1),
  prefix: z.string().default(''),
  region: z.string().default('us-east-1'),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().optional(),
  forcePathStyle: z.boolean().default(true),
});

const AzureBlobSource = z
  .strictObject({
    ...common,
    type: z.literal('azure-blob'),
    accountUrl: httpUrl,
    container: z.string().min(1),
    prefix: z.string().default(''),
    accountName: z.string().optional(),
    accountKey: z.string().optional(),
    sasToken: z.string().optional(),
    connectionString: z.string().optional(),
  })
  .refine((s) => !!(s.sasToken || s.accountKey || s.connectionString), {
    message: 'needs one of sasToken, accountKey (with accountName) or connectionString',
    path: ['sasToken'],
  });

const StorageCredential = z.strictObject({
  type: z.enum(['azure', 's3']),
  url: httpUrl.optional(),
  sasToken: z.string().optional(),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  region: z.string().optional(),
  bucket: z.string().optional(),
});

const MkioSource = z.strictObject({
  ...common,
  type: z.literal('mkio'),
  baseUrl: httpUrl.default('https://app.mk.io'),
  project: z.string().min(1),
  token: z.string().min(1),
  storage: StorageCredential.optional(),
});

const WordbeeSource = z.strictObject({
  ...common,
  type: z.literal('wordbee'),
  baseUrl: httpUrl,
  accountId: z.string().min(1),
  apiKey: z.string().min(1),
  scopes: z.array(z.string().regex(/^(pr|jbs|jbc)\d+$/, 'expected a scope like pr7214, jbs12 or jbc12')).min(1),
});

const AmsSource = z.strictObject({
  ...common,
  type: z.literal('ams'),
  restUrl: httpUrl,
  token: z.string().min(1).optional(),
  tokenUrl: httpUrl.optional(),
  clientId: z.string().optional(),
  clientSecret: z.string().optional(),
  resource: z.string().default('https://rest.media.azure.net'),
});

const NomadSource = z.strictObject({
  ...common,
  type: z.literal('nomad'),
  baseUrl: httpUrl,
  username: z.string().min(1),
  password: z.string().min(1),
  applicationId: z.string().optional(),
  rootFolderId: z.string().optional(),
});

const MediahubSource = z.strictObject({
  ...common,
  type: z.literal('mediahub'),
  baseUrl: httpUrl.default('https://api.xvid.com/v1'),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  scope: z.string().default('mediahub'),
});

export const SourceSchema = z.discriminatedUnion('type', [
  S3Source,
  AzureBlobSource,
  MkioSource,
  WordbeeSource,
  AmsSource,
  NomadSource,
  MediahubSource,
]);

const SyncEntry = z.strictObject({
  local: z.string().min(1),
  remote: z.string().min(1),
  deleteRemote: z.boolean().default(false),
  ignore: z.array(z.string()).default([]),
  stableFor: duration('stableFor').default(2000),
});

export const ConfigSchema = z
  .strictObject({
    mountpoint: z.string().min(1).optional(),
    cacheDir: z.string().min(1).default('/var/cache/assetfs'),
    cache: z
      .strictObject({
        memory: size('cache.memory').default(512 * 1024 ** 2),
        disk: size('cache.disk').default(20 * 1024 ** 3),
        blockSize: size('cache.blockSize').default(1024 ** 2),
      })
      .prefault({}),
    metadataTtl: duration('metadataTtl').default(60_000),
    /** How long a name missing from a listing stays "no such name" (vfs/dir-cache.ts). Default 5 s. */
    metadataNegativeTtl: duration('metadataNegativeTtl').optional(),
    /** The old name of metadataNegativeTtl, still read when the new one is absent. */
    negativeTtl: duration('negativeTtl').optional(),
    metrics: z
      .strictObject({
        /** host:port of a TCP listener for GET /metrics (off when absent); loopback only unless allowRemote. */
        listen: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464 or [::1]:9464').optional(),
        /** Let `listen` name a non-loopback address (metrics then reach anyone who can reach that port). */
        allowRemote: z.boolean().default(false),
      })
      .prefault({}),
    readahead: z
      .strictObject({
        /** Largest readahead window per open file. */
        max: size('readahead.max').default(64 * 1024 ** 2),
        /** Size of one ranged GET when several blocks are fetched together. */
        part: size('readahead.part').default(DEFAULT_PART_BYTES),
        /** Global cap on bytes being prefetched at once. */
        budget: size('readahead.budget').default(256 * 1024 ** 2),
      })
      .prefault({}),
    retry: z
      .strictObject({
        /** How long a read keeps retrying transient faults before it fails with EIO. */
        maxTime: duration('retry.maxTime').default(30_000),
        /** Per-request timeout for headers and for each body stall. */
        requestTimeout: duration('retry.requestTimeout').default(20_000),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        file: z.string().optional(),
      })
      .prefault({}),
    fuse: z
      .strictObject({
        allowOther: z.boolean().default(false),
        /** The kernel's readahead for the mount (its read_ahead_kb; needs root): it also sizes the kernel's read requests, up to 1 MiB. */
        readahead: size('fuse.readahead').default(1024 ** 2),
        /**
         * Asynchronous requests (readahead, O_DIRECT reads) the kernel keeps in flight to the daemon;
         * past 3/4 of it, readahead is cut short. libfuse's default is 12: too few for many readers of
         * cold files (docs/design.md#kernel-options). A max_background in `options` takes precedence.
         */
        maxBackground: z.number().int().min(1).max(65535).default(64),
        /** Extra libfuse options, appended verbatim (e.g. congestion_threshold=32). */
        options: z
          .array(
            z
              .string()
              .regex(/^[a-z_]+(=[A-Za-z0-9_.-]+)?$/, 'expected a libfuse option like max_background=64')
              .refine((o) => !LIBFUSE2_ONLY.has(o.split('=')[0]!), {
                error: (iss) => `${String(iss.input)} is a libfuse 2 option that libfuse 3 refuses: remove it (writes are large by default now)`,
              }),
          )
          .default([]),
      })
      .prefault({}),
    uploads: z
      .strictObject({
        /** Delay between the last close of a file written into the mount and its upload (rsync renames meanwhile). */
        writeBack: duration('uploads.writeBack').default(2_000),
        /** Files uploading at once. */
        parallelFiles: z.number().int().min(1).max(64).default(2),
        /** Parts in flight over all files (memory: parallelParts × part size). */
        parallelParts: z.number().int().min(1).max(256).default(8),
        /** Parts in flight per file. */
        partsPerFile: z.number().int().min(1).max(64).default(4),
      })
      .prefault({}),
    sources: z.array(SourceSchema).min(1, 'at least one source is needed'),
    sync: z.array(SyncEntry).default([]),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.metrics.listen && !cfg.metrics.allowRemote && !isLoopbackListen(cfg.metrics.listen)) {
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', 'listen'],
        message: `${cfg.metrics.listen} is not a loopback address: metrics would be open to the network. Listen on 127.0.0.1 or [::1], or set metrics.allowRemote: true`,
      });
    }
    const seen = new Map<string, number>();
    cfg.sources.forEach((s, i) => {
      const prev = seen.get(s.name);
      if (prev !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name "${s.name}" (also sources[${prev}])` });
      }
      seen.set(s.name, i);
    });
    cfg.sync.forEach((e, i) => {
      const first = e.remote.replace(/^\/+/, '').split('/')[0] ?? '';
      if (!seen.has(first)) {
        ctx.addIssue({ code: 'custom', path: ['sync', i, 'remote'], message: `"${e.remote}" does not start with a configured source name` });
      }
    });
  })
  .transform(({ negativeTtl, metadataNegativeTtl, ...cfg }) => ({ ...cfg, metadataNegativeTtl: metadataNegativeTtl ?? negativeTtl ?? 5_000 }));

export type Config = z.output<typeof ConfigSchema>;
export type SourceConfig = z.output<typeof SourceSchema>;
export type SourceConfigOf<T extends SourceConfig['type']> = Extract<SourceConfig, { type: T }>;
export type SyncConfig = Config['sync'][number];
