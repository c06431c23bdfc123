/**
 * How a block is stored in the shared tier: a header, the object version's identity, the bytes.
 *
 *   0  4  magic "AFSB"          16  4  data length
 *   4  1  frame format (1)      20  4  CRC-32 of the data
 *   5  3  zero                  24  4  CRC-32 of bytes 0..24 and the identity
 *   8  4  identity length       28  …  identity: source \0 ref \0 version (UTF-8), then the data
 *  12  4  block index
 *
 * Invariant: decode() returns the data only when every field checks against what the reader expects
 * (its own identity, index and length) and both CRCs match; anything else — a torn or truncated value,
 * another object's block under a colliding key, flipped bits — is undefined: a miss, never wrong bytes.
 */
import { createHash } from 'node:crypto';
import type { ObjectVersion } from '../core/types.js';
import { blockCrc32 } from '../cache/checksum.js';

const MAGIC = 0x41465342; // "AFSB"
const FORMAT = 1;
const FIXED = 28;

export function identityOf(obj: ObjectVersion): Buffer {
  return Buffer.from(`${obj.source}\0${obj.ref}\0${obj.version}`, 'utf8');
}

/** Short, fixed-length name of an object version for keys (the full identity is in each frame). */
export function objectHash(obj: ObjectVersion): string {
  return createHash('sha256').update(identityOf(obj)).digest('base64url').slice(0, 32);
}

export function encodeFrame(identity: Buffer, index: number, data: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FIXED + identity.length + data.length);
  frame.writeUInt32BE(MAGIC, 0);
  frame.writeUInt32BE(FORMAT << 24, 4);
  frame.writeUInt32BE(identity.length, 8);
  frame.writeUInt32BE(index, 12);
  frame.writeUInt32BE(data.length, 16);
  frame.writeUInt32BE(blockCrc32(data), 20);
  identity.copy(frame, FIXED);
  frame.writeUInt32BE(headerCrc(frame, identity.length), 24);
  data.copy(frame, FIXED + identity.length);
  return frame;
}

/** The block's bytes (a view of `frame`), or undefined unless everything checks. */
export function decodeFrame(frame: Buffer, identity: Buffer, index: number, length: number): Buffer | undefined {
  if (frame.length < FIXED) return undefined;
  if (frame.readUInt32BE(0) !== MAGIC || frame.readUInt32BE(4) !== FORMAT << 24) return undefined;
  const idLen = frame.readUInt32BE(8);
  if (idLen !== identity.length || frame.readUInt32BE(12) !== index || frame.readUInt32BE(16) !== length) return undefined;
  if (frame.length !== FIXED + idLen + length) return undefined;
  if (!frame.subarray(FIXED, FIXED + idLen).equals(identity)) return undefined;
  if (frame.readUInt32BE(24) !== headerCrc(frame, idLen)) return undefined;
  const data = frame.subarray(FIXED + idLen);
  return blockCrc32(data) === frame.readUInt32BE(20) ? data : undefined;
}

function headerCrc(frame: Buffer, idLen: number): number {
  return blockCrc32(Buffer.concat([frame.subarray(0, 24), frame.subarray(FIXED, FIXED + idLen)]));
}
