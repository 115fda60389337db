// The one retry policy of the extractor (pure: no I/O, the clock and the random source are passed
// in). Exponential backoff with full jitter (delay = random(0, min(max, base * 2^(attempt-1)))),
// except when the server says how long to wait (Retry-After, in seconds or as an HTTP date): then
// exactly that. Retried: 408, 429, 5xx except 501/505, connection resets and timeouts, and
// truncated downloads. Everything else is the caller's to interpret.

export interface RetryOptions {
  /** Total attempts, the first included (config.extraction.retry.maxAttempts). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Upper bound on a server-requested wait (Epic's bulk polling asks for 120 s). */
  maxRetryAfterMs?: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 8, baseDelayMs: 200, maxDelayMs: 60_000, maxRetryAfterMs: 600_000 };

/** What happened on one attempt: a response status (with its Retry-After) or an error. */
export interface AttemptOutcome {
  status?: number;
  retryAfter?: string | null;
  error?: unknown;
}

export type RetryDecision = { retry: true; delayMs: number; reason: string } | { retry: false; reason: string };

/**
 * Retry-After as milliseconds from now: delta-seconds ("120", "0.12" — the simulator scales waits
 * below a second) or an HTTP date. Undefined when absent or unparseable; never negative.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP date names its day and month ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse alone takes "-5" for a year.
  if (!/[a-z]{3}/i.test(v)) return undefined;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_ABORTED",
  "Z_BUF_ERROR", // gzip stream cut short: a truncated download
  "Z_DATA_ERROR",
  "TRUNCATED",
]);

/** Network-level failures worth another attempt (resets, timeouts, a body cut short). */
export function isRetryableError(err: unknown): boolean {
  let e = err as { code?: string; cause?: unknown; name?: string } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (e.code && RETRYABLE_CODES.has(e.code)) return true;
    if (e.name === "TimeoutError" || e.name === "AbortError" || e.name === "TruncatedDownloadError") return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** The full-jitter backoff delay before attempt `attempt + 1` (attempt counts from 1). */
export function backoffDelayMs(attempt: number, opts: RetryOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Whether to try again after `attempt` attempts ended with `outcome`, and after how long. */
export function decideRetry(
  outcome: AttemptOutcome,
  attempt: number,
  opts: RetryOptions,
  nowMs: number = Date.now(),
  random: () => number = Math.random,
): RetryDecision {
  let reason: string;
  if (outcome.error !== undefined) {
    if (!isRetryableError(outcome.error)) return { retry: false, reason: errorLabel(outcome.error) };
    reason = errorLabel(outcome.error);
  } else if (outcome.status !== undefined) {
    if (!isRetryableStatus(outcome.status)) return { retry: false, reason: `HTTP ${outcome.status}` };
    reason = `HTTP ${outcome.status}`;
  } else {
    return { retry: false, reason: "no outcome" };
  }
  if (attempt >= opts.maxAttempts) return { retry: false, reason };
  const told = parseRetryAfter(outcome.retryAfter, nowMs);
  if (told !== undefined) return { retry: true, delayMs: Math.min(told, opts.maxRetryAfterMs ?? DEFAULT_RETRY.maxRetryAfterMs!), reason };
  return { retry: true, delayMs: backoffDelayMs(attempt, opts, random), reason };
}

/** A short name for an error: its code when it has one (no message text: it may quote a URL). */
export function errorLabel(err: unknown): string {
  const e = err as { code?: string; name?: string; cause?: { code?: string } } | undefined;
  return e?.code ?? e?.cause?.code ?? e?.name ?? "error";
}

/**
 * A URL's path for messages and logs, without PHI: no query string (it holds patient ids and
 * search terms), and the id after a resource type replaced by {id}.
 */
export function redactUrl(url: string): string {
  let p: string;
  try {
    const u = new URL(url);
    p = u.pathname + (u.search ? "?…" : "");
  } catch {
    p = url.split("?")[0];
  }
  return p.replace(/\/(Patient|Practitioner|RelatedPerson|Person)\/[^/?]+/g, "/$1/{id}");
}

/** Thrown when every attempt failed: names the URL path (redacted) and the last status or error. */
export class RetryExhaustedError extends Error {
  constructor(
    readonly urlPath: string,
    readonly attempts: number,
    readonly lastStatus: number | undefined,
    readonly lastReason: string,
  ) {
    super(`gave up on ${urlPath} after ${attempts} attempt${attempts === 1 ? "" : "s"}: last ${lastReason}`);
    this.name = "RetryExhaustedError";
  }
}
