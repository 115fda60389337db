// Splitting NDJSON into lines whatever the chunking: lines across chunk boundaries, CRLF, blank
// lines, a last line without newline, an oversize line skipped without buffering it, bad UTF-8.
import { LineSplitter } from "../../lambdas/extractor/bronze/ndjson-lines";

function split(
  chunks: Buffer[],
  max = 1 << 20,
): { lines: Array<{ n: number; text: string; ok: boolean }>; oversize: Array<{ n: number; bytes: number; head: string }> } {
  const lines: Array<{ n: number; text: string; ok: boolean }> = [];
  const oversize: Array<{ n: number; bytes: number; head: string }> = [];
  const s = new LineSplitter(
    {
      line: (b, st, e, n, ok) => lines.push({ n, text: b.toString("latin1", st, e), ok }),
      oversize: (n, bytes, head) => oversize.push({ n, bytes, head: head.toString("latin1") }),
    },
    max,
  );
  for (const c of chunks) s.push(c);
  s.end();
  return { lines, oversize };
}

const everyByte = (b: Buffer): Buffer[] => Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1));

describe("LineSplitter", () => {
  const text = `{"a":1}\r\n{"b":"two"}\n\n   \n{"c":3}`;
  it("gives the same lines for one chunk and for one byte at a time", () => {
    const expected = [
      { n: 1, text: `{"a":1}`, ok: true },
      { n: 2, text: `{"b":"two"}`, ok: true },
      { n: 5, text: `{"c":3}`, ok: true },
    ];
    expect(split([Buffer.from(text)]).lines).toEqual(expected);
    expect(split(everyByte(Buffer.from(text))).lines).toEqual(expected);
  });

  it("skips a line over the cap and reports its size and head, then carries on", () => {
    const big = `{"resourceType":"Observation","x":"${"y".repeat(5000)}"}`;
    const input = Buffer.from(`{"a":1}\n${big}\n{"c":3}\n`);
    for (const chunks of [[input], everyByte(input)]) {
      const r = split(chunks, 1000);
      expect(r.lines.map((l) => l.text)).toEqual([`{"a":1}`, `{"c":3}`]);
      expect(r.oversize).toHaveLength(1);
      expect(r.oversize[0].n).toBe(2);
      expect(r.oversize[0].bytes).toBe(big.length);
      expect(r.oversize[0].head.startsWith(`{"resourceType":"Observation"`)).toBe(true);
    }
  });

  it("flags lines that are not UTF-8 (and only those)", () => {
    const bad = Buffer.concat([Buffer.from(`{"a":"`), Buffer.from([0xc3, 0x28]), Buffer.from(`"}\n{"b":"é"}\n`)]);
    for (const chunks of [[bad], everyByte(bad)]) {
      const r = split(chunks);
      expect(r.lines.map((l) => l.ok)).toEqual([false, true]);
    }
  });

  it("counts the bytes consumed", () => {
    const s = new LineSplitter({ line: () => undefined, oversize: () => undefined });
    s.push(Buffer.from("abc\nde"));
    s.end();
    expect(s.bytes).toBe(6);
  });
});
