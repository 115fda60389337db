// `fhir-pipeline extract`: Epic (or any FHIR R4 server) -> bronze, in this process: bulk export,
// search crawl, or an import of NDJSON files. The same library the Lambdas run
// (lambdas/extractor), with an in-memory queue and a worker pool instead of SQS.
import * as fs from "node:fs";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { readClientConfigFile } from "../../core/client-config";
import { createProgressRenderer } from "../../core/progress";
import { loadConfig } from "../../../config/load";
import { ALL_RESOURCE_TYPES } from "../../../config/schema";
import type { SigningAlgorithm } from "../../../lambdas/extractor/auth/client-assertion";
import { FileKeySource } from "../../../lambdas/extractor/auth/key-source";
import {
  connectionFromClientFile,
  createExtractorDeps,
  settingsFromConfig,
  type Connection,
} from "../../../lambdas/extractor/extractor-setup";
import type { ExtractorLog, ExtractorSettings } from "../../../lambdas/extractor/extractor-deps";
import type { HttpSettings } from "../../../lambdas/extractor/extractor-setup";
import { runExtraction } from "../../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../../lambdas/extractor/unit-queue";

interface ExtractCliOptions {
  client?: string;
  baseUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  privateKey?: string;
  keyId?: string;
  algorithm: string;
  group?: string;
  mode: "bulk" | "search" | "files";
  source?: string;
  out: string;
  types?: string[];
  since?: string;
  concurrency?: number;
  rateLimit?: number;
  config?: string;
  patients?: string;
  json?: boolean;
  verbose?: boolean;
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

function typeList(v: string): string[] {
  const types = v
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const unknown = types.filter((t) => !(ALL_RESOURCE_TYPES as readonly string[]).includes(t));
  if (unknown.length)
    throw new InvalidArgumentError(`unknown resource type(s) ${unknown.join(", ")} (known: ${ALL_RESOURCE_TYPES.join(", ")})`);
  return types;
}

function sinceArg(v: string): string {
  if (v === "auto") return v;
  if (!/^\d{4}-\d{2}-\d{2}(T.*)?$/.test(v) || Number.isNaN(Date.parse(v)))
    throw new InvalidArgumentError('--since must be "auto" or an ISO date/instant');
  return /T/.test(v) ? v : `${v}T00:00:00Z`;
}

/** The token URL of a server that does not get one on the command line: its SMART configuration. */
async function discoverTokenUrl(baseUrl: string): Promise<string> {
  const url = `${baseUrl.replace(/\/+$/, "")}/.well-known/smart-configuration`;
  const res = await fetch(url, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`--token-url is needed: ${new URL(url).pathname} answered HTTP ${res.status}`);
  const body = (await res.json()) as { token_endpoint?: string };
  if (!body.token_endpoint) throw new Error("--token-url is needed: the SMART configuration names no token_endpoint");
  return body.token_endpoint;
}

const stderrLog = (verbose: boolean): ExtractorLog => ({
  info: (message, fields) => {
    if (verbose) process.stderr.write(`${message} ${JSON.stringify(fields ?? {})}\n`);
  },
  warn: (message, fields) => process.stderr.write(`warning: ${message} ${JSON.stringify(fields ?? {})}\n`),
});

export async function extractCommand(o: ExtractCliOptions): Promise<void> {
  let connection: Connection | undefined;
  let groupIds: string[] = [];
  if (o.mode !== "files") {
    if (o.client) {
      const c = readClientConfigFile(o.client);
      connection = connectionFromClientFile(c);
      groupIds = o.group ? o.group.split(",") : [c.groupId];
    } else {
      const missing = (["baseUrl", "clientId", "privateKey", "group"] as const).filter((k) => !o[k]);
      if (missing.length)
        throw new Error(
          `give --client FILE, or all of --base-url, --client-id, --private-key and --group (missing: ${missing.map((m) => "--" + m.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")})`,
        );
      connection = {
        baseUrl: o.baseUrl!,
        tokenUrl: o.tokenUrl ?? (await discoverTokenUrl(o.baseUrl!)),
        clientId: o.clientId!,
        keySource: new FileKeySource(o.privateKey!),
        algorithm: o.algorithm as SigningAlgorithm,
        keyId: o.keyId,
      };
      groupIds = o.group!.split(",");
    }
  } else if (!o.source) {
    throw new Error("--mode files needs --source DIR (a directory of *.ndjson files)");
  }
  let settings: Partial<ExtractorSettings> = {};
  let http: Partial<HttpSettings> = {};
  if (o.config) {
    const fromConfig = settingsFromConfig(loadConfig(o.config).extraction);
    settings = fromConfig.settings;
    http = fromConfig.http;
  }
  if (o.concurrency) {
    settings.concurrency = o.concurrency;
    http.connections = o.concurrency;
  }
  if (o.rateLimit) http.rateLimitPerSecond = o.rateLimit;
  let patientIds: string[] | undefined;
  if (o.patients) {
    patientIds = fs
      .readFileSync(o.patients, "utf8")
      .split(/\r?\n/)
      .map((l) => l.trim().replace(/^Patient\//, ""))
      .filter((l) => l !== "" && !l.startsWith("#"));
  }
  const progress = createProgressRenderer({ json: o.json });
  const deps = createExtractorDeps({
    // files mode talks to no server: a connection that is never used
    connection: connection ?? {
      baseUrl: "http://127.0.0.1",
      tokenUrl: "http://127.0.0.1",
      clientId: "-",
      keySource: new FileKeySource("-"),
      algorithm: "RS384",
    },
    bronzeUri: o.out,
    queue: new LocalUnitQueue(),
    settings,
    http,
    log: stderrLog(Boolean(o.verbose)),
    progress,
  });
  try {
    const summary = await runExtraction({ mode: o.mode, groupIds, types: o.types, since: o.since, source: o.source, patientIds }, deps);
    progress.close();
    const result = {
      run_id: summary.runId,
      resources: summary.resources,
      rejected: summary.rejected,
      bytes: summary.bytes,
      seconds: Math.round(summary.seconds * 1000) / 1000,
    };
    if (o.json) {
      process.stdout.write(JSON.stringify(result) + "\n");
    } else {
      const total = Object.values(summary.resources).reduce((a, b) => a + b, 0);
      process.stdout.write(
        `run ${summary.runId}: ${total} resources (${Object.entries(summary.resources)
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")}), ${summary.rejected} rejected, ${summary.bytes} bytes in ${result.seconds} s\n` +
          `manifest: ${deps.bronzeUri}/_runs/${summary.runId}/manifest.json${summary.manifest.complete ? " (a complete snapshot of its scope)" : ""}\n`,
      );
    }
  } finally {
    progress.close();
    await deps.http.close();
  }
}

export function register(program: Command): void {
  program
    .command("extract")
    .description(
      "extract FHIR R4 resources into bronze (Parquet, zstd, partitioned by type, ingest date and run) with a run manifest: " +
        "Group bulk $export, a search crawl of the group's patients, or an import of NDJSON files",
    )
    .option(
      "--client <file>",
      "client configuration JSON (what `simulate --client-out` writes): base URL, token URL, client id, key file, group",
    )
    .option("--base-url <url>", "FHIR R4 base URL (instead of --client)")
    .option("--token-url <url>", "token endpoint (default: from the server's .well-known/smart-configuration)")
    .option("--client-id <id>", "SMART Backend Services client id")
    .option("--private-key <file>", "PEM private key file of the client")
    .option("--key-id <kid>", "kid of the key (when it is registered through a JWKS)")
    .option("--algorithm <alg>", "signing algorithm: RS384, RS256, RS512, or ES384 with --key-id", "RS384")
    .option("--group <id>", "Group id(s) to export or crawl, comma-separated (default: the client file's group)")
    .option("--mode <mode>", "bulk (Group $export), search (crawl each patient) or files (import --source DIR)", "bulk")
    .option("--source <dir...>", "files mode: directory of *.ndjson files (a path, file:// or s3://); `--source ndjson-dir DIR` also works")
    .requiredOption("--out <uri>", "bronze location, e.g. file://./lake/bronze or s3://bucket/bronze")
    .option("--types <list>", "resource types, comma-separated (default: all)", typeList)
    .option(
      "--since <auto|instant>",
      "_since of the export: an ISO instant, or auto = the transactionTime of the last finished run (servers with _since; not Epic)",
      sinceArg,
    )
    .option("--concurrency <n>", "work units and requests in flight", positiveInt("--concurrency"))
    .option(
      "--rate-limit <rps>",
      "requests per second shared by all workers (set it at the server's limit)",
      positiveNumber("--rate-limit"),
    )
    .option("--config <name|file>", "take the extraction settings (page size, categories, retries, part size) from a pipeline config")
    .option("--patients <file>", "search mode: patient ids to crawl, one per line (instead of the group's members)")
    .option("--json", "print one JSON object on stdout: {run_id, resources, rejected, bytes, seconds}")
    .option("--verbose", "log every unit (ids, counts and timings only)")
    .action(async (o: ExtractCliOptions) => {
      if (!["bulk", "search", "files"].includes(o.mode)) throw new InvalidArgumentError("--mode must be bulk, search or files");
      const src = o.source as unknown as string[] | undefined;
      if (src) {
        if (src.length === 2 && src[0] === "ndjson-dir") o.source = src[1];
        else if (src.length === 1) o.source = src[0];
        else throw new InvalidArgumentError("--source takes a directory (or: ndjson-dir DIR)");
        o.mode = "files";
      }
      await extractCommand(o);
    });
}
