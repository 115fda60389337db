// The one retry policy (pure): Retry-After in seconds and as an HTTP date, full-jitter bounds,
// what is retried, when it gives up, and that messages carry no PHI.
import {
  backoffDelayMs,
  decideRetry,
  isRetryableError,
  isRetryableStatus,
  parseRetryAfter,
  redactUrl,
  RetryExhaustedError,
  type RetryOptions,
} from "../../lambdas/extractor/http/retry-policy";

const OPTS: RetryOptions = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5_000, maxRetryAfterMs: 600_000 };
const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

describe("Retry-After", () => {
  it("reads delta-seconds, including fractions", () => {
    expect(parseRetryAfter("120", NOW)).toBe(120_000);
    expect(parseRetryAfter(" 0.12 ", NOW)).toBe(120);
    expect(parseRetryAfter("0", NOW)).toBe(0);
  });
  it("reads an HTTP date relative to now, never negative", () => {
    expect(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW)).toBe(30_000);
    expect(parseRetryAfter(new Date(NOW - 30_000).toUTCString(), NOW)).toBe(0);
  });
  it("ignores absent or unreadable values", () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter("", NOW)).toBeUndefined();
    expect(parseRetryAfter("soon", NOW)).toBeUndefined();
    expect(parseRetryAfter("-5", NOW)).toBeUndefined();
  });
  it("is waited exactly as told on a 429 or 503", () => {
    expect(decideRetry({ status: 429, retryAfter: "7" }, 1, OPTS, NOW)).toEqual({ retry: true, delayMs: 7000, reason: "HTTP 429" });
    expect(decideRetry({ status: 503, retryAfter: new Date(NOW + 2000).toUTCString() }, 2, OPTS, NOW)).toEqual({
      retry: true,
      delayMs: 2000,
      reason: "HTTP 503",
    });
  });
  it("is capped at maxRetryAfterMs", () => {
    expect(decideRetry({ status: 429, retryAfter: "86400" }, 1, OPTS, NOW)).toMatchObject({ retry: true, delayMs: 600_000 });
  });
});

describe("full-jitter backoff", () => {
  it("stays within [0, min(max, base * 2^(attempt-1)))", () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const ceiling = Math.min(OPTS.maxDelayMs, OPTS.baseDelayMs * 2 ** (attempt - 1));
      expect(backoffDelayMs(attempt, OPTS, () => 0)).toBe(0);
      expect(backoffDelayMs(attempt, OPTS, () => 0.999999)).toBeLessThan(ceiling);
      expect(backoffDelayMs(attempt, OPTS, () => 0.999999)).toBeGreaterThanOrEqual(ceiling - 1);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelayMs(attempt, OPTS);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
  });
  it("is what a retryable status without Retry-After gets", () => {
    expect(decideRetry({ status: 500 }, 3, OPTS, NOW, () => 0.5)).toEqual({ retry: true, delayMs: 200, reason: "HTTP 500" });
  });
});

describe("what is retried", () => {
  it("429, 408 and 5xx (not 501/505); not other 4xx", () => {
    for (const s of [408, 429, 500, 502, 503, 504, 599]) expect(isRetryableStatus(s)).toBe(true);
    for (const s of [200, 400, 401, 403, 404, 410, 422, 501, 505]) expect(isRetryableStatus(s)).toBe(false);
  });
  it("resets, timeouts and cut-short bodies, also when wrapped", () => {
    expect(isRetryableError(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryableError(Object.assign(new Error("x"), { code: "UND_ERR_HEADERS_TIMEOUT" }))).toBe(true);
    expect(isRetryableError(Object.assign(new Error("unexpected end of file"), { code: "Z_BUF_ERROR" }))).toBe(true);
    expect(isRetryableError(new Error("outer", { cause: Object.assign(new Error("inner"), { code: "UND_ERR_SOCKET" }) }))).toBe(true);
    expect(isRetryableError(new TypeError("bug"))).toBe(false);
    expect(decideRetry({ error: new TypeError("bug") }, 1, OPTS, NOW)).toEqual({ retry: false, reason: "TypeError" });
  });
  it("gives up after maxAttempts, naming the last status", () => {
    expect(decideRetry({ status: 503 }, 5, OPTS, NOW)).toEqual({ retry: false, reason: "HTTP 503" });
    expect(decideRetry({ status: 404 }, 1, OPTS, NOW)).toEqual({ retry: false, reason: "HTTP 404" });
    const err = new RetryExhaustedError(
      redactUrl("https://epic.example/api/FHIR/R4/Observation?patient=abc&category=laboratory"),
      5,
      503,
      "HTTP 503",
    );
    expect(err.message).toBe("gave up on /api/FHIR/R4/Observation?… after 5 attempts: last HTTP 503");
  });
});

describe("redactUrl", () => {
  it("drops the query and the ids of people", () => {
    expect(redactUrl("https://h/api/FHIR/R4/Patient/eXyZ123?x=1")).toBe("/api/FHIR/R4/Patient/{id}?…");
    expect(redactUrl("https://h/api/FHIR/R4/BulkRequest/42/Observation-1.ndjson")).toBe("/api/FHIR/R4/BulkRequest/42/Observation-1.ndjson");
  });
});
