// A server that stalls, then comes back: the shared rate budget must still hold its limit.
// The simulator (its own process, limit 100 requests/s, burst one second) is paused with SIGSTOP
// for 2.5 s in the middle of a 16-worker search crawl whose budget is set at that limit. While it
// is paused the budget keeps granting; what matters is how many granted requests can wait for a
// socket and then reach the server together when it resumes. The HTTP client lets at most one
// request per connection past the budget at a time, so at most 16 arrive at once and the server's
// limiter refuses none. (Before that bound, up to 16 x 16 granted requests queued for the 16
// sockets and arrived in one burst, past the server's one-second allowance: it answered 429s.)
import * as fs from "node:fs";
import * as path from "node:path";
import { readClientConfigFile } from "../../lib/core/client-config";
import { connectionFromClientFile, createExtractorDeps } from "../../lambdas/extractor/extractor-setup";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import { countBy, readBronze, tempDir } from "../extractor/bronze-reader";
import { startSimulatorProcess, type SimulatorProcess } from "./simulator-process";

const RATE = 100;
const WORKERS = 16;

let sim: SimulatorProcess | undefined;
let dir: string;

beforeAll(async () => {
  dir = tempDir("server-stall-");
  sim = await startSimulatorProcess(dir, ["--patients", "300", "--seed", "5", "--rate-limit", String(RATE)]);
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("after a 2.5 s stall of the server, the requests the budget granted meanwhile do not burst past its limit", async () => {
  const client = readClientConfigFile(sim!.clientFile);
  const bronze = path.join(dir, "bronze");
  const deps = createExtractorDeps({
    connection: connectionFromClientFile(client),
    bronzeUri: bronze,
    queue: new LocalUnitQueue(),
    settings: { concurrency: WORKERS, observationCategories: ["laboratory"] },
    http: { rateLimitPerSecond: RATE, connections: WORKERS, retry: { maxAttempts: 10, baseDelayMs: 20, maxDelayMs: 1000 } },
  });
  let stalled = false;
  const stall = (async () => {
    // Once the crawl runs at full speed, the server stops answering for 2.5 s.
    while (deps.http.stats.requests < 300) await new Promise((r) => setTimeout(r, 20));
    process.kill(sim!.pid, "SIGSTOP");
    stalled = true;
    await new Promise((r) => setTimeout(r, 2500));
    process.kill(sim!.pid, "SIGCONT");
  })();
  try {
    const s = await runExtraction({ mode: "search", groupIds: [client.groupId], types: ["Patient", "Condition", "Observation"] }, deps);
    await stall;
    expect(stalled).toBe(true);
    const stats = await sim!.stats();
    expect(stats.throttled).toBe(0);
    expect(deps.http.stats.throttled).toBe(0);
    // and nothing lost
    const { rows, rejects } = readBronze(bronze, s.runId);
    expect(rejects).toEqual([]);
    expect(countBy(rows, (r) => r.resource_type)).toEqual(stats.served);
    expect(stats.served.Patient).toBe(300);
  } finally {
    await stall.catch(() => undefined);
    await deps.http.close();
  }
}, 300_000);
