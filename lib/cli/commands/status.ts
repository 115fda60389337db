// `fhir-pipeline status --env NAME [--run ID]`: recent runs of a deployed environment and the
// alarms firing now (lib/aws/status.ts does the work).
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("status")
    .description("recent runs of a deployed environment (outcome, duration, records per layer, cost) and the alarms firing now")
    .requiredOption("--env <name>", "deployed environment (config/NAME.json; stack outputs read from CloudFormation)")
    .option("--run <id>", "also show one run in detail (run id = execution name, or the execution ARN)")
    .option("--limit <n>", "how many recent runs", "10")
    .option("--region <region>", "AWS region of the environment (default: AWS_REGION or the profile's)")
    .option("--outputs-file <file>", "read stack outputs from this `cdk deploy --outputs-file` file instead of CloudFormation")
    .option("--json", "print the status as JSON")
    .action(async (opts: { env: string; run?: string; limit: string; region?: string; outputsFile?: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new Error("--limit must be an integer from 1 to 1000");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { AwsClients } = require("../../aws/clients") as typeof import("../../aws/clients");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { withOperatorErrors } = require("../../aws/errors") as typeof import("../../aws/errors");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { resolveEnvironment } = require("../../aws/environment") as typeof import("../../aws/environment");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { s3LakeObjects } = require("../../aws/lake-objects") as typeof import("../../aws/lake-objects");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { renderStatus, statusReport } = require("../../aws/status") as typeof import("../../aws/status");
      const clients = new AwsClients({ region: opts.region });
      try {
        const report = await withOperatorErrors({ envName: opts.env, region: opts.region }, async () => {
          const env = await resolveEnvironment({ envName: opts.env, outputsFile: opts.outputsFile, clients });
          return statusReport(clients, env, s3LakeObjects(clients), { runId: opts.run, limit });
        });
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : renderStatus(report));
      } finally {
        clients.destroy();
      }
    });
}
