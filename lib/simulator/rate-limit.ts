// Per-client token bucket: `rate` requests per second with a burst of one second's worth.
// Pure apart from the clock passed in, so it is unit-testable.
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number = Math.max(1, rate),
    now: number = Date.now(),
  ) {
    if (!(rate > 0)) throw new Error("rate must be positive");
    this.tokens = this.burst;
    this.last = now;
  }

  /** Takes one token; returns 0 when allowed, else the seconds to wait before one is available. */
  take(now: number = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return (1 - this.tokens) / this.rate;
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(private readonly rate: number | undefined) {}

  /** 0 when the client may proceed, else the Retry-After in seconds. */
  check(clientId: string, now: number = Date.now()): number {
    if (!this.rate) return 0;
    let b = this.buckets.get(clientId);
    if (!b) {
      b = new TokenBucket(this.rate, Math.max(1, this.rate), now);
      this.buckets.set(clientId, b);
    }
    return b.take(now);
  }
}
