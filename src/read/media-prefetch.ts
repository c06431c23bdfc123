/**
 * Media-aware open: players and ffprobe read an MP4/MOV's `moov` box before anything else, and
 * encoders often write it at the end. Walking the top-level boxes (never guessing) finds it in a few
 * small reads, so it can be fetched before the player asks, instead of after a round trip per seek.
 */

const MP4_FAMILY = /\.(mp4|m4v|m4a|m4b|mov|3gp|3g2|mj2|f4v)$/i;

export function isMp4Family(name: string): boolean {
  return MP4_FAMILY.test(name);
}

export interface BoxRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The byte range of the top-level `moov` box, walking box headers with `readAt` (which returns at
 * least the bytes asked for, unless past EOF). Undefined when the file is not a well-formed box
 * sequence or has no moov. At most `maxBoxes` headers are read, so a hostile file can't loop us.
 */
export async function locateMoov(
  readAt: (position: number, length: number) => Promise<Buffer>,
  size: number,
  maxBoxes = 64,
): Promise<BoxRange | undefined> {
  let at = 0;
  for (let i = 0; i < maxBoxes && at + 8 <= size; i++) {
    const head = await readAt(at, 16);
    if (head.length < 8) return undefined;
    let boxSize = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    if (!/^[\x20-\x7e]{4}$/.test(type)) return undefined;
    if (boxSize === 1) {
      if (head.length < 16) return undefined;
      boxSize = Number(head.readBigUInt64BE(8));
    } else if (boxSize === 0) {
      boxSize = size - at; // the box runs to the end of the file
    }
    if (boxSize < 8 || at + boxSize > size) return undefined;
    if (type === 'moov') return { start: at, end: at + boxSize };
    at += boxSize;
  }
  return undefined;
}
