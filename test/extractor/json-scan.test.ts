// The validating JSON scanner agrees with JSON.parse on what is JSON (differential test over
// real resources and thousands of random mutations of them), and the fast path of the bronze
// row keys gives exactly what the JSON.parse path gives.
import { isJson, MAX_DEPTH } from "../../lambdas/extractor/bronze/json-scan";
import { BronzeRows, readParquetTable } from "../../lambdas/extractor/bronze/bronze-parquet";
import { classifyResource, examineParsed, examineResource, LAST_SCAN } from "../../lambdas/extractor/bronze/resource-row";
import { templateLines } from "./ndjson-generator";

const parses = (s: string): boolean => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};
const scans = (s: string): boolean => {
  const b = Buffer.from(s);
  return isJson(b, 0, b.length);
};

/** A deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  '"',
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  "\\",
  " ",
  "\n",
  "\t",
  "0",
  "1",
  "9",
  "-",
  "+",
  ".",
  "e",
  "E",
  "t",
  "f",
  "n",
  "true",
  "false",
  "null",
  "\\u",
  "\\u00e9",
  "\u0001",
  "\u001f",
  "é",
  "01",
  "1.",
  ".5",
  "1e",
  '\\"',
  "\\x",
  "\u2028",
];

const samples = [
  ...templateLines(3, 17).slice(0, 40),
  `{"resourceType":"Patient","id":"p\\u00e9","name":[{"text":"A \\"quoted\\" name\\n\\t\\/ \\\\ \\u2603"}],"n":[0,-0,1.5e-3,-12E+2,1e9,0.0],"b":[true,false,null],"o":{}}`,
  ` \t{ "resourceType" : "Observation" , "id" : "o1" , "meta" : { "versionId" : "2" } , "valueQuantity" : { "value" : 5.40 } } \n`,
  `[1,2,{"a":[]}]`,
  `"just a string"`,
  `12.5`,
];

describe("JSON scanner", () => {
  it("accepts exactly what JSON.parse accepts (hand-picked cases)", () => {
    const cases = [
      "{}",
      "[]",
      '{"a":1,}',
      "[1,]",
      "{,}",
      '{"a" 1}',
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":-}',
      '{"a":1e}',
      '{"a":1e+}',
      '{"a":"\\x"}',
      '{"a":"\\u00zz"}',
      '{"a":"tab\there"}',
      '{"a":tru}',
      '{"a":nulll}',
      '{"a":1}{"b":2}',
      '{"a":1} x',
      "\ufeff{}",
      '{"a":"\\ud800"}',
      '{"a":[1,2,[3,[4]]]}',
      '  {"a":1}  ',
      "",
      "   ",
      '{"a":"unterminated}',
      "-0",
      "1E5",
      '{"a":1 "b":2}',
      '{"a":[1 2]}',
    ];
    for (const c of cases) expect({ c, scans: scans(c) }).toEqual({ c, scans: parses(c) });
  });

  it("agrees with JSON.parse on thousands of random mutations of real resources", () => {
    const next = rng(20250101);
    let mutated = 0;
    let stillJson = 0;
    for (const base of samples) {
      for (let k = 0; k < 150; k++) {
        let s = base;
        const edits = 1 + Math.floor(next() * 3);
        for (let e = 0; e < edits; e++) {
          const at = Math.floor(next() * (s.length + 1));
          const op = next();
          const piece = PIECES[Math.floor(next() * PIECES.length)];
          if (op < 0.4) s = s.slice(0, at) + piece + s.slice(at);
          else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(next() * 3));
          else s = s.slice(0, at) + piece + s.slice(at + piece.length);
        }
        mutated++;
        const p = parses(s);
        if (p) stillJson++;
        if (scans(s) !== p) throw new Error(`scanner and JSON.parse disagree (JSON.parse: ${p}) on: ${s}`);
      }
    }
    expect(mutated).toBeGreaterThan(5000);
    expect(stillJson).toBeGreaterThan(50); // some mutations keep it JSON: both sides are exercised
  });

  it("refuses nesting deeper than its limit", () => {
    const deep = "[".repeat(MAX_DEPTH + 5) + "]".repeat(MAX_DEPTH + 5);
    expect(scans(deep)).toBe(false);
    expect(scans("[".repeat(50) + "]".repeat(50))).toBe(true);
  });
});

const UNUSUAL = [
  `{"resourceType":"Condition","id":"c","subject":{"display":"x","reference":"https://h/fhir/Patient/p7/_history/3"},"meta":{"lastUpdated":"2025-01-01T10:00:00.123+02:00","versionId":"4","tag":[{"code":"t"}]}}`,
  `{"id":"e","resourceType":"Encounter","subject":{"reference":"Group/g"},"patient":{"reference":"Patient/p1"}}`,
  `{"resourceType":"Coverage","id":"cov","beneficiary":{"reference":"Patient/b1"},"meta":{"versionId":"1"}}`,
  `{"resourceType":"Patient","id":"p","meta":{}}`,
  `{"resourceType":"Observation","id":"o","meta":{"versionId":1}}`,
  `{"resourceType":"Observation","id":"o","meta":null,"subject":{"reference":"Patient/é"}}`,
  `{"resourceType":"Observation","id":"o2","subject":{"reference":"Patient/"}}`,
  `{"resourceType":"Observation","id":"o\u0033","subject":{"reference":"Patient/x"}}`,
];

describe("row keys: the scanner's fast path equals the JSON.parse path", () => {
  it("as bronze rows: written from the scanner's positions or from parsed strings, the Parquet rows are equal", () => {
    const lines = [...templateLines(4, 29), ...UNUSUAL];
    const fast = new Map<string, BronzeRows>();
    const slow = new Map<string, BronzeRows>();
    const rowsOf = (m: Map<string, BronzeRows>, t: string): BronzeRows => {
      let r = m.get(t);
      if (!r) m.set(t, (r = new BronzeRows(t, "run")));
      return r;
    };
    let scanned = 0;
    for (const line of lines) {
      const b = Buffer.from(line);
      const c = classifyResource(b, 0, b.length);
      const p = examineParsed(b, 0, b.length);
      if (c.kind === "reject" || !p.ok) throw new Error(`rejected: ${line}`);
      if (c.kind === "scanned") {
        scanned++;
        rowsOf(fast, c.resourceType).appendScanned(b, 0, b.length, LAST_SCAN, line.length % 2 ? "src-a" : "src-b");
      } else rowsOf(fast, c.resourceType).append(b, 0, b.length, c.keys, line.length % 2 ? "src-a" : "src-b");
      rowsOf(slow, p.keys.resourceType).append(b, 0, b.length, p.keys, line.length % 2 ? "src-a" : "src-b");
    }
    expect(scanned).toBeGreaterThan(lines.length - 3);
    for (const [t, r] of fast) {
      const a = readParquetTable(r.encode(1000))
        .toArray()
        .map((x) => x!.toJSON());
      const b = readParquetTable(slow.get(t)!.encode(1000))
        .toArray()
        .map((x) => x!.toJSON());
      expect(a).toEqual(b);
    }
  });

  it("on every resource of a simulated population, and on unusual layouts", () => {
    const lines = [
      ...templateLines(6, 23),
      `{"resourceType":"Condition","id":"c","subject":{"display":"x","reference":"https://h/fhir/Patient/p7/_history/3"},"meta":{"lastUpdated":"2025-01-01T10:00:00.123+02:00","versionId":"4","tag":[{"code":"t"}]}}`,
      `{"id":"e","resourceType":"Encounter","subject":{"reference":"Group/g"},"patient":{"reference":"Patient/p1"}}`,
      `{"resourceType":"Coverage","id":"cov","beneficiary":{"reference":"Patient/b1"},"meta":{"versionId":"1"}}`,
      `{"resourceType":"Patient","id":"p","meta":{}}`,
      `{"resourceType":"Observation","id":"o","meta":{"versionId":1}}`,
      `{"resourceType":"Observation","id":"o","meta":null,"subject":{"reference":"Patient/é"}}`,
    ];
    for (const line of lines) {
      const b = Buffer.from(line);
      const fast = examineResource(b, 0, b.length);
      const slow = examineParsed(b, 0, b.length);
      expect(fast.ok && slow.ok).toBe(true);
      if (fast.ok && slow.ok) expect(fast.keys).toEqual(slow.keys);
    }
  });
});
