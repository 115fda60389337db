// Bad input that other suites do not already cover (docs/reliability.md lists those that do):
// - a bulk manifest that points at a file the server does not have (its URL answers 404);
// - a token endpoint that answers an HTML page, seen through the `extract` CLI;
// - an invalid config given to `run --local --config`.
// Each ends with a clear error naming what is wrong, and harms nothing else: the other files of
// the export land in bronze, the export job is still deleted, no lake is written for a bad config.
// The server here is a crafted FHIR server on 127.0.0.1 (one test, stopped by it): token
// endpoint, Group kick-off, status, manifest and NDJSON files, each route saying what it serves.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { FileKeySource } from "../../lambdas/extractor/auth/key-source";
import { createExtractorDeps } from "../../lambdas/extractor/extractor-setup";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import { readBronze, tempDir } from "../extractor/bronze-reader";
import { filesUnder, runCli } from "./local-run-process";

const PATIENTS = ["p1", "p2", "p3"].map((id) => JSON.stringify({ resourceType: "Patient", id, gender: "unknown" }));

interface Crafted {
  origin: string;
  /** Requests seen, as "METHOD /path". */
  seen: string[];
  close(): Promise<void>;
}

/** A FHIR bulk server whose manifest lists a Patient file it has and an Observation file it has not. */
async function craftedServer(): Promise<Crafted> {
  const seen: string[] = [];
  let origin = "";
  const server = http.createServer((req, res) => {
    const p = (req.url ?? "/").split("?")[0];
    seen.push(`${req.method} ${p}`);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (p === "/oauth2/token") return json(200, { access_token: "crafted-token", token_type: "bearer", expires_in: 3600 });
    if (p === "/html/token") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end("<!DOCTYPE html><html><body><form>Sign in</form></body></html>");
    }
    if (p === "/fhir/Group/g1/$export") {
      res.writeHead(202, { "content-location": `${origin}/fhir/bulk/1` });
      return res.end();
    }
    if (p === "/fhir/bulk/1" && req.method === "DELETE") {
      res.writeHead(202);
      return res.end();
    }
    if (p === "/fhir/bulk/1") {
      return json(200, {
        transactionTime: "2025-01-02T03:04:05Z",
        request: `${origin}/fhir/Group/g1/$export`,
        requiresAccessToken: "true",
        output: [
          { type: "Patient", url: `${origin}/fhir/files/patients.ndjson` },
          { type: "Observation", url: `${origin}/fhir/files/missing-observations.ndjson` },
        ],
        error: [],
      });
    }
    if (p === "/fhir/files/patients.ndjson") {
      res.writeHead(200, { "content-type": "application/fhir+ndjson" });
      return res.end(PATIENTS.join("\n") + "\n");
    }
    json(404, {
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "not-found", details: { text: "The file was not found." } }],
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    origin,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

let server: Crafted;
let dir: string;
let keyFile: string;

beforeAll(async () => {
  server = await craftedServer();
  dir = tempDir("bad-input-");
  keyFile = path.join(dir, "key.pem");
  fs.writeFileSync(
    keyFile,
    crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }),
    {
      mode: 0o600,
    },
  );
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("bad input", () => {
  test("a manifest pointing at a missing file: the run fails naming the file's unit and its 404; the other file lands; the job is deleted", async () => {
    const bronze = path.join(dir, "bronze");
    const deps = createExtractorDeps({
      connection: {
        baseUrl: `${server.origin}/fhir`,
        tokenUrl: `${server.origin}/oauth2/token`,
        clientId: "crafted-client",
        keySource: new FileKeySource(keyFile),
        algorithm: "RS384",
      },
      bronzeUri: bronze,
      queue: new LocalUnitQueue(),
      http: { retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 } },
    });
    try {
      const err = await runExtraction({ mode: "bulk", groupIds: ["g1"], types: ["Patient", "Observation"] }, deps).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe("UnitsFailed");
      expect((err as Error).message).toMatch(/^1 of 2 work units failed after retries \(see .*\/_runs\/[^/]+\/units\/\*\.failed\.json\)$/);
    } finally {
      await deps.http.close();
    }
    // The failure record says which file and why; the URL is redacted, no token in it.
    const failed = filesUnder(path.join(bronze, "_runs")).filter((f) => f.endsWith(".failed.json"));
    expect(failed).toHaveLength(1);
    const failure = JSON.parse(fs.readFileSync(failed[0], "utf8")) as { unitId: string; error: string; message: string };
    expect(failure.message).toContain("404");
    expect(failure.message).toContain("The file was not found.");
    expect(JSON.stringify(failure)).not.toContain("crafted-token");
    // A 404 is not retried: the file is asked for once.
    expect(server.seen.filter((s) => s === "GET /fhir/files/missing-observations.ndjson")).toHaveLength(1);
    // The rest of the export is unharmed, and the job was deleted at the server.
    const { rows, rejects } = readBronze(bronze);
    expect(rows.map((r) => `${r.resource_type}/${r.id}`).sort()).toEqual(["Patient/p1", "Patient/p2", "Patient/p3"]);
    expect(rows.map((r) => r.resource).sort()).toEqual([...PATIENTS].sort());
    expect(rejects).toEqual([]);
    expect(server.seen).toContain("DELETE /fhir/bulk/1");
  });

  test("a token endpoint that answers HTML: `extract` stops with a clear error and writes no bronze", async () => {
    const out = path.join(dir, "html-bronze");
    const r = await runCli([
      "extract",
      ...["--base-url", `${server.origin}/fhir`, "--token-url", `${server.origin}/html/token`],
      ...["--client-id", "crafted-client", "--private-key", keyFile, "--group", "g1", "--types", "Patient", "--out", out],
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the token endpoint /html/token answered an HTML page (HTTP 200), not OAuth JSON: check the token URL");
    expect(r.stderr).not.toContain("<html>");
    expect(filesUnder(out).filter((f) => f.endsWith(".parquet"))).toEqual([]);
  }, 120_000);

  test("an invalid config: `run --local --config` stops before any work, naming each bad field", async () => {
    const raw = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "config", "local.json"), "utf8")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    raw.extraction.concurrency = 0;
    raw.epic.tokenUrl = "not a url";
    const file = path.join(dir, "bad-config.json");
    fs.writeFileSync(file, JSON.stringify(raw));
    const workdir = path.join(dir, "bad-config-run");
    const r = await runCli(["run", "--local", "--config", file, "--workdir", workdir, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/extraction\.concurrency:/);
    expect(r.stderr).toMatch(/epic\.tokenUrl:/);
    // Nothing was started: no lake, no run record, no Spark log, and the work dir is not left locked.
    expect(fs.existsSync(path.join(workdir, "lake"))).toBe(false);
    expect(fs.existsSync(path.join(workdir, "runs"))).toBe(false);
    expect(fs.existsSync(path.join(workdir, ".run.lock"))).toBe(false);
  }, 120_000);
});
