// The report's I/O: reads every metrics Parquet file of a work directory (written by the
// TypeScript and the Python collectors) and writes the HTML page to {workdir}/report/index.html.
// The analysis is in report-analysis.ts, the rendering in report-html.ts.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { layerUri } from "./lake-contract";
import { type MetricRecord, decodeMetricsParquet, metricsDirUri } from "./metrics";
import { type RunReport, buildReport } from "./report-analysis";
import { renderReportHtml } from "./report-html";

const toPath = (uriOrPath: string) => (uriOrPath.startsWith("file://") ? fileURLToPath(uriOrPath) : path.resolve(uriOrPath));

/** Parquet files under a directory, recursively, skipping hidden and `_`-prefixed entries like pyarrow does. */
function parquetFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name.startsWith("_")) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...parquetFiles(full));
    else if (entry.name.endsWith(".parquet")) out.push(full);
  }
  return out.sort();
}

/** The lake root of a directory: a local run's work directory keeps its lake in DIR/lake. */
function lakeRootOf(dir: string): string {
  const nested = path.join(dir, "lake");
  return fs.existsSync(path.join(nested, "metrics")) ? nested : dir;
}

/** Every metrics record of a local lake / work directory (a path or file:// URI). */
export function readMetrics(workdir: string): MetricRecord[] {
  const dir = toPath(metricsDirUri(lakeRootOf(toPath(workdir))));
  if (!fs.existsSync(dir)) throw new Error(`no metrics in ${workdir}: ${dir} does not exist (has a run finished there?)`);
  return parquetFiles(dir).flatMap((file) => decodeMetricsParquet(fs.readFileSync(file)));
}

/** The report of a run (default: the latest) from a work directory's metrics. */
export function loadReport(workdir: string, runId?: string): { report: RunReport; rows: MetricRecord[] } {
  const rows = readMetrics(workdir);
  return { report: buildReport(rows, runId), rows };
}

/**
 * Writes `{workdir}/report/index.html` for `runId` (default: the latest run) and returns its
 * path. Called by the CLI's `report --html` and at the end of a local run.
 */
export function writeHtmlReport(workdir: string, runId?: string): string {
  const { report, rows } = loadReport(workdir, runId);
  const dir = toPath(layerUri(toPath(workdir), "report"));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "index.html");
  fs.writeFileSync(file, renderReportHtml(report, rows));
  return file;
}
