/**
 * The upload part size rule, one for every provider (docs/providers.md "Common to every source").
 *
 * A part is at least `floor` bytes (8 MiB by default: above S3's 5 MiB minimum part, few enough
 * requests for large files, small enough to hold a few in memory) and grows in whole MiB so that a
 * file never needs more than the platform's part count limit.
 */
const MiB = 1024 * 1024;

/** The default and smallest part size (a test may ask for a smaller floor). */
export const DEFAULT_PART_BYTES = 8 * MiB;

/** Part count limits of the storage services (documented) and platforms (guessed where silent). */
export const MAX_PARTS = {
  /** S3 multipart: 10,000 parts. */
  s3: 10_000,
  /** Azure block blobs: 50,000 blocks. */
  azureBlocks: 50_000,
} as const;

/** Bytes per part for a file of `size` bytes under a limit of `maxParts` parts. */
export function partSizeFor(size: number, maxParts: number, floor: number = DEFAULT_PART_BYTES): number {
  return Math.max(floor, Math.ceil(Math.max(0, size) / maxParts / MiB) * MiB);
}
