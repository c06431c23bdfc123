/**
 * Refs of the Wordbee tree `<scope>/<documentId>/<segmentId>/<locale or _>/<relativePath…>/<file>`.
 * A ref is `d:` or `f:` and then the path parts, each URI-encoded, joined by '/': it round-trips every
 * part (a locale may be '', a name may hold anything) and says without a request whether it is a file.
 */
export interface WbPath {
  readonly kind: 'file' | 'dir';
  readonly scope?: string;
  readonly doc?: number;
  readonly seg?: number;
  /** Raw locale ('' = none; shown as '_'). */
  readonly locale?: string;
  /** relativePath folders (Wordbee's backslashes already split). */
  readonly rel: readonly string[];
  /** The file name (files only). */
  readonly name?: string;
}

export const NO_LOCALE = '_';

export function encodeRef(p: WbPath): string {
  const parts: string[] = [];
  if (p.scope !== undefined) parts.push(p.scope);
  if (p.doc !== undefined) parts.push(String(p.doc));
  if (p.seg !== undefined) parts.push(String(p.seg));
  if (p.locale !== undefined) parts.push(p.locale);
  parts.push(...p.rel);
  if (p.kind === 'file' && p.name !== undefined) parts.push(p.name);
  if (parts.length === 0) return '';
  return `${p.kind === 'file' ? 'f' : 'd'}:${parts.map(encodeURIComponent).join('/')}`;
}

/** Parses a ref; undefined when it is not one of ours. */
export function decodeRef(ref: string): WbPath | undefined {
  if (ref === '') return { kind: 'dir', rel: [] };
  const m = /^([df]):(.*)$/s.exec(ref);
  if (!m) return undefined;
  let parts: string[];
  try {
    parts = m[2]!.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  const kind = m[1] === 'f' ? 'file' : 'dir';
  const [scope, doc, seg, locale, ...rest] = parts;
  if (doc !== undefined && !/^\d+$/.test(doc)) return undefined;
  if (seg !== undefined && !/^\d+$/.test(seg)) return undefined;
  if (kind === 'file' && (locale === undefined || rest.length === 0)) return undefined;
  const name = kind === 'file' ? rest.pop() : undefined;
  return { kind, scope, doc: doc === undefined ? undefined : Number(doc), seg: seg === undefined ? undefined : Number(seg), locale, rel: rest, name };
}

/** Wordbee writes relativePath with backslashes ("public\\views"); either separator is accepted. */
export function splitRelPath(p: string | null | undefined): string[] {
  return (p ?? '').split(/[\\/]+/).filter(Boolean);
}
