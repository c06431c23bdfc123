/**
 * The product apart from its lab (docs/testing.md, "The lab"): the daemon (src/, daemon/) never loads
 * the lab (lab/, @assetfs/lab) statically, only `assetfs demo` loads it, with a dynamic import; the lab
 * does not reach into the daemon; and the test servers are the lab's dependencies, never the daemon's.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAB = join(ROOT, 'lab');
const TEST_SERVERS = ['azurite', 's3rver'];

async function tsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

const isLab = (t: string) => t === '@assetfs/lab' || t.startsWith('@assetfs/lab/') || t === 'lab' || t.startsWith('lab/');

interface ModuleReference {
  file: string;
  line: number;
  specifier: string;
  /** Erased when compiled: `import type`, `export type`, `typeof import(...)`. */
  typeOnly: boolean;
  /** `import(...)` at run time: loaded only when that code runs. */
  dynamic: boolean;
}

/**
 * Every module a file names: static imports and re-exports, `import x = require()`, import types,
 * `import()` of a literal, and any other string literal naming the lab (a module name kept in a
 * constant for a later `import()`), which counts as dynamic.
 */
function moduleReferences(file: string, text: string): ModuleReference[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: ModuleReference[] = [];
  const seen = new Set<ts.Node>();
  const add = (node: ts.Node, spec: ts.Node | undefined, typeOnly: boolean, dynamic: boolean) => {
    if (!spec || !ts.isStringLiteralLike(spec) || seen.has(spec)) return;
    seen.add(spec);
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    found.push({ file, line, specifier: spec.text, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ?? false, false);
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, node.isTypeOnly, false);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression, node.isTypeOnly, false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, true, false);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0], false, true);
    else if (ts.isStringLiteralLike(node) && isLab(node.text)) add(node, node, false, true);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Where a reference leads: a package name, or the repository-relative path of a relative import. */
function target(ref: ModuleReference): string {
  if (!ref.specifier.startsWith('.')) return ref.specifier;
  return relative(ROOT, resolve(dirname(ref.file), ref.specifier)).split(sep).join('/');
}

const show = (r: ModuleReference) => `${relative(ROOT, r.file)}:${r.line} ${r.specifier}`;

/** The references in every .ts file below `dirs` whose text contains `mentioning` (all files when omitted). */
async function referencesIn(dirs: string[], mentioning = ''): Promise<ModuleReference[]> {
  const files = (await Promise.all(dirs.map((d) => tsFiles(join(ROOT, d))))).flat();
  const refs = await Promise.all(files.map(async (f) => {
    const text = await readFile(f, 'utf8');
    return text.includes(mentioning) ? moduleReferences(f, text) : [];
  }));
  return refs.flat();
}

describe('the product apart from its lab', () => {
  it('the scanner sees static, type-only and dynamic imports of the lab as what they are', () => {
    const refs = moduleReferences(join(ROOT, 'src', 'x.ts'), [
      "import { startPlatformLab } from '@assetfs/lab/demo/lab.js';",
      "import type { PlatformLab } from '@assetfs/lab/demo/lab.js';",
      "export { seedS3 } from '../lab/src/demo/seed-storage.js';",
      "type Lab = typeof import('@assetfs/lab/demo/lab.js');",
      "const lab = await import('@assetfs/lab/demo/lab.js');",
      "const ENTRY = '@assetfs/lab/demo/lab.js'; const later = () => import(ENTRY);",
    ].join('\n'));
    expect(refs.map((r) => [r.line, target(r), r.typeOnly, r.dynamic])).toEqual([
      [1, '@assetfs/lab/demo/lab.js', false, false],
      [2, '@assetfs/lab/demo/lab.js', true, false],
      [3, 'lab/src/demo/seed-storage.js', false, false],
      [4, '@assetfs/lab/demo/lab.js', true, false],
      [5, '@assetfs/lab/demo/lab.js', false, true],
      [6, '@assetfs/lab/demo/lab.js', false, true],
    ]);
  });

  it('the daemon (src/, daemon/) loads the lab only dynamically, for `assetfs demo`', async () => {
    // A reference to the lab names it (`lab/` or `@assetfs/lab`): only files that say `lab` need parsing.
    const refs = (await referencesIn(['src', 'daemon'], 'lab')).filter((r) => isLab(target(r)));
    expect(refs.filter((r) => !r.typeOnly && !r.dynamic).map(show)).toEqual([]);
    // The one run-time load is the demo's.
    expect([...new Set(refs.filter((r) => r.dynamic).map((r) => relative(ROOT, r.file)))]).toEqual(['src/demo/demo.ts']);
  });

  it('the lab does not import the daemon: nothing outside lab/ but packages', async () => {
    const refs = await referencesIn(['lab/src']);
    expect(refs.length).toBeGreaterThan(50);
    const outside = refs.filter((r) => r.specifier.startsWith('.') && !target(r).startsWith('lab/'));
    expect(outside.map(show)).toEqual([]);
    expect(refs.filter((r) => r.specifier === 'assetfs' || r.specifier.startsWith('assetfs/')).map(show)).toEqual([]);
  });

  it('azurite and s3rver are the lab\'s dependencies; an install without dev dependencies has neither', async () => {
    const root = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const lab = JSON.parse(await readFile(join(LAB, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    for (const name of TEST_SERVERS) {
      expect(root.dependencies, name).not.toHaveProperty([name]);
      expect(lab.dependencies, name).toHaveProperty([name]);
      // What `npm ci --omit=dev` and `npm ls --omit=dev` leave out.
      expect(lock.packages[`node_modules/${name}`]?.dev, name).toBe(true);
    }
    expect(root.dependencies).not.toHaveProperty(['@assetfs/lab']);
    expect(root.devDependencies).toHaveProperty(['@assetfs/lab']);
  });
});
