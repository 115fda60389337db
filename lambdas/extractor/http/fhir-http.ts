// The extractor's one HTTP client for FHIR servers: an undici Agent (keep-alive connection pool
// per origin, bounded connections), gzip on every request, timeouts, the bearer token (refreshed
// once on 401), the shared rate budget before every attempt, and the one retry policy
// (retry-policy.ts) for statuses and network failures. Bodies are streams, decoded from gzip,
// so callers can process files of any size in bounded memory.
import { pipeline, type Readable } from "node:stream";
import * as zlib from "node:zlib";
import { Agent, request, type Dispatcher } from "undici";
import type { TokenProvider } from "../auth/token-provider";
import { Semaphore } from "../concurrency";
import { RateBudget } from "./rate-budget";
import {
  decideRetry,
  DEFAULT_RETRY,
  isRetryableError,
  isRetryableStatus,
  redactUrl,
  RetryExhaustedError,
  type RetryOptions,
} from "./retry-policy";

export interface FhirHttpOptions {
  tokens?: TokenProvider;
  /** Shared by every caller of this client. */
  budget?: RateBudget;
  retry?: RetryOptions;
  /** Headers and idle-body timeout per attempt (config.extraction.requestTimeoutMs). */
  timeoutMs?: number;
  /** Connections per origin (config.extraction.concurrency). */
  connections?: number;
  dispatcher?: Dispatcher;
  userAgent?: string;
  sleep?: (ms: number) => Promise<void>;
}

export interface HttpRequest {
  url: string;
  method?: "GET" | "DELETE" | "POST";
  headers?: Record<string, string>;
  /** Send the bearer token (default true). */
  auth?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | undefined>;
  /** The body, already gunzipped. Read it or call `discard()`. */
  body: Readable;
  /** Compressed bytes consumed so far when the body is gzip (undefined: wire bytes = body bytes). */
  wireBytes(): number | undefined;
  discard(): Promise<void>;
}

export interface HttpStats {
  requests: number;
  retries: number;
  throttled: number;
  unauthorized: number;
}

/** A FHIR server refused a request (a status the caller cannot retry its way out of). */
export class FhirRequestError extends Error {
  constructor(
    readonly status: number,
    readonly urlPath: string,
    readonly outcome: string | undefined,
  ) {
    super(`${urlPath} answered HTTP ${status}${outcome ? `: ${outcome}` : ""}`);
    // Step Functions does not retry these (pipeline-steps NON_RETRYABLE_ERRORS).
    this.name =
      status >= 400 && status < 500 && status !== 401 && status !== 408 && status !== 429 ? "EpicRequestRejected" : "FhirRequestError";
  }
}

export class TruncatedDownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TruncatedDownloadError";
  }
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FhirHttp {
  readonly stats: HttpStats = { requests: 0, retries: 0, throttled: 0, unauthorized: 0 };
  readonly retry: RetryOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Requests between the budget and their answer's headers: at most one per connection. */
  private readonly places: Semaphore;

  constructor(readonly opts: FhirHttpOptions = {}) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.places = new Semaphore(opts.connections ?? 8);
    this.sleep = opts.sleep ?? defaultSleep;
    this.ownsDispatcher = !opts.dispatcher;
    this.dispatcher =
      opts.dispatcher ??
      new Agent({
        connections: opts.connections ?? 8,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: opts.timeoutMs ?? 60_000,
        bodyTimeout: opts.timeoutMs ?? 60_000,
      });
  }

  get tokens(): TokenProvider | undefined {
    return this.opts.tokens;
  }

  /** Closes the connection pool (only when this client created it). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /**
   * One logical request: retried (with the budget and the policy) while the server answers a
   * retryable status or the connection fails before the headers; a 401 drops the token and tries
   * once more. Returns the first other response, body unread.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const where = redactUrl(req.url);
    let refreshedOn401 = false;
    for (let attempt = 1; ; attempt++) {
      // A place among `connections` first, then the budget: a request the budget lets go goes on
      // the wire at once. Granted requests queued for a socket behind a slow server would
      // otherwise reach it together, a burst past its limit although the budget held.
      const release = await this.places.acquire();
      let token: string | undefined;
      try {
        if (this.opts.budget) await this.opts.budget.acquire();
        token = req.auth === false || !this.opts.tokens ? undefined : await this.opts.tokens.token();
      } catch (error) {
        release();
        throw error;
      }
      let res: HttpResponse;
      try {
        res = await this.attempt(req, token);
      } catch (error) {
        release();
        const d = decideRetry({ error }, attempt, this.retry);
        if (!d.retry) {
          if (isRetryableError(error)) throw new RetryExhaustedError(where, attempt, undefined, d.reason);
          throw error;
        }
        this.stats.retries += 1;
        await this.sleep(d.delayMs);
        continue;
      }
      release();
      if (res.status === 401 && token && this.opts.tokens && !refreshedOn401) {
        // The token expired early or was revoked: a fresh one, once.
        this.stats.unauthorized += 1;
        refreshedOn401 = true;
        await res.discard();
        this.opts.tokens.invalidate(token);
        attempt -= 1;
        continue;
      }
      if (!isRetryableStatus(res.status)) return res;
      const d = decideRetry({ status: res.status, retryAfter: res.headers["retry-after"] }, attempt, this.retry);
      await res.discard();
      if (res.status === 429) {
        this.stats.throttled += 1;
        // Everyone waits: the budget is shared, and so is the server's limit.
        if (d.retry && res.headers["retry-after"] !== undefined) this.opts.budget?.pause(d.delayMs);
      }
      if (!d.retry) throw new RetryExhaustedError(where, attempt, res.status, d.reason);
      this.stats.retries += 1;
      await this.sleep(d.delayMs);
    }
  }

  /** GET a JSON document; non-2xx answers become FhirRequestError (with the OperationOutcome's text). */
  async getJson<T = unknown>(
    url: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: HttpResponse["headers"]; body: T; text: string }> {
    const res = await this.send({ url, headers: { accept: "application/fhir+json", ...headers } });
    const text = await readText(res.body);
    if (res.status < 200 || res.status > 299) throw new FhirRequestError(res.status, redactUrl(url), outcomeText(text));
    let body: T;
    try {
      body = JSON.parse(text) as T;
    } catch {
      throw new FhirRequestError(res.status, redactUrl(url), "the body is not JSON");
    }
    return { status: res.status, headers: res.headers, body, text };
  }

  /**
   * Runs a whole operation (e.g. request + streaming the body into bronze) again from the start
   * when it fails in a retryable way part-way (a reset, a timeout, a truncated body). `op` must
   * make each attempt independent (the bronze writer discards the failed attempt's output).
   */
  async withRetries<T>(url: string, op: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op(attempt);
      } catch (error) {
        const d = decideRetry({ error }, attempt, this.retry);
        if (!d.retry) {
          if (isRetryableError(error)) throw new RetryExhaustedError(redactUrl(url), attempt, undefined, d.reason);
          throw error;
        }
        this.stats.retries += 1;
        await this.sleep(d.delayMs);
      }
    }
  }

  private async attempt(req: HttpRequest, token: string | undefined): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      "accept-encoding": "gzip",
      "user-agent": this.opts.userAgent ?? "fhir-pipeline-extractor",
      ...req.headers,
    };
    if (token) headers.authorization = `Bearer ${token}`;
    this.stats.requests += 1;
    const res = await request(req.url, { method: req.method ?? "GET", headers, dispatcher: this.dispatcher });
    const flat: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(", ") : v;
    const raw = res.body as unknown as Readable;
    let body: Readable = raw;
    let gunzip: zlib.Gunzip | undefined;
    if (/\bgzip\b/i.test(flat["content-encoding"] ?? "")) {
      gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
      // pipeline: an error of the socket (a cut download) becomes an error of the decoded stream.
      body = pipeline(raw, gunzip, () => undefined);
    }
    return {
      status: res.statusCode,
      headers: flat,
      body,
      wireBytes: () => gunzip?.bytesWritten,
      discard: async () => {
        try {
          await res.body.dump({ limit: 1 << 20 });
        } catch {
          // the connection is discarded anyway
        }
        body.destroy();
      },
    };
  }
}

export async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The human text of an OperationOutcome body (details.text or diagnostics of the first issues). */
export function outcomeText(text: string): string | undefined {
  try {
    const oo = JSON.parse(text) as {
      resourceType?: string;
      issue?: Array<{ code?: string; details?: { text?: string }; diagnostics?: string }>;
    };
    if (oo.resourceType !== "OperationOutcome" || !Array.isArray(oo.issue)) return undefined;
    const parts = oo.issue
      .slice(0, 3)
      .map((i) => i.details?.text ?? i.diagnostics ?? i.code)
      .filter((x): x is string => typeof x === "string" && x !== "");
    return parts.length ? parts.join("; ").slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}
