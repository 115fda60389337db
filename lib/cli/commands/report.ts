// `fhir-pipeline report --workdir DIR [--run ID] [--json] [--html]`: the five slowest operations,
// the bottleneck step and the comparison with the previous run, from the run's metrics Parquet.
import type { Command } from "commander";
import { loadReport, writeHtmlReport } from "../../core/report";
import { renderReportText } from "../../core/report-analysis";

export function register(program: Command): void {
  program
    .command("report")
    .description("performance report of a run: five slowest operations, bottleneck step, comparison with the previous run")
    .requiredOption("--workdir <dir>", "work directory (lake root) of the local pipeline, holding metrics/performance_metrics")
    .option("--run <id>", "run id to report on (default: the latest run)")
    .option("--json", "print the report as JSON instead of text")
    .option("--html", "also write DIR/report/index.html (charts as inline SVG, viewable offline)")
    .action((opts: { workdir: string; run?: string; json?: boolean; html?: boolean }) => {
      const { report } = loadReport(opts.workdir, opts.run);
      const htmlPath = opts.html ? writeHtmlReport(opts.workdir, report.run.runId) : undefined;
      if (opts.json) {
        process.stdout.write(JSON.stringify(htmlPath ? { ...report, html: htmlPath } : report, null, 2) + "\n");
        return;
      }
      process.stdout.write(renderReportText(report));
      if (htmlPath) process.stdout.write(`\nHTML report: ${htmlPath}\n`);
    });
}
