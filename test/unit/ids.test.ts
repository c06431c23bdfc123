import { describe, expect, it } from 'vitest';
import { idToName, nameToId, xattrsOf } from '../../src/vfs/ids.js';
import type { Provider, RemoteEntry } from '../../src/core/types.js';

describe('.by-id names', () => {
  it('make any id one path segment, and give it back exactly', () => {
    const ids = ['videos/a b.mp4', 'nb:cid:UUID:0b1c', '50%/x', 'a%2Fb', '%25', 'über/%/%%2F/', 'plain'];
    for (const id of ids) {
      const name = idToName(id);
      expect(name).not.toContain('/');
      expect(nameToId(name)).toBe(id);
    }
    expect(idToName('videos/clip.mp4')).toBe('videos%2Fclip.mp4');
    expect(idToName('nb:cid:UUID:1')).toBe('nb:cid:UUID:1');
  });
});

describe('xattrsOf', () => {
  const provider = { name: 'src', idOf: (e: RemoteEntry) => (e.kind === 'file' ? `id-${e.ref}` : undefined) } as unknown as Provider;
  it('lists source, id, version, status and content type, each only when there is one', () => {
    const file: RemoteEntry = { name: 'a', kind: 'file', ref: 'r', size: 1, mtimeMs: 0, version: 'v1', status: 'Available', contentType: 'video/mp4' };
    expect([...xattrsOf(provider, file)]).toEqual([
      ['user.assetfs.source', 'src'], ['user.assetfs.id', 'id-r'], ['user.assetfs.version', 'v1'],
      ['user.assetfs.status', 'Available'], ['user.assetfs.contentType', 'video/mp4'],
    ]);
    const dir: RemoteEntry = { name: 'd', kind: 'dir', ref: 'd/', size: 0, mtimeMs: 0, version: '' };
    expect([...xattrsOf(provider, dir)]).toEqual([['user.assetfs.source', 'src']]);
    expect([...xattrsOf(provider)]).toEqual([['user.assetfs.source', 'src']]);
  });
});
