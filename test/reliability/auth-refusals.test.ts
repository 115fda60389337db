// The two assertion forgeries test/simulator/auth.test.ts does not try (it covers bad signature,
// wrong aud, expired, replayed jti, unknown client, wrong kid, ...): an unsigned assertion
// (alg "none", the signature part empty) and the algorithm-confusion forgery (HS256, keyed with
// the client's PUBLIC key, which anyone can fetch from the JWKS). The simulator's token endpoint
// must refuse both with 400 invalid_client, and a refused assertion must not start working when
// sent again.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { SignJWT, UnsecuredJWT } from "jose";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { requestToken, signAssertion } from "../simulator/smart-assertion";

let sim: SimulatorHandle;

function claims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: sim.clientId, sub: sim.clientId, aud: sim.tokenUrl, exp: now + 240, jti: crypto.randomUUID() };
}

beforeAll(async () => {
  sim = await startSimulator({ patients: 1, seed: 1 });
});
afterAll(async () => {
  await sim.stop();
});

describe("token endpoint refuses forged assertions", () => {
  test("an unsigned assertion (alg none)", async () => {
    const unsigned = new UnsecuredJWT(claims()).encode();
    expect(unsigned.endsWith(".")).toBe(true); // header.payload. with no signature
    for (let i = 0; i < 2; i++) {
      const r = await requestToken(sim, unsigned);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: "invalid_client", error_description: expect.stringMatching(/alg none is not accepted/) });
    }
  });

  test("an unsigned assertion that still names a valid alg and kid, with the signature cut off", async () => {
    const signed = await signAssertion(sim);
    const [header, payload] = signed.split(".");
    const r = await requestToken(sim, `${header}.${payload}.`);
    expect(r.status).toBe(400);
    expect(r.body!.error).toBe("invalid_client");
  });

  test("HS256 keyed with the client's public key (algorithm confusion)", async () => {
    const publicPem = crypto
      .createPublicKey(crypto.createPrivateKey(fs.readFileSync(sim.privateKeyFile, "utf8")))
      .export({ type: "spki", format: "pem" }) as string;
    const forged = await new SignJWT(claims())
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: sim.keyId })
      .sign(new TextEncoder().encode(publicPem));
    const r = await requestToken(sim, forged);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: "invalid_client", error_description: expect.stringMatching(/alg HS256 is not accepted/) });
    expect((await sim.stats()).tokensIssued).toBe(0);
  });
});
