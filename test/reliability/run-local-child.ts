// `fhir-pipeline run --local` with the simulator start-up overrides the CLI does not expose
// (LocalRunOptions.simulator: small bulk files, so a 20-patient export has dozens of downloads
// for the faults to hit). Everything else is the CLI's code path: runLocal is what
// `run --local` calls, and it prints the same --json summary.
//
//   node -r tsx/cjs run-local-child.ts '{"patients":20,"workdir":"DIR","faults":"...","json":true,"simulator":{...}}'
import "../../lib/core/promise-with-resolvers";
import { runLocal } from "../../lib/pipeline/local-run";

runLocal(JSON.parse(process.argv[2]) as Record<string, unknown>).catch((err: Error) => {
  process.stderr.write(`fhir-pipeline: ${err.message}\n`);
  process.exit(1);
});
