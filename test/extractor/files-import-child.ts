// Child process of the bounded-memory test: imports a directory of NDJSON into bronze (files
// mode) and prints one JSON line with its peak RSS, so the parent measures this process only.
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import { createExtractorDeps } from "../../lambdas/extractor/extractor-setup";
import { FileKeySource } from "../../lambdas/extractor/auth/key-source";
import { runExtraction } from "../../lambdas/extractor/local-run";

async function main(): Promise<void> {
  const [source, out] = process.argv.slice(2);
  const deps = createExtractorDeps({
    connection: {
      baseUrl: "http://127.0.0.1",
      tokenUrl: "http://127.0.0.1",
      clientId: "-",
      keySource: new FileKeySource("-"),
      algorithm: "RS384",
    },
    bronzeUri: out,
    queue: new LocalUnitQueue(),
  });
  const s = await runExtraction({ mode: "files", groupIds: [], source }, deps);
  await deps.http.close();
  process.stdout.write(
    JSON.stringify({
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      resources: s.resources,
      rejected: s.rejected,
      bytes: s.bytes,
      seconds: s.seconds,
      runId: s.runId,
    }) + "\n",
  );
}

main().catch((e: Error) => {
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exit(1);
});
