// content_hash: how silver tells a changed resource from an unchanged one, since Epic's bulk
// output has no meta.lastUpdated.
//
// Definition: SHA-256 (hex) of the resource's JSON text as received, with the members
// meta.versionId and meta.lastUpdated removed (and `meta` itself when nothing else is left in it).
// So a server that bumps the version or the timestamp without changing the content produces the
// same hash, and any change of content produces a different one.
//
// Why not a key-sorted canonical re-serialisation: it was measured (bench/extract.bench.ts,
// info "canonical_sorted_hash_ratio") to cost more than JSON.parse itself, which alone would put
// bronze ingest below half of the bare split+parse rate. The text-as-received hash can only err
// one way: two texts of the same content serialised differently (key order, whitespace, escapes)
// hash differently, so silver writes one needless new version. It never misses a real change.
// A server serialises a given resource the same way every time, so in practice this is rare.
import * as crypto from "node:crypto";
import { findMember, forEachMember } from "./json-spans";

const META = Buffer.from("meta");
const VERSION_ID = Buffer.from("versionId");
const LAST_UPDATED = Buffer.from("lastUpdated");

// crypto.hash (one-shot, Node >= 20.12) is markedly faster than createHash for short inputs.
const oneShot = (crypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: "hex" | "buffer") => string | Buffer }).hash;
function sha256Hex(data: Uint8Array): string {
  return oneShot ? (oneShot("sha256", data, "hex") as string) : crypto.createHash("sha256").update(data).digest("hex");
}
/** The 32-byte digest (the bronze writer writes its hex itself, without a string per row). */
function sha256Bytes(data: Uint8Array): Buffer {
  return oneShot ? (oneShot("sha256", data, "buffer") as Buffer) : crypto.createHash("sha256").update(data).digest();
}

let scratch = Buffer.allocUnsafe(1 << 16);
function scratchOf(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
  return scratch;
}

function isKey(b: Uint8Array, ks: number, ke: number, key: Uint8Array): boolean {
  if (ke - ks - 2 !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[ks + 1 + k] !== key[k]) return false;
  return true;
}

/**
 * The content hash of the resource text b[start, end). `hasMetaVersioning` says whether the
 * parsed resource has meta.versionId or meta.lastUpdated (when not, the text is hashed as is).
 */
export function contentHash(b: Buffer, start: number, end: number, hasMetaVersioning: boolean): string {
  if (!hasMetaVersioning) return sha256Hex(b.subarray(start, end));
  const meta = findMember(b, start, end, META);
  if (!meta || b[meta.valueStart] !== 0x7b) return sha256Hex(b.subarray(start, end));
  // Which parts of the meta object to keep.
  const keep: number[] = [];
  let dropped = 0;
  forEachMember(b, meta.valueStart, meta.end, (ks, ke, span) => {
    if (isKey(b, ks, ke, VERSION_ID) || isKey(b, ks, ke, LAST_UPDATED)) dropped++;
    else keep.push(span.start, span.end);
  });
  if (dropped === 0) return sha256Hex(b.subarray(start, end));
  return contentHashWithoutVersioning(b, start, end, meta, keep);
}

/** The member `meta` as the JSON scanner or json-spans locate it. */
export interface MetaMember {
  start: number;
  end: number;
  valueStart: number;
  commaBefore: number;
  commaAfter: number;
}

/**
 * The hash of b[start, end) with meta rewritten to hold only the members `keep` (flat pairs of
 * [start, end)), or dropped with one of its commas when `keep` is empty.
 */
export function contentHashWithoutVersioning(b: Buffer, start: number, end: number, meta: MetaMember, keep: readonly number[]): string {
  return sha256Hex(withoutVersioning(b, start, end, meta, keep));
}

/** contentHashWithoutVersioning as the 32-byte digest. */
export function contentDigestWithoutVersioning(b: Buffer, start: number, end: number, meta: MetaMember, keep: readonly number[]): Buffer {
  return sha256Bytes(withoutVersioning(b, start, end, meta, keep));
}

/** SHA-256 digest of the text as is. */
export function rawContentDigest(b: Buffer, start: number, end: number): Buffer {
  return sha256Bytes(b.subarray(start, end));
}

/** The text with meta rewritten (a view of a scratch buffer, valid until the next call). */
function withoutVersioning(b: Buffer, start: number, end: number, meta: MetaMember, keep: readonly number[]): Buffer {
  const out = scratchOf(end - start + 2);
  let n = 0;
  if (keep.length === 0) {
    let cutStart = meta.start;
    let cutEnd = meta.end;
    if (meta.commaAfter >= 0) cutEnd = meta.commaAfter + 1;
    else if (meta.commaBefore >= 0) cutStart = meta.commaBefore;
    n += b.copy(out, n, start, cutStart);
    n += b.copy(out, n, cutEnd, end);
  } else {
    n += b.copy(out, n, start, meta.valueStart);
    out[n++] = 0x7b;
    for (let k = 0; k < keep.length; k += 2) {
      if (k > 0) out[n++] = 0x2c;
      n += b.copy(out, n, keep[k], keep[k + 1]);
    }
    out[n++] = 0x7d;
    n += b.copy(out, n, meta.end, end);
  }
  return out.subarray(0, n);
}

/** SHA-256 (hex) of the text as is. */
export function rawContentHash(b: Buffer, start: number, end: number): string {
  return sha256Hex(b.subarray(start, end));
}
