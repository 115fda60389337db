// The `report --env` example in README.md's "Operate the deployed pipeline" section is what
// renderCostReport prints for three nightly runs whose usage is given here: the rows go through the
// metrics contract's cost rows (costMetricRows -> costRowOf) and the trend, as recorded runs do.
import * as fs from "node:fs";
import * as path from "node:path";
import { athenaQueryCost, runCost, trend, type RunUsage } from "../../lib/aws/cost";
import { REPORT_PRICES, renderCostReport, type CostReport, type RunCostRow } from "../../lib/aws/cost-report";
import { ALL_PARTS, COST_STEP, costMetricRows, costRowOf } from "../../lib/aws/run-cost";
import type { MetricRecord } from "../../lib/core/metrics";

const README = path.resolve(__dirname, "../../README.md");
const MARKER = "<!-- report --env example: rendered by test/aws/cost-report-readme.test.ts -->";

/** A nightly run of about 1,000 patients: its Spark jobs, extractor Lambdas and state transitions. */
function nightly(runId: string, startedAt: string, resources: number, growth: number): RunCostRow {
  const usage: RunUsage = {
    emrJobs: [
      { step: "silver", billed: { vCPUHour: 1.2 * growth, memoryGBHour: 4.8 * growth, storageGBHour: 0 } },
      { step: "gold", billed: { vCPUHour: 0.5 * growth, memoryGBHour: 2 * growth, storageGBHour: 0 } },
      { step: "maintenance", billed: { vCPUHour: 0.2, memoryGBHour: 0.8, storageGBHour: 0 } },
    ],
    lambdaGbSeconds: 0,
    lambdaRequests: 0,
    lambdaFunctions: [
      { role: "DownloadFile", name: "download", memoryMb: 2048, durationMs: 180_000 * growth, invocations: 56, gbSeconds: 360 * growth },
      { role: "CheckDrained", name: "drained", memoryMb: 512, durationMs: 24_000, invocations: 24, gbSeconds: 6 },
    ],
    stateTransitions: 61,
    athenaQueryBytes: [],
    resources,
  };
  usage.lambdaGbSeconds = usage.lambdaFunctions!.reduce((s, f) => s + f.gbSeconds, 0);
  usage.lambdaRequests = usage.lambdaFunctions!.reduce((s, f) => s + f.invocations, 0);
  const rows: MetricRecord[] = costMetricRows(usage, runCost(usage), ALL_PARTS, 1500).map((r) => ({
    ...r,
    runId,
    step: COST_STEP,
    recordedAtMicros: 0n,
  }));
  return { ...costRowOf(runId, rows), status: "SUCCEEDED", startedAt, backfilled: false };
}

function exampleReport(): CostReport {
  const runs = [
    nightly("run-20261122T020000114Z-000-4f2a9c", "2026-11-22T02:00:00.114Z", 166_210, 1),
    nightly("run-20261123T020000087Z-000-b81e07", "2026-11-23T02:00:00.087Z", 166_954, 1.1),
    nightly("run-20261124T020000131Z-000-0c5d3e", "2026-11-24T02:00:00.131Z", 167_388, 1.3),
  ];
  const at = (r: RunCostRow) => Date.parse(r.startedAt!);
  return {
    environment: "prod",
    prices: REPORT_PRICES,
    runs,
    totalTrend: trend(runs.map((r) => ({ at: at(r), value: r.totalUsd }))),
    perMillionTrend: trend(runs.map((r) => ({ at: at(r), value: r.usdPerMillionResources! }))),
    // Twelve analyst queries of 60 MB each in the workgroup.
    athena: { queries: 12, bytesScanned: 12 * 60 * 2 ** 20, costUsd: 12 * athenaQueryCost(60 * 2 ** 20) },
  };
}

describe("README: report --env example", () => {
  it("is what the report prints for the example runs", () => {
    const readme = fs.readFileSync(README, "utf8");
    const at = readme.indexOf(MARKER);
    expect(at).toBeGreaterThan(0);
    const block = /```text\n([\s\S]*?)```/.exec(readme.slice(at))![1];
    expect(block).toBe(renderCostReport(exampleReport()));
  });
});
