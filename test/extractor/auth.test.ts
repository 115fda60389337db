// SMART Backend Services from the client's side, against the real simulator: the assertion's
// claims, token caching, refresh once on 401, Epic's bare 400 retried, and clear errors for a
// refused client, a wrong key, an HTML token endpoint and an impossible algorithm setup.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { buildClientAssertion, parsePrivateKey } from "../../lambdas/extractor/auth/client-assertion";
import { FileKeySource, SecretsManagerKeySource } from "../../lambdas/extractor/auth/key-source";
import { TokenProvider } from "../../lambdas/extractor/auth/token-provider";
import { FhirHttp } from "../../lambdas/extractor/http/fhir-http";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { tempDir } from "./bronze-reader";

const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 50 };

function provider(sim: SimulatorHandle, over: Partial<ConstructorParameters<typeof TokenProvider>[0]> = {}): TokenProvider {
  return new TokenProvider({
    tokenUrl: sim.tokenUrl,
    clientId: sim.clientId,
    keySource: new FileKeySource(sim.privateKeyFile),
    keyId: sim.keyId,
    retry: FAST_RETRY,
    ...over,
  });
}

/** A one-route HTTP server on 127.0.0.1 (stopped by the test). */
async function localHttpServer(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

describe("SMART Backend Services client", () => {
  let sim: SimulatorHandle;
  beforeAll(async () => {
    sim = await startSimulator({ patients: 3, seed: 5, faults: "token-expiry:400ms" });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it("signs iss = sub = client id, aud = token URL, exp within 5 minutes, a fresh jti, kid", async () => {
    const key = parsePrivateKey(fs.readFileSync(sim.privateKeyFile, "utf8"), "test");
    const a = await buildClientAssertion({ clientId: "c1", tokenUrl: sim.tokenUrl, algorithm: "RS384", keyId: "k1", key });
    const b = await buildClientAssertion({ clientId: "c1", tokenUrl: sim.tokenUrl, algorithm: "RS384", keyId: "k1", key });
    const claims = decodeJwt(a);
    const now = Math.floor(Date.now() / 1000);
    expect(decodeProtectedHeader(a)).toEqual({ alg: "RS384", typ: "JWT", kid: "k1" });
    expect(claims.iss).toBe("c1");
    expect(claims.sub).toBe("c1");
    expect(claims.aud).toBe(sim.tokenUrl);
    expect(claims.exp! - now).toBeGreaterThan(60);
    expect(claims.exp! - now).toBeLessThanOrEqual(300);
    expect(typeof claims.jti).toBe("string");
    expect((claims.jti as string).length).toBeLessThanOrEqual(151);
    expect(decodeJwt(b).jti).not.toBe(claims.jti);
    for (const alg of ["RS256", "RS512"] as const) {
      const t = await provider(sim, { algorithm: alg }).token();
      expect(t.length).toBeGreaterThan(10);
    }
  });

  it("fetches one token for many concurrent callers and caches it", async () => {
    await sim.resetStats();
    const p = provider(sim);
    const tokens = await Promise.all(Array.from({ length: 25 }, () => p.token()));
    expect(new Set(tokens).size).toBe(1);
    expect(await p.token()).toBe(tokens[0]);
    expect(p.stats.requests).toBe(1);
    expect((await sim.stats()).tokensIssued).toBe(1);
  });

  it("refreshes the token once when the server answers 401, and the request succeeds", async () => {
    const tokens = provider(sim);
    const fhir = new FhirHttp({ tokens, retry: FAST_RETRY });
    try {
      const url = `${sim.baseUrl}/Group/${sim.groupIds[0]}`;
      expect((await fhir.getJson(url)).status).toBe(200);
      // The simulator's tokens stop working after 400 ms although expires_in says 3600 s.
      await new Promise((r) => setTimeout(r, 600));
      expect((await fhir.getJson(url)).status).toBe(200);
      expect(fhir.stats.unauthorized).toBe(1);
      expect(tokens.stats.invalidations).toBe(1);
      expect(tokens.stats.issued).toBe(2);
    } finally {
      await fhir.close();
    }
  });

  it("does not loop on 401: a second refusal is an error", async () => {
    const local = await localHttpServer((_req, res) => {
      res.writeHead(401, { "content-type": "application/fhir+json" });
      res.end(JSON.stringify({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "login", details: { text: "no" } }] }));
    });
    const tokens = provider(sim);
    const fhir = new FhirHttp({ tokens, retry: FAST_RETRY });
    try {
      await expect(fhir.getJson(`${local.url}/Patient/x`)).rejects.toThrow("/Patient/{id} answered HTTP 401: no");
      expect(tokens.stats.issued).toBe(2);
    } finally {
      await fhir.close();
      await local.close();
    }
  });

  it("retries Epic's bare 400 from the token endpoint", async () => {
    const flaky = await startSimulator({ patients: 1, seed: 11, tokenErrorRate: 0.4 });
    try {
      let retried = 0;
      for (let i = 0; i < 8; i++) {
        const p = provider(flaky, { bare400Retries: 5 });
        expect(await p.token()).toMatch(/\S{10,}/);
        retried += p.stats.bare400Retries;
      }
      const stats = await flaky.stats();
      expect(retried).toBeGreaterThan(0);
      expect(stats.faults["token-400"]).toBe(retried);
    } finally {
      await flaky.stop();
    }
  });

  it("says clearly when the client is refused (unknown client, wrong key)", async () => {
    await expect(provider(sim, { clientId: "someone-else" }).token()).rejects.toMatchObject({
      name: "ConfigurationError",
      message: expect.stringContaining("invalid_client: unknown client"),
    });
    const dir = tempDir("wrong-key-");
    const other = path.join(dir, "other.pem");
    fs.writeFileSync(other, crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }));
    const err = await provider(sim, { keySource: new FileKeySource(other) })
      .token()
      .catch((e: Error) => e);
    expect(err).toMatchObject({ name: "ConfigurationError" });
    expect((err as Error).message).toContain("signature is invalid");
    // the key itself never appears in an error
    expect((err as Error).message).not.toContain("PRIVATE KEY");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("says clearly when the token URL answers an HTML page", async () => {
    const local = await localHttpServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!DOCTYPE html><html><body>Sign in</body></html>");
    });
    try {
      await expect(provider(sim, { tokenUrl: `${local.url}/oauth2/token` }).token()).rejects.toThrow(
        "the token endpoint /oauth2/token answered an HTML page (HTTP 200), not OAuth JSON: check the token URL",
      );
    } finally {
      await local.close();
    }
  });

  it("refuses ES384 without a JWKS key id, and a secret that holds no key", async () => {
    expect(() => provider(sim, { algorithm: "ES384", keyId: undefined })).toThrow("ES384 needs the key id");
    // The Secrets Manager client is injected here: this checks our handling of its answer.
    const empty = new SecretsManagerKeySource("epic-key", { getSecretString: async () => "not a key" });
    await expect(empty.privateKeyPem()).rejects.toThrow("does not hold a PEM private key");
  });
});
