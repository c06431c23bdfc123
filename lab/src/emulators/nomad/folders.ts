/**
 * The Nomad emulator's catalog edits (docs/providers.md#nomad): create-folder, rename (PATCH), move and delete.
 *
 * Invariants:
 *  - Names are unique per folder (a guess, docs/providers.md#nomad): a create, rename or move onto a taken name
 *    answers 400 (GUESS: the docs list 400/401/404 only) and changes nothing.
 *  - Buckets are the catalog root: they are neither created, moved nor deleted here (GUESS: admin-only
 *    operations elsewhere); a folder never moves into itself or below itself.
 *  - Deleting a folder deletes everything below it, and the bytes of every deleted file upload (keys
 *    `assets/…`); shared seed objects stay.
 *  - Every answer is `{"id"}` as documented.
 */
import { HttpError, sendJson, type Ctx, type Router } from '../common/server.js';
import type { S3Backing } from '../common/backing.js';
import type { AssetRecord, Catalog } from './catalog.js';

export interface FolderHost {
  readonly catalog: Catalog;
  readonly s3: S3Backing;
  authorize(ctx: Ctx): { userId: string };
}

/** A display name Nomad would accept as one path segment (spaces are allowed). */
export function checkName(ctx: Ctx, name: unknown): string {
  if (typeof name !== 'string' || !name.trim()) throw new HttpError(400, 'displayName is required.', { instance: ctx.url.pathname });
  if (name.includes('/') || name === '.' || name === '..' || name.length > 255) throw new HttpError(400, `"${name}" is not a valid asset name.`, { instance: ctx.url.pathname });
  return name;
}

export function registerFolderRoutes(r: Router, host: FolderHost): void {
  const cat = host.catalog;
  const instance = (ctx: Ctx) => ({ instance: ctx.url.pathname });
  const asset = (ctx: Ctx, id: string): AssetRecord => {
    const rec = cat.get(id);
    if (!rec) throw new HttpError(404, `Asset ${id} was not found.`, instance(ctx));
    return rec;
  };
  const folder = (ctx: Ctx, id: string): AssetRecord => {
    const rec = asset(ctx, id);
    if (rec.type === 'File') throw new HttpError(400, `Asset ${id} is a file, not a folder.`, instance(ctx));
    return rec;
  };
  const free = (ctx: Ctx, parentId: string | null, name: string, self?: AssetRecord) => {
    const clash = cat.child(parentId, name);
    if (clash && clash !== self) throw new HttpError(400, `An asset named "${name}" already exists in this folder.`, instance(ctx));
  };

  r.on('POST', /^\/api\/admin\/asset\/([^/]+)\/create-folder$/, async (ctx) => {
    host.authorize(ctx);
    const b = await ctx.json<{ displayName?: unknown }>();
    const parent = folder(ctx, ctx.params[0]!);
    const name = checkName(ctx, b.displayName);
    free(ctx, parent.id, name);
    const rec = cat.add({ parentId: parent.id, name, type: 'Folder', bucketName: parent.bucketName, objectKey: '', assetStatus: 'Available', size: 0, etag: '' });
    sendJson(ctx.res, 200, { id: rec.id });
  });

  r.on('PATCH', /^\/api\/admin\/asset\/([^/]+)$/, async (ctx) => {
    host.authorize(ctx);
    const b = await ctx.json<{ displayName?: unknown }>();
    const rec = asset(ctx, ctx.params[0]!);
    // GUESS: PATCH takes other metadata too; the emulator knows only the name.
    if (b.displayName !== undefined) {
      const name = checkName(ctx, b.displayName);
      if (rec.type === 'Bucket') throw new HttpError(400, 'Buckets cannot be renamed.', instance(ctx));
      free(ctx, rec.parentId, name, rec);
      if (name !== rec.name) cat.relocate(rec, rec.parentId, name);
    }
    sendJson(ctx.res, 200, { id: rec.id });
  });

  r.on('POST', /^\/api\/admin\/asset\/([^/]+)\/move$/, async (ctx) => {
    host.authorize(ctx);
    const b = await ctx.json<{ targetIds?: unknown; actionArguments?: { destinationFolderAssetId?: unknown; name?: unknown } }>();
    asset(ctx, ctx.params[0]!);
    // GUESS: targetIds are the assets moved; without them, the asset of the path.
    const ids = Array.isArray(b.targetIds) && b.targetIds.length ? b.targetIds.map(String) : [ctx.params[0]!];
    const destId = b.actionArguments?.destinationFolderAssetId;
    if (typeof destId !== 'string' || !destId) throw new HttpError(400, 'actionArguments.destinationFolderAssetId is required.', instance(ctx));
    const dest = folder(ctx, destId);
    const newName = b.actionArguments?.name;
    if (newName !== undefined && newName !== null && newName !== '' && ids.length > 1) throw new HttpError(400, 'A new name needs exactly one target.', instance(ctx));
    // Every target is checked before any moves: a refused move changes nothing.
    const moves = ids.map((id) => {
      const rec = asset(ctx, id);
      if (rec.type === 'Bucket') throw new HttpError(400, 'Buckets cannot be moved.', instance(ctx));
      const name = newName === undefined || newName === null || newName === '' ? rec.name : checkName(ctx, newName);
      for (let p: AssetRecord | undefined = dest; p; p = p.parentId ? cat.get(p.parentId) : undefined) {
        if (p === rec) throw new HttpError(400, `Asset ${rec.id} cannot be moved into itself.`, instance(ctx));
      }
      free(ctx, dest.id, name, rec);
      return { rec, name };
    });
    if (new Set(moves.map((m) => m.name)).size !== moves.length) throw new HttpError(400, 'Two targets have the same name.', instance(ctx));
    for (const m of moves) cat.relocate(m.rec, dest.id, m.name);
    sendJson(ctx.res, 200, { id: ctx.params[0] });
  });

  r.on('DELETE', /^\/api\/admin\/asset\/([^/]+)$/, async (ctx) => {
    host.authorize(ctx);
    const rec = asset(ctx, ctx.params[0]!);
    if (rec.type === 'Bucket') throw new HttpError(400, 'Buckets cannot be deleted.', instance(ctx));
    const gone = cat.remove(rec);
    await Promise.all(gone.filter((g) => g.type === 'File' && g.objectKey.startsWith('assets/')).map((g) => host.s3.remove(g.objectKey).catch(() => undefined)));
    sendJson(ctx.res, 200, { id: rec.id });
  });
}
