import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfigText } from '../../src/config/load.js';

/** A full config in the style of the example in docs/config.md: flow mappings with unquoted ${VAR} inside. */
const SPEC_EXAMPLE = `
mountpoint: /mnt/assets
cacheDir: /var/cache/assetfs        # disk cache + journal live here (0700)
cache: { memory: 512MiB, disk: 20GiB, blockSize: 1MiB }
metadataTtl: 60s
sources:
  - { name: mkio,    type: mkio,     baseUrl: https://app.mk.io, project: p1, token: \${MKIO_TOKEN} }
  - { name: wordbee, type: wordbee,  baseUrl: https://x.wordbee-translator.com, accountId: acme, apiKey: \${WB_KEY}, scopes: [pr7214] }
  - { name: ams,     type: ams,      restUrl: https://acct.restv2.westeurope.media.azure.net/api/, token: \${AMS_TOKEN} }
  - { name: nomad,   type: nomad,    baseUrl: https://admin-app.nomad.example, username: u, password: \${NOMAD_PW}, applicationId: ... }
  - { name: xvid,    type: mediahub, baseUrl: https://api.xvid.com/v1, clientId: ..., clientSecret: \${XVID_SECRET} }
  - { name: raw,     type: s3,       endpoint: http://127.0.0.1:9000, bucket: media, region: us-east-1, accessKeyId: ..., secretAccessKey: ... }
  - { name: blob,    type: azure-blob, accountUrl: https://acct.blob.core.windows.net, container: media, sasToken: \${SAS} }
sync:
  - { local: /srv/outgoing, remote: nomad/Projects/Incoming }
`;

const SPEC_ENV = {
  MKIO_TOKEN: 'mkio-token-value-1',
  WB_KEY: 'wordbee-key-value-2',
  AMS_TOKEN: 'ams-token-value-3',
  NOMAD_PW: 'nomad-password-4',
  XVID_SECRET: 'xvid-secret-5',
  SAS: 'sv=2024-01-01&sig=SAS-SIGNATURE-6',
};

/** Minimal valid source of every type. */
const MINIMAL_SOURCES: Record<string, Record<string, unknown>> = {
  s3: { type: 's3', bucket: 'media', accessKeyId: 'AK', secretAccessKey: 'SK-value' },
  'azure-blob': { type: 'azure-blob', accountUrl: 'http://127.0.0.1:10000/devstoreaccount1', container: 'media', sasToken: 'sv=1&sig=x' },
  mkio: { type: 'mkio', project: 'p1', token: 'tok-value' },
  wordbee: { type: 'wordbee', baseUrl: 'https://x.wordbee-translator.com', accountId: 'acme', apiKey: 'api-key-value', scopes: ['pr7214'] },
  ams: { type: 'ams', restUrl: 'https://acct.restv2.westeurope.media.azure.net/api/' },
  nomad: { type: 'nomad', baseUrl: 'https://admin-app.nomad.example', username: 'u', password: 'pw-value' },
  mediahub: { type: 'mediahub', clientId: 'cid', clientSecret: 'client-secret-value' },
};

function problemsOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const json = (v: unknown) => JSON.stringify(v);

describe('parseConfigText', () => {
  it('loads the SPEC example (YAML flow mappings with ${VAR}) with every default filled in', () => {
    const c = parseConfigText(SPEC_EXAMPLE, '/etc/assetfs/main.yaml', SPEC_ENV);
    expect(c.mountpoint).toBe('/mnt/assets');
    expect(c.cache).toEqual({ memory: 512 * 1024 ** 2, disk: 20 * 1024 ** 3, blockSize: 1024 ** 2 });
    expect(c.metadataTtl).toBe(60_000);
    expect(c.metadataNegativeTtl).toBe(5_000);
    expect(c.metrics).toEqual({ allowRemote: false });
    expect(c.sources.map((s) => `${s.name}:${s.type}`)).toEqual([
      'mkio:mkio', 'wordbee:wordbee', 'ams:ams', 'nomad:nomad', 'xvid:mediahub', 'raw:s3', 'blob:azure-blob',
    ]);
    const mkio = c.sources[0];
    expect(mkio?.type === 'mkio' && mkio.token).toBe('mkio-token-value-1');
    const blob = c.sources[6];
    expect(blob?.type === 'azure-blob' && blob.sasToken).toBe('sv=2024-01-01&sig=SAS-SIGNATURE-6');
    expect(c.sources[0]?.urlTtl).toBe(15 * 60_000);
    expect(c.sync).toEqual([{ local: '/srv/outgoing', remote: 'nomad/Projects/Incoming', deleteRemote: false, maxDelete: { files: 50, percent: 10 }, ignore: [], stableFor: 2000 }]);
  });

  it('loads the same config written as JSON', () => {
    const text = json({
      mountpoint: '/mnt/assets',
      cache: { memory: '1GiB', disk: 1_000_000, blockSize: '4MiB' },
      metadataTtl: '5m',
      sources: [{ name: 'raw', ...MINIMAL_SOURCES.s3, endpoint: 'http://127.0.0.1:9000', prefix: 'a/' }],
    });
    const c = parseConfigText(text, '/etc/assetfs/x.json', {});
    expect(c.cache).toEqual({ memory: 1024 ** 3, disk: 1_000_000, blockSize: 4 * 1024 ** 2 });
    expect(c.metadataTtl).toBe(300_000);
    expect(c.sources[0]).toMatchObject({ name: 'raw', type: 's3', bucket: 'media', region: 'us-east-1', forcePathStyle: true, prefix: 'a/' });
  });

  it('metadataNegativeTtl: its own key, else the old negativeTtl, else 5 s', () => {
    const parse = (extra: object) => parseConfigText(json({ sources: [{ name: 'a', ...MINIMAL_SOURCES.s3 }], ...extra }), '/x/c.json', {}).metadataNegativeTtl;
    expect(parse({})).toBe(5_000);
    expect(parse({ metadataNegativeTtl: '2s' })).toBe(2_000);
    expect(parse({ negativeTtl: '7s' })).toBe(7_000);
    expect(parse({ negativeTtl: '7s', metadataNegativeTtl: '1s' })).toBe(1_000);
  });

  it('metrics.listen: loopback addresses only, unless metrics.allowRemote says otherwise', () => {
    const parse = (metrics: object) => parseConfigText(json({ sources: [{ name: 'a', ...MINIMAL_SOURCES.s3 }], metrics }), '/x/c.json', {}).metrics;
    expect(parse({ listen: '127.0.0.1:9464' })).toEqual({ listen: '127.0.0.1:9464', allowRemote: false });
    expect(parse({ listen: '[::1]:9464' }).listen).toBe('[::1]:9464');
    expect(parse({ listen: '0.0.0.0:9464', allowRemote: true })).toEqual({ listen: '0.0.0.0:9464', allowRemote: true });
    for (const listen of ['0.0.0.0:9464', '192.168.1.10:9464', '[::]:9464']) {
      const problems = problemsOf(() => parse({ listen }));
      expect(problems).toEqual([{ path: 'metrics.listen', message: expect.stringMatching(/not a loopback address.*metrics\.allowRemote: true/) }]);
    }
    expect(problemsOf(() => parse({ listen: '9464' }))[0]).toMatchObject({ path: 'metrics.listen', message: expect.stringMatching(/expected host:port/) });
  });

  it.each(Object.keys(MINIMAL_SOURCES))('accepts a minimal %s source', (type) => {
    const c = parseConfigText(json({ sources: [{ name: 'one', ...MINIMAL_SOURCES[type] }] }), '/x/c.json', {});
    expect(c.sources[0]?.type).toBe(type);
    expect(c.cacheDir).toBe('/var/cache/assetfs');
    expect(c.mountpoint).toBeUndefined();
  });

  it('resolves relative cacheDir, mountpoint and sync[].local against the config file directory', () => {
    const c = parseConfigText(
      json({ mountpoint: 'mnt', cacheDir: './cache', sources: [{ name: 'a', ...MINIMAL_SOURCES.mkio }], sync: [{ local: '../out', remote: 'a/in' }, { local: '/abs', remote: 'a' }] }),
      '/etc/assetfs/c.json',
      {},
    );
    expect(c.mountpoint).toBe('/etc/assetfs/mnt');
    expect(c.cacheDir).toBe('/etc/assetfs/cache');
    expect(c.sync.map((s) => s.local)).toEqual(['/etc/out', '/abs']);
  });

  describe('${VAR} interpolation', () => {
    const yaml = (extra: string) => `sources:\n  - name: m\n    type: mkio\n    project: p1\n${extra}`;

    it('substitutes inside a longer string and in block and quoted scalars', () => {
      const c = parseConfigText(
        `cacheDir: "/data/\${USER_DIR}/cache"\nsources:\n  - name: m\n    type: mkio\n    project: 'p-\${PROJ}'\n    token: \${TOK}\n`,
        '/c.yaml',
        { USER_DIR: 'bob', PROJ: '7', TOK: 'x: y # not yaml' },
      );
      expect(c.cacheDir).toBe('/data/bob/cache');
      const s = c.sources[0];
      expect(s?.type === 'mkio' && [s.project, s.token]).toEqual(['p-7', 'x: y # not yaml']);
    });

    it('$${VAR} is the literal text ${VAR}, also inside a flow mapping', () => {
      const c = parseConfigText(`sources:\n  - { name: m, type: mkio, project: p1, token: a$\${NOT_READ}b }\n`, '/c.yaml', {});
      const s = c.sources[0];
      expect(s?.type === 'mkio' && s.token).toBe('a${NOT_READ}b');
    });

    it('ignores references in comments', () => {
      expect(() => parseConfigText(yaml('    token: t1 # was ${OLD_TOKEN}\n'), '/c.yaml', {})).not.toThrow();
    });

    it('names the key path and the variable for every unset variable', () => {
      const problems = problemsOf(() =>
        parseConfigText(
          `mountpoint: \${MP}\nsources:\n  - { name: m, type: mkio, project: p1, token: \${MKIO_TOKEN} }\n  - { name: b, type: azure-blob, accountUrl: https://a.blob.core.windows.net, container: c, sasToken: "\${SAS}" }\n`,
          '/c.yaml',
          {},
        ),
      );
      expect(problems).toEqual([
        { path: 'mountpoint', message: 'environment variable MP is not set' },
        { path: 'sources[0].token', message: 'environment variable MKIO_TOKEN is not set' },
        { path: 'sources[1].sasToken', message: 'environment variable SAS is not set' },
      ]);
    });

    it('reports an invalid reference with its key path', () => {
      const problems = problemsOf(() => parseConfigText(yaml('    token: ${MY-TOKEN}\n'), '/c.yaml', { 'MY-TOKEN': 'x' }));
      expect(problems).toHaveLength(1);
      expect(problems[0]?.path).toBe('sources[0].token');
      expect(problems[0]?.message).toMatch(/invalid variable reference "\$\{MY-TOKEN\}"/);
    });

    it('an empty variable counts as set, and the schema then says the value is empty', () => {
      const problems = problemsOf(() => parseConfigText(yaml('    token: ${TOK}\n'), '/c.yaml', { TOK: '' }));
      expect(problems).toEqual([{ path: 'sources[0].token', message: 'must not be empty' }]);
    });
  });

  it('refuses libfuse 2 options that libfuse 3 would refuse at mount time', () => {
    const problems = problemsOf(() => parseConfigText(json({ fuse: { options: ['max_background=64', 'big_writes'] }, sources: [{ name: 'ok', ...MINIMAL_SOURCES.s3 }] }), '/c.json', {}));
    expect(problems).toEqual([{ path: 'fuse.options[1]', message: 'big_writes is a libfuse 2 option that libfuse 3 refuses: remove it (writes are large by default now)' }]);
  });

  it('fuse.maxBackground defaults to 64 and must be a whole number from 1 to 65535', () => {
    const parse = (fuse: unknown) => parseConfigText(json({ fuse, sources: [{ name: 'ok', ...MINIMAL_SOURCES.s3 }] }), '/c.json', {});
    expect(parse({}).fuse.maxBackground).toBe(64);
    expect(parse(undefined).fuse).toEqual({ allowOther: false, readahead: 1024 ** 2, maxBackground: 64, options: [], fileMode: 0o644, dirMode: 0o755, ignoreChmod: false }); // no fuse section at all
    expect(parse({ maxBackground: 200 }).fuse.maxBackground).toBe(200);
    for (const bad of [0, 1.5, 70000]) expect(problemsOf(() => parse({ maxBackground: bad })).map((p) => p.path)).toEqual(['fuse.maxBackground']);
  });

  it('reports every problem at once, each with its exact key path', () => {
    const e = (() => {
      try {
        parseConfigText(
          json({
            cache: { memory: 'lots', disk: '10 parsecs' },
            metadataTtl: 'soon',
            colour: 'blue',
            sources: [
              { name: 'ok', ...MINIMAL_SOURCES.s3 },
              { name: 'nobucket', type: 's3', accessKeyId: 'a', secretAccessKey: 's-value' },
              { name: 'bad name!', type: 'ftp' },
              { name: 'w', ...MINIMAL_SOURCES.wordbee, scopes: ['project7'], baseUrl: 'not a url' },
            ],
            log: { level: 'loud' },
          }),
          '/etc/assetfs/c.json',
          {},
        );
      } catch (err) {
        return err as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    const byPath = new Map(e.problems.map((p) => [p.path, p.message]));
    expect([...byPath.keys()].sort()).toEqual(
      [
        'cache.memory', 'cache.disk', 'metadataTtl', 'colour',
        'sources[1].bucket', 'sources[2].type', 'sources[3].scopes[0]', 'sources[3].baseUrl', 'log.level',
      ].sort(),
    );
    expect(byPath.get('cache.memory')).toBe('expected a size like 512MiB, 20GiB or a byte count, got "lots"');
    expect(byPath.get('metadataTtl')).toMatch(/^expected a duration like 60s/);
    expect(byPath.get('colour')).toBe('unknown key');
    expect(byPath.get('sources[1].bucket')).toBe('is required');
    expect(byPath.get('sources[2].type')).toMatch(/^unknown type "ftp": expected one of s3, azure-blob, mkio, wordbee, ams, nomad, mediahub$/);
    expect(byPath.get('sources[3].baseUrl')).toBe('expected an http(s) URL');
    expect(byPath.get('log.level')).toMatch(/^expected one of trace, .*got "loud"$/);
    // One human line per problem, each naming the file and the key path.
    const lines = e.message.split('\n');
    expect(lines).toHaveLength(e.problems.length);
    expect(lines).toContain('/etc/assetfs/c.json: sources[1].bucket: is required');
  });

  it('reports a duplicate source name and a sync remote that names no source, together with other problems', () => {
    const problems = problemsOf(() =>
      parseConfigText(
        json({
          sources: [
            { name: 'a', ...MINIMAL_SOURCES.mkio },
            { name: 'b', ...MINIMAL_SOURCES.mkio, project: '' },
            { name: 'a', ...MINIMAL_SOURCES.nomad },
          ],
          sync: [{ local: '/x', remote: 'a/in' }, { local: '/y', remote: 'nosuch/in' }],
        }),
        '/c.json',
        {},
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'sources[1].project', message: 'must not be empty' },
        { path: 'sources[2].name', message: 'duplicate source name "a" (also sources[0])' },
        { path: 'sync[1].remote', message: '"nosuch/in" does not start with a configured source name' },
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it('reports the cross-field rules on their own when nothing else is wrong (from the schema)', () => {
    const problems = problemsOf(() =>
      parseConfigText(json({ sources: [{ name: 'a', ...MINIMAL_SOURCES.mkio }, { name: 'a', ...MINIMAL_SOURCES.mkio }] }), '/c.json', {}),
    );
    expect(problems).toEqual([{ path: 'sources[1].name', message: 'duplicate source name "a" (also sources[0])' }]);
  });

  it('needs at least one source, and an azure-blob source needs a credential', () => {
    expect(problemsOf(() => parseConfigText('sources: []\n', '/c.yaml', {}))).toEqual([{ path: 'sources', message: 'at least one source is needed' }]);
    expect(problemsOf(() => parseConfigText('mountpoint: /m\n', '/c.yaml', {}))).toEqual([{ path: 'sources', message: 'is required' }]);
    const blob = { name: 'b', type: 'azure-blob', accountUrl: 'https://a.blob.core.windows.net', container: 'media' };
    expect(problemsOf(() => parseConfigText(json({ sources: [blob] }), '/c.json', {}))).toEqual([
      { path: 'sources[0].sasToken', message: 'needs one of sasToken, accountKey (with accountName) or connectionString' },
    ]);
  });

  it('reports wrong value types without quoting the value', () => {
    const problems = problemsOf(() =>
      parseConfigText(json({ sources: [{ name: 'm', ...MINIMAL_SOURCES.mkio, token: 12345678, readOnly: 'hunter2-secret' }] }), '/c.json', {}),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'sources[0].token', message: 'expected a string, got a number' },
        { path: 'sources[0].readOnly', message: 'expected a boolean, got a string' },
      ]),
    );
    expect(problems).toHaveLength(2);
  });

  it('never echoes a secret in any message', () => {
    const secretValues = ['SUPER-SECRET-TOKEN-1', 'SUPER-SECRET-KEY-2', 'SUPER-SECRET-PW-3', 'SUPER-SECRET-SAS-4'];
    const text = `
sources:
  - { name: m, type: mkio, project: p1, token: \${T}, storage: { type: gcs, sasToken: SUPER-SECRET-SAS-4 } }
  - { name: w, type: wordbee, baseUrl: "https://x/ ?apiKey=\${K}", accountId: a, apiKey: \${K}, scopes: [pr1] }
  - { name: n, type: nomad, baseUrl: "ftp://\${P}@host", username: u, password: \${P}, tokn: SUPER-SECRET-TOKEN-1 }
  - { name: n, type: nomad, baseUrl: https://h, username: u, password: [SUPER-SECRET-PW-3] }
sync:
  - { local: /x, remote: "\${P}/in" }
`;
    let message = '';
    try {
      parseConfigText(text, '/c.yaml', { T: 'SUPER-SECRET-TOKEN-1', K: 'SUPER-SECRET-KEY-2', P: 'SUPER-SECRET-PW-3' });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as ConfigError).message + json((e as ConfigError).problems);
    }
    expect(message).toContain('sources[0].storage.type'); // the config really was rejected, for several reasons
    expect(message).toContain('sources[1].baseUrl');
    expect(message).toContain('sources[2].tokn');
    expect(message).toContain('sync[0].remote');
    for (const s of secretValues) expect(message).not.toContain(s);
  });

  it('gives the line and column of a YAML syntax error without quoting the source text', () => {
    const problems = problemsOf(() => parseConfigText('sources:\n  - name: a\n    token: "SECRET-IN-BROKEN-LINE\n  bad: [\n', '/c.yaml', {}));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]?.path).toBe('');
    expect(problems[0]?.message).toMatch(/^line \d+, column \d+: YAML syntax error/);
    expect(json(problems)).not.toContain('SECRET-IN-BROKEN-LINE');
  });

  it('reports a duplicate YAML key as a syntax problem', () => {
    const problems = problemsOf(() => parseConfigText('mountpoint: /a\nmountpoint: /b\nsources: []\n', '/c.yaml', {}));
    expect(problems[0]?.message).toMatch(/^line 2, column 1: YAML syntax error: Map keys must be unique/);
  });

  it('gives the line and column of a JSON syntax error without quoting it', () => {
    const problems = problemsOf(() => parseConfigText('{\n  "sources": [\n    {"token": "SECRET-JSON" x}\n  ]\n}\n', '/c.json', {}));
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/^line 3, column \d+: JSON syntax error/);
    expect(problems[0]?.message).not.toContain('SECRET-JSON');
  });

  it('rejects an empty file and a top level that is not a mapping', () => {
    expect(problemsOf(() => parseConfigText('# nothing\n', '/c.yaml', {}))).toEqual([{ path: '', message: 'the config file is empty' }]);
    expect(problemsOf(() => parseConfigText('[1, 2]', '/c.json', {}))[0]?.message).toMatch(/^expected a mapping/);
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'assetfs-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads YAML from disk, resolving relative paths against the file', async () => {
    const file = join(dir, 'main.yaml');
    await writeFile(file, `mountpoint: mnt\ncacheDir: cache\nsources:\n  - { name: m, type: mkio, project: p, token: \${TOK} }\n`);
    const c = await loadConfig(file, { TOK: 't-value' });
    expect(c.mountpoint).toBe(join(dir, 'mnt'));
    expect(c.cacheDir).toBe(join(dir, 'cache'));
  });

  it('reads JSON from disk by its extension', async () => {
    const file = join(dir, 'main.json');
    await writeFile(file, json({ sources: [{ name: 'm', ...MINIMAL_SOURCES.mkio }] }));
    expect((await loadConfig(file, {})).sources[0]?.name).toBe('m');
  });

  it('throws a ConfigError naming the file when it does not exist', async () => {
    const file = join(dir, 'missing.yaml');
    await expect(loadConfig(file, {})).rejects.toThrow(new ConfigError(file, [{ path: '', message: 'config file not found' }]));
    await expect(loadConfig(file, {})).rejects.toBeInstanceOf(ConfigError);
    await expect(loadConfig(dir, {})).rejects.toThrow(/is a directory/);
  });
});
