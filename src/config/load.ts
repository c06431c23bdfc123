/**
 * Reads a config file (YAML, or JSON by `.json` extension), substitutes `${VAR}` from the environment
 * and validates it with `ConfigSchema`. Every problem is collected, never just the first, and each
 * carries its key path (`sources[2].bucket`). Messages never contain secret values.
 *
 * `${VAR}` is replaced before YAML parsing by an opaque placeholder token, because in a YAML flow
 * mapping (`{ token: ${X} }`, the style the README uses) `{`/`}` are syntax; the placeholders are
 * resolved afterwards in the parsed string values, where each one's key path is known. So a variable
 * value is never parsed as YAML, and a reference inside a comment is ignored.
 */
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import YAML, { LineCounter } from 'yaml';
import type { z } from 'zod';
import { ConfigSchema, type Config } from './schema.js';

export interface ConfigProblem {
  /** Key path like `sources[2].bucket`; '' for the file as a whole. */
  path: string;
  message: string;
}

/** A config that could not be read or is invalid. `message` is one human line per problem. */
export class ConfigError extends Error {
  readonly file: string;
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super(problems.map((p) => (p.path ? `${file}: ${p.path}: ${p.message}` : `${file}: ${p.message}`)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;
type Segment = string | number;

/** Keys whose values are credentials: never quoted in a message, and scrubbed from every message. */
const SECRET_KEY = /(secret|password|passwd|token|apikey|api_key|sas|signature|credential|connectionstring|accountkey|accesskey|sessiontoken|jwt|cookie)/i;

/** Keys holding local paths, resolved against the config file's directory when relative. */
function resolvePaths(config: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...config,
    cacheDir: abs(config.cacheDir),
    ...(config.mountpoint !== undefined ? { mountpoint: abs(config.mountpoint) } : {}),
    log: { ...config.log, ...(config.log.file !== undefined ? { file: abs(config.log.file) } : {}) },
    sync: config.sync.map((s) => ({ ...s, local: abs(s.local) })),
  };
}

export async function loadConfig(file: string, env: Env = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'config file not found'
      : code === 'EACCES' || code === 'EPERM' ? 'config file is not readable (permission denied)'
      : code === 'EISDIR' ? 'is a directory, not a config file'
      : `cannot read the config file (${code ?? 'unknown error'})`;
    throw new ConfigError(file, [{ path: '', message: why }]);
  }
  return parseConfigText(text, file, env);
}

export function parseConfigText(text: string, fileName: string, env: Env = process.env): Config {
  const refs = new References();
  const masked = refs.mask(text);
  const raw = extname(fileName).toLowerCase() === '.json' ? parseJson(masked, fileName) : parseYaml(masked, fileName);

  const problems: ConfigProblem[] = [];
  const envProblemPaths = new Set<string>();
  const secrets = new Set<string>();
  const data = interpolate(raw, [], refs, env, secrets, (path, message) => {
    const p = formatPath(path);
    envProblemPaths.add(p);
    problems.push({ path: p, message });
  });

  const result = ConfigSchema.safeParse(data, { error: describeIssue });
  if (result.success && problems.length === 0) return resolvePaths(result.data, dirname(resolve(fileName)));

  if (!result.success) {
    const schemaProblems = result.error.issues.flatMap(toProblems).filter((p) => !envProblemPaths.has(p.path));
    // Cross-field checks (superRefine) only run once everything else is valid; run them on the raw
    // data too, so that they are reported together with the other problems.
    const seen = new Set(schemaProblems.map((p) => p.path));
    problems.push(...schemaProblems, ...crossChecks(data).filter((p) => !seen.has(p.path) && !envProblemPaths.has(p.path)));
  }
  throw new ConfigError(fileName, problems.map((p) => ({ path: p.path, message: scrub(p.message, secrets) })));
}

// ── ${VAR} references ────────────────────────────────────────────────────────────────────────────

type Ref = { kind: 'var'; name: string } | { kind: 'literal'; text: string } | { kind: 'invalid'; text: string };

/** `${NAME}` reads NAME; `$${…}` is the literal text `${…}`; any other `${…}` is an error. */
const REFERENCE = /\$\$\{([^}\n]*)\}|\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{[^}\n]*\}?/g;

class References {
  private readonly refs: Ref[] = [];
  /** Letters, digits and `_` only: a valid plain scalar in any YAML context and inside JSON strings. */
  private readonly tag = `__assetfs_ref_${randomBytes(6).toString('hex')}_`;
  private readonly token = new RegExp(`${this.tag}(\\d+)__`, 'g');

  mask(text: string): string {
    return text.replace(REFERENCE, (whole: string, escaped: string | undefined, name: string | undefined) => {
      const ref: Ref =
        escaped !== undefined ? { kind: 'literal', text: `\${${escaped}}` }
        : whole === '$${' ? { kind: 'literal', text: '${' }
        : name !== undefined ? { kind: 'var', name }
        : { kind: 'invalid', text: whole };
      this.refs.push(ref);
      return `${this.tag}${this.refs.length - 1}__`;
    });
  }

  /** Undo `mask` inside one string value; `onRef` decides what each reference becomes. */
  expand(s: string, onRef: (ref: Ref) => string): string {
    return s.replace(this.token, (_, i: string) => onRef(this.refs[Number(i)]!));
  }

  /** The text as the user wrote it (used for keys and for file-level messages). */
  unmask(s: string): string {
    return this.expand(s, (r) => (r.kind === 'var' ? `\${${r.name}}` : r.kind === 'literal' ? `$${r.text}` : r.text));
  }
}

function interpolate(
  value: unknown,
  path: Segment[],
  refs: References,
  env: Env,
  secrets: Set<string>,
  report: (path: Segment[], message: string) => void,
): unknown {
  if (typeof value === 'string') {
    const problems: string[] = [];
    const out = refs.expand(value, (ref) => {
      if (ref.kind === 'literal') return ref.text;
      if (ref.kind === 'invalid') {
        problems.push(`invalid variable reference ${JSON.stringify(ref.text)}: write \${NAME} with letters, digits and _, or $\${…} for a literal \${`);
        return '';
      }
      const v = env[ref.name];
      if (v === undefined) {
        problems.push(`environment variable ${ref.name} is not set`);
        return '';
      }
      return v;
    });
    for (const m of problems) report(path, m);
    const key = path[path.length - 1];
    if (typeof key === 'string' && SECRET_KEY.test(key) && out.length >= 4) secrets.add(out);
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], refs, env, secrets, report));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const key = refs.unmask(k);
      out[key] = interpolate(v, [...path, key], refs, env, secrets, report);
    }
    return out;
  }
  return value;
}

/** Replace every known secret value that a message might contain (defence in depth). */
function scrub(message: string, secrets: Set<string>): string {
  let m = message;
  for (const s of secrets) m = m.split(s).join('[redacted]');
  return m;
}

// ── parsing ──────────────────────────────────────────────────────────────────────────────────────

/** Parser messages can quote the offending source text, which may be a secret: drop quoted parts. */
function withoutQuotedText(message: string): string {
  return message
    .replace(/\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')(?:\.\.\.)?/g, '')
    .replace(/\s*(?:at|in JSON at) position \d+.*$/i, '')
    .replace(/[\s:,]+$/, '');
}

function parseYaml(text: string, fileName: string): unknown {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true, merge: true, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      fileName,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { path: '', message: `line ${line}, column ${col}: YAML syntax error: ${withoutQuotedText(e.message)}` };
      }),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  return checkTopLevel(data, fileName);
}

function parseJson(text: string, fileName: string): unknown {
  try {
    return checkTopLevel(JSON.parse(text), fileName);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const msg = (e as Error).message;
    const at = /position (\d+)/.exec(msg);
    let where = '';
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      where = `line ${line}, column ${before.length - before.lastIndexOf('\n')}: `;
    }
    throw new ConfigError(fileName, [{ path: '', message: `${where}JSON syntax error: ${withoutQuotedText(msg)}` }]);
  }
}

function checkTopLevel(data: unknown, fileName: string): unknown {
  if (data === null || data === undefined) throw new ConfigError(fileName, [{ path: '', message: 'the config file is empty' }]);
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(fileName, [{ path: '', message: 'expected a mapping of settings at the top level (mountpoint, cache, sources, …)' }]);
  }
  return data;
}

// ── schema issues → problems ─────────────────────────────────────────────────────────────────────

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** Per-parse error map: human wording for zod's generic issues. Messages set in the schema win over it. */
type RawIssue = z.core.$ZodRawIssue;
function describeIssue(iss: RawIssue): string | undefined {
  const key = iss.path?.[iss.path.length - 1];
  const secret = typeof key === 'string' && SECRET_KEY.test(key);
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'is required';
      return `expected ${iss.expected === 'object' ? 'a mapping' : iss.expected === 'array' ? 'a list' : `a ${iss.expected}`}, got ${kindOf(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'string' && iss.minimum === 1) return 'must not be empty';
      if (iss.origin === 'array') return `needs at least ${String(iss.minimum)} entr${iss.minimum === 1 ? 'y' : 'ies'}`;
      return undefined;
    case 'invalid_value': {
      const options = iss.values.map((v) => String(v)).join(', ');
      return secret || typeof iss.input !== 'string' ? `expected one of ${options}` : `expected one of ${options}, got ${JSON.stringify(iss.input)}`;
    }
    case 'invalid_union':
      if ('discriminator' in iss && iss.discriminator) {
        const options = (iss as { options?: unknown[] }).options?.map(String).join(', ') ?? '';
        if (iss.input === undefined || iss.input === null || typeof iss.input !== 'object') return `expected ${kindOf({})}`;
        const t = (iss.input as Record<string, unknown>)[String(iss.discriminator)];
        return t === undefined ? `is required: one of ${options}` : `unknown ${String(iss.discriminator)} ${JSON.stringify(t)}: expected one of ${options}`;
      }
      return undefined;
    default:
      return undefined;
  }
}

function toProblems(issue: z.core.$ZodIssue): ConfigProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ path: formatPath([...issue.path, k]), message: 'unknown key' }));
  }
  const path = formatPath(issue.path);
  // Schema messages written as `<key path>: text` would repeat the path; keep the text.
  const lastKey = issue.path.length > 0 ? formatPath(issue.path.slice(-1)) : '';
  let message = issue.message;
  for (const prefix of [`${path}: `, lastKey ? `${lastKey}: ` : undefined]) {
    if (prefix && message.startsWith(prefix)) {
      message = message.slice(prefix.length);
      break;
    }
  }
  return [{ path, message }];
}

/** The schema's cross-field rules (unique source names; sync remotes name a source), on unvalidated data. */
function crossChecks(data: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const cfg = data as { sources?: unknown; sync?: unknown };
  const sources = Array.isArray(cfg.sources) ? cfg.sources : [];
  const names = new Map<string, number>();
  sources.forEach((s, i) => {
    const name = (s as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || name === '') return;
    const prev = names.get(name);
    if (prev !== undefined) problems.push({ path: `sources[${i}].name`, message: `duplicate source name "${name}" (also sources[${prev}])` });
    else names.set(name, i);
  });
  if (Array.isArray(cfg.sync) && Array.isArray(cfg.sources)) {
    cfg.sync.forEach((e, i) => {
      const remote = (e as { remote?: unknown } | null)?.remote;
      if (typeof remote !== 'string' || remote === '') return;
      const first = remote.replace(/^\/+/, '').split('/')[0] ?? '';
      if (!names.has(first)) problems.push({ path: `sync[${i}].remote`, message: `"${remote}" does not start with a configured source name` });
    });
  }
  return problems;
}
