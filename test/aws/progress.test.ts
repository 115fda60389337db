// The shared progress display (lib/core/progress.ts): which renderer a run gets, and what the
// line renderer writes for logs.
import { PassThrough } from "node:stream";
import { LineProgressRenderer, QuietProgressRenderer, TtyProgressRenderer, createProgressRenderer } from "../../lib/core/progress";

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

describe("progress renderers", () => {
  it("--json is quiet; a TTY gets bars; anything else gets lines", () => {
    const tty = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 100,
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
    });
    expect(createProgressRenderer({ json: true, stream: tty as unknown as NodeJS.WriteStream })).toBeInstanceOf(QuietProgressRenderer);
    const bars = createProgressRenderer({ stream: tty as unknown as NodeJS.WriteStream });
    expect(bars).toBeInstanceOf(TtyProgressRenderer);
    bars.close();
    expect(createProgressRenderer({ stream: new PassThrough() as unknown as NodeJS.WriteStream })).toBeInstanceOf(LineProgressRenderer);
  });

  it("writes a line per state change and job change, dropping repeats and throttling counters", async () => {
    const out = collect();
    let now = 0;
    const r = new LineProgressRenderer(out.stream, () => now);
    r.emit({ kind: "run", status: "started", runId: "run-1" });
    r.emit({ kind: "state", name: "SilverJob", status: "entered" });
    r.emit({ kind: "job", name: "silver", id: "jr1", state: "RUNNING" });
    r.emit({ kind: "job", name: "silver", id: "jr1", state: "RUNNING" });
    r.emit({ kind: "queue", name: "download", visible: 3, inFlight: 2 });
    r.emit({ kind: "counter", group: "extract", key: "Patient", done: 10, total: 100 });
    now = 1000;
    r.emit({ kind: "counter", group: "extract", key: "Patient", done: 50, total: 100 }); // within 5 s: dropped
    r.emit({ kind: "counter", group: "extract", key: "Patient", done: 100, total: 100 }); // done: always shown
    r.emit({ kind: "job", name: "silver", id: "jr1", state: "SUCCESS" });
    r.emit({ kind: "state", name: "SilverJob", status: "succeeded" });
    r.emit({ kind: "run", status: "succeeded", runId: "run-1" });
    r.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text().split("\n").filter(Boolean)).toEqual([
      "run run-1 started",
      "→ SilverJob",
      "  job silver jr1: RUNNING",
      "  queue download: 3 waiting, 2 in flight",
      "  extract Patient: 10/100",
      "  extract Patient: 100/100",
      "  job silver jr1: SUCCESS",
      "✓ SilverJob",
      "run run-1 succeeded",
    ]);
  });
});
