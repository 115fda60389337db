// Child process of the load test: a search-mode extraction against the simulator the parent runs,
// with the given workers and shared rate budget, into a bronze directory. Prints one JSON line
// with what it extracted, its HTTP counters and its own peak RSS (this process only: the
// simulator lives in the parent).
//
//   node -r tsx/cjs search-load-child.ts CLIENT_FILE BRONZE_DIR '{"concurrency":16,"rateLimit":200,"types":[...]}'
import { readClientConfigFile } from "../../lib/core/client-config";
import { connectionFromClientFile, createExtractorDeps } from "../../lambdas/extractor/extractor-setup";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";

interface LoadOptions {
  concurrency: number;
  rateLimit: number;
  types: string[];
  observationCategories: string[];
  patientsPerUnit?: number;
}

async function main(): Promise<void> {
  const [clientFile, out, optionsJson] = process.argv.slice(2);
  const o = JSON.parse(optionsJson) as LoadOptions;
  const client = readClientConfigFile(clientFile);
  const deps = createExtractorDeps({
    connection: connectionFromClientFile(client),
    bronzeUri: out,
    queue: new LocalUnitQueue(),
    settings: {
      concurrency: o.concurrency,
      observationCategories: o.observationCategories,
      ...(o.patientsPerUnit ? { patientsPerUnit: o.patientsPerUnit } : {}),
    },
    http: {
      rateLimitPerSecond: o.rateLimit,
      connections: o.concurrency,
      // 5% of requests fail on purpose: enough attempts that no unit gives up.
      retry: { maxAttempts: 10, baseDelayMs: 20, maxDelayMs: 1000 },
    },
  });
  const t0 = Date.now();
  try {
    const s = await runExtraction({ mode: "search", groupIds: [client.groupId], types: o.types }, deps);
    process.stdout.write(
      JSON.stringify({
        runId: s.runId,
        resources: s.resources,
        rejected: s.rejected,
        seconds: (Date.now() - t0) / 1000,
        http: deps.http.stats,
        units: s.manifest.units,
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
      }) + "\n",
    );
  } finally {
    await deps.http.close();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exit(1);
});
