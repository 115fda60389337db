// `fhir-pipeline query --env NAME "SQL" | --named NAME`: one query through the environment's Athena
// workgroup (whose enforced settings set the result location, encryption and the bytes-scanned
// cutoff), every page of its results, and what it cost.
import {
  GetNamedQueryCommand,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  ListNamedQueriesCommand,
  StartQueryExecutionCommand,
  type NamedQuery,
} from "@aws-sdk/client-athena";
import { setTimeout as sleep } from "node:timers/promises";
import { AwsClients } from "./clients";
import { athenaBilledBytes, athenaQueryCost, formatBytes, formatUsd } from "./cost";
import { resolveEnvironment, type DeployedEnvironment } from "./environment";
import { OperatorError, withOperatorErrors } from "./errors";

export interface AthenaQueryOptions {
  /** The SQL text, or… */
  sql?: string;
  /** …the name of a named query saved in the workgroup (the gold layer's named queries). */
  named?: string;
  /** Database (Glue) the query runs in; default: the named query's, else the gold database. */
  database?: string;
  /** Rows per GetQueryResults page (1..1000). */
  pageSize?: number;
  /** Stop reading after this many rows (the query itself still completes). */
  maxRows?: number;
  pollIntervalMs?: number;
  signal?: AbortSignal;
}

export interface AthenaQueryResult {
  queryExecutionId: string;
  query: string;
  database?: string;
  columns: { name: string; type: string }[];
  rows: (string | null)[][];
  /** True when maxRows stopped the reading early. */
  truncated: boolean;
  pages: number;
  bytesScanned: number;
  billedBytes: number;
  costUsd: number;
  engineMillis?: number;
}

/** Finds a named query of the workgroup by name. */
export async function findNamedQuery(clients: AwsClients, workgroup: string, name: string): Promise<NamedQuery> {
  const all = await listNamedQueries(clients, workgroup);
  const hit = all.find((q) => q.Name === name);
  if (hit) return hit;
  throw new OperatorError(`no named query "${name}" in workgroup ${workgroup} (known: ${all.map((q) => q.Name).join(", ") || "none"})`);
}

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

/** Pure: drops the header row Athena puts first in a SELECT's first page. */
export function withoutHeaderRow(rows: (string | null)[][], columns: { name: string }[], statementType?: string): (string | null)[][] {
  if (statementType && statementType !== "DML") return rows;
  const first = rows[0];
  if (first && first.length === columns.length && first.every((v, i) => v === columns[i].name)) return rows.slice(1);
  return rows;
}

export async function runAthenaQuery(
  clients: AwsClients,
  env: DeployedEnvironment,
  options: AthenaQueryOptions,
): Promise<AthenaQueryResult> {
  if (!options.sql === !options.named) throw new OperatorError("give either a SQL string or --named NAME (not both)");
  let query = options.sql ?? "";
  let database = options.database;
  if (options.named) {
    const named = await findNamedQuery(clients, env.workgroup, options.named);
    query = named.QueryString ?? "";
    database ??= named.Database;
  }
  database ??= env.goldDatabase;
  const started = await clients.athena.send(
    new StartQueryExecutionCommand({
      QueryString: query,
      WorkGroup: env.workgroup,
      QueryExecutionContext: database ? { Database: database } : undefined,
    }),
  );
  const id = started.QueryExecutionId!;
  const pollMs = options.pollIntervalMs ?? 500;
  let execution;
  for (;;) {
    execution = (await clients.athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution;
    const state = execution?.Status?.State ?? "QUEUED";
    if (TERMINAL.has(state)) {
      if (state !== "SUCCEEDED") {
        const reason = (execution?.Status?.StateChangeReason ?? execution?.Status?.AthenaError?.ErrorMessage ?? "no reason given").replace(
          /\s+/g,
          " ",
        );
        const scanned = execution?.Statistics?.DataScannedInBytes ?? 0;
        throw new OperatorError(
          `query ${id} ${state.toLowerCase()}: ${reason} (scanned ${scanned} bytes, cost ${formatUsd(athenaQueryCost(scanned))})`,
        );
      }
      break;
    }
    await sleep(pollMs, undefined, { signal: options.signal });
  }

  const pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 1000);
  let columns: { name: string; type: string }[] = [];
  const rows: (string | null)[][] = [];
  let nextToken: string | undefined;
  let pages = 0;
  let truncated = false;
  do {
    const page = await clients.athena.send(
      new GetQueryResultsCommand({ QueryExecutionId: id, MaxResults: pageSize, NextToken: nextToken }),
    );
    if (pages === 0)
      columns = (page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? []).map((c) => ({ name: c.Label ?? c.Name ?? "", type: c.Type ?? "" }));
    let pageRows = (page.ResultSet?.Rows ?? []).map((r) => (r.Data ?? []).map((d) => d.VarCharValue ?? null));
    if (pages === 0) pageRows = withoutHeaderRow(pageRows, columns, execution?.StatementType);
    rows.push(...pageRows);
    pages++;
    nextToken = page.NextToken;
    if (options.maxRows !== undefined && rows.length >= options.maxRows) {
      truncated = rows.length > options.maxRows || Boolean(nextToken);
      rows.length = Math.min(rows.length, options.maxRows);
      break;
    }
  } while (nextToken);

  const bytesScanned = execution?.Statistics?.DataScannedInBytes ?? 0;
  return {
    queryExecutionId: id,
    query,
    database,
    columns,
    rows,
    truncated,
    pages,
    bytesScanned,
    billedBytes: athenaBilledBytes(bytesScanned),
    costUsd: athenaQueryCost(bytesScanned),
    engineMillis: execution?.Statistics?.EngineExecutionTimeInMillis,
  };
}

/** Pure: the result as an aligned text table, then a line with rows, bytes scanned and cost. */
export function renderQueryResult(result: AthenaQueryResult): string {
  const header = result.columns.map((c) => c.name);
  const cells = result.rows.map((r) => r.map((v) => (v === null ? "NULL" : v)));
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length))));
  const fmt = (row: string[]) =>
    row
      .map((c, i) => (c.length > widths[i] ? c.slice(0, widths[i] - 1) + "…" : c.padEnd(widths[i])))
      .join(" | ")
      .trimEnd();
  const lines = header.length ? [fmt(header), widths.map((w) => "-".repeat(w)).join("-+-"), ...cells.map(fmt)] : [];
  lines.push(
    `${result.rows.length} row${result.rows.length === 1 ? "" : "s"}${result.truncated ? " (truncated)" : ""} in ${result.pages} page${result.pages === 1 ? "" : "s"}; ` +
      `scanned ${formatBytes(result.bytesScanned)} (billed ${formatBytes(result.billedBytes)}), cost ${formatUsd(result.costUsd)} [query ${result.queryExecutionId}]`,
  );
  return lines.join("\n") + "\n";
}

export interface QueryInAwsOptions extends Omit<AthenaQueryOptions, "signal"> {
  envName: string;
  region?: string;
  outputsFile?: string;
  json?: boolean;
  clients?: AwsClients;
  out?: NodeJS.WritableStream;
}

/**
 * The `query --env` command: resolves the environment, runs the query in its workgroup and prints
 * a table (or with json, one object: columns, rows as objects, bytes scanned, cost).
 */
export async function queryInAws(options: QueryInAwsOptions): Promise<AthenaQueryResult> {
  const clients = options.clients ?? new AwsClients({ region: options.region });
  const out = options.out ?? process.stdout;
  try {
    return await withOperatorErrors({ envName: options.envName, region: options.region }, async () => {
      const env = await resolveEnvironment({ envName: options.envName, outputsFile: options.outputsFile, clients });
      const result = await runAthenaQuery(clients, env, options);
      if (options.json) {
        const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i] ?? null])));
        out.write(JSON.stringify({ ...result, rows }) + "\n");
      } else {
        out.write(renderQueryResult(result));
      }
      return result;
    });
  } finally {
    if (!options.clients) clients.destroy();
  }
}

/** Every named query of a workgroup (name, description, database). */
export async function listNamedQueries(clients: AwsClients, workgroup: string): Promise<NamedQuery[]> {
  const all: NamedQuery[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.athena.send(new ListNamedQueriesCommand({ WorkGroup: workgroup, NextToken: nextToken, MaxResults: 50 }));
    for (const id of page.NamedQueryIds ?? []) {
      const got = (await clients.athena.send(new GetNamedQueryCommand({ NamedQueryId: id }))).NamedQuery;
      if (got) all.push(got);
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return all.sort((a, b) => (a.Name ?? "").localeCompare(b.Name ?? ""));
}

/** `query --env NAME --list`: the named queries saved in the environment's workgroup. */
export async function listQueriesInAws(options: {
  envName: string;
  region?: string;
  outputsFile?: string;
  clients?: AwsClients;
  out?: NodeJS.WritableStream;
}) {
  const clients = options.clients ?? new AwsClients({ region: options.region });
  const out = options.out ?? process.stdout;
  try {
    return await withOperatorErrors({ envName: options.envName, region: options.region }, async () => {
      const env = await resolveEnvironment({ envName: options.envName, outputsFile: options.outputsFile, clients });
      const queries = await listNamedQueries(clients, env.workgroup);
      for (const q of queries) out.write(`${q.Name}${q.Description ? `  ${q.Description}` : ""}\n`);
      if (queries.length === 0) out.write(`no named queries in workgroup ${env.workgroup}\n`);
      return queries;
    });
  } finally {
    if (!options.clients) clients.destroy();
  }
}
