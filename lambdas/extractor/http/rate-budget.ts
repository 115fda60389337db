// One request budget shared by every concurrent worker of a process: a token bucket in its GCRA
// form (each caller reserves the next free slot synchronously, then sleeps until it), so callers
// are served in order and the long-run rate never exceeds `ratePerSecond`. The burst is small by
// default (one request): a server's own bucket then never sees our bursts, so a budget set at
// the server's limit yields no 429s. A 429 with Retry-After pauses the whole budget.

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

export class RateBudget {
  private readonly intervalMs: number;
  /** Theoretical arrival time of the next request (GCRA). */
  private tat: number;
  private granted = 0;

  constructor(
    readonly ratePerSecond: number,
    readonly burst = 1,
    private readonly clock: Clock = REAL_CLOCK,
  ) {
    if (!(ratePerSecond > 0)) throw new Error("rate budget: ratePerSecond must be positive");
    if (!(burst >= 1)) throw new Error("rate budget: burst must be at least 1");
    this.intervalMs = 1000 / ratePerSecond;
    this.tat = clock.now();
  }

  /** Waits until one request may be sent. */
  async acquire(): Promise<void> {
    const at = this.reserveAt();
    // Timers may fire a little early: sleep again until the slot has really come.
    for (let now = this.clock.now(); now < at; now = this.clock.now()) await this.clock.sleep(Math.ceil(at - now));
  }

  /** Reserves the next slot; returns how long the caller must wait for it (ms). */
  reserve(): number {
    return Math.max(0, this.reserveAt() - this.clock.now());
  }

  private reserveAt(): number {
    const now = this.clock.now();
    const tat = Math.max(this.tat, now);
    const allowedAt = tat - (this.burst - 1) * this.intervalMs;
    this.tat = tat + this.intervalMs;
    this.granted += 1;
    return allowedAt;
  }

  /** Nobody sends before `ms` from now (the server said so with Retry-After on a 429). */
  pause(ms: number): void {
    this.tat = Math.max(this.tat, this.clock.now() + ms);
  }

  /** Requests granted so far. */
  get requests(): number {
    return this.granted;
  }
}
