/**
 * Logging in to a source and listing its root, as `check-config --online` and the daemon's start do,
 * and what to tell the user about the outcome: one line per source, naming what is wrong and the
 * config keys that fix it.
 *
 * Some roots are answered without a request (Wordbee's root is the configured scopes): a check also
 * lists folders of the root, so that it always reaches the platform and logs in.
 */
import type { Provider } from '../core/types.js';
import type { SourceConfig } from '../config/schema.js';
import { TransientError, isAbort } from '../core/errors.js';
import { describeError } from '../util/error-text.js';
import { redactText } from '../util/redact.js';
import type { Logger } from '../util/logger.js';
import { classifyFailure, type FailureState, type SourceHealth } from './health.js';

export type CheckResult =
  | { readonly ok: true; readonly entries: number }
  | {
      readonly ok: false;
      readonly state: FailureState | 'failed';
      readonly message: string;
      readonly error: unknown;
      /** The folder of the root whose listing failed (a Wordbee scope, say); undefined: the root itself. */
      readonly folder?: string;
    };

export interface CheckOptions {
  /** Folders of the root listed after it (each up to its first entry). */
  folders: number;
  /** The whole check fails as unreachable after this long. */
  timeoutMs: number;
}

/** Root entries read at most (the listing stops there, after its first page). */
const ROOT_ENTRIES = 50;

export async function checkSource(p: Provider, opts: CheckOptions): Promise<CheckResult> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let folder: string | undefined;
  try {
    const root: Array<{ name: string; ref: string; kind: string }> = [];
    for await (const e of p.list('', signal)) {
      root.push(e);
      if (root.length >= ROOT_ENTRIES) break;
    }
    for (const dir of root.filter((e) => e.kind === 'dir').slice(0, opts.folders)) {
      folder = dir.name;
      for await (const _ of p.list(dir.ref, signal)) break;
    }
    return { ok: true, entries: root.length };
  } catch (e) {
    const error = signal.aborted && (isAbort(e) || e === signal.reason || !(e instanceof Error))
      ? new TransientError(`${p.type} source "${p.name}": no answer within ${Math.round(opts.timeoutMs / 1000)}s`, { cause: e })
      : e;
    return { ok: false, state: classifyFailure(error, true) ?? 'failed', message: redactText(describeError(error)), error, folder };
  }
}

const URL_KEY: Record<SourceConfig['type'], string> = {
  s3: 'endpoint',
  'azure-blob': 'accountUrl',
  wordbee: 'baseUrl',
  mkio: 'baseUrl',
  ams: 'restUrl',
  nomad: 'baseUrl',
  mediahub: 'baseUrl',
};

const CREDENTIALS: Record<SourceConfig['type'], string> = {
  s3: 'check accessKeyId and secretAccessKey (and sessionToken for temporary keys)',
  'azure-blob': 'check accountName and accountKey, sasToken or connectionString (a SAS needs read and list permission, sp=rl)',
  wordbee: 'check accountId and apiKey',
  mkio: 'check token (an MK.IO API token with access to the project)',
  ams: 'check token, or tokenUrl with clientId and clientSecret',
  nomad: 'check username and password (and applicationId; Nomad answers bad credentials with HTTP 404)',
  mediahub: 'check clientId, clientSecret and scope',
};

function urlOf(cfg: SourceConfig): string | undefined {
  const v = (cfg as Record<string, unknown>)[URL_KEY[cfg.type]];
  return typeof v === 'string' ? v : undefined;
}

/** How to fix a failed source, naming its config keys. */
export function fixFor(cfg: SourceConfig, state: FailureState | 'failed', message: string): string {
  const urlKey = URL_KEY[cfg.type];
  const url = urlOf(cfg);
  const at = url ? `${urlKey} (${redactText(url)})` : urlKey;
  if (state === 'login refused') {
    if (/SAS token expired/.test(message)) return 'issue a new sasToken (or configure accountKey, from which assetfs mints its own)';
    if (/HTTP 404/.test(message) && cfg.type !== 'nomad') return `the login endpoint was not found: check ${at}${cfg.type === 'wordbee' ? ", the address of the Wordbee platform (its API is under /api)" : ''}`;
    return CREDENTIALS[cfg.type];
  }
  if (state === 'unreachable') return `check ${at} and that this machine reaches it (DNS, firewall, proxy)`;
  if (state === 'misconfigured') {
    if (/cannot be set up: /.test(message)) return 'complete the settings the message names';
    if (cfg.type === 's3' && /bucket/.test(message)) return `check bucket "${cfg.bucket}" (and region, endpoint)`;
    if (cfg.type === 'azure-blob' && /container/.test(message)) return `check container "${cfg.container}" (and accountUrl)`;
    if (cfg.type === 'wordbee') return `check scopes (${cfg.scopes.join(', ')}) and ${at}`;
    if (cfg.type === 'mkio') return `check project "${cfg.project}" and ${at}`;
    return `check ${at}`;
  }
  return `check the settings of source "${cfg.name}"`;
}

/** One line for a checked source. */
export function checkLine(cfg: SourceConfig, r: CheckResult): string {
  const label = `${cfg.name} [${cfg.type}]`;
  if (r.ok) return `${label}: ok (logged in, root lists ${r.entries}${r.entries >= ROOT_ENTRIES ? '+' : ''} entr${r.entries === 1 ? 'y' : 'ies'})`;
  // Which folder failed matters when folders fail on their own (a wrong Wordbee scope), not for a refused login.
  const where = r.folder !== undefined && r.state !== 'login refused' && r.state !== 'unreachable' ? ` (listing ${r.folder}/)` : '';
  return `${label}: ${whatIsWrong(cfg, r.state, r.message)}${where}; fix: ${fixFor(cfg, r.state, r.message)}`;
}

/** State and reason, without the `<type> source "<name>": ` the message starts with, and the state said once. */
export function whatIsWrong(cfg: SourceConfig, state: FailureState | 'failed', message: string): string {
  const prefix = `${cfg.type} source "${cfg.name}": `;
  const reason = message.startsWith(prefix) ? message.slice(prefix.length) : message;
  return reason.startsWith(state) ? reason : `${state}: ${reason}`;
}

/**
 * The daemon's start: checks every source (root and its first folder) in parallel, logs one line per
 * failed source, and resolves once all are done or `waitMs` has passed (the mount does not wait longer
 * for a slow source; its check goes on and reports when it ends). Results go to `health`.
 */
export async function checkAtStart(
  sources: readonly SourceConfig[],
  providers: ReadonlyMap<string, Provider>,
  health: SourceHealth,
  log: Logger,
  o: { waitMs: number; timeoutMs: number },
): Promise<void> {
  const checks = sources.map(async (cfg) => {
    const p = providers.get(cfg.name);
    if (!p) return;
    const r = await checkSource(p, { folders: 1, timeoutMs: o.timeoutMs });
    if (r.ok) {
      log.info({ source: cfg.name }, `${cfg.name} [${cfg.type}]: ok`);
      return;
    }
    health.failed(cfg.name, r.error, true);
    log.warn({ source: cfg.name, state: r.state, err: r.error }, `${checkLine(cfg, r)} (the other sources are served)`);
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(checks), new Promise<void>((done) => (timer = setTimeout(done, o.waitMs)))]);
  clearTimeout(timer);
}
