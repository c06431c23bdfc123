/**
 * The real logger (createLogger writing to a file): every error keeps its message, fields and causes,
 * and every secret form is gone wherever it sits in a record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { closeLogger, createLogger, type Logger } from '../../src/util/logger.js';
import { ApiClient } from '../../src/providers/common/api-client.js';
import { AuthError, TransientError } from '../../src/core/errors.js';
import { describeError } from '../../src/util/error-text.js';
import { redactText } from '../../src/util/redact.js';
import { MARKER, SECRETS } from '../helpers/secret-forms.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-logger-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What `write` logged through a logger writing to a file (asynchronously, as the daemon's does), once `lines` records are in it. */
async function logged(lines: number, write: (log: Logger) => void): Promise<{ text: string; records: Array<Record<string, any>> }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.log`);
  const log = createLogger({ file, level: 'debug' });
  write(log);
  let text = '';
  for (let i = 0; i < 500 && text.split('\n').length <= lines; i++) {
    await new Promise((r) => setTimeout(r, 10));
    log.flush();
    text = await readFile(file, 'utf8').catch(() => '');
  }
  await closeLogger(log);
  return { text, records: text.trim().split('\n').map((l) => JSON.parse(l)) };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('createLogger: errors keep their message and cause', () => {
  it('logs an error’s message, fields and the whole cause chain (not an empty message)', async () => {
    const root = Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:443'), { code: 'ECONNREFUSED', syscall: 'connect' });
    const mid = new TransientError('wordbee source "wb": POST auth/token: connect ECONNREFUSED 10.0.0.9:443', { cause: root, status: 503 });
    const top = new AuthError('wordbee source "wb": login refused: HTTP 404: Not Found', { cause: mid });
    const { records } = await logged(2, (log) => {
      log.warn({ op: 'read', path: '/wb/x', err: top }, 'EACCES returned to the reader');
      log.error(top);
    });
    for (const r of records) {
      expect(r.err.type).toBe('AuthError');
      expect(r.err.message).toBe('wordbee source "wb": login refused: HTTP 404: Not Found');
      expect(r.err.code).toBe('EACCES');
      expect(r.err.stack).toContain('login refused');
      expect(r.err.cause.type).toBe('TransientError');
      expect(r.err.cause.status).toBe(503);
      expect(r.err.cause.cause).toMatchObject({ message: 'connect ECONNREFUSED 10.0.0.9:443', code: 'ECONNREFUSED', syscall: 'connect' });
    }
    expect(records[1]!.msg).toBe('wordbee source "wb": login refused: HTTP 404: Not Found');
  });

  it('an AggregateError with an empty message (a refused connection to every address) says why', async () => {
    const agg = Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:9'), new Error('connect ECONNREFUSED 127.0.0.1:9')], ''), { code: 'ECONNREFUSED' });
    const { records } = await logged(1, (log) => log.warn({ err: new TransientError('s3 source "s": list: failed', { cause: agg }) }, 'x'));
    const cause = records[0]!.err.cause;
    expect(cause.type).toBe('AggregateError');
    expect(cause.message).toBe('connect ECONNREFUSED ::1:9; connect ECONNREFUSED 127.0.0.1:9');
    expect(cause.code).toBe('ECONNREFUSED');
    expect(cause.errors.map((e: { message: string }) => e.message)).toEqual(['connect ECONNREFUSED ::1:9', 'connect ECONNREFUSED 127.0.0.1:9']);
    expect(describeError(agg)).toBe('connect ECONNREFUSED ::1:9; connect ECONNREFUSED 127.0.0.1:9');
  });

  it("a real undici failure through ApiClient: the message names the reason and the cause carries undici's code", async () => {
    const port = await closedPort();
    const api = new ApiClient({ baseUrl: `http://127.0.0.1:${port}/api`, what: 'wordbee source "wb"' });
    const err = await api.json({ path: 'resources/x', query: { token: 'SECRET20' } }).catch((e: unknown) => e);
    await api.close();
    expect(err).toBeInstanceOf(TransientError);
    const { records, text } = await logged(1, (log) => log.warn({ err }, 'listing failed'));
    const rec = records[0]!.err;
    expect(rec.message).toMatch(/^wordbee source "wb": GET resources\/x: .*ECONNREFUSED/);
    expect(rec.cause.code).toBe('ECONNREFUSED');
    expect(rec.cause.message).toContain('ECONNREFUSED');
    expect(text).not.toContain('SECRET20');
  });
});

describe('createLogger: redaction anywhere in a record', () => {
  it('removes every secret form from messages, causes, stacks, nested objects, arrays and the log message', async () => {
    const all = Object.values(SECRETS);
    const { text, records } = await logged(Object.keys(SECRETS).length + 2, (log) => {
      for (const [name, s] of Object.entries(SECRETS)) {
        const cause = Object.assign(new Error(`server said: ${s}`), { code: 'E_BODY', body: s });
        const err = new TransientError(`call failed (${name}): ${s}`, { cause });
        log.warn({ err, detail: { text: s, deeper: [{ s }, s] }, list: [s], url: s }, `while ${name}: ${s}`);
      }
      log.error({ err: new AggregateError(all.map((s) => new Error(s)), 'many') }, 'aggregate');
      log.info({ nested: { a: { b: { c: { d: { e: all } } } } } }, 'deep');
    });
    expect(text.match(MARKER) ?? []).toEqual([]);
    // … while what is not secret still says why.
    const first = records[0]!;
    expect(first.msg).toContain('while connectionString: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[redacted]');
    expect(first.err.message).toContain('call failed (connectionString)');
    expect(first.err.cause.message).toContain('server said:');
    expect(first.err.cause.code).toBe('E_BODY');
    expect(text).toContain('https://acct.blob.core.windows.net/c/clip.mp4?…');
    expect(text).toContain('https://svc:[redacted]@db.example.com/path');
    expect(text).toContain('[redacted-jwt]');
    expect(records.find((r) => r.msg === 'aggregate')!.err.errors).toHaveLength(10);
  });

  it('redactText keeps ordinary prose: "Token invalid or expired.", error codes, object keys', () => {
    expect(redactText('Token invalid or expired.')).toBe('Token invalid or expired.');
    expect(redactText('list s/: connect ECONNREFUSED 127.0.0.1:1')).toBe('list s/: connect ECONNREFUSED 127.0.0.1:1');
    expect(redactText('InvalidAccessKeyId: The AWS Access Key Id you provided does not exist')).toBe('InvalidAccessKeyId: The AWS Access Key Id you provided does not exist');
  });
});
