// The local stand-in for SQS + the worker Lambdas: bounded concurrency, redelivery of a failed
// unit up to maxAttempts (SQS maxReceiveCount), then the dead-letter list; status as CheckDrained reads it.
import { WorkPool } from "../../lib/pipeline/work-pool";

test("never runs more than `concurrency` units at once, and finishes them all", async () => {
  let running = 0;
  let peak = 0;
  const pool = new WorkPool<number, number>({
    concurrency: 3,
    process: async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5 + (n % 4)));
      running--;
      return n * 2;
    },
  });
  pool.enqueue(Array.from({ length: 20 }, (_, i) => i));
  expect(pool.status()).toMatchObject({ enqueued: 20, inFlight: 3, waiting: 17 });
  await pool.whenIdle();
  expect(peak).toBe(3);
  expect(pool.status()).toEqual({ enqueued: 20, done: 20, failed: 0, waiting: 0, inFlight: 0 });
});

test("a failing unit is delivered again, then dead-lettered after maxAttempts", async () => {
  const attempts = new Map<string, number>();
  const failedFor: string[] = [];
  const pool = new WorkPool<string, string>({
    concurrency: 2,
    maxAttempts: 3,
    retryDelayMs: () => 1,
    process: async (u, attempt) => {
      attempts.set(u, attempt);
      if (u === "flaky" && attempt < 2) throw new Error("reset");
      if (u === "broken") throw Object.assign(new Error("always"), { name: "EpicRequestRejected" });
      return u;
    },
    onDeadLettered: (u) => failedFor.push(u),
  });
  pool.enqueue(["ok", "flaky", "broken"]);
  await pool.whenIdle();
  expect(Object.fromEntries(attempts)).toEqual({ ok: 1, flaky: 2, broken: 3 });
  expect(pool.status()).toMatchObject({ enqueued: 3, done: 2, failed: 1, waiting: 0, inFlight: 0 });
  expect(failedFor).toEqual(["broken"]);
  expect(pool.deadLetters).toEqual([{ unit: "broken", error: "EpicRequestRejected: always" }]);
});

test("units enqueued while others run are picked up (CheckDrained's shared phase)", async () => {
  const seen: string[] = [];
  const pool = new WorkPool<string, void>({ concurrency: 2, process: async (u) => void seen.push(u) });
  pool.enqueue(["a", "b"]);
  await pool.whenIdle();
  pool.enqueue(["c"]);
  await pool.whenIdle();
  expect(seen.sort()).toEqual(["a", "b", "c"]);
  expect(pool.idle).toBe(true);
});

test("close waits for units in flight and drops the waiting ones", async () => {
  let finished = 0;
  const pool = new WorkPool<number, void>({
    concurrency: 1,
    process: async () => {
      await new Promise((r) => setTimeout(r, 20));
      finished++;
    },
  });
  pool.enqueue([1, 2, 3]);
  await pool.close();
  expect(finished).toBe(1);
  expect(() => pool.enqueue([4])).toThrow(/closed/);
});
