import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseBaseline } from "../../bench/gate";
import { discoverBenches } from "../../bench/runner";

const root = path.resolve(__dirname, "../..");
const fixtures = path.join(__dirname, "fixtures");

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-runner-"));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bench(args: string[], series: string) {
  const r = spawnSync(process.execPath, [path.join(root, "bin", "fhir-pipeline.js"), "bench", "--dir", fixtures, ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, SAMPLE_BENCH_SERIES: series },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("fhir-pipeline bench", () => {
  it("discovers *.bench.ts by name", () => {
    expect(discoverBenches(fixtures).map((b) => b.name)).toEqual(["broken", "sample"]);
  });

  it("prints ratios with their targets and verdicts", () => {
    const r = bench(["sample"], "0.8");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sample\.speedup\s+0\.800\s+higher\s+>= 0\.9\s+NOT met/);
    expect(r.stdout).toMatch(/sample\.cost\s+2\.500\s+lower\s+-\s+-/);
    expect(r.stdout).toContain("sample info: size=10");
    expect(r.stderr).toMatch(/\[sample\] scratch .*bench-sample-/);
  });

  it("records a baseline from repeated runs, passes on noise and fails on a regression", () => {
    const file = path.join(tmp, "baseline.json");
    const update = bench(["sample", "--update-baseline", file, "--repeat", "3"], "1.0,1.02,0.98");
    expect(update.code).toBe(0);
    const baseline = parseBaseline(JSON.parse(fs.readFileSync(file, "utf8")), file);
    expect(baseline.machine.cores).toBe(os.cpus().length);
    expect(baseline.ratios["sample.speedup"].samples).toEqual([1.0, 1.02, 0.98]);
    expect(baseline.ratios["sample.speedup"].tolerance).toBe(0.1); // 3 x 2 % is under the 10 % floor

    const noise = bench(["sample", "--compare", file], "0.95");
    expect(noise.code).toBe(0);
    expect(noise.stdout).toContain(`gate passed against ${file}`);

    const regression = bench(["sample", "--compare", file], "0.7");
    expect(regression.code).toBe(1);
    expect(regression.stdout).toMatch(
      /REGRESSION against .*\n\s+sample\.speedup: 0\.700 vs baseline 1\.000, 30\.0% worse \(tolerance 10%\)/,
    );
    expect(regression.stdout).toMatch(/sample\.cost: 2\.857 vs baseline 2\.00\d, 42\.\d% worse/);
  });

  it("records the sizes in the baseline and compares like with like", () => {
    const file = path.join(tmp, "quick.json");
    expect(bench(["sample", "--quick", "--update-baseline", file, "--repeat", "2"], "1.0,1.02").code).toBe(0);
    expect(parseBaseline(JSON.parse(fs.readFileSync(file, "utf8")), file).mode).toBe("quick");
    // Without --quick, a quick baseline makes the run quick.
    const gate = bench(["sample", "--compare", file], "1.0");
    expect(gate.code).toBe(0);
    expect(gate.stderr).toContain("quick=true");
    expect(gate.stdout).toContain(`gate passed against ${file} (quick sizes)`);

    const full = path.join(tmp, "full.json");
    expect(bench(["sample", "--update-baseline", full, "--repeat", "2"], "1.0,1.02").code).toBe(0);
    expect(parseBaseline(JSON.parse(fs.readFileSync(full, "utf8")), full).mode).toBe("full");
    const mismatch = bench(["sample", "--quick", "--compare", full], "1.0");
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain("recorded at the benchmarks' full sizes");
  });

  it("exits non-zero and writes no baseline when a benchmark fails", () => {
    const file = path.join(tmp, "baseline.json");
    const r = bench(["--update-baseline", file, "--json"], "1");
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.failures).toEqual([{ name: "broken", error: "run --local is not available yet" }]);
    expect(out.samples.map((s: { name: string }) => s.name)).toEqual(["sample.speedup", "sample.cost"]);
    expect(fs.existsSync(file)).toBe(false);
    expect(r.stderr).toContain("not writing");
  });

  it("names the available benchmarks when asked for an unknown one", () => {
    const r = bench(["nope"], "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown benchmark nope; available: broken, sample");
  });
});
