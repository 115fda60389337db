// `fhir-pipeline query`: the real CLI against a real Iceberg lake (SQLite catalog + Parquet,
// written by test/query/write_sample_lake.py with PyIceberg), run by the real local runner
// (DuckDB over the Iceberg tables, spark-jobs' virtualenv).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { localQueryArgs, resolveRequest, resolveTarget, runQuery, SPARK_JOBS_PYTHON } from "../../lib/cli/commands/query";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "bin", "fhir-pipeline.js");
const QUERIES = fs
  .readdirSync(path.join(ROOT, "analytics", "queries"))
  .filter((f) => f.endsWith(".sql"))
  .map((f) => f.replace(/\.sql$/, ""));

let workdir: string;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "query", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "query-cli-"));
  const r = spawnSync(SPARK_JOBS_PYTHON, [path.join(__dirname, "write_sample_lake.py"), path.join(workdir, "lake")], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`write_sample_lake.py failed: ${r.stderr}`);
});

afterAll(() => {
  fs.rmSync(workdir, { recursive: true, force: true });
});

describe("option handling", () => {
  test("one target, and SQL or a named query", () => {
    expect(resolveTarget({ workdir: "w" })).toEqual({ kind: "local", workdir: "w", lake: undefined });
    expect(() => resolveTarget({ workdir: "w", lake: "l" })).toThrow("either --workdir or --lake");
    expect(() => resolveTarget({})).toThrow("--workdir DIR");
    expect(resolveTarget({ list: true }).kind).toBe("local");
    expect(() => resolveRequest("SELECT 1", { named: "x" })).toThrow("either SQL or --named");
    expect(() => resolveRequest(undefined, {})).toThrow("--named NAME");
    expect(() => resolveRequest("SELECT 1", { maxRows: "0" })).toThrow("--max-rows");
  });

  test("the runner's command line keeps SQL after --", () => {
    expect(localQueryArgs({ kind: "local", lake: "file:///l" }, { sql: "-- c\nSELECT 1", json: true, maxRows: 3 })).toEqual([
      "--lake",
      "file:///l",
      "--json",
      "--max-rows",
      "3",
      "--",
      "-- c\nSELECT 1",
    ]);
    expect(localQueryArgs({ kind: "local", workdir: "/w" }, { named: "monthly_admissions" })).toEqual([
      "--workdir",
      "/w",
      "--named",
      "monthly_admissions",
    ]);
    expect(localQueryArgs({ kind: "local" }, { list: true })).toEqual(["--list"]);
  });
});

describe("fhir-pipeline query", () => {
  test("--named NAME --json prints the rows as JSON", () => {
    const r = cli(["--workdir", workdir, "--named", "monthly_admissions", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    // IMP in May (3); ACUTE in June (2); ambulatory encounters are not admissions
    expect(JSON.parse(r.stdout)).toEqual([
      { month: "2024-05-01", admissions: 3 },
      { month: "2024-06-01", admissions: 2 },
    ]);
  });

  test("SQL prints an aligned table", () => {
    const r = cli(["--workdir", workdir, "SELECT patient_key, age_years FROM gold.patient_summary ORDER BY patient_key"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      ["patient_key | age_years", "------------+----------", "q1          | 51", "q2          | 8", "(2 rows)", ""].join("\n"),
    );
  });

  test("--lake takes the lake root directly", () => {
    const r = cli(["--lake", path.join(workdir, "lake"), "--json", "SELECT count(*) AS n FROM gold.encounter_monthly"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ n: 3 }]);
  });

  test("--list names every query of analytics/queries", () => {
    const r = cli(["--list"]);
    expect(r.status).toBe(0);
    for (const name of QUERIES) expect(r.stdout).toContain(name);
  });

  test("errors say what is wrong and exit non-zero", () => {
    const unknown = cli(["--workdir", workdir, "SELECT * FROM gold.nope"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown table(s) gold.nope; the lake has: gold.encounter_monthly, gold.patient_summary");
    const named = cli(["--workdir", workdir, "--named", "no_such_query"]);
    expect(named.status).toBe(2);
    expect(named.stderr).toContain("no named query 'no_such_query'");
    const both = cli(["--workdir", workdir, "--lake", workdir, "SELECT 1"]);
    expect(both.status).toBe(1);
    expect(both.stderr).toContain("either --workdir or --lake");
  });

  test("--help documents the options", () => {
    const r = cli(["--help"]);
    expect(r.status).toBe(0);
    for (const opt of ["--workdir", "--lake", "--named", "--list", "--json", "--max-rows"]) expect(r.stdout).toContain(opt);
  });

  test("runQuery streams the runner's output and returns its exit code", async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    const code = await runQuery(
      { kind: "local", workdir },
      { sql: "SELECT sex FROM gold.patient_summary ORDER BY sex", json: true },
      { stdout: out, stderr: err },
    );
    expect(code).toBe(0);
    expect(JSON.parse(Buffer.concat(chunks).toString("utf8"))).toEqual([{ sex: "female" }, { sex: "male" }]);
  });
});
