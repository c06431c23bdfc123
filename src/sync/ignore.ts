/**
 * Which local files a watched folder never uploads: editor swap and lock files, OS litter, partial
 * downloads. The defaults can be extended per sync entry (`ignore:` globs, picomatch syntax); a pattern
 * without '/' matches the file name anywhere, one with '/' the path relative to the watched folder.
 */
import picomatch from 'picomatch';

export const DEFAULT_IGNORES: readonly string[] = [
  '.*.swp', '*.swp', '*.swx', '.*.swo', '*~', '~$*', '.~lock.*#', '.DS_Store', '._*', 'Thumbs.db', 'desktop.ini',
  '*.part', '*.partial', '*.crdownload', '*.download', '*.tmp', '.goutputstream-*', '.rsync-partial/**', '.*.??????',
];

export function ignoreMatcher(extra: readonly string[] = []): (relPath: string) => boolean {
  const patterns = [...DEFAULT_IGNORES, ...extra];
  const byName = picomatch(patterns.filter((p) => !p.includes('/')), { dot: true });
  const byPath = patterns.some((p) => p.includes('/')) ? picomatch(patterns.filter((p) => p.includes('/')), { dot: true }) : () => false;
  return (relPath) => {
    const parts = relPath.split('/');
    return parts.some((p) => byName(p)) || byPath(relPath);
  };
}
