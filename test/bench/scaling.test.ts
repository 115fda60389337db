import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type ScalingPoint, fitPowerLaw, span, stageExponents } from "../../bench/scaling-fit";
import { incrementalRatios, runScaling, scalingSizes } from "../../bench/scaling.bench";

describe("power-law fit", () => {
  it("recovers the exponent and coefficient of exact power laws", () => {
    const xs = [1000, 3000, 10_000];
    const linear = fitPowerLaw(
      xs,
      xs.map((x) => 0.002 * x),
    );
    expect(linear.exponent).toBeCloseTo(1, 10);
    expect(linear.coefficient).toBeCloseTo(0.002, 10);
    expect(linear.r2).toBeCloseTo(1, 10);
    expect(
      fitPowerLaw(
        xs,
        xs.map((x) => 5e-6 * x ** 1.5),
      ).exponent,
    ).toBeCloseTo(1.5, 10);
  });

  it("shows fixed costs as an exponent below 1", () => {
    const xs = [1000, 3000, 10_000];
    const fit = fitPowerLaw(
      xs,
      xs.map((x) => 20 + 0.001 * x),
    ); // a JVM start-up plus linear work
    expect(fit.exponent).toBeGreaterThan(0);
    expect(fit.exponent).toBeLessThan(0.5);
    expect(fit.r2).toBeLessThan(1);
  });

  it("is the least-squares slope on noisy points", () => {
    // log-log points (0,0), (1,1.2), (2,1.9): slope = sum(dx*dy)/sum(dx^2) = 0.95
    const fit = fitPowerLaw([1, Math.E, Math.E ** 2], [1, Math.exp(1.2), Math.exp(1.9)]);
    expect(fit.exponent).toBeCloseTo(0.95, 10);
  });

  it("refuses what it cannot fit", () => {
    expect(() => fitPowerLaw([1], [1])).toThrow(/at least two points/);
    expect(() => fitPowerLaw([1, 2], [0, 1])).toThrow(/positive/);
    expect(() => fitPowerLaw([2, 2], [1, 3])).toThrow(/two different x values/);
    expect(() => fitPowerLaw([1, 2], [1])).toThrow(/2 x values but 1 y values/);
  });
});

describe("stage exponents", () => {
  const points: ScalingPoint[] = [
    { size: 100, resources: 10_000, stepSeconds: { extract: 10, silver: 30, gold: 5 } },
    { size: 300, resources: 30_000, stepSeconds: { extract: 30, silver: 60, gold: 5 } },
    { size: 1000, resources: 100_000, stepSeconds: { extract: 100, silver: 150, maintenance: 2 } },
  ];

  it("fits every step present at every size and names the others", () => {
    const { fits, skipped } = stageExponents(points);
    expect(fits.map((f) => f.step)).toEqual(["extract", "silver"]);
    expect(fits[0].fit.exponent).toBeCloseTo(1, 10);
    expect(fits[1].fit.exponent).toBeGreaterThan(0.6);
    expect(fits[1].fit.exponent).toBeLessThan(0.75);
    expect(skipped).toEqual(["gold", "maintenance"]);
    expect(span(points)).toBe(10);
  });

  it("uses three sizes spanning 10x by default and in quick mode", () => {
    for (const quick of [false, true]) {
      const sizes = scalingSizes(quick, undefined);
      expect(sizes.length).toBeGreaterThanOrEqual(3);
      expect(sizes[sizes.length - 1] / sizes[0]).toBeGreaterThanOrEqual(10);
    }
    expect(scalingSizes(false, "5,50,500")).toEqual([5, 50, 500]);
    expect(() => scalingSizes(false, "5,50")).toThrow(/at least three/);
  });
});

describe("incremental ratios", () => {
  it("compares the steps both runs ran, in total and per step", () => {
    const r = incrementalRatios({ extract: 2, silver: 20, gold: 8, maintenance: 1 }, { extract: 2, silver: 5, gold: 3 });
    expect(r.total).toBeCloseTo(10 / 30, 10);
    expect(r.stages).toEqual({ extract: 1, silver: 0.25, gold: 0.375 });
    expect(() => incrementalRatios({ a: 1 }, { b: 1 })).toThrow(/no step in common/);
  });
});

describe("the scaling benchmark", () => {
  const fixtures = path.join(__dirname, "fixtures");
  let workdir: string;
  const lines: string[] = [];
  const opts = () => ({ quick: true, workdir, log: (l: string) => lines.push(l) });
  beforeEach(() => {
    workdir = fs.mkdtempSync(path.join(os.tmpdir(), "scaling-"));
  });
  afterEach(() => fs.rmSync(workdir, { recursive: true, force: true }));

  it("fits each stage from the metrics the pipeline runs record", async () => {
    const result = await runScaling(opts(), path.join(fixtures, "linear-pipeline-cli.js"));
    const byName = Object.fromEntries(result.ratios.map((r) => [r.name, r]));
    expect(Object.keys(byName)).toEqual([
      "scaling.extract.exponent",
      "scaling.silver.exponent",
      "scaling.gold.exponent",
      "scaling.incremental_vs_first",
    ]);
    // 100 patients: first 5 + 20 + 3 s, day 1 5 + 2 + 3 s.
    expect(byName["scaling.incremental_vs_first"].value).toBeCloseTo(10 / 28, 6);
    expect(byName["scaling.incremental_vs_first"]).toMatchObject({ higherIsBetter: false, target: { op: "<=", value: 0.5 } });
    expect(result.info).toMatchObject({ incremental_silver_vs_first: 0.1, incremental_gold_vs_first: 1 });
    expect(byName["scaling.extract.exponent"].value).toBeCloseTo(1, 6);
    expect(byName["scaling.silver.exponent"].value).toBeCloseTo(1, 6);
    expect(byName["scaling.gold.exponent"].value).toBeCloseTo(0, 6);
    expect(byName["scaling.silver.exponent"]).toMatchObject({ higherIsBetter: false, target: { op: "<=", value: 1.1 } });
    expect(result.info).toMatchObject({ sizes: "10,30,100", resources: "500,1500,5000", span: 10 });
    expect(lines.some((l) => l.includes("ran 100 patients"))).toBe(true);
    expect(fs.readdirSync(workdir).sort()).toEqual(["patients-10", "patients-100", "patients-30"]);
  });

  it("fails with a clear message, and no numbers, while run --local is not available", async () => {
    await expect(runScaling(opts(), path.join(fixtures, "unavailable-cli.js"))).rejects.toThrow(
      /^run --local is not available yet \(.*not in this checkout yet\)/,
    );
  });
});
