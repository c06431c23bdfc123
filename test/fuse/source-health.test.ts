/**
 * Errors that say why, as a person meets them: `check-config --online` through the real CLI against
 * s3rver, Azurite and the Wordbee, Nomad and MediaHub emulators (one line per source, what is wrong and
 * the fix), and a real mount with one good and several broken sources: the good one is served, reading
 * a broken one fails with an errno whose log line names the cause, and `assetfs status` (and --json)
 * shows each source's state, last error and its time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, StorageSharedKeyCredential, generateAccountSASQueryParameters } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY, freePort, s3rverSource, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { seedAzure, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { startWordbeeEmulator, type WordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { DEFAULT_NOMAD_USER, startNomadEmulator, type NomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { MEDIAHUB_CLIENT, startMediahubEmulator, type MediahubEmulator } from '@assetfs/lab/emulators/mediahub/index.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { BIN, mountDaemon, sh, shResult, type MountedDaemon } from '../helpers/mount.js';

const DATA = Buffer.from('served while the others are broken\n');
const WRONG = 'wrong-credential-value-77';
const node = (args: string) => `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${args}`;

let s3: StorageServer;
let az: StorageServer;
let wb: WordbeeEmulator;
let nomad: NomadEmulator;
let mh: MediahubEmulator;
const backings: S3Backing[] = [];
let work: string;
/** A port nothing listens on. */
let closed: number;

beforeAll(async () => {
  [s3, az] = await Promise.all([startS3rver({ buckets: ['media', 'nomad', 'mediahub'] }), startAzurite()]);
  await Promise.all([seedS3(s3.url, 'media', [{ path: 'a/a.txt', data: DATA }]), seedAzure(az, 'media', [{ path: 'a/a.txt', data: DATA }])]);
  backings.push(new S3Backing(s3.url, s3.url, 'nomad'), new S3Backing(s3.url, s3.url, 'mediahub'));
  [wb, nomad, mh] = await Promise.all([
    startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] }),
    startNomadEmulator({ s3: backings[0]! }),
    startMediahubEmulator({ s3: backings[1]! }),
  ]);
  wb.catalog.addDocument(7214, 19641, 'a.docx');
  wb.catalog.addSegment(19641, 501);
  await wb.catalog.putAsset(501, 'en', '', 'a.txt', DATA);
  work = await mkdtemp(join(tmpdir(), 'assetfs-health-'));
  closed = await freePort();
});

afterAll(async () => {
  await Promise.allSettled([s3?.stop(), az?.stop(), wb?.close(), nomad?.close(), mh?.close()]);
  for (const b of backings) b.close();
  await rm(work, { recursive: true, force: true });
});

const s3src = (name: string, extra: Record<string, unknown> = {}) => s3rverSource(s3.url, 'media', { name, ...extra });
const azsrc = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, ...extra });
const wbsrc = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'wordbee', baseUrl: `${wb.url}/api`, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214'], ...extra });

/** An account SAS for Azurite, valid from `from` to `to` (ms from now). */
function sas(from: number, to: number): string {
  const now = Date.now();
  return generateAccountSASQueryParameters(
    {
      startsOn: new Date(now + from),
      expiresOn: new Date(now + to),
      permissions: AccountSASPermissions.parse('rl'),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      services: AccountSASServices.parse('b').toString(),
    },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
}

async function checkConfig(sources: Record<string, unknown>[]) {
  const file = join(work, `check-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ cacheDir: join(work, 'cache'), retry: { requestTimeout: '10s' }, sources }));
  const r = await shResult(`${node(`check-config --online ${file}`)} 2>${file}.err`);
  const stderr = (await shResult(`cat ${file}.err`)).stdout;
  const lines = new Map(r.stdout.split('\n').filter((l) => / \[[a-z0-9-]+\]: /.test(l) && !l.includes(': OK (')).map((l) => [l.split(' ')[0]!, l]));
  return { ...r, stderr, lines };
}

describe('assetfs check-config --online (the real CLI)', () => {
  it('logs in to every good source and lists its root: one "ok" line each, exit 0', async () => {
    const r = await checkConfig([
      s3src('s3'),
      azsrc('blob'),
      azsrc('blobsas', { accountKey: undefined, sasToken: sas(-3_600_000, 3_600_000) }),
      wbsrc('wb'),
      wbsrc('wbhost', { baseUrl: `${wb.url}/` }), // the platform's address, as the SPEC shows it: /api is added
      { name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password },
      { name: 'mh', type: 'mediahub', baseUrl: `${mh.baseUrl}/`, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret },
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect([...r.lines.keys()]).toEqual(['s3', 'blob', 'blobsas', 'wb', 'wbhost', 'nomad', 'mh']);
    for (const line of r.lines.values()) expect(line).toMatch(/^\S+ \[[a-z0-9-]+\]: ok \(logged in, root lists \d+ entr(y|ies)\)$/);
  });

  it('names what is wrong with each bad source and how to fix it, exit 1, no secret printed', async () => {
    const r = await checkConfig([
      s3src('s3key', { accessKeyId: WRONG }),
      s3src('s3bucket', { bucket: 'no-such-bucket' }),
      s3src('s3down', { endpoint: `http://127.0.0.1:${closed}` }),
      azsrc('azkey', { accountKey: Buffer.alloc(64, 7).toString('base64') }),
      azsrc('azsas', { accountKey: undefined, sasToken: sas(-7_200_000, -3_600_000) }),
      azsrc('azcont', { container: 'no-such-container' }),
      wbsrc('wbkey', { apiKey: WRONG }),
      wbsrc('wbpath', { baseUrl: `${wb.url}/translator` }),
      wbsrc('wbscope', { scopes: ['pr7214', 'pr999'] }),
      { name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: WRONG },
      { name: 'mh', type: 'mediahub', baseUrl: mh.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: WRONG },
      { name: 'ams', type: 'ams', restUrl: `http://127.0.0.1:${closed}/api/` }, // valid to the schema, but no credential at all
      s3src('fine'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('assetfs: 12 of 13 sources failed the online check');
    expect(r.stdout).not.toContain(WRONG);
    const line = (name: string) => r.lines.get(name) ?? `(no line for ${name} in:\n${r.stdout})`;
    expect(line('s3key')).toMatch(/^s3key \[s3\]: login refused: .*access denied \(InvalidAccessKeyId: .*\); fix: check accessKeyId and secretAccessKey/);
    expect(line('s3bucket')).toMatch(/^s3bucket \[s3\]: misconfigured: .*the bucket "no-such-bucket" does not exist .*; fix: check bucket "no-such-bucket"/);
    expect(line('s3down')).toMatch(new RegExp(`^s3down \\[s3\\]: unreachable: .*ECONNREFUSED 127\\.0\\.0\\.1:${closed}; fix: check endpoint \\(http://127\\.0\\.0\\.1:${closed}\\)`));
    expect(line('azkey')).toMatch(/^azkey \[azure-blob\]: login refused: .*access denied \(AuthorizationFailure: .*; fix: check accountName and accountKey/);
    expect(line('azsas')).toMatch(/^azsas \[azure-blob\]: login refused: .*the SAS token expired at \d{4}-\d\d-\d\dT.*; fix: issue a new sasToken/);
    expect(line('azcont')).toMatch(/^azcont \[azure-blob\]: misconfigured: .*the container does not exist .*; fix: check container "no-such-container"/);
    expect(line('wbkey')).toBe(`wbkey [wordbee]: login refused: HTTP 400: Invalid account id or API key. (POST ${wb.url}/api/auth/token); fix: check accountId and apiKey`);
    expect(line('wbpath')).toMatch(/^wbpath \[wordbee\]: login refused: HTTP 404: .*\(POST http:\/\/127\.0\.0\.1:\d+\/translator\/api\/auth\/token\); fix: the login endpoint was not found: check baseUrl/);
    expect(line('wbscope')).toMatch(/^wbscope \[wordbee\]: misconfigured: .*HTTP 400: Invalid scope.* \(listing pr999\/\); fix: check scopes \(pr7214, pr999\)/);
    expect(line('nomad')).toMatch(/^nomad \[nomad\]: login refused \(user "demo@nomad\.example"\): HTTP 404: Authentication failed: .*; fix: check username and password/);
    expect(line('mh')).toMatch(/^mh \[mediahub\]: login refused: HTTP 4\d\d: .*; fix: check clientId, clientSecret and scope/);
    expect(line('ams')).toBe('ams [ams]: misconfigured: cannot be set up: needs either token, or tokenUrl with clientId and clientSecret; fix: complete the settings the message names');
    expect(line('fine')).toMatch(/^fine \[s3\]: ok/);
  });
});

describe('a daemon with one good and several broken sources', () => {
  let d: MountedDaemon;
  let config: string;
  beforeAll(async () => {
    d = await mountDaemon({
      retry: { maxTime: '1s' },
      sources: [
        s3src('good'),
        wbsrc('wb', { apiKey: WRONG }),
        s3src('gone', { bucket: 'no-such-bucket' }),
        s3src('down', { endpoint: `http://127.0.0.1:${closed}` }),
        { name: 'ams', type: 'ams', restUrl: `http://127.0.0.1:${closed}/api/` }, // its client cannot even be built
      ],
    });
    config = join(d.dir, 'config.json');
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('mounts and serves the good source', async () => {
    expect((await sh(`ls ${d.mountpoint}`)).split('\n').filter(Boolean).sort()).toEqual(['ams', 'down', 'gone', 'good', 'wb']);
    expect(await sh(`cat ${d.mountpoint}/good/a/a.txt`)).toBe(DATA.toString());
  });

  it('names every broken source in the log at start, with the fix', () => {
    const msgs = logRecords(d).map((r) => String(r.msg));
    expect(msgs).toContain(`wb [wordbee]: login refused: HTTP 400: Invalid account id or API key. (POST ${wb.url}/api/auth/token); fix: check accountId and apiKey (the other sources are served)`);
    expect(msgs.some((m) => m.startsWith('gone [s3]: misconfigured: ') && m.includes('the bucket "no-such-bucket" does not exist'))).toBe(true);
    expect(msgs.some((m) => m.startsWith('down [s3]: unreachable: ') && m.includes('ECONNREFUSED'))).toBe(true);
  });

  it('reading a broken source fails with an errno whose log line names the cause', async () => {
    const refused = await shResult(`cat ${d.mountpoint}/wb/pr7214/19641/501/en/a.txt`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    const gone = await shResult(`ls ${d.mountpoint}/gone`);
    expect(gone.stderr).toMatch(/Input\/output error/); // a missing bucket is not an empty or missing folder
    const records = logRecords(d);
    const line = records.find((r) => String(r.msg).startsWith('EACCES returned to the reader: '));
    expect(line?.msg).toBe(`EACCES returned to the reader: wordbee source "wb": login refused: HTTP 400: Invalid account id or API key. (POST ${wb.url}/api/auth/token)`);
    expect(line?.err.message).toBe(`wordbee source "wb": login refused: HTTP 400: Invalid account id or API key. (POST ${wb.url}/api/auth/token)`);
    expect(records.find((r) => String(r.msg).startsWith('EIO returned to the reader: ') && r.path === '/gone')?.err.cause).toMatchObject({ type: 'NoSuchBucket', message: 'The specified bucket does not exist' });
    expect(d.logs()).not.toContain(WRONG);
  });

  it('status --json: each source’s state, last error and its time; status prints them with the fix', async () => {
    const before = Date.now();
    const doc = JSON.parse(await sh(node(`status --json --config ${config}`)));
    const health = Object.fromEntries(doc.sources.map((s: { name: string; health: unknown }) => [s.name, s.health]));
    expect(health.good.state).toBe('ok');
    expect(health.wb).toMatchObject({
      state: 'login refused',
      lastError: { state: 'login refused', message: `wordbee source "wb": login refused: HTTP 400: Invalid account id or API key. (POST ${wb.url}/api/auth/token)` },
      fix: 'check accountId and apiKey',
    });
    expect(health.gone).toMatchObject({ state: 'misconfigured', fix: 'check bucket "no-such-bucket" (and region, endpoint)' });
    expect(health.down.state).toBe('unreachable');
    expect(health.ams).toMatchObject({ state: 'misconfigured', lastError: { message: 'ams source "ams": cannot be set up: needs either token, or tokenUrl with clientId and clientSecret' } });
    expect(health.down.lastError.message).toContain('ECONNREFUSED');
    for (const name of ['wb', 'gone', 'down', 'ams']) {
      const t = Date.parse(health[name].lastError.time);
      expect(t).toBeGreaterThan(before - 600_000);
      expect(t).toBeLessThanOrEqual(before);
    }
    const text = await sh(node(`status --config ${config}`));
    expect(text).toContain('sources:    5, 4 failing');
    expect(text).toMatch(/\n {2}good \[s3\] +ok\n/);
    expect(text).toMatch(/\n {2}wb \[wordbee\] +LOGIN REFUSED since \d\d:\d\d:\d\d: wordbee source "wb": login refused: HTTP 400: Invalid account id or API key\. .*; fix: check accountId and apiKey\n/);
  });
});

function logRecords(d: MountedDaemon): Array<Record<string, any>> {
  return d
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}
