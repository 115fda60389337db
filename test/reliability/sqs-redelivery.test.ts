// Idempotency of the extractor Lambdas: SQS delivers at least once, so the same work message can
// be processed twice (a redelivery after a timeout, a retry after a partial batch failure). The
// real handlers (download-file, search-worker) get the same SQS event twice, once in a warm
// container and once in a cold one: the same bulk files are downloaded twice and the same
// patients crawled twice, and bronze ends with each resource exactly once (the unit's part files
// are overwritten, not added to), equal to what the simulator served.
//
// The handlers run as in Lambda: config from FHIR_PIPELINE_CONFIG, the Epic key from Secrets
// Manager (moto, the AWS emulator, on 127.0.0.1: there is no other local Secrets Manager), bronze
// at a file:// URI, Powertools logging at DEBUG. Everything they log is captured and searched for
// the population's PHI and the private key's PEM lines.
import * as fs from "node:fs";
import * as path from "node:path";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { loadConfig, parseConfig } from "../../config/load";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import type { WorkUnit } from "../../lambdas/extractor/work-units";
import { fanOut, kickOff, pollStatus } from "../../lambdas/extractor/steps";
import type { SqsBatchResponse, SqsEvent } from "../../lambdas/handlers/messages";
import { FUNCTION_ENV, functionConfig } from "../../lib/core/function-environment";
import type { RunContext } from "../../lib/core/pipeline-steps";
import { AWS_ENDPOINT_ENV, pathToFileUri } from "../../lib/core/storage";
import { simulatorEpicConfig, startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { MOTO_ENV, startMoto, type MotoServer } from "../aws/moto-server";
import { countBy, depsFor, parquetFiles, readBronze, tempDir } from "../extractor/bronze-reader";
import { foundIn } from "./local-run-process";

type Handler = (event: SqsEvent) => Promise<SqsBatchResponse>;

let sim: SimulatorHandle;
let moto: MotoServer;
let dir: string;
const savedEnv = { ...process.env };
const logged: string[] = [];

function sqsEvent(units: WorkUnit[], receiveCount: number): SqsEvent {
  return {
    Records: units.map((u, i) => ({
      messageId: `m-${u.unitId}-${i}`,
      body: JSON.stringify(u),
      attributes: { ApproximateReceiveCount: String(receiveCount) },
    })),
  };
}

/** The units FanOut would send for a run (taken from the local queue instead of SQS). */
async function unitsOf(run: RunContext): Promise<WorkUnit[]> {
  const deps = depsFor(sim, path.join(dir, "bronze"));
  try {
    if (run.mode === "bulk") {
      let state = await kickOff({ run, groupId: sim.groupIds[0] }, deps);
      while (state.state !== "complete") {
        await new Promise((r) => setTimeout(r, 50));
        state = await pollStatus({ run, groupId: sim.groupIds[0], export: state }, deps);
      }
    }
    await fanOut({ run, groupId: sim.groupIds[0] }, deps);
    const queue = deps.queue as LocalUnitQueue;
    const units: WorkUnit[] = [];
    for (let u = queue.take(); u; u = queue.take()) units.push(u);
    return units;
  } finally {
    await deps.http.close();
  }
}

/** Part files (relative) and their bytes, of one run. */
function partFiles(runId: string): Record<string, number> {
  const bronze = path.join(dir, "bronze");
  return Object.fromEntries(
    parquetFiles(bronze)
      .filter((f) => f.includes(`run_id=${runId}`))
      .map((f) => [path.relative(bronze, f), fs.statSync(f).size]),
  );
}

/** A handler module loaded afresh: a cold Lambda container (its deps and logger are new). */
function coldHandler(module: "download-file" | "search-worker"): Handler {
  let handler: Handler | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    handler = (require(`../../lambdas/handlers/${module}`) as { handler: Handler }).handler;
  });
  return handler!;
}

beforeAll(async () => {
  dir = tempDir("sqs-redelivery-");
  sim = await startSimulator({ patients: 8, seed: 12, resourcesPerFile: 250 });
  moto = await startMoto();
  Object.assign(process.env, MOTO_ENV, { [AWS_ENDPOINT_ENV]: moto.endpoint });
  const secrets = new SecretsManagerClient({ endpoint: moto.endpoint, region: MOTO_ENV.AWS_REGION });
  const secret = await secrets.send(
    new CreateSecretCommand({ Name: "fhir-lakehouse/test/epic-private-key", SecretString: fs.readFileSync(sim.privateKeyFile, "utf8") }),
  );
  secrets.destroy();
  const base = loadConfig("local");
  const config = parseConfig(
    {
      ...base,
      epic: simulatorEpicConfig(sim, base.epic),
    },
    "test config",
  );
  Object.assign(process.env, {
    [FUNCTION_ENV.config]: JSON.stringify(functionConfig(config)),
    [FUNCTION_ENV.epicPrivateKeySecretArn]: secret.ARN!,
    [FUNCTION_ENV.bronzeUri]: pathToFileUri(path.join(dir, "bronze")),
    POWERTOOLS_LOG_LEVEL: "DEBUG",
    POWERTOOLS_SERVICE_NAME: "fhir-pipeline",
  });
  // Everything the handlers log (Powertools writes to process.stdout/stderr through its own
  // Console). Stdout is kept here only; stderr also goes on (jest reports there).
  jest.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
    logged.push(String(chunk));
    return true;
  });
  const writeErr = process.stderr.write.bind(process.stderr) as (chunk: unknown, ...rest: unknown[]) => boolean;
  jest.spyOn(process.stderr, "write").mockImplementation((chunk: unknown, ...rest: unknown[]) => {
    logged.push(String(chunk));
    return writeErr(chunk, ...rest);
  });
}, 120_000);

afterAll(async () => {
  jest.restoreAllMocks();
  process.env = savedEnv;
  await sim?.stop();
  await moto?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the same SQS work message processed twice", () => {
  test("download-file: the same bulk files downloaded twice, warm and cold, leave each resource once", async () => {
    const run: RunContext = {
      runId: "run-bulk-twice",
      startedAt: new Date().toISOString(),
      mode: "bulk",
      groupIds: [sim.groupIds[0]],
      request: {},
    };
    const units = await unitsOf(run);
    expect(units.length).toBeGreaterThan(4);
    await sim.resetStats();
    const event = sqsEvent(units, 1);

    const warm = coldHandler("download-file");
    expect(await warm(event)).toEqual({ batchItemFailures: [] });
    const firstParts = partFiles(run.runId);
    const firstRows = readBronze(path.join(dir, "bronze"), run.runId).rows;
    // Redelivered to the same (warm) container, then to a new (cold) one.
    expect(await warm(sqsEvent(units, 2))).toEqual({ batchItemFailures: [] });
    expect(await coldHandler("download-file")(sqsEvent(units, 3))).toEqual({ batchItemFailures: [] });

    const { rows, rejects } = readBronze(path.join(dir, "bronze"), run.runId);
    expect(rejects).toEqual([]);
    expect(partFiles(run.runId)).toEqual(firstParts);
    expect(rows.length).toBe(firstRows.length);
    expect(new Set(rows.map((r) => `${r.resource_type}/${r.id}`)).size).toBe(rows.length);
    expect(countBy(rows, (r) => r.resource_type)).toEqual((await sim.stats()).served);
    expect(rows.map((r) => r.content_hash).sort()).toEqual(firstRows.map((r) => r.content_hash).sort());
  }, 300_000);

  test("search-worker: the same patients crawled twice leave each resource once", async () => {
    const run: RunContext = {
      runId: "run-search-twice",
      startedAt: new Date().toISOString(),
      mode: "search",
      groupIds: [sim.groupIds[0]],
      request: {},
    };
    const units = (await unitsOf(run)).filter((u) => u.kind === "search-patients");
    expect(units.length).toBeGreaterThan(0);
    await sim.resetStats();
    const handler = coldHandler("search-worker");
    expect(await handler(sqsEvent(units, 1))).toEqual({ batchItemFailures: [] });
    const firstParts = partFiles(run.runId);
    expect(await handler(sqsEvent(units, 2))).toEqual({ batchItemFailures: [] });
    expect(partFiles(run.runId)).toEqual(firstParts);
    const { rows, rejects } = readBronze(path.join(dir, "bronze"), run.runId);
    expect(rejects).toEqual([]);
    expect(new Set(rows.map((r) => `${r.resource_type}/${r.id}`)).size).toBe(rows.length);
    expect(countBy(rows, (r) => r.resource_type)).toEqual((await sim.stats()).served);
    expect(rows.filter((r) => r.resource_type === "Patient")).toHaveLength(sim.population.size);
  }, 300_000);

  test("with Powertools logging at DEBUG, the handlers' logs hold no PHI and no key material", () => {
    const text = logged.join("");
    expect(text).toMatch(/"level":"(INFO|DEBUG)"/);
    expect(text).toContain('"message":"unit done"');
    const pemLines = fs
      .readFileSync(sim.privateKeyFile, "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length >= 16 && !l.startsWith("-----"));
    expect(foundIn(text, [...sim.phiStrings(), ...pemLines, "PRIVATE KEY"])).toEqual([]);
  });
});
