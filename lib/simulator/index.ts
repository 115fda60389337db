// The Epic-like FHIR R4 simulator: public, stable API.
//
//   const sim = await startSimulator({ patients: 50, seed: 1 });
//   sim.baseUrl      // http://127.0.0.1:PORT/api/FHIR/R4
//   sim.tokenUrl     // http://127.0.0.1:PORT/oauth2/token
//   sim.clientId, sim.privateKeyFile (PEM, 0600), sim.keyId, sim.groupIds
//   await sim.stats()     // what was served (see stats.ts for exact semantics)
//   await sim.advance(1)  // one simulated day: updates, additions, deletions
//   await sim.stop()
//
// HTTP surface (all on 127.0.0.1):
//   POST /oauth2/token                     SMART Backend Services (client_credentials + JWT assertion)
//   GET  {base}/Group/{id}/$export         bulk kick-off (spec profile also {base}/$export, {base}/Patient/$export)
//   GET  {base}/BulkRequest/{job}          status: 202 + X-Progress + Retry-After (always for the first
//                                          poll, and for 120 s x timeFactor), then 200 manifest
//   GET  {base}/BulkRequest/{job}/{file}   NDJSON download (gzip on Accept-Encoding: gzip)
//   DELETE {base}/BulkRequest/{job}        202
//   GET  {base}/Group/{id}                 the group with its members
//   GET  {base}/{Type}/{id}                read; GET {base}/{Type}?... search (Epic's required params)
//   GET  {base}/metadata, {base}/.well-known/smart-configuration (no token needed)
//   GET  /_admin/stats, POST /_admin/reset-stats, POST /_admin/advance {"days":1}, GET /_admin/jwks.json
//
// Retry-After values are seconds, fractional when the time factor scales them below a second
// (Epic's 120 s becomes "0.12" with the default time factor 0.001).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PipelineConfig } from "../../config/schema";
import { writeClientConfigFile, type ClientConfigFile } from "../core/client-config";
import { AuthServer, loadOrCreateKey, registerClient } from "./auth";
import { parseFaultSpec } from "./faults";
import { Population } from "./population";
import { FHIR_BASE_PATH, SimulatorServer, TOKEN_PATH } from "./server";
import type { SimulatorStats } from "./stats";

export type { ClientConfigFile } from "../core/client-config";
export type { SimulatorStats } from "./stats";
export { parseFaultSpec, FaultSpecError, type FaultSpec } from "./faults";
export { Population, RESOURCE_TYPES, type ResourceType } from "./population";

export type SimulatorProfile = "epic" | "spec";

export interface SimulatorOptions {
  /** Number of patients (on average ~165 resources each, three quarters Observations). */
  patients: number;
  /** PRNG seed: same patients + seed = same data (default 1). */
  seed?: number;
  /** TCP port on 127.0.0.1 (0 or absent = ephemeral). */
  port?: number;
  /** "epic" (default) reproduces Epic's behaviour; "spec" follows Bulk Data v2 as written. */
  profile?: SimulatorProfile;
  /** Fault spec, e.g. "429:0.05,500:0.02,reset:0.01,slow:200ms,truncate:0.01,malformed:0.001,token-expiry:30s,bulk-error:1". */
  faults?: string;
  /** Requests per second per client (token bucket, burst = one second); past it 429 + Retry-After. */
  rateLimit?: number;
  /** Added to every FHIR response (Epic's response time). */
  latencyMs?: number;
  /** Scales Epic's waits (bulk Retry-After 120 s, job duration); default 0.001 (120 s -> 120 ms). */
  timeFactor?: number;
  /** Patients per Group (default: one group with everyone). Groups are simulated-group-1, -2, ... */
  groupSize?: number;
  /** Resources per bulk NDJSON file (default 3000, as Epic). */
  resourcesPerFile?: number;
  /** Write the client configuration JSON here (what `extract --client FILE` reads). */
  clientOut?: string;
  /** Working directory for the key and bulk files (default: a new temporary directory, removed on stop). */
  workdir?: string;
  /** PEM private key file to load, or to create if absent (default: {workdir}/client-private-key.pem). */
  privateKeyFile?: string;
  /** Client id registered with the public key (default "fhir-pipeline-simulated-client"). */
  clientId?: string;
  /** Probability of Epic's occasional bare 400 from the token endpoint (default 0; also fault token-400:P). */
  tokenErrorRate?: number;
}

export interface SimulatorHandle {
  baseUrl: string;
  tokenUrl: string;
  port: number;
  clientId: string;
  groupIds: string[];
  privateKeyFile: string;
  keyId: string;
  profile: SimulatorProfile;
  population: Population;
  /** The client configuration (also written to opts.clientOut when given). */
  clientConfig: ClientConfigFile;
  /** What was served (see lib/simulator/stats.ts); waits for responses already under way to be written. */
  stats(): Promise<SimulatorStats>;
  resetStats(): Promise<void>;
  /** Advances the simulated clock by `days` (default 1). */
  advance(days?: number): Promise<{ day: number; now: string }>;
  /** PHI strings (full names, birth dates, street lines, phones, MRNs) of the first `limit` patients (default all). */
  phiStrings(limit?: number): string[];
  stop(): Promise<void>;
}

export const DEFAULT_CLIENT_ID = "fhir-pipeline-simulated-client";

/** The `epic` block of a pipeline config pointing at this simulator (everything else from `base`). */
export function simulatorEpicConfig(sim: SimulatorHandle, base: PipelineConfig["epic"]): PipelineConfig["epic"] {
  return {
    ...base,
    baseUrl: sim.baseUrl,
    tokenUrl: sim.tokenUrl,
    clientId: sim.clientId,
    groupIds: sim.groupIds,
    keyId: sim.keyId,
    signingAlgorithm: "RS384",
    privateKeyFile: sim.privateKeyFile,
  };
}

export async function startSimulator(opts: SimulatorOptions): Promise<SimulatorHandle> {
  const profile = opts.profile ?? "epic";
  if (profile !== "epic" && profile !== "spec") throw new Error(`profile must be epic or spec, not ${String(profile)}`);
  const seed = opts.seed ?? 1;
  const faults = parseFaultSpec(opts.faults);
  const timeFactor = opts.timeFactor ?? 0.001;
  if (!(timeFactor > 0)) throw new Error("timeFactor must be positive");
  if (opts.rateLimit !== undefined && !(opts.rateLimit > 0)) throw new Error("rateLimit must be positive");
  const ownWorkdir = !opts.workdir;
  const workdir = opts.workdir ?? fs.mkdtempSync(path.join(os.tmpdir(), "fhir-sim-"));
  fs.mkdirSync(workdir, { recursive: true });
  const jobsDir = fs.mkdtempSync(path.join(workdir, "bulk-"));
  const privateKeyFile = path.resolve(opts.privateKeyFile ?? path.join(workdir, "client-private-key.pem"));
  const key = loadOrCreateKey(privateKeyFile);
  const clientId = opts.clientId ?? DEFAULT_CLIENT_ID;
  const client = await registerClient(clientId, key.publicKey);
  const pop = new Population({ patients: opts.patients, seed, longIds: profile === "epic", groupSize: opts.groupSize });

  const auth = new AuthServer({
    tokenUrl: "",
    tokenLifetimeS: profile === "epic" ? 3600 : 300,
    realLifetimeMs: faults.tokenExpiryMs,
    bare400Probability: Math.max(faults.token400, opts.tokenErrorRate ?? 0),
    seed,
  });
  auth.register(client);
  const server = new SimulatorServer({
    pop,
    profile,
    faults,
    rateLimit: opts.rateLimit,
    latencyMs: opts.latencyMs ?? 0,
    timeFactor,
    resourcesPerFile: opts.resourcesPerFile ?? 3000,
    jobsDir,
    auth,
    client,
    seed,
  });
  await server.listen(opts.port ?? 0);
  const origin = `http://127.0.0.1:${server.port}`;
  server.baseUrl = origin + FHIR_BASE_PATH;
  server.tokenUrl = origin + TOKEN_PATH;
  auth.opts.tokenUrl = server.tokenUrl;

  const groupIds = pop.groups.map((g) => g.id);
  const clientConfig: ClientConfigFile = {
    baseUrl: server.baseUrl,
    tokenUrl: server.tokenUrl,
    clientId,
    privateKeyFile,
    keyId: client.keyId,
    algorithm: "RS384",
    groupId: groupIds[0],
    groupIds,
  };
  if (opts.clientOut) writeClientConfigFile(opts.clientOut, clientConfig);

  let stopped = false;
  return {
    baseUrl: server.baseUrl,
    tokenUrl: server.tokenUrl,
    port: server.port,
    clientId,
    groupIds,
    privateKeyFile,
    keyId: client.keyId,
    profile,
    population: pop,
    clientConfig,
    stats: () => server.settledStats(),
    resetStats: async () => {
      await server.settledStats();
      server.stats.reset();
    },
    advance: async (days = 1) => server.advance(days),
    phiStrings: (limit?: number) => pop.phiStrings(limit),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.close();
      fs.rmSync(jobsDir, { recursive: true, force: true });
      if (ownWorkdir) fs.rmSync(workdir, { recursive: true, force: true });
    },
  };
}
