// A validating JSON scanner for one resource's text: says whether b[start, end) is one JSON value
// exactly as JSON.parse would (RFC 8259: strings without raw control characters and with valid
// escapes, numbers in JSON form, true/false/null, no trailing commas or garbage), and on the way
// notes where the few members bronze needs are: resourceType, id, meta.versionId,
// meta.lastUpdated, and the `reference` of subject / patient / beneficiary.
//
// Why not JSON.parse: it builds every object of the resource only for them to be thrown away,
// and that allocation (and the garbage collection after it) is most of its cost. This scanner
// allocates nothing: positions go into the caller's ScannedResource. UTF-8 validity is checked
// before (per chunk, natively). Anything unusual about the members it reads (a key written with
// escapes, a duplicate member) makes it answer "fallback", and the caller uses JSON.parse.
// Nesting deeper than MAX_DEPTH is answered "invalid" (JSON.parse would accept it; no FHIR
// resource comes close).

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

export const MAX_DEPTH = 400;

/**
 * Positions found by scanResource. A span is [s, e) of a string value including its quotes;
 * -1 when absent. Reused from line to line: nothing is allocated per scan.
 */
export class ScannedResource {
  rtS = -1;
  rtE = -1;
  idS = -1;
  idE = -1;
  verS = -1;
  verE = -1;
  luS = -1;
  luE = -1;
  /** `reference` of subject (0), patient (1), beneficiary (2): starts and ends */
  readonly refS = new Int32Array(3);
  readonly refE = new Int32Array(3);
  /** the `meta` member: start (key's quote, -1 when absent), end, value start, comma before/after (-1) */
  metaS = -1;
  metaE = -1;
  metaVS = -1;
  metaCB = -1;
  metaCA = -1;
  /** meta's other members as flat [start, end) pairs: metaKeep[0 .. metaKeepLen) */
  metaKeep: number[] = [];
  metaKeepLen = 0;
  /** meta held versionId or lastUpdated */
  metaVersioned = false;
  /** a string value read above has escapes (decode it with JSON.parse) */
  escaped = false;

  reset(): void {
    this.rtS = this.rtE = this.idS = this.idE = this.verS = this.verE = this.luS = this.luE = -1;
    this.refS.fill(-1);
    this.refE.fill(-1);
    this.metaS = this.metaE = this.metaVS = this.metaCB = this.metaCA = -1;
    this.metaKeepLen = 0;
    this.metaVersioned = false;
    this.escaped = false;
  }

  /** The [start, end) pairs of meta's members to keep. */
  keep(): number[] {
    return this.metaKeep.slice(0, this.metaKeepLen);
  }
}

export type ScanOutcome = "ok" | "invalid" | "fallback";

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Set by scanString: the string just scanned had escapes. */
let escapedString = false;

/** Index past the string starting at the quote at i, or -1. */
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
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
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

// Which member a key is: compared on raw bytes (escaped keys fall back to JSON.parse).
const KEY_OTHER = 0;
const KEY_RESOURCE_TYPE = 1;
const KEY_ID = 2;
const KEY_META = 3;
const KEY_SUBJECT = 4;
const KEY_PATIENT = 5;
const KEY_BENEFICIARY = 6;
const KEY_VERSION_ID = 7;
const KEY_LAST_UPDATED = 8;
const KEY_REFERENCE = 9;

const bytesOf = (s: string): number[] => [...Buffer.from(s)];
const TOP_KEYS: Array<[number[], number]> = [
  [bytesOf("resourceType"), KEY_RESOURCE_TYPE],
  [bytesOf("id"), KEY_ID],
  [bytesOf("meta"), KEY_META],
  [bytesOf("subject"), KEY_SUBJECT],
  [bytesOf("patient"), KEY_PATIENT],
  [bytesOf("beneficiary"), KEY_BENEFICIARY],
];
const META_KEYS: Array<[number[], number]> = [
  [bytesOf("versionId"), KEY_VERSION_ID],
  [bytesOf("lastUpdated"), KEY_LAST_UPDATED],
];
const REF_KEYS: Array<[number[], number]> = [[bytesOf("reference"), KEY_REFERENCE]];

/** Which of `keys` the key b[ks, ke) (quotes included) is. */
function whichKey(b: Uint8Array, ks: number, ke: number, keys: ReadonlyArray<[number[], number]>): number {
  const len = ke - ks - 2;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k][0];
    if (key.length !== len) continue;
    let same = true;
    for (let j = 0; j < len; j++) {
      if (b[ks + 1 + j] !== key[j]) {
        same = false;
        break;
      }
    }
    if (same) return keys[k][1];
  }
  return KEY_OTHER;
}

/**
 * Scans a resource: "invalid" when the text is not one JSON value, "fallback" when it is JSON
 * the fast path does not read (not an object, escaped keys, duplicates), else "ok" with `out`
 * filled.
 */
export function scanResource(b: Uint8Array, start: number, end: number, out: ScannedResource): ScanOutcome {
  out.reset();
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
      const c = b[vs];
      const key = c === QUOTE || c === LBRACE ? whichKey(b, ks, ke, TOP_KEYS) : KEY_OTHER;
      let ve: number;
      if (c === QUOTE && key === KEY_RESOURCE_TYPE) {
        ve = scanString(b, vs, end);
        if (out.rtS >= 0) fallback = true;
        out.rtS = vs;
        out.rtE = ve;
        if (escapedString) out.escaped = true;
      } else if (c === QUOTE && key === KEY_ID) {
        ve = scanString(b, vs, end);
        if (out.idS >= 0) fallback = true;
        out.idS = vs;
        out.idE = ve;
        if (escapedString) out.escaped = true;
      } else if (c === LBRACE && key === KEY_META) {
        if (out.metaS >= 0) fallback = true;
        ve = scanMeta(b, vs, end, out);
        if (ve === -2) {
          fallback = true;
          ve = scanValue(b, vs, end, 1);
        }
        out.metaS = ks;
        out.metaE = ve;
        out.metaVS = vs;
        out.metaCB = commaBefore;
      } else if (c === LBRACE && (key === KEY_SUBJECT || key === KEY_PATIENT || key === KEY_BENEFICIARY)) {
        const slot = key - KEY_SUBJECT;
        if (out.refS[slot] >= 0) fallback = true;
        ve = scanReference(b, vs, end, out, slot);
        if (ve === -2) {
          fallback = true;
          ve = scanValue(b, vs, end, 1);
        }
      } else ve = scanValue(b, vs, end, 1);
      if (ve < 0) return "invalid";
      i = skipWs(b, ve, end);
      const commaAfter = b[i] === COMMA ? i : -1;
      if (key === KEY_META && c === LBRACE) out.metaCA = commaAfter;
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
    const escaped = escapedString;
    const key = whichKey(b, ks, ke, META_KEYS);
    if (key === KEY_VERSION_ID) {
      if (out.metaVersioned && out.verS >= 0) return -2;
      out.metaVersioned = true;
      if (b[valueStart] === QUOTE) {
        out.verS = valueStart;
        out.verE = ve;
        if (escaped) out.escaped = true;
      }
    } else if (key === KEY_LAST_UPDATED) {
      if (out.luS >= 0) return -2;
      out.metaVersioned = true;
      if (b[valueStart] === QUOTE) {
        out.luS = valueStart;
        out.luE = ve;
        if (escaped) out.escaped = true;
      }
    } else {
      out.metaKeep[out.metaKeepLen++] = ks;
      out.metaKeep[out.metaKeepLen++] = ve;
    }
    i = skipWs(b, ve, end);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1, end);
      continue;
    }
    return b[i] === RBRACE ? i + 1 : -1;
  }
}

/** A Reference object at vs: records its `reference` string; -2: read it the slow way. */
function scanReference(b: Uint8Array, vs: number, end: number, out: ScannedResource, slot: number): number {
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
    if (b[valueStart] === QUOTE && whichKey(b, ks, ke, REF_KEYS) === KEY_REFERENCE) {
      if (escapedString || out.refS[slot] >= 0) return -2;
      out.refS[slot] = valueStart;
      out.refE[slot] = ve;
    }
    i = skipWs(b, ve, end);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1, end);
      continue;
    }
    return b[i] === RBRACE ? i + 1 : -1;
  }
}
