// SMART Backend Services against the real simulator on 127.0.0.1: the token endpoint accepts a
// correct assertion and refuses each kind of bad one as Epic does; FHIR calls need the token.
import * as crypto from "node:crypto";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { accessToken, getJson, requestToken, signAssertion } from "./smart-assertion";

describe("simulator token endpoint", () => {
  let sim: SimulatorHandle;
  beforeAll(async () => {
    sim = await startSimulator({ patients: 3, seed: 1 });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it.each(["RS384", "RS256", "RS512"])("issues a 3600 s bearer token for a %s assertion", async (alg) => {
    const r = await requestToken(sim, await signAssertion(sim, { alg }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: "bearer", expires_in: 3600, scope: "system/*.read" });
    expect(typeof r.body!.access_token).toBe("string");
  });

  it("echoes a requested scope", async () => {
    const r = await requestToken(sim, await signAssertion(sim), { scope: "system/Patient.read system/Observation.read" });
    expect(r.status).toBe(200);
    expect(r.body!.scope).toBe("system/Patient.read system/Observation.read");
  });

  const refusals: Array<[string, () => Promise<string | undefined>, string]> = [
    [
      "a bad signature",
      async () => {
        const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
        return signAssertion(sim, { key: privateKey });
      },
      "invalid_client",
    ],
    ["a wrong aud", async () => signAssertion(sim, { aud: "http://127.0.0.1:1/oauth2/token" }), "invalid_client"],
    ["an expired assertion", async () => signAssertion(sim, { expIn: -60 }), "invalid_client"],
    ["exp more than 5 minutes ahead", async () => signAssertion(sim, { expIn: 600 }), "invalid_client"],
    ["no exp", async () => signAssertion(sim, { expIn: null }), "invalid_client"],
    ["no jti", async () => signAssertion(sim, { jti: null }), "invalid_client"],
    ["a jti longer than 151 characters", async () => signAssertion(sim, { jti: "x".repeat(152) }), "invalid_client"],
    ["an unknown client", async () => signAssertion(sim, { iss: "someone-else", sub: "someone-else" }), "invalid_client"],
    ["sub different from iss", async () => signAssertion(sim, { sub: "someone-else" }), "invalid_client"],
    ["a wrong kid", async () => signAssertion(sim, { kid: "not-our-key" }), "invalid_client"],
    ["a missing assertion", async () => undefined, "invalid_request"],
    ["garbage instead of a JWT", async () => "not.a.jwt", "invalid_client"],
  ];
  it.each(refusals)("refuses %s with 400 %s", async (_what, make, error) => {
    const r = await requestToken(sim, await make());
    expect(r.status).toBe(400);
    expect(r.body!.error).toBe(error);
    expect(typeof r.body!.error_description).toBe("string");
  });

  it("refuses a replayed jti", async () => {
    const assertion = await signAssertion(sim, { jti: "replay-me-" + crypto.randomUUID() });
    expect((await requestToken(sim, assertion)).status).toBe(200);
    const again = await requestToken(sim, assertion);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_client", error_description: expect.stringMatching(/jti/) });
  });

  it("refuses the wrong grant_type and assertion type as invalid_request", async () => {
    const a = await signAssertion(sim);
    expect((await requestToken(sim, a, { grant_type: "password" })).body!.error).toBe("invalid_request");
    expect((await requestToken(sim, a, { client_assertion_type: "x" })).body!.error).toBe("invalid_request");
  });

  it("answers 401 to FHIR calls without a valid bearer token, 200 with one", async () => {
    const url = `${sim.baseUrl}/Patient/${sim.population.patientId(0)}`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    const ok = await getJson(url, await accessToken(sim));
    expect(ok.status).toBe(200);
    expect(ok.body.resourceType).toBe("Patient");
    expect((await sim.stats()).unauthorized).toBeGreaterThanOrEqual(2);
  });

  it("serves its public key as a JWKS and the SMART configuration", async () => {
    const jwks = (await (await fetch(sim.tokenUrl.replace("/oauth2/token", "/_admin/jwks.json"))).json()) as {
      keys: Array<{ kid: string; kty: string }>;
    };
    expect(jwks.keys).toEqual([expect.objectContaining({ kid: sim.keyId, kty: "RSA" })]);
    const smart = (await (await fetch(`${sim.baseUrl}/.well-known/smart-configuration`)).json()) as { token_endpoint: string };
    expect(smart.token_endpoint).toBe(sim.tokenUrl);
  });
});

describe("simulator token faults", () => {
  it("expires tokens early with token-expiry and answers bare 400s with token-400", async () => {
    const sim = await startSimulator({ patients: 2, seed: 1, faults: "token-expiry:1500ms" });
    try {
      const token = await accessToken(sim);
      const url = `${sim.baseUrl}/Patient/${sim.population.patientId(0)}`;
      expect((await getJson(url, token)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await getJson(url, token)).status).toBe(401);
    } finally {
      await sim.stop();
    }
    const flaky = await startSimulator({ patients: 2, seed: 1, faults: "token-400:1" });
    try {
      const r = await requestToken(flaky, await signAssertion(flaky));
      expect(r.status).toBe(400);
      expect(r.body).toBeUndefined();
      expect((await flaky.stats()).faults["token-400"]).toBe(1);
    } finally {
      await flaky.stop();
    }
  });

  it("uses 300 s tokens in the spec profile", async () => {
    const sim = await startSimulator({ patients: 2, seed: 1, profile: "spec" });
    try {
      const r = await requestToken(sim, await signAssertion(sim));
      expect(r.body!.expires_in).toBe(300);
    } finally {
      await sim.stop();
    }
  });
});
