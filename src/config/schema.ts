/**
 * Every setting, with its default and meaning, in one place. `check-config` and `mount` both validate
 * through `ConfigSchema`; errors carry the key path (e.g. `sources[2].bucket`).
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { DEFAULT_PART_BYTES } from '../core/blocks.js';
import { isLoopbackListen } from '../metrics/listen-address.js';
import { LOG_FORMATS } from '../util/log-format.js';

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

/**
 * A permission mode as an octal string ("0644", "640"): quoted, because YAML 1.2 reads a bare 0644 as
 * the decimal number 644. Permission bits only (no setuid, setgid or sticky bit).
 */
const octalMode = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    if (typeof v === 'number') {
      ctx.addIssue({ code: 'custom', message: `${what}: write the mode as a quoted octal string like "0644" (a bare ${v} is read as a decimal number)` });
      return z.NEVER;
    }
    if (!/^0?[0-7]{3}$/.test(v)) {
      ctx.addIssue({ code: 'custom', message: `${what}: expected an octal mode string like "0644" or "0750" (permission bits only), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return parseInt(v, 8);
  });

/** A user or group id: a whole number (names are not looked up). */
const numericId = (what: string) =>
  z.number({ error: `${what}: expected a numeric id like 1000 (names are not looked up)` }).int(`${what}: expected a whole number`).min(0, `${what}: expected 0 or more`).max(0xfffffffe, `${what}: too large`);

const httpUrl = z.string().refine((s) => /^https?:\/\/[^\s]+$/.test(s) && URL.canParse(s), 'expected an http(s) URL');

/** A base URL as people paste it: runs of slashes in its path collapsed, no trailing slash. */
export function normalizeBaseUrl(s: string): string {
  const u = new URL(s);
  return `${u.origin}${u.pathname.replace(/\/{2,}/g, '/').replace(/\/+$/, '')}${u.search}`;
}

/**
 * Wordbee's API lives under `/api` of the platform's address; people paste either (the address their
 * browser shows is the one without). Both, with any slashes, become `https://host/api`.
 */
export function wordbeeApiUrl(s: string): string {
  const base = normalizeBaseUrl(s);
  const u = new URL(base);
  return /\/api$/i.test(u.pathname) ? base : `${u.origin}${u.pathname.replace(/\/$/, '')}/api${u.search}`;
}

const baseUrl = httpUrl.transform(normalizeBaseUrl);

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
  baseUrl: baseUrl.default('https://app.mk.io'),
  project: z.string().min(1),
  token: z.string().min(1),
  storage: StorageCredential.optional(),
});

const WordbeeSource = z.strictObject({
  ...common,
  type: z.literal('wordbee'),
  /** The platform's address, with or without `/api`. */
  baseUrl: httpUrl.transform(wordbeeApiUrl),
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
  baseUrl: baseUrl,
  username: z.string().min(1),
  password: z.string().min(1),
  applicationId: z.string().optional(),
  rootFolderId: z.string().optional(),
});

const MediahubSource = z.strictObject({
  ...common,
  type: z.literal('mediahub'),
  baseUrl: baseUrl.default('https://api.xvid.com/v1'),
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
  /**
   * With deleteRemote: a burst of local deletions larger than `files`, or than `percent` % of the
   * folder's files (whichever is smaller, never less than 1), pauses the deletions until `assetfs
   * retry` confirms them (src/sync/delete-guard.ts).
   */
  maxDelete: z
    .strictObject({
      files: z.number().int().min(1).default(50),
      percent: z.number().min(0).max(100).default(10),
    })
    .prefault({}),
  ignore: z.array(z.string()).default([]),
  stableFor: duration('stableFor').default(2000),
});

/**
 * Where the shared tier lives: `redis://[user:pass@]host:6379/0`, `rediss://…` (TLS), or a unix socket
 * as an absolute path or `unix:///path/redis.sock` (`?db=N` picks the database).
 */
const redisAddress = z.string().refine((s) => (/^rediss?:\/\/[^\s]+$/.test(s) && URL.canParse(s)) || /^unix:\/\/\/[^\s]+$/.test(s) || /^\/[^\s]*$/.test(s), 'expected redis://host:6379/0, rediss://host:6380/0, unix:///path/redis.sock or an absolute socket path');

export const SharedSchema = z.strictObject({
  redis: redisAddress,
  /** Prefix of every key and channel: farms (or test runs) sharing one Redis stay apart. */
  keyPrefix: z.string().regex(/^[A-Za-z0-9._:-]{0,64}$/, 'expected up to 64 letters, digits or ._:-').default('assetfs:'),
  /** This host's name in `assetfs status --cluster` (default: the machine's hostname). */
  hostName: z.string().min(1).max(255).optional(),
  /** Longest one Redis call may take; slower calls count as failures of the shared tier (its circuit breaker). */
  timeout: duration('shared.timeout').default(1_000),
  /** How long a host's claim to fetch a block from the origin holds; others wait at most this long, then fetch it themselves. */
  lockTtl: duration('shared.lockTtl').default(5_000),
  /** How long an upload lease lives without a heartbeat; a host that died is taken over after it. */
  leaseTtl: duration('shared.leaseTtl').default(30_000),
  /** How often each host reports itself (status --cluster); a host silent for three periods is shown as gone. */
  heartbeat: duration('shared.heartbeat').default(5_000),
  /** Share signed URLs (they carry read credentials: keep Redis private, docs/scale.md). */
  locators: z.boolean().default(true),
  /** Bytes of block writes to Redis queued at once; past it a block is not shared (best effort). */
  writeQueue: size('shared.writeQueue').default(64 * 1024 ** 2),
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
        /** How long a read keeps retrying transient faults before it fails with EIO; also one call's deadline. */
        maxTime: duration('retry.maxTime').default(30_000),
        /** Per-request timeout for connecting, for the headers and for each body stall. */
        requestTimeout: duration('retry.requestTimeout').default(20_000),
        /** Largest platform API or storage SDK answer read into memory. */
        maxApiBody: size('retry.maxApiBody').default(64 * 1024 ** 2),
      })
      .prefault({}),
    listing: z
      .strictObject({
        /** Most entries one folder listing shows; past it the listing stops with one warning (memory stays bounded). */
        maxEntriesPerFolder: z.number().int().min(1).max(10_000_000).default(100_000),
        /** Most page requests one folder listing makes (a server that never stops offering pages). */
        maxPages: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        /** `auto`: one readable line per record on a terminal, JSON for the journal, pipes and files. */
        format: z.enum(LOG_FORMATS).default('auto'),
        file: z.string().optional(),
        /** The log file is rotated before it passes this size; 0: never (for logrotate). */
        maxSize: size('log.maxSize').default(10 * 1024 ** 2),
        /** Log files kept, the live one included. */
        maxFiles: z.number().int().min(1).max(1000).default(5),
      })
      .prefault({}),
    fuse: z
      .strictObject({
        /** Also adds default_permissions: the kernel enforces uid, gid and the modes below for other users. */
        allowOther: z.boolean().default(false),
        /** Owner of every entry; default: the daemon's own user and group. */
        uid: numericId('fuse.uid').optional(),
        gid: numericId('fuse.gid').optional(),
        /** Permission bits of every file and every directory. */
        fileMode: octalMode('fuse.fileMode').default(0o644),
        dirMode: octalMode('fuse.dirMode').default(0o755),
        /** chmod and chown succeed without effect instead of failing with EPERM (cp -p, shutil.copy). */
        ignoreChmod: z.boolean().default(false),
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
        /** How long fsync of a file written into the mount waits for its upload before answering EIO (the upload carries on). */
        fsyncTimeout: duration('uploads.fsyncTimeout').default(120_000),
        /** Cap on bytes staged in <cacheDir>/staging (written, not yet uploaded); 0 = up to the disk's free space. Writes past it fail with ENOSPC. */
        stagingMax: size('uploads.stagingMax').default(0),
      })
      .prefault({}),
    /** The shared tier of a farm of hosts mounting the same catalogs (docs/scale.md); absent: nothing is shared. */
    shared: SharedSchema.optional(),
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
export type SharedConfig = z.output<typeof SharedSchema>;
