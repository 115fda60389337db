// A validating JSON scanner for one resource's text: says whether b[start, end) is one JSON value
// exactly as JSON.parse would (RFC 8259: strings without raw control characters and with valid
// escapes, numbers in JSON form, true/false/null, no trailing commas or garbage), and on the way
// notes where the few members bronze needs are: resourceType, id, meta.versionId,
// meta.lastUpdated, and the `reference` of subject / patient / beneficiary.
//
// Why not JSON.parse: it builds every object of the resource only for them to be thrown away,
// and that allocation (and the garbage collection after it) is most of its cost. This scanner
// allocates nothing but its result. UTF-8 validity is checked before (per chunk, natively).
// Anything unusual about the members it reads (a key written with escapes, a duplicate member)
// makes it answer "fallback", and the caller uses JSON.parse for that line.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const MAX_DEPTH = 400;

/** [start, end) of a member's value; -1 when absent. `valueStart` of a string is its opening quote. */
export interface ScannedResource {
  /** the value spans (strings include their quotes) */
  resourceType: number[];
  id: number[];
  versionId: number[];
  lastUpdated: number[];
  /** `reference` of subject, patient and beneficiary */
  refs: [number[], number[], number[]];
  /** the `meta` member: [memberStart, memberEnd, valueStart, commaBefore, commaAfter]; memberStart -1 when absent */
  meta: number[];
  /** spans [start, end) of meta's members other than versionId/lastUpdated */
  metaKeep: number[];
  /** meta held versionId or lastUpdated */
  metaVersioned: boolean;
  /** a string value above contains escapes (decode it with JSON.parse) */
  escaped: boolean;
}

export type ScanOutcome = "ok" | "invalid" | "fallback";

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Index past the string starting at the quote at i, or -1. Sets `escapedString` when it had escapes. */
let escapedString = false;
function scanString(b: Uint8Array, i: number, end: number): number {
  escapedString = false;
  i++;
  while (i < end) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      escapedString = true;
      const e = b[i + 1];
      if (e === 0x75) {
        if (i + 5 >= end || !isHex(b[i + 2]) || !isHex(b[i + 3]) || !isHex(b[i + 4]) || !isHex(b[i + 5])) return -1;
        i += 6;
      } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else return -1;
    } else if (c < 0x20) return -1;
    else i++;
  }
  return -1;
}

function scanNumber(b: Uint8Array, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  if (i >= end) return -1;
  if (b[i] === ZERO) i++;
  else if (b[i] > ZERO && b[i] <= NINE) {
    i++;
    while (i < end && b[i] >= ZERO && b[i] <= NINE) i++;
  } else return -1;
  if (i < end && b[i] === DOT) {
    i++;
    if (i >= end || b[i] < ZERO || b[i] > NINE) return -1;
    while (i < end && b[i] >= ZERO && b[i] <= NINE) i++;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    if (i >= end || b[i] < ZERO || b[i] > NINE) return -1;
    while (i < end && b[i] >= ZERO && b[i] <= NINE) i++;
  }
  return i;
}

function literal(b: Uint8Array, i: number, end: number, word: readonly number[]): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}
const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(b[i])) i++;
  return i;
}

/** Index past the value at i (whitespace already skipped), or -1 when it is not valid JSON. */
export function scanValue(b: Uint8Array, i: number, end: number, depth = 0): number {
  if (i >= end) return -1;
  const c = b[i];
  if (c === QUOTE) return scanString(b, i, end);
  if (c === LBRACE) {
    if (depth >= MAX_DEPTH) return -1;
    i = skipWs(b, i + 1, end);
    if (b[i] === RBRACE) return i + 1;
    for (;;) {
      if (b[i] !== QUOTE) return -1;
      i = scanString(b, i, end);
      if (i < 0) return -1;
      i = skipWs(b, i, end);
      if (b[i] !== COLON) return -1;
      i = scanValue(b, skipWs(b, i + 1, end), end, depth + 1);
      if (i < 0) return -1;
      i = skipWs(b, i, end);
      if (b[i] === COMMA) {
        i = skipWs(b, i + 1, end);
        continue;
      }
      return b[i] === RBRACE ? i + 1 : -1;
    }
  }
  if (c === LBRACKET) {
    if (depth >= MAX_DEPTH) return -1;
    i = skipWs(b, i + 1, end);
    if (b[i] === RBRACKET) return i + 1;
    for (;;) {
      i = scanValue(b, i, end, depth + 1);
      if (i < 0) return -1;
      i = skipWs(b, i, end);
      if (b[i] === COMMA) {
        i = skipWs(b, i + 1, end);
        continue;
      }
      return b[i] === RBRACKET ? i + 1 : -1;
    }
  }
  if (c === MINUS || (c >= ZERO && c <= NINE)) return scanNumber(b, i, end);
  if (c === 0x74) return literal(b, i, end, TRUE);
  if (c === 0x66) return literal(b, i, end, FALSE);
  if (c === 0x6e) return literal(b, i, end, NULL);
  return -1;
}

/** Whether b[start, end) is exactly one JSON value (surrounding whitespace allowed). */
export function isJson(b: Uint8Array, start: number, end: number): boolean {
  const i = scanValue(b, skipWs(b, start, end), end);
  return i >= 0 && skipWs(b, i, end) === end;
}

// Key bytes compared with the members we look for (keys are compared raw: escaped keys fall back).
const K_RESOURCE_TYPE = [...Buffer.from("resourceType")];
const K_ID = [...Buffer.from("id")];
const K_META = [...Buffer.from("meta")];
const K_VERSION_ID = [...Buffer.from("versionId")];
const K_LAST_UPDATED = [...Buffer.from("lastUpdated")];
const K_SUBJECT = [...Buffer.from("subject")];
const K_PATIENT = [...Buffer.from("patient")];
const K_BENEFICIARY = [...Buffer.from("beneficiary")];
const K_REFERENCE = [...Buffer.from("reference")];

function keyIs(b: Uint8Array, ks: number, ke: number, key: readonly number[]): boolean {
  // ks at the opening quote, ke just past the closing one
  if (ke - ks - 2 !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[ks + 1 + k] !== key[k]) return false;
  return true;
}

/**
 * Scans a resource: "invalid" when the text is not one JSON value, "fallback" when it is JSON
 * the fast path does not read (not an object, escaped keys, duplicates), else "ok" with `out`
 * filled.
 */
export function scanResource(b: Uint8Array, start: number, end: number, out: ScannedResource): ScanOutcome {
  out.resourceType = NONE;
  out.id = NONE;
  out.versionId = NONE;
  out.lastUpdated = NONE;
  out.refs = [NONE, NONE, NONE];
  out.meta = NO_META;
  out.metaKeep = [];
  out.metaVersioned = false;
  out.escaped = false;
  let i = skipWs(b, start, end);
  if (b[i] !== LBRACE) {
    const e = scanValue(b, i, end);
    return e >= 0 && skipWs(b, e, end) === end ? "fallback" : "invalid";
  }
  i = skipWs(b, i + 1, end);
  let fallback = false;
  let commaBefore = -1;
  if (b[i] === RBRACE) i++;
  else
    for (;;) {
      if (b[i] !== QUOTE) return "invalid";
      const ks = i;
      const ke = scanString(b, i, end);
      if (ke < 0) return "invalid";
      if (escapedString) fallback = true;
      i = skipWs(b, ke, end);
      if (b[i] !== COLON) return "invalid";
      const vs = skipWs(b, i + 1, end);
      let ve: number;
      const c = b[vs];
      if (c === QUOTE && keyIs(b, ks, ke, K_RESOURCE_TYPE)) {
        ve = scanString(b, vs, end);
        if (out.resourceType !== NONE) fallback = true;
        out.resourceType = [vs, ve];
        if (escapedString) out.escaped = true;
      } else if (c === QUOTE && keyIs(b, ks, ke, K_ID)) {
        ve = scanString(b, vs, end);
        if (out.id !== NONE) fallback = true;
        out.id = [vs, ve];
        if (escapedString) out.escaped = true;
      } else if (c === LBRACE && keyIs(b, ks, ke, K_META)) {
        if (out.meta !== NO_META) fallback = true;
        ve = scanMeta(b, vs, end, out);
        if (ve === -2) {
          fallback = true;
          ve = scanValue(b, vs, end, 1);
        }
      } else if (c === LBRACE && (keyIs(b, ks, ke, K_SUBJECT) || keyIs(b, ks, ke, K_PATIENT) || keyIs(b, ks, ke, K_BENEFICIARY))) {
        const slot = keyIs(b, ks, ke, K_SUBJECT) ? 0 : keyIs(b, ks, ke, K_PATIENT) ? 1 : 2;
        if (out.refs[slot] !== NONE) fallback = true;
        ve = scanReference(b, vs, end, out, slot);
        if (ve === -2) {
          fallback = true;
          ve = scanValue(b, vs, end, 1);
        }
      } else ve = scanValue(b, vs, end, 1);
      if (ve < 0) return "invalid";
      i = skipWs(b, ve, end);
      const commaAfter = b[i] === COMMA ? i : -1;
      if (c === LBRACE && keyIs(b, ks, ke, K_META)) out.meta = [ks, ve, vs, commaBefore, commaAfter];
      if (commaAfter >= 0) {
        commaBefore = commaAfter;
        i = skipWs(b, i + 1, end);
        continue;
      }
      if (b[i] !== RBRACE) return "invalid";
      i++;
      break;
    }
  if (skipWs(b, i, end) !== end) return "invalid";
  return fallback ? "fallback" : "ok";
}

const NONE: number[] = [];
const NO_META: number[] = [];

/** meta's object at vs: records versionId/lastUpdated and the other members; -2: read it the slow way. */
function scanMeta(b: Uint8Array, vs: number, end: number, out: ScannedResource): number {
  let i = skipWs(b, vs + 1, end);
  if (b[i] === RBRACE) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const ks = i;
    const ke = scanString(b, i, end);
    if (ke < 0) return -1;
    if (escapedString) return -2;
    i = skipWs(b, ke, end);
    if (b[i] !== COLON) return -1;
    const valueStart = skipWs(b, i + 1, end);
    const ve = scanValue(b, valueStart, end, 2);
    if (ve < 0) return -1;
    if (keyIs(b, ks, ke, K_VERSION_ID)) {
      if (out.versionId !== NONE) return -2;
      out.metaVersioned = true;
      if (b[valueStart] === QUOTE) {
        out.versionId = [valueStart, ve];
        if (escapedStringAt(b, valueStart, ve)) out.escaped = true;
      }
    } else if (keyIs(b, ks, ke, K_LAST_UPDATED)) {
      if (out.lastUpdated !== NONE) return -2;
      out.metaVersioned = true;
      if (b[valueStart] === QUOTE) out.lastUpdated = [valueStart, ve];
    } else out.metaKeep.push(ks, ve);
    i = skipWs(b, ve, end);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1, end);
      continue;
    }
    return b[i] === RBRACE ? i + 1 : -1;
  }
}

function escapedStringAt(b: Uint8Array, s: number, e: number): boolean {
  for (let k = s + 1; k < e - 1; k++) if (b[k] === BACKSLASH) return true;
  return false;
}

/** A Reference object at vs: records its `reference` string; -2: read it the slow way. */
function scanReference(b: Uint8Array, vs: number, end: number, out: ScannedResource, slot: 0 | 1 | 2): number {
  let i = skipWs(b, vs + 1, end);
  if (b[i] === RBRACE) return i + 1;
  let found = false;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const ks = i;
    const ke = scanString(b, i, end);
    if (ke < 0) return -1;
    if (escapedString) return -2;
    i = skipWs(b, ke, end);
    if (b[i] !== COLON) return -1;
    const valueStart = skipWs(b, i + 1, end);
    const ve = scanValue(b, valueStart, end, 2);
    if (ve < 0) return -1;
    if (keyIs(b, ks, ke, K_REFERENCE) && b[valueStart] === QUOTE) {
      if (found) return -2;
      found = true;
      if (escapedStringAt(b, valueStart, ve)) return -2;
      out.refs[slot] = [valueStart, ve];
    }
    i = skipWs(b, ve, end);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1, end);
      continue;
    }
    return b[i] === RBRACE ? i + 1 : -1;
  }
}
