// Extract benchmark (issue 2), measured side by side in one run on the same simulator and data:
//
//   bulk ingest into bronze, as a ratio of
//     (a) the raw transfer: the same files downloaded (gzip, decoded) and discarded;
//     (b) the unavoidable work: the same files downloaded, split into lines and JSON.parse'd;
//   target: ingest >= 0.5 of (b). One file at a time, on one core (the simulator runs in a
//   child process so that its work is not counted). The three are interleaved round by round and
//   the best round of each is compared, so background load hits all three alike.
//
//   search crawl at the simulator's rate limit with 50 ms of latency per response: achieved
//   requests/s as a fraction of the limit (target >= 0.9) and the number of 429s (target 0).
//
//   peak memory (info): a large NDJSON file (2 GB; --quick 256 MB) through files mode in a child
//   process, peak RSS; and the RSS of this process after the bulk rounds.
//
// Also (info): what a key-sorted canonical re-serialisation for content_hash would cost, as the
// ingest ratio it would leave (see lambdas/extractor/bronze/content-hash.ts).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LineSplitter } from "../lambdas/extractor/bronze/ndjson-lines";
import { connectionFromClientFile, createExtractorDeps } from "../lambdas/extractor/extractor-setup";
import type { ExtractorDeps } from "../lambdas/extractor/extractor-deps";
import { readText } from "../lambdas/extractor/http/fhir-http";
import { runExtraction } from "../lambdas/extractor/local-run";
import { processUnit } from "../lambdas/extractor/process-unit";
import { bulkUnits, kickOff, pollStatus } from "../lambdas/extractor/steps";
import { readExportManifest } from "../lambdas/extractor/run-records";
import { LocalUnitQueue } from "../lambdas/extractor/unit-queue";
import type { BulkFileUnit } from "../lambdas/extractor/work-units";
import { readClientConfigFile } from "../lib/core/client-config";
import type { RunContext } from "../lib/core/pipeline-steps";
import { pathToFileUri } from "../lib/core/storage";
import { templateLines } from "../test/extractor/ndjson-generator";
import { CLI, ROOT } from "./local-pipeline";
import type { BenchOptions, BenchResult } from "./types";

const FULL = { bulkPatients: 500, rounds: 7, searchPatients: 60, bigFileMb: 2048 };
const QUICK = { bulkPatients: 120, rounds: 5, searchPatients: 24, bigFileMb: 256 };
const SEARCH_RATE = 40;
const SEARCH_LATENCY = "50ms";

interface SimChild {
  client: string;
  stop(): Promise<void>;
}

/** `fhir-pipeline simulate` in a child process (its CPU is not ours). */
async function startSimulatorProcess(workdir: string, name: string, args: string[]): Promise<SimChild> {
  const client = path.join(workdir, `${name}-client.json`);
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, "simulate", "--client-out", client, "--workdir", path.join(workdir, `${name}-sim`), ...args],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`simulator did not start: ${err}`)), 120_000);
    child.stdout?.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`simulator exited (${code}): ${err}`));
    });
  });
  return {
    client,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function deps(client: string, bronze: string, extra: Parameters<typeof createExtractorDeps>[0]["http"] = {}, settings = {}): ExtractorDeps {
  return createExtractorDeps({
    connection: connectionFromClientFile(readClientConfigFile(client)),
    bronzeUri: bronze,
    queue: new LocalUnitQueue(),
    settings,
    http: { retry: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 500 }, ...extra },
  });
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Timing {
  wallMs: number;
  cpuMs: number;
  bytes: number;
}

async function timed(fn: () => Promise<number>): Promise<Timing> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const bytes = await fn();
  return { wallMs: performance.now() - t0, cpuMs: cpuMs() - c0, bytes };
}

/** Downloads each file (gzip decoded) and hands each chunk to `onChunk`; returns the bytes. */
async function download(d: ExtractorDeps, units: BulkFileUnit[], onChunk: (c: Buffer) => void): Promise<number> {
  let bytes = 0;
  for (const u of units) {
    for (const url of u.urls) {
      const res = await d.http.send({ url, auth: u.requiresAccessToken, headers: { accept: "application/fhir+ndjson" } });
      if (res.status !== 200) throw new Error(`download answered ${res.status}: ${await readText(res.body)}`);
      for await (const c of res.body) {
        bytes += (c as Buffer).length;
        onChunk(c as Buffer);
      }
    }
  }
  return bytes;
}

/** A key-sorted canonical JSON (what content_hash deliberately does not do; for the info figure). */
function canonical(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  const o = v as Record<string, unknown>;
  return (
    "{" +
    Object.keys(o)
      .sort()
      .map((k) => JSON.stringify(k) + ":" + canonical(o[k]))
      .join(",") +
    "}"
  );
}

async function bulkRounds(opts: BenchOptions, size: typeof FULL): Promise<{ ratios: BenchResult["ratios"]; info: BenchResult["info"] }> {
  const sim = await startSimulatorProcess(opts.workdir, "bulk", ["--patients", String(size.bulkPatients), "--seed", "3"]);
  const bronze = path.join(opts.workdir, "bronze");
  const d = deps(sim.client, bronze);
  try {
    const groupId = readClientConfigFile(sim.client).groupId;
    const run: RunContext = { runId: "bench-bulk", startedAt: new Date().toISOString(), mode: "bulk", groupIds: [groupId], request: {} };
    let state = await kickOff({ run, groupId }, d);
    while (state.state !== "complete") {
      const polled = await pollStatus({ run, groupId, export: state }, d);
      if (polled.state !== "complete") await new Promise((r) => setTimeout(r, polled.retryAfterMs ?? 200));
      state = polled;
    }
    const manifest = (await readExportManifest(d.storage, d.bronzeUri, run.runId, 0))!;
    const units = bulkUnits(run, groupId, 0, [...d.settings.resourceTypes], manifest, d.settings.bulkFilesPerUnit).filter(
      (u) => u.fileKind === "output",
    );
    opts.log(
      `bulk: ${manifest.output.length} files in ${units.length} units of ${size.bulkPatients} patients; ${size.rounds} rounds of raw / parse / ingest`,
    );

    // A warm-up of every code path (JIT, WebAssembly) that is not measured.
    await download(d, units.slice(0, 1), () => undefined);
    await processUnit({ ...units[0], runId: "bench-warmup" }, d);
    const raw: Timing[] = [];
    const parse: Timing[] = [];
    const ingest: Timing[] = [];
    let resources = 0;
    for (let round = 0; round < size.rounds; round++) {
      raw.push(await timed(() => download(d, units, () => undefined)));
      parse.push(
        await timed(async () => {
          let n = 0;
          const splitter = new LineSplitter({
            line: (b, s, e) => {
              JSON.parse(b.toString("utf8", s, e));
              n++;
            },
            oversize: () => undefined,
          });
          const bytes = await download(d, units, (c) => splitter.push(c));
          splitter.end();
          resources = n;
          return bytes;
        }),
      );
      fs.rmSync(bronze, { recursive: true, force: true });
      ingest.push(
        await timed(async () => {
          let bytes = 0;
          for (const u of units) bytes += (await processUnit({ ...u, runId: `bench-${round}` }, d)).inputBytes;
          return bytes;
        }),
      );
      opts.log(
        `  round ${round + 1}: raw ${raw[round].wallMs.toFixed(0)} ms, parse ${parse[round].wallMs.toFixed(0)} ms, ingest ${ingest[round].wallMs.toFixed(0)} ms`,
      );
    }
    const best = (ts: Timing[]): Timing => ts.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
    const [a, b, c] = [best(raw), best(parse), best(ingest)];
    if (a.bytes !== c.bytes || b.bytes !== c.bytes)
      throw new Error(`the variants saw different bytes: ${a.bytes} / ${b.bytes} / ${c.bytes}`);
    const rssAfterBulk = process.memoryUsage().rss;
    const bronzeBytes = fs.existsSync(bronze) ? dirSize(bronze) : 0;

    // What a sorted canonical re-serialisation would add per resource (same lines, in memory).
    const sample = templateLines(40, 9);
    const tParse = bestOf(3, () => sample.forEach((l) => JSON.parse(l)));
    const tCanon = bestOf(3, () =>
      sample.forEach((l) =>
        crypto
          .createHash("sha256")
          .update(canonical(JSON.parse(l)))
          .digest("hex"),
      ),
    );
    const perByteExtraMs = (tCanon - tParse) / sample.reduce((s, l) => s + l.length, 0);
    const canonicalIngestMs = c.wallMs + perByteExtraMs * c.bytes;

    return {
      ratios: [
        {
          name: "extract.bulk_vs_parse",
          value: round3(b.wallMs / c.wallMs),
          higherIsBetter: true,
          target: { op: ">=", value: 0.5 },
          detail: `bronze ingest throughput / (download + split + JSON.parse) throughput, same ${mb(c.bytes)} MB of NDJSON, best of ${size.rounds} interleaved rounds`,
        },
        {
          name: "extract.bulk_vs_transfer",
          value: round3(a.wallMs / c.wallMs),
          higherIsBetter: true,
          detail: "bronze ingest throughput / raw download (gzip decoded, discarded) throughput, same bytes",
        },
        {
          name: "extract.bulk_vs_parse_cpu",
          value: round3(b.cpuMs / c.cpuMs),
          higherIsBetter: true,
          detail: "the same ratio in CPU time of this process (less sensitive to other load on the machine)",
        },
      ],
      info: {
        bulk_patients: size.bulkPatients,
        bulk_files: manifest.output.length,
        bulk_units: units.length,
        bulk_resources: resources,
        bulk_ndjson_mb: mb(c.bytes),
        bronze_mb: mb(bronzeBytes),
        raw_mb_per_s: mb(c.bytes / (a.wallMs / 1000)),
        parse_mb_per_s: mb(c.bytes / (b.wallMs / 1000)),
        ingest_mb_per_s: mb(c.bytes / (c.wallMs / 1000)),
        ingest_resources_per_s: Math.round(resources / (c.wallMs / 1000)),
        canonical_sorted_hash_ratio: round3(b.wallMs / canonicalIngestMs),
        rss_mb_after_bulk: mb(rssAfterBulk),
      },
    };
  } finally {
    await d.http.close();
    await sim.stop();
  }
}

async function searchRate(opts: BenchOptions, size: typeof FULL): Promise<{ ratios: BenchResult["ratios"]; info: BenchResult["info"] }> {
  const sim = await startSimulatorProcess(opts.workdir, "search", [
    "--patients",
    String(size.searchPatients),
    "--seed",
    "5",
    "--rate-limit",
    String(SEARCH_RATE),
    "--latency",
    SEARCH_LATENCY,
  ]);
  const d = deps(sim.client, path.join(opts.workdir, "search-bronze"), { rateLimitPerSecond: SEARCH_RATE }, { concurrency: 8 });
  try {
    const origin = new URL(readClientConfigFile(sim.client).baseUrl).origin;
    const statsOf = async (): Promise<{ requests: number; throttled: number }> =>
      (await fetch(`${origin}/_admin/stats`)).json() as Promise<{ requests: number; throttled: number }>;
    const before = await statsOf();
    const t0 = performance.now();
    const s = await runExtraction({ mode: "search", groupIds: [readClientConfigFile(sim.client).groupId] }, d);
    const seconds = (performance.now() - t0) / 1000;
    const after = await statsOf();
    const requests = after.requests - before.requests;
    const throttled = after.throttled - before.throttled;
    const rate = requests / seconds;
    opts.log(
      `search: ${requests} requests in ${seconds.toFixed(1)} s = ${rate.toFixed(1)}/s at a limit of ${SEARCH_RATE}/s, ${throttled} 429s`,
    );
    return {
      ratios: [
        {
          name: "extract.search_rate_vs_limit",
          value: round3(rate / SEARCH_RATE),
          higherIsBetter: true,
          target: { op: ">=", value: 0.9 },
          detail: `search crawl requests/s (first to last request) over the simulator's rate limit (${SEARCH_RATE}/s, ${SEARCH_LATENCY} latency), budget set at the limit`,
        },
        {
          name: "extract.search_429s",
          value: throttled,
          higherIsBetter: false,
          target: { op: "<=", value: 0 },
          detail: "429 answers from the rate limit during that crawl",
        },
      ],
      info: {
        search_patients: size.searchPatients,
        search_requests: requests,
        search_seconds: round3(seconds),
        search_resources: Object.values(s.resources).reduce((x, y) => x + y, 0),
      },
    };
  } finally {
    await d.http.close();
    await sim.stop();
  }
}

function peakMemory(opts: BenchOptions, size: typeof FULL): BenchResult["info"] {
  const src = path.join(opts.workdir, "big-src");
  fs.mkdirSync(src, { recursive: true });
  const file = path.join(src, "big.ndjson");
  const gen = spawnSync(
    process.execPath,
    [
      "-r",
      "tsx/cjs",
      "-e",
      `require(${JSON.stringify(path.join(ROOT, "test/extractor/ndjson-generator.ts"))}).writeNdjson(${JSON.stringify(file)}, ${size.bigFileMb} * 1048576)`,
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (gen.status !== 0) throw new Error(`generating the NDJSON file failed: ${gen.stderr}`);
  opts.log(`peak memory: ${size.bigFileMb} MB NDJSON through files mode in a child process`);
  try {
    const res = spawnSync(
      process.execPath,
      ["-r", "tsx/cjs", path.join(ROOT, "test/extractor/files-import-child.ts"), src, pathToFileUri(path.join(opts.workdir, "big-bronze"))],
      {
        cwd: ROOT,
        encoding: "utf8",
        maxBuffer: 1 << 20,
      },
    );
    if (res.status !== 0) throw new Error(`files import failed: ${res.stderr}`);
    const r = JSON.parse(res.stdout.trim()) as { maxRssBytes: number; seconds: number; bytes: number };
    return { big_file_mb: size.bigFileMb, big_file_peak_rss_mb: mb(r.maxRssBytes), big_file_mb_per_s: mb(r.bytes / r.seconds) };
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
    fs.rmSync(path.join(opts.workdir, "big-bronze"), { recursive: true, force: true });
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = opts.quick ? QUICK : FULL;
  const bulk = await bulkRounds(opts, size);
  const search = await searchRate(opts, size);
  const memory = peakMemory(opts, size);
  return { name: "extract", ratios: [...bulk.ratios, ...search.ratios], info: { ...bulk.info, ...search.info, ...memory } };
}

function bestOf(n: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

function dirSize(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirSize(p) : fs.statSync(p).size;
  }
  return n;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const mb = (bytes: number): number => Math.round((bytes / (1 << 20)) * 10) / 10;
