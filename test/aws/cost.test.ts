// Pure cost arithmetic: EMR Serverless from resource utilisation, Athena's rounding and minimum,
// Lambda GB-seconds, the per-run total and per million resources, and the trend over runs.
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
} from "../../lib/aws/cost";

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
