// `fhir-pipeline report --workdir DIR [--run ID] [--json] [--html]`: the five slowest operations,
// the bottleneck step and the comparison with the previous run, from the run's metrics Parquet.
import type { Command } from "commander";
import { loadReport, writeHtmlReport } from "../../core/report";
import { renderReportText } from "../../core/report-analysis";

export function register(program: Command): void {
  program
    .command("report")
    .description("performance report of a run: five slowest operations, bottleneck step, comparison with the previous run")
    .option("--workdir <dir>", "work directory (lake root) of the local pipeline, holding metrics/performance_metrics")
    .option("--env <name>", "instead of --workdir: a deployed environment; shows the cost per run, per million resources, and its trend")
    .option("--region <region>", "with --env: AWS region of the environment (default: AWS_REGION or the profile's)")
    .option("--outputs-file <file>", "with --env: read stack outputs from this `cdk deploy --outputs-file` file")
    .option("--limit <n>", "with --env: how many recent runs", "20")
    .option("--run <id>", "run id to report on (default: the latest run)")
    .option("--json", "print the report as JSON instead of text")
    .option("--html", "also write DIR/report/index.html (charts as inline SVG, viewable offline)")
    .action(
      async (opts: {
        workdir?: string;
        run?: string;
        json?: boolean;
        html?: boolean;
        env?: string;
        region?: string;
        outputsFile?: string;
        limit: string;
      }) => {
        if (opts.env) {
          // The cloud branch (cost of runs in AWS) lives in lib/aws/cost-report.ts.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { reportInAws } = require("../../aws/cost-report") as typeof import("../../aws/cost-report");
          await reportInAws({
            envName: opts.env,
            region: opts.region,
            outputsFile: opts.outputsFile,
            json: opts.json,
            limit: Number(opts.limit),
          });
          return;
        }
        if (!opts.workdir) throw new Error("say which pipeline: --workdir DIR (a local run) or --env NAME (a deployed environment)");
        const { report } = loadReport(opts.workdir, opts.run);
        const htmlPath = opts.html ? writeHtmlReport(opts.workdir, report.run.runId) : undefined;
        if (opts.json) {
          process.stdout.write(JSON.stringify(htmlPath ? { ...report, html: htmlPath } : report, null, 2) + "\n");
          return;
        }
        process.stdout.write(renderReportText(report));
        if (htmlPath) process.stdout.write(`\nHTML report: ${htmlPath}\n`);
      },
    );
}
