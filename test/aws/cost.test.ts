// Pure cost arithmetic: EMR Serverless from resource utilisation, Athena's rounding and minimum,
// Lambda GB-seconds, the per-run total and per million resources, the trend over runs, a run's
// cost record as two writers leave it, and the CloudWatch period for a run's window.
import {
  ATHENA_BYTES_PER_MB,
  ATHENA_BYTES_PER_TB,
  US_EAST_1_PRICES,
  athenaBilledBytes,
  athenaQueryCost,
  emrJobCost,
  formatUsd,
  lambdaGbSeconds,
  runCost,
  trend,
  type RunUsage,
} from "../../lib/aws/cost";
import { COST_METRICS, COST_STEP, IN_RUN_PARTS, costMetricRows, costRowOf, metricPeriodSeconds } from "../../lib/aws/run-cost";
import type { MetricRecord } from "../../lib/core/metrics";

const x86 = US_EAST_1_PRICES.x86_64;

describe("EMR Serverless job cost", () => {
  it("prices vCPU-hours, memory GB-hours and storage GB-hours separately", () => {
    const c = emrJobCost({ vCPUHour: 10, memoryGBHour: 40, storageGBHour: 100 }, x86);
    expect(c.vcpuUsd).toBeCloseTo(10 * 0.052624, 10);
    expect(c.memoryUsd).toBeCloseTo(40 * 0.0057785, 10);
    expect(c.storageUsd).toBeCloseTo(100 * 0.000111, 10);
    expect(c.totalUsd).toBeCloseTo(0.52624 + 0.23114 + 0.0111, 10);
  });

  it("is 20% cheaper for vCPU and memory on arm64", () => {
    const x = emrJobCost({ vCPUHour: 1, memoryGBHour: 1 }, US_EAST_1_PRICES.x86_64);
    const a = emrJobCost({ vCPUHour: 1, memoryGBHour: 1 }, US_EAST_1_PRICES.arm64);
    expect(a.vcpuUsd / x.vcpuUsd).toBeCloseTo(0.8, 2);
    expect(a.memoryUsd / x.memoryUsd).toBeCloseTo(0.8, 2);
  });

  it("defaults to the deployed architecture's prices (arm64: the stacks deploy Graviton)", () => {
    expect(emrJobCost({ vCPUHour: 1 }).vcpuUsd).toBe(US_EAST_1_PRICES.arm64.emrVcpuHour);
  });

  it("treats missing or negative utilisation as zero", () => {
    expect(emrJobCost({}).totalUsd).toBe(0);
    expect(emrJobCost({ vCPUHour: -3, memoryGBHour: Number.NaN }).totalUsd).toBe(0);
  });
});

describe("Athena query cost", () => {
  it("bills at least 10 MB, even for a query that scanned nothing", () => {
    expect(athenaBilledBytes(0)).toBe(10 * ATHENA_BYTES_PER_MB);
    expect(athenaBilledBytes(1)).toBe(10 * ATHENA_BYTES_PER_MB);
    expect(athenaQueryCost(0)).toBeCloseTo((5 * 10) / (1024 * 1024), 12);
  });

  it("rounds up to the next megabyte above the minimum", () => {
    expect(athenaBilledBytes(10 * ATHENA_BYTES_PER_MB + 1)).toBe(11 * ATHENA_BYTES_PER_MB);
    expect(athenaBilledBytes(11 * ATHENA_BYTES_PER_MB)).toBe(11 * ATHENA_BYTES_PER_MB);
  });

  it("costs $5 for a terabyte", () => {
    expect(athenaQueryCost(ATHENA_BYTES_PER_TB)).toBeCloseTo(5, 10);
    expect(athenaQueryCost(3 * ATHENA_BYTES_PER_TB)).toBeCloseTo(15, 10);
  });
});

describe("run cost", () => {
  it("adds EMR, Lambda, Step Functions and Athena, and divides per million resources", () => {
    const usage = {
      emrJobs: [
        { step: "silver", billed: { vCPUHour: 2, memoryGBHour: 8, storageGBHour: 0 } },
        { step: "gold", billed: { vCPUHour: 1, memoryGBHour: 4, storageGBHour: 0 } },
      ],
      lambdaGbSeconds: 3600,
      lambdaRequests: 1000,
      stateTransitions: 200,
      athenaQueryBytes: [0, ATHENA_BYTES_PER_TB],
      resources: 500_000,
    };
    const c = runCost(usage, x86);
    const emr = 3 * 0.052624 + 12 * 0.0057785;
    expect(c.emrUsd).toBeCloseTo(emr, 10);
    expect(c.emrByStep.silver).toBeCloseTo(2 * 0.052624 + 8 * 0.0057785, 10);
    expect(c.lambdaUsd).toBeCloseTo(3600 * 0.0000166667 + 1000 * 0.0000002, 10);
    expect(c.stepFunctionsUsd).toBeCloseTo(200 * 0.000025, 10);
    expect(c.athenaUsd).toBeCloseTo(5 + (5 * 10) / (1024 * 1024), 10);
    expect(c.totalUsd).toBeCloseTo(c.emrUsd + c.lambdaUsd + c.stepFunctionsUsd + c.athenaUsd, 12);
    expect(c.usdPerMillionResources).toBeCloseTo(c.totalUsd * 2, 10);
  });

  it("has no cost per million when nothing was extracted", () => {
    const c = runCost({ emrJobs: [], lambdaGbSeconds: 0, lambdaRequests: 0, stateTransitions: 0, athenaQueryBytes: [], resources: 0 });
    expect(c.totalUsd).toBe(0);
    expect(c.usdPerMillionResources).toBeUndefined();
  });

  it("computes Lambda GB-seconds from duration and memory", () => {
    expect(lambdaGbSeconds(10_000, 2048)).toBe(20);
  });
});

describe("trend", () => {
  it("needs two runs", () => {
    expect(trend([{ at: 1, value: 3 }])).toBeUndefined();
  });

  it("sees a rising cost regardless of input order", () => {
    const t = trend([
      { at: 3, value: 3 },
      { at: 1, value: 1 },
      { at: 4, value: 4 },
      { at: 2, value: 2 },
    ])!;
    expect(t.slopePerRun).toBeCloseTo(1, 10);
    expect(t.change).toBeCloseTo((3.5 - 1.5) / 1.5, 10);
    expect(t.direction).toBe("rising");
  });

  it("calls changes within 5% flat", () => {
    expect(
      trend([
        { at: 1, value: 100 },
        { at: 2, value: 104 },
      ])!.direction,
    ).toBe("flat");
    expect(
      trend([
        { at: 1, value: 100 },
        { at: 2, value: 80 },
      ])!.direction,
    ).toBe("falling");
  });
});

describe("formatUsd", () => {
  it("keeps three significant digits below a dollar", () => {
    expect(formatUsd(0.000123456)).toBe("$0.000123");
    expect(formatUsd(12.345)).toBe("$12.35");
    expect(formatUsd(0)).toBe("$0");
  });
});

describe("a run's cost record (step cost of the metrics contract)", () => {
  const usage: RunUsage = {
    emrJobs: [{ step: "silver", jobRunId: "j1", billed: { vCPUHour: 1, memoryGBHour: 4, storageGBHour: 0 } }],
    lambdaGbSeconds: 0,
    lambdaRequests: 0,
    lambdaFunctions: [{ role: "DownloadFile", name: "dl", memoryMb: 2048, durationMs: 10_000, invocations: 2, gbSeconds: 20 }],
    stateTransitions: 40,
    athenaQueryBytes: [],
    resources: 1000,
  };
  usage.lambdaGbSeconds = 20;
  usage.lambdaRequests = 2;
  const cost = runCost(usage);
  const asRecords = (rows: ReturnType<typeof costMetricRows>): MetricRecord[] =>
    rows.map((r) => ({ ...r, runId: "r1", step: COST_STEP, recordedAtMicros: 0n }));

  it("adds up what two writers recorded: PublishMetrics's parts, then the CLI's Step Functions part", () => {
    const inRun = asRecords(costMetricRows(usage, cost, IN_RUN_PARTS));
    expect(costRowOf("r1", inRun).parts).toEqual(["emr", "lambda", "athena"]);
    expect(costRowOf("r1", inRun).stateTransitions).toBeUndefined();
    const later = asRecords(costMetricRows(usage, cost, ["stepfunctions"], 900));
    const whole = costRowOf("r1", [...inRun, ...later]);
    expect(whole.parts).toEqual(["emr", "lambda", "athena", "stepfunctions"]);
    expect(whole.totalUsd).toBeCloseTo(cost.totalUsd, 15);
    expect(whole.lambdaGbSeconds).toBe(20);
    expect(whole.stateTransitions).toBe(40);
    expect(whole.durationSeconds).toBe(900);
    expect(whole.resources).toBe(1000);
    expect(whole.usdPerMillionResources).toBeCloseTo(cost.totalUsd * 1000, 12);
  });

  it("ignores the total row older records carry (the total is the sum of the components)", () => {
    const rows = asRecords(costMetricRows(usage, cost));
    const legacyTotal = { ...rows[0], name: COST_METRICS.costUsd, value: 99, unit: "USD", attributes: { component: "total" } };
    expect(costRowOf("r1", [...rows, legacyTotal]).totalUsd).toBeCloseTo(cost.totalUsd, 15);
  });
});

describe("CloudWatch period for a run's window", () => {
  const now = new Date("2026-11-25T12:00:00Z");
  const ago = (days: number, hours = 0) => new Date(now.getTime() - days * 86_400_000 + hours * 3_600_000);

  it("is one minute for a recent run, longer only past 1,440 datapoints", () => {
    expect(metricPeriodSeconds(ago(1), ago(1, 3), now)).toBe(60);
    expect(metricPeriodSeconds(ago(3), ago(1), now)).toBe(120);
  });

  it("is what CloudWatch keeps for older data: 5 minutes after 15 days, an hour after 63", () => {
    expect(metricPeriodSeconds(ago(20), ago(20, 3), now)).toBe(300);
    expect(metricPeriodSeconds(ago(70), ago(70, 3), now)).toBe(3600);
  });
});
