// The maintenance policy travels from the config into the Maintenance Task's arguments (the same
// definition runs locally and in Step Functions), and the run summary keeps what the job did.
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { loadConfig, parseConfig } from "../../config/load";
import { maintenanceJobArguments, renderStateMachineDefinition } from "../../lib/core/state-machine-definition";
import { maintenanceDigest, renderChangeLine, type RunSummary } from "../../lib/pipeline/run-summary";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = path.join(ROOT, "spark-jobs", ".venv", "bin", "python");

describe("maintenance policy", () => {
  test("config.maintenance becomes the Maintenance job's flags, and only its", () => {
    const config = loadConfig("local");
    const raw = JSON.parse(JSON.stringify(config)) as Record<string, Record<string, unknown>>;
    raw.maintenance.compactMinSmallFiles = 25;
    raw.maintenance.orphanFilesIntervalDays = 14;
    const changed = parseConfig(raw, "test");
    const lake = { bronze: "file:///l/bronze", silver: "file:///l/silver", gold: "file:///l/gold", metrics: "file:///l/metrics" };
    const states = renderStateMachineDefinition(changed, { lake, catalog: "local" }).States as Record<string, Record<string, unknown>>;
    const args = (s: string) => JSON.stringify(states[s]);
    expect(args("Maintenance")).toContain("'--compact-min-small-files', '25'");
    expect(args("Maintenance")).toContain("'--orphan-interval', '14d'");
    expect(args("SilverJob")).not.toContain("--compact-min-small-files");
    expect(args("GoldJob")).not.toContain("--orphan-interval");
  });

  test("a config without a maintenance section gets the documented defaults", () => {
    const raw = JSON.parse(JSON.stringify(loadConfig("dev"))) as Record<string, unknown>;
    delete raw.maintenance;
    expect(parseConfig(raw, "test").maintenance).toEqual(loadConfig("dev").maintenance);
  });

  test("the maintenance job accepts every flag the definition passes", () => {
    const flags = maintenanceJobArguments(loadConfig("local").maintenance);
    // argparse only (--help after the flags): no Spark session is started.
    const out = execFileSync(PYTHON, ["-m", "fhir_lakehouse.maintenance_job", ...flags, "--help"], {
      cwd: path.join(ROOT, "spark-jobs"),
      encoding: "utf8",
    });
    for (const flag of flags.filter((f) => f.startsWith("--"))) expect(out).toContain(flag);
  });

  test("the summary keeps the tables that had a step due", () => {
    const output = {
      tables: [
        { table: "lake.silver.observation", steps: { compact: "12 small files since the last compaction >= 10" } },
        { table: "lake.silver.patient", steps: {} },
        { table: "lake.gold.patient_summary", steps: {}, error: "IOException: x" },
      ],
    };
    const digest = maintenanceDigest(output)!;
    expect(digest).toEqual({ tables: 3, maintained: { "lake.silver.observation": ["compact"] }, failed: ["lake.gold.patient_summary"] });
    expect(maintenanceDigest(undefined)).toBeUndefined();
    const summary = {
      changed: { silver: {}, silverTotal: { inserted: 1, updated: 2, deleted: 0, unchanged: 9 }, gold: {} },
      maintenance: digest,
    } as unknown as RunSummary;
    expect(renderChangeLine(summary)).toContain("maintenance: 1 of 3 tables had a step due");
  });
});

describe("change line", () => {
  test("gold tables are counted as incremental, rebuilt or unchanged (no work), never mixed up", () => {
    const gold = {
      latest_observation: { mode: "per_patient" },
      observation_daily_stats: { mode: "affected_groups" },
      encounter_monthly: { mode: "full" },
      patient_summary: { mode: "unchanged" },
    };
    const summary = {
      changed: { silver: {}, silverTotal: { inserted: 0, updated: 3, deleted: 0, unchanged: 9 }, gold },
    } as unknown as RunSummary;
    expect(renderChangeLine(summary)).toBe(
      "silver: 0 inserted, 3 updated, 0 deleted, 9 unchanged; gold: 2 of 4 tables refreshed incrementally, 1 rebuilt, 1 unchanged",
    );
  });
});
