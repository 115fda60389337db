import { loadConfig } from "../../config/load";
import { cpuSecondsFromStat, runMeasured } from "../../bench/process-cpu";
import {
  CANDIDATES,
  CANDIDATE_TARGET,
  SPARK_DEFAULTS,
  nonDefaultKeys,
  trialOrder,
  tuningRatios,
  tuningTrials,
} from "../../bench/spark-tuning-plan";

const configured = loadConfig("local").processing.localSpark;

describe("Spark tuning plan", () => {
  const tuned = { ...configured, shufflePartitions: 4, kryo: true, storageFraction: 0.3 };

  it("compares every non-default setting with Spark's default", () => {
    const keys = nonDefaultKeys(tuned);
    expect(keys).toEqual(["shufflePartitions", "storageFraction", "kryo"]);
    const trials = tuningTrials(tuned, {});
    expect(trials.map((t) => t.name)).toEqual(["configured", "defaults", ...keys.map((k) => `default:${k}`)]);
    expect(trials[1].settings).toMatchObject({
      shufflePartitions: 200,
      autoBroadcastJoinThresholdBytes: 10485760,
      storageFraction: 0.5,
      kryo: false,
      driverMemory: configured.driverMemory,
    });
    const shuffle = trials.find((t) => t.revertedKey === "shufflePartitions");
    expect(shuffle?.settings).toEqual({ ...tuned, shufflePartitions: 200 });
  });

  it("needs no per-key trial when only one key differs", () => {
    expect(tuningTrials({ ...configured, ...SPARK_DEFAULTS, shufflePartitions: 8 }, {}).map((t) => t.name)).toEqual([
      "configured",
      "defaults",
    ]);
  });

  it("tries each candidate value the config does not use, one at a time", () => {
    // The local config keeps Spark's defaults: every candidate is tried against them.
    expect(nonDefaultKeys(configured)).toEqual([]);
    const trials = tuningTrials(configured);
    expect(trials.map((t) => t.name)).toEqual(["configured", ...Object.keys(CANDIDATES).map((k) => `candidate:${k}`)]);
    expect(trials.find((t) => t.candidateKey === "kryo")?.settings).toEqual({ ...configured, kryo: true });
    // A candidate the config already uses is not a trial.
    expect(tuningTrials(tuned).map((t) => t.name)).not.toContain("candidate:kryo");
  });

  it("rotates the trial order between repetitions", () => {
    expect([0, 1, 2, 3].map((rep) => trialOrder(["a", "b", "c"], rep).join(""))).toEqual(["abc", "bca", "cab", "abc"]);
  });

  it("turns median times into ratios against the configured settings", () => {
    const settings = { ...configured, ...SPARK_DEFAULTS, shufflePartitions: 4, kryo: true };
    const trials = tuningTrials(settings, {});
    const seconds = new Map([
      ["configured", [10, 11, 30]], // median 11: one slow outlier does not count
      ["defaults", [22]],
      ["default:shufflePartitions", [20, 24]],
      ["default:kryo", [10.45]],
    ]);
    const ratios = Object.fromEntries(tuningRatios(trials, seconds, settings).map((r) => [r.name, r]));
    expect(ratios["spark_tuning.silver.defaults"].value).toBeCloseTo(2, 10);
    expect(ratios["spark_tuning.silver.shufflePartitions"]).toMatchObject({ higherIsBetter: true, target: { op: ">=", value: 1 } });
    expect(ratios["spark_tuning.silver.shufflePartitions"].value).toBeCloseTo(2, 10);
    expect(ratios["spark_tuning.silver.kryo"].value).toBeCloseTo(0.95, 10); // kryo does not pay for itself here
    expect(ratios["spark_tuning.silver.kryo"].detail).toContain("kryo=false (Spark default) / with kryo=true (configured)");
    expect(() => tuningRatios(trials, new Map([["configured", [1]]]), settings)).toThrow(/no time measured for trial defaults/);
  });

  it("judges a candidate as paying for itself only below the candidate target", () => {
    const trials = tuningTrials(configured, { kryo: true });
    const seconds = new Map([
      ["configured", [50]],
      ["candidate:kryo", [51]],
    ]);
    const [ratio] = tuningRatios(trials, seconds, configured);
    expect(ratio).toMatchObject({
      name: "spark_tuning.silver.candidate.kryo",
      higherIsBetter: true,
      target: { op: ">=", value: CANDIDATE_TARGET },
    });
    expect(ratio.value).toBeCloseTo(1.02, 10);
    expect(ratio.detail).toContain("kryo=true (candidate) / with kryo=false (configured)");
  });
});

describe("CPU time of a process tree", () => {
  it("reads utime + stime from /proc/PID/stat, whatever the command name holds", () => {
    // pid (comm) state ppid ... utime stime: fields 14 and 15, in clock ticks (100/s).
    const fields = Array.from({ length: 20 }, (_, i) => String(i + 3));
    fields[11] = "250"; // utime
    fields[12] = "50"; // stime
    expect(cpuSecondsFromStat(`42 (java (x) y) ${fields.join(" ")}`)).toBeCloseTo(3, 10);
  });

  it("counts the CPU of a child's children (a job and the process it starts)", async () => {
    // A shell that starts a busy child and waits for it: the child's CPU must be counted.
    const script = "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'";
    const { cpuSeconds, wallSeconds } = await runMeasured("sh", ["-c", `${script}; true`], { cwd: "/", what: "busy loop", intervalMs: 20 });
    expect(cpuSeconds).toBeGreaterThan(0.1);
    expect(cpuSeconds).toBeLessThanOrEqual(wallSeconds * 2 + 0.05);
  });
});
