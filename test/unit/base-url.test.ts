/**
 * A `baseUrl` in the forms people paste: Wordbee's with or without `/api`, slashes doubled or trailing
 * anywhere, each one logging in and listing against the Wordbee emulator; and a base URL that points
 * nowhere fails as "login refused: HTTP 404" naming the URL, never as a missing file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, normalizeBaseUrl, type SourceConfigOf } from '../../src/config/schema.js';
import { WordbeeProvider } from '../../src/providers/wordbee/index.js';
import { startWordbeeEmulator, type WordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { AuthError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/util/logger.js';

let emu: WordbeeEmulator;
beforeAll(async () => {
  emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
  emu.catalog.addDocument(7214, 19641, 'a.docx');
  emu.catalog.addSegment(19641, 501);
});
afterAll(async () => {
  await emu?.close();
});

const wordbee = (baseUrl: string) =>
  ConfigSchema.parse({ sources: [{ name: 'wb', type: 'wordbee', baseUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214'] }] }).sources[0] as SourceConfigOf<'wordbee'>;

async function listScope(cfg: SourceConfigOf<'wordbee'>): Promise<string[]> {
  const p = new WordbeeProvider(cfg, { log: silentLogger });
  try {
    const names: string[] = [];
    for await (const e of p.list('d:pr7214')) names.push(e.name);
    return names;
  } finally {
    await p.close();
  }
}

describe('Wordbee baseUrl forms (config layer), against the emulator', () => {
  const forms = (url: string) => [url, `${url}/`, `${url}/api`, `${url}/api/`, `${url}//api//`, `${url}///`];
  it('every form becomes <host>/api, logs in and lists the scope', async () => {
    for (const form of forms(emu.url)) {
      const cfg = wordbee(form);
      expect(cfg.baseUrl, form).toBe(`${emu.url}/api`);
      expect(await listScope(cfg), form).toEqual(['19641']);
    }
  });

  it('a base URL with a path that is not the API: login refused, HTTP 404 and the URL tried (not ENOENT)', async () => {
    const err = await listScope(wordbee(`${emu.url}/wrong/`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toBe(`wordbee source "wb": login refused: HTTP 404: no route for POST /wrong/api/auth/token (POST ${emu.url}/wrong/api/auth/token)`);
  });
});

describe('normalizeBaseUrl (mkio, nomad, mediahub baseUrl)', () => {
  it('collapses slashes and drops a trailing one, keeping the path', () => {
    expect(normalizeBaseUrl('https://api.xvid.com/v1/')).toBe('https://api.xvid.com/v1');
    expect(normalizeBaseUrl('https://admin-app.nomad.example//')).toBe('https://admin-app.nomad.example');
    expect(normalizeBaseUrl('https://h:8443//a//b/')).toBe('https://h:8443/a/b');
    const parsed = ConfigSchema.parse({ sources: [{ name: 'x', type: 'mediahub', baseUrl: 'https://api.xvid.com//v1/', clientId: 'c', clientSecret: 's' }] });
    expect((parsed.sources[0] as SourceConfigOf<'mediahub'>).baseUrl).toBe('https://api.xvid.com/v1');
  });
});
