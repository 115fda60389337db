// The SMART Backend Services client assertion (a JWT signed with the client's private key), as
// Epic checks it: iss = sub = client id, aud = the token URL, exp at most 5 minutes ahead, a jti
// never reused, kid when the key is published in a JWKS. RS384 by default; RS256/RS512 accepted;
// ES384 only with a key id (Epic accepts EC keys only through a JWKS URL).
import { randomBytes, randomUUID, createPrivateKey, type KeyObject } from "node:crypto";
import { SignJWT } from "jose";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const SIGNING_ALGORITHMS = ["RS384", "RS256", "RS512", "ES384"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Seconds the assertion is valid: under Epic's 5-minute ceiling, with room for clock skew. */
export const ASSERTION_LIFETIME_S = 240;

export interface AssertionInput {
  clientId: string;
  tokenUrl: string;
  algorithm: SigningAlgorithm;
  keyId?: string;
  key: KeyObject;
  /** epoch seconds (tests) */
  nowS?: number;
  lifetimeS?: number;
}

export function assertionConfigError(message: string): Error {
  const err = new Error(message);
  err.name = "ConfigurationError";
  return err;
}

/** Checks algorithm and key id together (ES384 needs a JWKS-registered key id). */
export function checkSigningSetup(algorithm: string, keyId: string | undefined): asserts algorithm is SigningAlgorithm {
  if (!(SIGNING_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw assertionConfigError(`signing algorithm ${algorithm} is not supported (use RS384, RS256, RS512, or ES384 with a JWKS key id)`);
  }
  if (algorithm === "ES384" && !keyId) {
    throw assertionConfigError("ES384 needs the key id (kid) of a key registered through a JWKS URL; Epic accepts EC keys no other way");
  }
}

/** Parses a PEM private key; the error never quotes the key. */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw assertionConfigError(`the private key from ${source} is not a valid PEM private key`);
  }
}

/** A unique jti: 128 random bits plus a UUID (Epic: at most 151 characters, never reused). */
export function newJti(): string {
  return `${randomUUID()}.${randomBytes(16).toString("base64url")}`;
}

export async function buildClientAssertion(input: AssertionInput): Promise<string> {
  checkSigningSetup(input.algorithm, input.keyId);
  const now = input.nowS ?? Math.floor(Date.now() / 1000);
  const lifetime = Math.min(input.lifetimeS ?? ASSERTION_LIFETIME_S, 300);
  const header: { alg: string; typ: string; kid?: string } = { alg: input.algorithm, typ: "JWT" };
  if (input.keyId) header.kid = input.keyId;
  return new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .setJti(newJti())
    .sign(input.key);
}
