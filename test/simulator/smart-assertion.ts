// Test-side SMART Backend Services client pieces, signed with jose directly (the product's client
// lives in lambdas/extractor and is tested there).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { importPKCS8, SignJWT, type JWTPayload } from "jose";
import type { SimulatorHandle } from "../../lib/simulator";

/** Arbitrary FHIR JSON as the tests read it (any: the tests assert on its shape field by field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export interface AssertionOverrides {
  alg?: string;
  iss?: string;
  sub?: string;
  aud?: string;
  /** seconds from now; null = no exp claim */
  expIn?: number | null;
  jti?: string | null;
  kid?: string;
  key?: crypto.KeyObject;
}

export async function signAssertion(sim: SimulatorHandle, o: AssertionOverrides = {}): Promise<string> {
  const alg = o.alg ?? "RS384";
  const key = o.key ?? (await importPKCS8(fs.readFileSync(sim.privateKeyFile, "utf8"), alg));
  const now = Math.floor(Date.now() / 1000);
  const claims: JWTPayload = { iss: o.iss ?? sim.clientId, sub: o.sub ?? sim.clientId, aud: o.aud ?? sim.tokenUrl };
  if (o.expIn !== null) claims.exp = now + (o.expIn ?? 240);
  if (o.jti !== null) claims.jti = o.jti ?? crypto.randomUUID();
  return new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT", kid: o.kid ?? sim.keyId }).sign(key);
}

export async function requestToken(
  sim: SimulatorHandle,
  assertion: string | undefined,
  extra: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const form = new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, ...extra });
  if (assertion !== undefined) form.set("client_assertion", assertion);
  const res = await fetch(sim.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/** A fresh access token for the simulator's registered client. */
export async function accessToken(sim: SimulatorHandle): Promise<string> {
  const r = await requestToken(sim, await signAssertion(sim));
  if (r.status !== 200 || !r.body) throw new Error(`token request failed: ${r.status}`);
  return String(r.body.access_token);
}

/** GET with a bearer token; returns status, headers and the parsed JSON body (if any). */
export async function getJson(
  url: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export const BULK_HEADERS = { accept: "application/fhir+json", prefer: "respond-async" };

/** Kick-off, poll until the manifest (counting 202s), returning the status URL and manifest. */
export async function runExport(
  sim: SimulatorHandle,
  token: string,
  path: string,
): Promise<{ statusUrl: string; manifest: Json; polls: number; progress: string[]; retryAfter: string[] }> {
  const ko = await fetch(`${sim.baseUrl}/${path}`, { headers: { authorization: `Bearer ${token}`, ...BULK_HEADERS } });
  const koText = await ko.text();
  if (ko.status !== 202) throw new Error(`kick-off ${path}: ${ko.status} ${koText}`);
  const statusUrl = ko.headers.get("content-location")!;
  const progress: string[] = [];
  const retryAfter: string[] = [];
  for (let polls = 0; ; polls++) {
    const st = await getJson(statusUrl, token);
    if (st.status === 200) return { statusUrl, manifest: st.body, polls, progress, retryAfter };
    if (st.status !== 202) throw new Error(`status ${st.status}`);
    progress.push(st.headers.get("x-progress") ?? "");
    retryAfter.push(st.headers.get("retry-after") ?? "");
    await new Promise((r) => setTimeout(r, Number(st.headers.get("retry-after")) * 1000));
  }
}

/** Downloads an NDJSON file and splits it into lines. */
export async function downloadLines(url: string, token: string, gzip = false): Promise<string[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, "accept-encoding": gzip ? "gzip" : "identity" } });
  if (res.status !== 200) throw new Error(`download ${res.status}`);
  const text = await res.text();
  return text.split("\n").filter((l) => l.length > 0);
}
