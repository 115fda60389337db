// Access tokens from the SMART Backend Services token endpoint: one request at a time (callers
// share the one in flight), cached until shortly before `expires_in` runs out, dropped when a
// FHIR call answers 401 so the next caller fetches a fresh one. Errors say what went wrong
// without quoting the key or the assertion: 400 invalid_client and friends are configuration
// problems; Epic's occasional bare 400 (no body) is retried a couple of times; 5xx/429/resets are
// retried by the shared retry policy; an HTML page means the token URL is wrong.
import { request, type Dispatcher } from "undici";
import { ASSERTION_TYPE, buildClientAssertion, checkSigningSetup, parsePrivateKey, type SigningAlgorithm } from "./client-assertion";
import type { KeySource } from "./key-source";
import { decideRetry, DEFAULT_RETRY, redactUrl, RetryExhaustedError, type RetryOptions } from "../http/retry-policy";
import type { KeyObject } from "node:crypto";

export interface TokenProviderOptions {
  tokenUrl: string;
  clientId: string;
  keySource: KeySource;
  algorithm?: SigningAlgorithm;
  keyId?: string;
  /** Sent only when set: Epic's own example sends none (the SMART spec wants one). */
  scope?: string;
  /** Refresh this many seconds before expiry (default 60, or a tenth of short lifetimes). */
  refreshSkewS?: number;
  /** Extra tries after a bare 400 (default 2). */
  bare400Retries?: number;
  retry?: RetryOptions;
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface TokenStats {
  requests: number;
  issued: number;
  bare400Retries: number;
  invalidations: number;
}

export class TokenError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly oauthError?: string,
  ) {
    super(message);
    // Refusals of the client are configuration problems: retrying the run cannot help.
    this.name = oauthError ? "ConfigurationError" : "TokenError";
  }
}

interface CachedToken {
  value: string;
  /** epoch ms after which the token is not used any more */
  refreshAt: number;
}

export class TokenProvider {
  private cached: CachedToken | undefined;
  private inflight: Promise<string> | undefined;
  private key: KeyObject | undefined;
  readonly stats: TokenStats = { requests: 0, issued: 0, bare400Retries: 0, invalidations: 0 };
  private readonly algorithm: SigningAlgorithm;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: TokenProviderOptions) {
    this.algorithm = opts.algorithm ?? "RS384";
    checkSigningSetup(this.algorithm, opts.keyId);
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** A valid access token (cached, or fetched once for all concurrent callers). */
  async token(): Promise<string> {
    const c = this.cached;
    if (c && this.now() < c.refreshAt) return c.value;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** The server refused `token` (401): forget it so the next call fetches a new one. */
  invalidate(token: string): void {
    if (this.cached?.value === token) {
      this.cached = undefined;
      this.stats.invalidations += 1;
    }
  }

  private async signingKey(): Promise<KeyObject> {
    this.key ??= parsePrivateKey(await this.opts.keySource.privateKeyPem(), this.opts.keySource.description);
    return this.key;
  }

  private async fetchToken(): Promise<string> {
    const retry = this.opts.retry ?? DEFAULT_RETRY;
    const bare400Max = this.opts.bare400Retries ?? 2;
    let bare400s = 0;
    const where = redactUrl(this.opts.tokenUrl);
    for (let attempt = 1; ; attempt++) {
      const form = new URLSearchParams({
        grant_type: "client_credentials",
        client_assertion_type: ASSERTION_TYPE,
        // A fresh assertion (and jti) for every attempt: a jti is never reused.
        client_assertion: await buildClientAssertion({
          clientId: this.opts.clientId,
          tokenUrl: this.opts.tokenUrl,
          algorithm: this.algorithm,
          keyId: this.opts.keyId,
          key: await this.signingKey(),
        }),
      });
      if (this.opts.scope) form.set("scope", this.opts.scope);
      this.stats.requests += 1;
      let status: number;
      let retryAfter: string | undefined;
      let contentType = "";
      let text = "";
      try {
        const res = await request(this.opts.tokenUrl, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
          body: form.toString(),
          dispatcher: this.opts.dispatcher,
          headersTimeout: this.opts.timeoutMs ?? 30_000,
          bodyTimeout: this.opts.timeoutMs ?? 30_000,
        });
        status = res.statusCode;
        retryAfter = header(res.headers["retry-after"]);
        contentType = header(res.headers["content-type"]) ?? "";
        text = await res.body.text();
      } catch (error) {
        const d = decideRetry({ error }, attempt, retry);
        if (!d.retry) throw new RetryExhaustedError(where, attempt, undefined, d.reason);
        await this.sleep(d.delayMs);
        continue;
      }
      if (/text\/html/i.test(contentType) || /^\s*<(!doctype|html)/i.test(text)) {
        throw new TokenError(
          `the token endpoint ${where} answered an HTML page (HTTP ${status}), not OAuth JSON: check the token URL`,
          status,
        );
      }
      if (status === 200) return this.accept(text, contentType);
      if (status === 400 && text.trim() === "") {
        // Epic sometimes answers a bare 400 that succeeds when asked again.
        if (bare400s < bare400Max) {
          bare400s += 1;
          this.stats.bare400Retries += 1;
          await this.sleep(Math.min(2000, retry.baseDelayMs * 2 ** bare400s));
          continue;
        }
        throw new TokenError(`the token endpoint ${where} answered HTTP 400 with no body ${bare400s + 1} times`, status);
      }
      if (status === 400 || status === 401) {
        const { error, description } = oauthError(text);
        throw new TokenError(
          `the token endpoint refused the client (${error ?? `HTTP ${status}`}${description ? `: ${description}` : ""}); check the client id, the key (${this.opts.keySource.description}) and that its public key is registered`,
          status,
          error ?? "invalid_request",
        );
      }
      const d = decideRetry({ status, retryAfter }, attempt, retry);
      if (!d.retry) throw new RetryExhaustedError(where, attempt, status, d.reason);
      await this.sleep(d.delayMs);
    }
  }

  private accept(text: string, contentType: string): string {
    let body: { access_token?: unknown; expires_in?: unknown; token_type?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new TokenError(`the token endpoint answered 200 with ${contentType || "a body"} that is not JSON`, 200);
    }
    if (typeof body.access_token !== "string" || body.access_token === "") {
      throw new TokenError("the token endpoint answered 200 without an access_token", 200);
    }
    const lifetimeS =
      typeof body.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : Number(body.expires_in) > 0
          ? Number(body.expires_in)
          : 300;
    const skew = this.opts.refreshSkewS ?? Math.min(60, lifetimeS / 10);
    this.cached = { value: body.access_token, refreshAt: this.now() + (lifetimeS - skew) * 1000 };
    this.stats.issued += 1;
    return body.access_token;
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function oauthError(text: string): { error?: string; description?: string } {
  try {
    const j = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    return {
      error: typeof j.error === "string" ? j.error : undefined,
      description: typeof j.error_description === "string" ? j.error_description.slice(0, 200) : undefined,
    };
  } catch {
    return {};
  }
}
