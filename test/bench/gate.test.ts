import {
  type Baseline,
  type RatioSamples,
  baselineMode,
  buildBaseline,
  collectSamples,
  modeForComparison,
  parseBaseline,
  relStddev,
  runGate,
  stddev,
  targetMet,
  toleranceFromSamples,
  worsening,
} from "../../bench/gate";

const machine = { cores: 2, memoryGiB: 8, cpuModel: "test", platform: "linux-x64", node: "v20" };
const now = new Date("2024-05-01T00:00:00Z");

function samples(name: string, values: number[], higherIsBetter: boolean, bench = "extract"): RatioSamples {
  return { bench, name, samples: values, higherIsBetter, detail: "d" };
}

// A baseline measured three times: throughput ratio around 2.0 (+/- 2 %), time ratio around 0.5.
const measured = [samples("extract.speedup", [2.0, 2.04, 1.96], true), samples("extract.time_ratio", [0.5, 0.51, 0.49], false)];
const baseline = buildBaseline(measured, machine, now);

describe("tolerances from measured variance", () => {
  it("uses k standard deviations relative to the mean, with a floor", () => {
    expect(stddev([2.0, 2.04, 1.96])).toBeCloseTo(0.04, 10);
    expect(relStddev([2.0, 2.04, 1.96])).toBeCloseTo(0.02, 10);
    expect(toleranceFromSamples([2.0, 2.04, 1.96], { k: 3, floor: 0.01 })).toBeCloseTo(0.06, 10);
    expect(toleranceFromSamples([2.0, 2.04, 1.96], { k: 3, floor: 0.1 })).toBe(0.1);
    expect(toleranceFromSamples([1, 2, 3], { k: 3, floor: 0.1 })).toBeCloseTo(1.5, 10); // noisy: wide
    expect(toleranceFromSamples([5], { k: 3, floor: 0.1 })).toBe(0.1); // one sample: the floor
  });

  it("records mean, tolerance, samples, machine and date in the baseline", () => {
    expect(baseline.machine).toEqual(machine);
    expect(baseline.updatedAt).toBe("2024-05-01T00:00:00.000Z");
    expect(baseline.ratios["extract.speedup"]).toMatchObject({
      bench: "extract",
      value: 2,
      higherIsBetter: true,
      tolerance: 0.1,
      samples: [2.0, 2.04, 1.96],
    });
    expect(parseBaseline(JSON.parse(JSON.stringify(baseline)), "b.json")).toEqual(baseline);
  });

  it("keeps other benchmarks' ratios when one benchmark's baseline is refreshed", () => {
    const next = buildBaseline([samples("silver.ratio", [3], true, "silver")], machine, now, baseline);
    expect(Object.keys(next.ratios)).toEqual(["extract.speedup", "extract.time_ratio", "silver.ratio"]);
    const replaced = buildBaseline([samples("extract.speedup", [4], true)], machine, now, baseline);
    expect(Object.keys(replaced.ratios)).toEqual(["extract.speedup"]); // extract re-ran: its old ratios go
  });
});

describe("baseline sizes", () => {
  it("a refresh at other sizes starts over instead of mixing ratios", () => {
    const quick = buildBaseline([samples("silver.ratio", [3], true, "silver")], machine, now, baseline, undefined, "quick");
    expect(quick.mode).toBe("quick");
    expect(Object.keys(quick.ratios)).toEqual(["silver.ratio"]);
    expect(baselineMode({ ...baseline, mode: undefined })).toBe("full"); // files from before modes
  });

  it("a run takes the baseline's sizes; quick against full is refused", () => {
    const quick = { ...baseline, mode: "quick" as const };
    expect(modeForComparison(quick, false, "b.json")).toBe("quick");
    expect(modeForComparison(baseline, false, "b.json")).toBe("full");
    expect(() => modeForComparison(baseline, true, "b.json")).toThrow(/b.json was recorded at the benchmarks' full sizes/);
    expect(() => parseBaseline({ ...baseline, mode: "tiny" }, "c.json")).toThrow(/c.json: mode must be/);
  });
});

describe("the regression gate", () => {
  it("passes on noise within tolerance, in both directions", () => {
    const { findings, failed } = runGate([samples("extract.speedup", [1.9], true), samples("extract.time_ratio", [0.53], false)], baseline);
    expect(failed).toBe(false);
    expect(findings.map((f) => f.status)).toEqual(["ok", "ok"]);
    expect(findings[0].worsening).toBeCloseTo(0.05, 10);
  });

  it("fails on a crafted regression and says by how much", () => {
    const { findings, failed } = runGate([samples("extract.speedup", [1.5], true), samples("extract.time_ratio", [0.5], false)], baseline);
    expect(failed).toBe(true);
    expect(findings[0]).toMatchObject({ name: "extract.speedup", status: "regressed", current: 1.5, baseline: 2, tolerance: 0.1 });
    expect(findings[0].worsening).toBeCloseTo(0.25, 10);
  });

  it("judges lower-is-better ratios the other way round", () => {
    expect(runGate([samples("extract.time_ratio", [0.6], false)], baseline).findings[0].status).toBe("regressed");
    expect(runGate([samples("extract.time_ratio", [0.4], false)], baseline).findings[0].status).toBe("improved");
    expect(worsening(0.6, 0.5, false)).toBeCloseTo(0.2, 10);
    expect(worsening(0.6, 0.5, true)).toBeCloseTo(-0.2, 10);
  });

  it("fails when a benchmark that ran stops reporting a baseline ratio, ignores benchmarks that did not run", () => {
    const r = runGate([samples("extract.speedup", [2], true)], baseline);
    expect(r.failed).toBe(true);
    expect(r.findings[1]).toMatchObject({ name: "extract.time_ratio", status: "missing" });
    const other = runGate([samples("gold.new_ratio", [1], true, "gold")], baseline);
    expect(other).toEqual({ failed: false, findings: [{ name: "gold.new_ratio", bench: "gold", status: "new", current: 1 }] });
  });

  it("judges the mean of repeated samples", () => {
    expect(
      runGate(
        collectSamples([
          [{ name: "extract", ratios: [{ name: "extract.speedup", value: 1.7, higherIsBetter: true, detail: "" }], info: {} }],
          [{ name: "extract", ratios: [{ name: "extract.speedup", value: 2.1, higherIsBetter: true, detail: "" }], info: {} }],
        ]),
        baseline,
      ).findings[0],
    ).toMatchObject({ status: "ok", current: 1.9 });
  });
});

describe("targets and baseline validation", () => {
  it("checks targets in their direction", () => {
    expect(targetMet(0.5, { op: ">=", value: 0.5 })).toBe(true);
    expect(targetMet(1.2, { op: "<=", value: 1.1 })).toBe(false);
    expect(targetMet(1, undefined)).toBeUndefined();
  });

  it("rejects a file that is not a baseline", () => {
    expect(() => parseBaseline({ ratios: {} }, "x.json")).toThrow(/x.json is not a benchmark baseline/);
    const bad = JSON.parse(JSON.stringify(baseline)) as Baseline;
    (bad.ratios["extract.speedup"] as unknown as Record<string, unknown>).tolerance = "10%";
    expect(() => parseBaseline(bad, "y.json")).toThrow(/ratio extract.speedup needs numeric value and tolerance/);
  });
});
