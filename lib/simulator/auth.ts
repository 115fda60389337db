// SMART Backend Services, the authorization-server side: the client's public key is registered
// (served as a JWKS), the token endpoint verifies the JWT client assertion as Epic does, and
// bearer tokens are checked on every FHIR call.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, jwtVerify, type JWK } from "jose";
import { hashUnit } from "./prng";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const ACCEPTED_ALGORITHMS = ["RS384", "RS256", "RS512"];
/** Epic: `exp` no more than 5 minutes in the future (a few seconds of clock skew tolerated). */
const MAX_EXP_AHEAD_S = 300;
const CLOCK_SKEW_S = 5;
const MAX_JTI_LENGTH = 151;
export const DEFAULT_SCOPE = "system/*.read";

export interface RegisteredClient {
  clientId: string;
  publicKey: crypto.KeyObject;
  jwk: JWK;
  keyId: string;
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown> | undefined;
}

interface IssuedToken {
  clientId: string;
  scope: string;
  /** real epoch ms */
  expiresAt: number;
}

export interface KeyMaterial {
  privateKeyPem: string;
  publicKey: crypto.KeyObject;
}

/** Loads a PEM private key, or makes a new RSA key pair and writes the private key (0600). */
export function loadOrCreateKey(file: string): KeyMaterial {
  let pem: string;
  if (fs.existsSync(file)) {
    pem = fs.readFileSync(file, "utf8");
  } else {
    const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    fs.writeFileSync(file, pem, { mode: 0o600 });
  }
  fs.chmodSync(file, 0o600);
  const publicKey = crypto.createPublicKey(crypto.createPrivateKey(pem));
  return { privateKeyPem: pem, publicKey };
}

export async function registerClient(clientId: string, publicKey: crypto.KeyObject): Promise<RegisteredClient> {
  const jwk = await exportJWK(publicKey);
  const keyId = await calculateJwkThumbprint(jwk);
  return { clientId, publicKey, jwk: { ...jwk, kid: keyId, alg: "RS384", use: "sig" }, keyId };
}

export interface AuthOptions {
  /** The token endpoint URL (the required `aud`); may be set once the server has its port. */
  tokenUrl: string;
  /** expires_in reported to clients (Epic: 3600 s). */
  tokenLifetimeS: number;
  /** Real lifetime override (fault token-expiry): tokens die early while expires_in says otherwise. */
  realLifetimeMs?: number;
  /** Probability of a bare 400 (Epic's occasional one; succeeds on retry). */
  bare400Probability: number;
  seed: number;
}

function error(code: "invalid_client" | "invalid_request" | "unauthorized_client", description: string): TokenReply {
  return { status: 400, body: { error: code, error_description: description } };
}

export class AuthServer {
  private readonly clients = new Map<string, RegisteredClient>();
  private readonly tokens = new Map<string, IssuedToken>();
  /** jti -> exp (epoch s), kept until the assertion could no longer be valid. */
  private readonly usedJtis = new Map<string, number>();
  private tokenRequestSeq = 0;

  constructor(readonly opts: AuthOptions) {}

  register(client: RegisteredClient): void {
    this.clients.set(client.clientId, client);
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.clients.values()].map((c) => c.jwk) };
  }

  /** Handles a POST to the token endpoint (form already parsed). */
  async token(contentType: string | undefined, form: URLSearchParams, nowMs = Date.now()): Promise<TokenReply> {
    const seq = this.tokenRequestSeq++;
    if (this.opts.bare400Probability > 0 && hashUnit(this.opts.seed, seq, 0x400) < this.opts.bare400Probability) {
      return { status: 400, body: undefined };
    }
    if (!contentType || !contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      return error("invalid_request", "the token request must be application/x-www-form-urlencoded");
    }
    const grantType = form.get("grant_type");
    if (grantType !== "client_credentials") return error("invalid_request", "grant_type must be client_credentials");
    if (form.get("client_assertion_type") !== ASSERTION_TYPE) {
      return error("invalid_request", `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const assertion = form.get("client_assertion");
    if (!assertion) return error("invalid_request", "client_assertion is missing");

    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      return error("invalid_client", "client_assertion is not a JWT");
    }
    if (typeof claims.iss !== "string" || !claims.iss) return error("invalid_client", "iss is missing");
    const client = this.clients.get(claims.iss);
    if (!client) return error("invalid_client", "unknown client");
    if (claims.sub !== claims.iss) return error("invalid_client", "sub must equal iss (the client id)");
    if (!header.alg || !ACCEPTED_ALGORITHMS.includes(header.alg)) {
      return error("invalid_client", `alg ${header.alg ?? "(none)"} is not accepted (use RS384, RS256 or RS512)`);
    }
    if (header.kid !== undefined && header.kid !== client.keyId) return error("invalid_client", "kid does not match a registered key");
    try {
      await jwtVerify(assertion, client.publicKey, {
        algorithms: ACCEPTED_ALGORITHMS,
        currentDate: new Date(nowMs),
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ["exp", "jti", "iss", "sub", "aud"],
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ERR_JWT_EXPIRED") return error("invalid_client", "client_assertion has expired");
      if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") return error("invalid_client", "client_assertion signature is invalid");
      if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED")
        return error("invalid_client", `client_assertion claim check failed: ${(e as Error).message}`);
      return error("invalid_client", "client_assertion could not be verified");
    }
    const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    const tokenUrl = this.opts.tokenUrl.replace(/\/$/, "");
    if (!auds.some((a) => typeof a === "string" && a.replace(/\/$/, "") === tokenUrl)) {
      return error("invalid_client", "aud must be the token endpoint URL");
    }
    const nowS = nowMs / 1000;
    const exp = claims.exp as number;
    if (exp > nowS + MAX_EXP_AHEAD_S + CLOCK_SKEW_S) return error("invalid_client", "exp is more than 5 minutes in the future");
    const jti = claims.jti as string;
    if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
      return error("invalid_client", `jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
    }
    this.pruneJtis(nowS);
    const jtiKey = `${client.clientId}\u0000${jti}`;
    if (this.usedJtis.has(jtiKey)) return error("invalid_client", "jti has already been used");
    this.usedJtis.set(jtiKey, exp + CLOCK_SKEW_S);

    const scope = form.get("scope") || DEFAULT_SCOPE;
    const accessToken = crypto.randomBytes(32).toString("base64url");
    const realLifetime = this.opts.realLifetimeMs ?? this.opts.tokenLifetimeS * 1000;
    this.pruneTokens(nowMs);
    this.tokens.set(accessToken, { clientId: client.clientId, scope, expiresAt: nowMs + realLifetime });
    return {
      status: 200,
      body: { access_token: accessToken, token_type: "bearer", expires_in: this.opts.tokenLifetimeS, scope },
    };
  }

  /** The client id of a valid bearer token in an Authorization header, or undefined. */
  checkBearer(authorization: string | undefined, nowMs = Date.now()): string | undefined {
    if (!authorization) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m) return undefined;
    const t = this.tokens.get(m[1]);
    if (!t) return undefined;
    if (t.expiresAt <= nowMs) {
      this.tokens.delete(m[1]);
      return undefined;
    }
    return t.clientId;
  }

  private pruneJtis(nowS: number): void {
    if (this.usedJtis.size < 10_000) return;
    for (const [k, exp] of this.usedJtis) if (exp < nowS) this.usedJtis.delete(k);
  }

  private pruneTokens(nowMs: number): void {
    if (this.tokens.size < 10_000) return;
    for (const [k, t] of this.tokens) if (t.expiresAt <= nowMs) this.tokens.delete(k);
  }
}
