// The shared rate budget: many concurrent workers never exceed the configured rate, callers are
// served in order, and a 429's Retry-After pauses everyone.
import { RateBudget, REAL_CLOCK, type Clock } from "../../lambdas/extractor/http/rate-budget";

/** A clock that only moves when someone sleeps (deterministic). */
class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    await Promise.resolve();
    this.t = Math.max(this.t, this.reservedUntil(ms));
  }
  private reservedUntil(ms: number): number {
    return this.t + ms;
  }
}

describe("RateBudget", () => {
  it("spaces reservations at 1/rate (burst 1), in order, whatever the concurrency", () => {
    const clock = new FakeClock();
    const b = new RateBudget(20, 1, clock);
    const waits = Array.from({ length: 100 }, () => b.reserve());
    waits.forEach((w, i) => expect(w).toBeCloseTo(i * 50, 6));
    expect(b.requests).toBe(100);
  });

  it("allows a burst then the steady rate", () => {
    const clock = new FakeClock();
    const b = new RateBudget(10, 5, clock);
    const waits = Array.from({ length: 8 }, () => b.reserve());
    expect(waits.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(waits[5]).toBeCloseTo(100, 6);
    expect(waits[7]).toBeCloseTo(300, 6);
  });

  it("pause() holds everyone back until the server's Retry-After has passed", () => {
    const clock = new FakeClock();
    const b = new RateBudget(100, 1, clock);
    b.reserve();
    b.pause(2000);
    expect(b.reserve()).toBeCloseTo(2000, 6);
    expect(b.reserve()).toBeCloseTo(2010, 6);
  });

  it("is never exceeded by 40 concurrent workers on the real clock", async () => {
    const rate = 50;
    const t0 = REAL_CLOCK.now();
    const b = new RateBudget(rate, 1, REAL_CLOCK);
    const sent: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        for (let i = 0; i < 3; i++) {
          await b.acquire();
          sent.push(REAL_CLOCK.now());
          // simulated request latency
          await new Promise((r) => setTimeout(r, Math.random() * 20));
        }
      }),
    );
    expect(sent).toHaveLength(120);
    const s = [...sent].sort((a, c) => a - c);
    // No request goes before its slot: the i-th is at least i/rate after the budget started. So
    // by any time t the budget has sent at most 1 + rate * (t - t0): what a server's token bucket
    // at the same rate (and a burst of at least one) always admits. (Timers only ever fire late;
    // a late one may be followed by on-time ones, which is fine for such a bucket.)
    for (let i = 0; i < s.length; i++) expect(s[i] - t0).toBeGreaterThanOrEqual((i * 1000) / rate - 1);
    // and over the whole run the rate was reached, not exceeded
    expect(((s.length - 1) * 1000) / (s[s.length - 1] - s[0])).toBeLessThanOrEqual(rate * 1.001);
  });
});
