// Resource ids and numeric resource keys.
//
// Every simulated resource belongs to an "owner" (a patient index, or the shared bucket that holds
// Practitioners and Organizations) and has a slot number inside its owner. The id is a reversible,
// seed-scrambled encoding of (owner, slot) padded with hash-derived characters, so that a read by
// id can find the owner without any index, while ids still look opaque like Epic's. In the epic
// profile a few ids are longer than FHIR's 64-character limit, as Epic's are.
import { hashInts } from "./prng";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const OWNER_DIGITS = 5; // 62^5 > 2^24
const SLOT_DIGITS = 4; // 62^4 > 2^18
export const OWNER_BITS = 24;
export const SLOT_BITS = 18;
export const VERSION_BITS = 10;
/** Owner code of Practitioners and Organizations (shared across patients). */
export const SHARED_OWNER = (1 << OWNER_BITS) - 1;
export const MAX_PATIENTS = SHARED_OWNER;
export const MAX_SLOT = (1 << SLOT_BITS) - 1;
export const MAX_VERSION = (1 << VERSION_BITS) - 1;

function toBase62(n: number, width: number): string {
  let s = "";
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s;
}

function fromBase62(s: string): number {
  let n = 0;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return -1;
    n = n * 62 + v;
  }
  return n;
}

export interface IdCodec {
  encode(owner: number, slot: number, resourceType: string): string;
  /** Owner and slot of an id made by encode, or undefined when the id is not one of ours. */
  decode(id: string): { owner: number; slot: number } | undefined;
}

/** Fraction of non-Patient resources whose id exceeds 64 characters in the epic profile. */
export const LONG_ID_FRACTION = 0.03;

export function makeIdCodec(seed: number, longIds: boolean): IdCodec {
  const ownerMask = hashInts(seed, 1) & ((1 << OWNER_BITS) - 1);
  const slotMask = hashInts(seed, 2) & ((1 << SLOT_BITS) - 1);
  const cache = new Map<number, string>();
  function filler(owner: number, slot: number, isPatient: boolean): string {
    const h = hashInts(seed, owner, slot, 3);
    let len = 14 + (h % 20); // total id length 24..43
    if (longIds && !isPatient && (h >>> 8) % 1000 < LONG_ID_FRACTION * 1000) len = 56 + ((h >>> 4) % 36); // 66..101
    let out = "";
    let state = h;
    let x = 0;
    for (let i = 0; i < len; i++) {
      if (i % 5 === 0) {
        state = hashInts(state, i, seed);
        x = state;
      }
      // Epic ids mix letters, digits and dots; never start or end with a dot.
      const c = x % 64;
      x = Math.floor(x / 64);
      out += c === 63 && i > 0 && i < len - 1 ? "." : ALPHABET[c % 62];
    }
    return out;
  }
  return {
    encode(owner, slot, resourceType) {
      const key = owner * (MAX_SLOT + 1) + slot;
      const hit = owner === SHARED_OWNER ? cache.get(key) : undefined;
      if (hit) return hit;
      const id =
        "e" +
        toBase62(owner ^ ownerMask, OWNER_DIGITS) +
        toBase62(slot ^ slotMask, SLOT_DIGITS) +
        filler(owner, slot, resourceType === "Patient");
      if (owner === SHARED_OWNER) cache.set(key, id);
      return id;
    },
    decode(id) {
      if (id.length < 1 + OWNER_DIGITS + SLOT_DIGITS + 1 || id[0] !== "e") return undefined;
      const o = fromBase62(id.slice(1, 1 + OWNER_DIGITS));
      const s = fromBase62(id.slice(1 + OWNER_DIGITS, 1 + OWNER_DIGITS + SLOT_DIGITS));
      if (o < 0 || s < 0 || o >= 1 << OWNER_BITS || s > MAX_SLOT) return undefined;
      const owner = o ^ ownerMask;
      const slot = s ^ slotMask;
      const rest = id.slice(1 + OWNER_DIGITS + SLOT_DIGITS);
      if (rest !== filler(owner, slot, false) && rest !== filler(owner, slot, true)) return undefined;
      return { owner, slot };
    },
  };
}

/**
 * Numeric key of one resource version, exact in a double (24 + 18 + 10 = 52 bits): used to count
 * distinct resources served without keeping strings.
 */
export function resourceKey(owner: number, slot: number, version: number): number {
  return (owner * (MAX_SLOT + 1) + slot) * (MAX_VERSION + 1) + Math.min(version, MAX_VERSION);
}
