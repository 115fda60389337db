// Byte-level navigation of JSON text that is already known to be valid (JSON.parse accepted it):
// where a member or an array element starts and ends, so bronze can keep a resource's text byte
// for byte (a Bundle entry's resource, the resource minus its meta version fields) without
// re-serialising anything. Pure functions over a Buffer and a [start, end) range.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

export function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `i` at an opening quote; returns the index just past the closing quote. */
export function skipString(b: Uint8Array, i: number, end: number): number {
  i++;
  while (i < end) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
  return end;
}

/** `i` at the first byte of a value; returns the index just past it. */
export function skipValue(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i, end);
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0;
    while (i < end) {
      const x = b[i];
      if (x === QUOTE) {
        i = skipString(b, i, end);
        continue;
      }
      if (x === LBRACE || x === LBRACKET) depth++;
      else if (x === RBRACE || x === RBRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return end;
  }
  // number, true, false, null
  while (i < end) {
    const x = b[i];
    if (x === COMMA || x === RBRACE || x === RBRACKET || x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09) break;
    i++;
  }
  return i;
}

export interface MemberSpan {
  /** the key's opening quote */
  start: number;
  /** just past the value */
  end: number;
  valueStart: number;
  /** the comma before the member, or -1 (first member) */
  commaBefore: number;
  /** the comma after the member, or -1 (last member) */
  commaAfter: number;
}

function keyEquals(b: Uint8Array, keyStart: number, keyEnd: number, key: Uint8Array): boolean {
  // keyStart/keyEnd include the quotes
  if (keyEnd - keyStart - 2 !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[keyStart + 1 + k] !== key[k]) return false;
  return true;
}

/**
 * Calls `visit` for each member of the object whose `{` is at `objStart`, in order; stops early
 * when `visit` returns true. Returns the index just past the closing `}`.
 */
export function forEachMember(
  b: Uint8Array,
  objStart: number,
  end: number,
  visit: (keyStart: number, keyEnd: number, span: MemberSpan) => boolean | void,
): number {
  let i = skipWs(b, objStart + 1, end);
  let commaBefore = -1;
  if (b[i] === RBRACE) return i + 1;
  while (i < end) {
    const keyStart = i;
    const keyEnd = skipString(b, i, end);
    i = skipWs(b, keyEnd, end);
    if (b[i] !== COLON) return end;
    const valueStart = skipWs(b, i + 1, end);
    const valueEnd = skipValue(b, valueStart, end);
    i = skipWs(b, valueEnd, end);
    const commaAfter = b[i] === COMMA ? i : -1;
    if (visit(keyStart, keyEnd, { start: keyStart, end: valueEnd, valueStart, commaBefore, commaAfter })) return i;
    if (commaAfter < 0) return b[i] === RBRACE ? i + 1 : end;
    commaBefore = commaAfter;
    i = skipWs(b, commaAfter + 1, end);
  }
  return end;
}

/** The member `key` of the object at `objStart` (the first `{` at or after it), if present. */
export function findMember(b: Uint8Array, objStart: number, end: number, key: Uint8Array): MemberSpan | undefined {
  const open = skipWs(b, objStart, end);
  if (b[open] !== LBRACE) return undefined;
  let found: MemberSpan | undefined;
  forEachMember(b, open, end, (ks, ke, span) => {
    if (keyEquals(b, ks, ke, key)) {
      found = span;
      return true;
    }
    return false;
  });
  return found;
}

/** [start, end) of each element of the array whose `[` is at `arrStart`. */
export function arrayElements(b: Uint8Array, arrStart: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = skipWs(b, arrStart + 1, end);
  if (b[i] === RBRACKET) return out;
  while (i < end) {
    const s = i;
    const e = skipValue(b, i, end);
    out.push([s, e]);
    i = skipWs(b, e, end);
    if (b[i] !== COMMA) break;
    i = skipWs(b, i + 1, end);
  }
  return out;
}

const ENTRY = Buffer.from("entry");
const RESOURCE = Buffer.from("resource");

/** [start, end) of `entry[i].resource` for each entry of a Bundle's JSON text, in order. */
export function bundleEntryResources(b: Uint8Array, start: number, end: number): Array<[number, number]> {
  const entry = findMember(b, start, end, ENTRY);
  if (!entry || b[entry.valueStart] !== LBRACKET) return [];
  const out: Array<[number, number]> = [];
  for (const [s, e] of arrayElements(b, entry.valueStart, entry.end)) {
    const r = findMember(b, s, e, RESOURCE);
    if (r) out.push([r.valueStart, r.end]);
  }
  return out;
}
