/** Helpers the providers share for platform ids (Provider.idOf/byId/ancestry; docs/semantics.md#platform-ids). */
import type { Ref } from '../../core/types.js';

/**
 * The folder refs above a slash-separated ref, top first, each ending in '/': `a/b/c` → `a/`, `a/b/`
 * (S3 keys, blob names). `base` is a fixed head they all start with (an MK.IO asset's `name/`).
 */
export function slashAncestry(ref: Ref, base = ''): Ref[] {
  const segs = ref.slice(base.length).replace(/\/$/, '').split('/').slice(0, -1);
  return segs.map((_, i) => `${base}${segs.slice(0, i + 1).join('/')}/`);
}
