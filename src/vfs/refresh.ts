/**
 * `assetfs refresh PATH` (docs/semantics.md#cache-control): what the VFS forgets, and the mount paths
 * whose attributes the kernel may hold and must be told to forget.
 *
 * Invariants:
 *  - The listing holding PATH's attributes (its folder's) goes, and with it the negative answers for
 *    names in that folder; so does every cached listing at or below PATH (stale ones included).
 *  - Every id of PATH's source goes, missing ids included (the whole mount's for the mount point): an
 *    entry found by id carries no path, so the ids "under PATH" cannot be told from the others without
 *    asking the platform for their ancestry. What that costs is one byId call per id used afterwards.
 *    The `.by-id/` paths of the ids forgotten are among the paths returned.
 *  - A listing or id lookup in flight is left to arrive (dir-cache.ts, ids.ts): it is fresh already.
 *  - A PATH whose folder is itself new on the platform refreshes the nearest folder that exists.
 */
import type { Provider, Ref } from '../core/types.js';
import { FsError, NotFoundError } from '../core/errors.js';
import type { DirCache } from './dir-cache.js';
import { BY_ID, idToName, nameToId, type IdCache } from './ids.js';

export interface RefreshDeps {
  providers: ReadonlyMap<string, Provider>;
  dirs: DirCache;
  ids: IdCache;
  /**
   * The ref of the folder at a mount path inside a source ('' for the source's root), undefined when
   * there is no such path; ENOTDIR when it is a file.
   */
  folderRef(path: string): Promise<Ref | undefined>;
  ttl(source: string): number;
}

/** Forget what PATH's refresh forgets; the mount paths the kernel should forget too. */
export async function refreshPath(path: string, d: RefreshDeps): Promise<string[]> {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return ['/', ...[...d.providers.keys()].flatMap((source) => forgetSource(d, source))];
  const provider = d.providers.get(parts[0]!);
  if (!provider) throw new NotFoundError(`no source named ${parts[0]}`);
  if (parts.length === 1) return ['/', ...forgetSource(d, provider.name)];
  const mountPath = `/${parts.join('/')}`;
  const parentPath = `/${parts.slice(0, -1).join('/')}`;
  const byId = parts[1] === BY_ID && provider.byId !== undefined;
  const ids = forgetIds(d, provider.name);
  if (byId && parts.length <= 3) {
    // `.by-id` itself, or an entry found by id: no listing holds its attributes; a folder's listings go.
    const found = parts.length === 3 ? ids.entries.get(nameToId(parts[2]!)) : undefined;
    const below = found?.kind === 'dir' ? prefixed(mountPath, d.dirs.forgetTree(provider.name, found.ref).paths) : [];
    return [parentPath, mountPath, ...below, ...ids.paths];
  }
  // The folder's listing is looked up first, so that the entry (and, for a folder, its ref) is known.
  const parentRef = await d.folderRef(parentPath);
  if (parentRef === undefined) return [mountPath, ...(await refreshPath(parentPath, d)), ...ids.paths]; // a folder new on the remote too
  await d.dirs.lookup(provider, parentRef, parts.at(-1)!, d.ttl(provider.name));
  const { listing } = d.dirs.forgetTree(provider.name, parentRef, false);
  const entry = listing?.get(parts.at(-1)!);
  const below = entry?.kind === 'dir' ? prefixed(mountPath, d.dirs.forgetTree(provider.name, entry.ref).paths) : [];
  return [parentPath, mountPath, ...below, ...ids.paths];
}

/** A whole source: every listing and every id. */
function forgetSource(d: RefreshDeps, source: string): string[] {
  const root = `/${source}`;
  return [root, ...prefixed(root, d.dirs.forgetTree(source, '').paths), ...forgetIds(d, source).paths];
}

function forgetIds(d: RefreshDeps, source: string): { entries: Map<string, { kind: string; ref: Ref }>; paths: string[] } {
  const gone = d.ids.forget(source);
  return { entries: new Map(gone.map((g) => [g.id, g.entry])), paths: gone.map((g) => `/${source}/${BY_ID}/${idToName(g.id)}`) };
}

function prefixed(dir: string, paths: readonly string[]): string[] {
  return paths.map((p) => `${dir}/${p}`);
}

/** The folder ref of a resolved mount path: ENOTDIR for a file. */
export function folderRefOf(path: string, entry: { kind: string; ref: Ref } | undefined): Ref {
  if (!entry) return '';
  if (entry.kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
  return entry.ref;
}
