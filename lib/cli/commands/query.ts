// `fhir-pipeline query`: SQL or a named query (analytics/queries/NAME.sql) over the lake's gold and
// silver tables. Locally (--workdir / --lake) it runs spark-jobs' DuckDB + PyIceberg runner
// (python -m fhir_lakehouse.local_query): no JVM, answers in well under a second.
//
// Where a query runs is a QueryTarget. Today there is one kind, "local"; an Athena target
// (`--env NAME`, the deployed environment's workgroup) is added beside it: a new QueryTarget
// variant, its option in register(), a branch in resolveTarget() and one in runQuery().
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
export const SPARK_JOBS_PYTHON = path.join(REPO_ROOT, "spark-jobs", ".venv", "bin", "python");

/** Where a query runs. */
export type QueryTarget =
  | { kind: "local"; workdir?: string; lake?: string }
  /** A deployed environment's Athena workgroup (lib/aws/athena-query.ts). */
  | { kind: "athena"; env: string; region?: string; outputsFile?: string };

/** What to run and how to print it. */
export interface QueryRequest {
  sql?: string;
  named?: string;
  list?: boolean;
  json?: boolean;
  maxRows?: number;
}

export interface QueryCliOptions {
  workdir?: string;
  lake?: string;
  named?: string;
  list?: boolean;
  json?: boolean;
  maxRows?: string;
  env?: string;
  region?: string;
  outputsFile?: string;
}

/** Checks the options and says where the query runs (exactly one place, except for --list). */
export function resolveTarget(opts: QueryCliOptions): QueryTarget {
  if (opts.env) {
    if (opts.workdir || opts.lake) throw new Error("give either --env NAME (Athena) or --workdir/--lake (local), not both");
    return { kind: "athena", env: opts.env, region: opts.region, outputsFile: opts.outputsFile };
  }
  if (opts.workdir && opts.lake) throw new Error("give either --workdir or --lake, not both");
  if (!opts.workdir && !opts.lake && !opts.list)
    throw new Error("say where to query: --workdir DIR (a local run's work dir) or --lake URI");
  return { kind: "local", workdir: opts.workdir, lake: opts.lake };
}

/** Checks the query part of the options: SQL or --named (or --list). */
export function resolveRequest(sql: string | undefined, opts: QueryCliOptions): QueryRequest {
  if (sql && opts.named) throw new Error("give either SQL or --named NAME, not both");
  if (!sql && !opts.named && !opts.list) throw new Error('give the SQL to run ("SELECT ...") or --named NAME (see --list)');
  let maxRows: number | undefined;
  if (opts.maxRows !== undefined) {
    maxRows = Number(opts.maxRows);
    if (!Number.isInteger(maxRows) || maxRows < 1) throw new Error("--max-rows must be a positive integer");
  }
  return { sql, named: opts.named, list: opts.list, json: opts.json, maxRows };
}

/** The local runner's command line (after `python -m fhir_lakehouse.local_query`). */
export function localQueryArgs(target: QueryTarget, req: QueryRequest): string[] {
  const args: string[] = [];
  if (req.list) return ["--list"];
  if (target.kind !== "local") throw new Error(`not a local query target: ${target.kind}`);
  if (target.workdir) args.push("--workdir", path.resolve(target.workdir));
  if (target.lake) args.push("--lake", target.lake);
  if (req.named) args.push("--named", req.named);
  if (req.json) args.push("--json");
  if (req.maxRows !== undefined) args.push("--max-rows", String(req.maxRows));
  if (req.sql) args.push("--", req.sql);
  return args;
}

export interface QueryIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  python?: string;
}

/** Runs the query and returns the exit code (0 ok, 2 a query the runner refused or that failed). */
export async function runQuery(target: QueryTarget, req: QueryRequest, io: QueryIo): Promise<number> {
  if (target.kind === "athena") {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const athena = require("../../aws/athena-query") as typeof import("../../aws/athena-query");
    const where = { envName: target.env, region: target.region, outputsFile: target.outputsFile, out: io.stdout };
    if (req.list) await athena.listQueriesInAws(where);
    else await athena.queryInAws({ ...where, sql: req.sql, named: req.named, json: req.json, maxRows: req.maxRows });
    return 0;
  }
  const python = io.python ?? SPARK_JOBS_PYTHON;
  if (!fs.existsSync(python)) throw new Error(`${python} is missing: run \`node scripts/setup.js --python\` first`);
  const child = spawn(python, ["-m", "fhir_lakehouse.local_query", ...localQueryArgs(target, req)], {
    cwd: path.join(REPO_ROOT, "spark-jobs"),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(io.stdout, { end: false });
  child.stderr.pipe(io.stderr, { end: false });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export function register(program: Command): void {
  program
    .command("query")
    .description("run SQL or a named query (analytics/queries) over the lake's gold and silver tables, locally with DuckDB")
    .argument("[sql]", 'the SQL to run, e.g. "SELECT * FROM gold.patient_summary LIMIT 5" (tables: gold.<table>, silver.<view>)')
    .option("--workdir <dir>", "a local run's work directory (its lake/ holds the Iceberg catalog)")
    .option("--lake <uri>", "a lake root instead (file:///… or a path; holds catalog/iceberg.db)")
    .option("--named <name>", "run the named query NAME (analytics/queries/NAME.sql)")
    .option("--list", "list the named queries with their descriptions")
    .option("--json", "print the rows as a JSON array of objects instead of a table")
    .option("--max-rows <n>", "print at most N rows of the table")
    .option("--env <name>", "instead of a local lake: a deployed environment's Athena workgroup (prints bytes scanned and cost)")
    .option("--region <region>", "with --env: AWS region of the environment (default: AWS_REGION or the profile's)")
    .option("--outputs-file <file>", "with --env: read stack outputs from this `cdk deploy --outputs-file` file")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  fhir-pipeline query --workdir .work --named monthly_admissions",
        '  fhir-pipeline query --workdir .work --json "SELECT sex, count(*) AS n FROM gold.patient_summary GROUP BY sex"',
        "  fhir-pipeline query --list",
        "  fhir-pipeline query --env prod --named monthly_admissions",
      ].join("\n"),
    )
    .action(async (sql: string | undefined, opts: QueryCliOptions) => {
      const target = resolveTarget(opts);
      const request = resolveRequest(sql, opts);
      const code = await runQuery(target, request, { stdout: process.stdout, stderr: process.stderr });
      if (code !== 0) process.exitCode = code;
    });
}
