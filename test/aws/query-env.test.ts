// `query --env`: an Athena query through the environment's workgroup against moto running as a real
// HTTP server on 127.0.0.1. moto starts and tracks the query execution (StartQueryExecution,
// GetQueryExecution) and serves the rows seeded through its /moto-api/static/athena/query-results
// endpoint, but answers GetQueryResults in ONE page, ignoring MaxResults/NextToken. So, and only for
// that call, an in-process SDK middleware splits moto's answer into pages the way Athena does
// (MaxResults rows per page, the header row first on page one, NextToken until the end).
import type { GetQueryResultsCommandOutput } from "@aws-sdk/client-athena";
import { CreateNamedQueryCommand } from "@aws-sdk/client-athena";
import { queryInAws, runAthenaQuery, renderQueryResult } from "../../lib/aws/athena-query";
import type { AwsClients } from "../../lib/aws/clients";
import { ATHENA_BYTES_PER_MB, athenaQueryCost } from "../../lib/aws/cost";
import { emulatorEnv, runCli } from "./cli-process";
import { ENV_NAME, useDeployedEnvironment } from "./deployed-env-fixture";

const pageCalls: { maxResults?: number; nextToken?: string }[] = [];

/** The SDK-side pager standing in for Athena's paging, which moto lacks (see the file comment). */
function athenaPagingMiddleware(client: AwsClients["athena"]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName !== "GetQueryResultsCommand") return result;
      const input = args.input as { MaxResults?: number; NextToken?: string };
      pageCalls.push({ maxResults: input.MaxResults, nextToken: input.NextToken });
      const output = result.output as GetQueryResultsCommandOutput;
      const all = output.ResultSet?.Rows ?? [];
      const start = input.NextToken ? Number(input.NextToken) : 0;
      const end = start + (input.MaxResults ?? 1000);
      output.ResultSet = { ...output.ResultSet, Rows: all.slice(start, end) };
      output.NextToken = end < all.length ? String(end) : undefined;
      return result;
    },
    { step: "initialize", name: "athenaPagingStandIn" },
  );
}

const COLUMNS = ["patient_id", "code", "value"];

/** Seeds moto's next query result: the header row then `n` data rows, as Athena returns a SELECT. */
async function seedResult(n: number): Promise<void> {
  const header = { Data: COLUMNS.map((c) => ({ VarCharValue: c })) };
  const rows = Array.from({ length: n }, (_, i) => ({
    Data: [
      { VarCharValue: `p${String(i).padStart(5, "0")}` },
      { VarCharValue: "8867-4" },
      i % 7 === 0 ? {} : { VarCharValue: String(60 + (i % 40)) },
    ],
  }));
  await h.moto.api("/moto-api/static/athena/query-results", {
    region: "us-east-1",
    results: [
      {
        rows: [header, ...rows],
        column_info: COLUMNS.map((c) => ({
          Name: c,
          Label: c,
          Type: "varchar",
          CatalogName: "hive",
          SchemaName: "gold",
          TableName: "t",
          Precision: 0,
          Scale: 0,
          Nullable: "UNKNOWN",
          CaseSensitive: true,
        })),
      },
    ],
  });
}

const h = useDeployedEnvironment((clients) => athenaPagingMiddleware(clients.athena));

describe("query --env", () => {
  it("pages through a multi-page result and reports bytes scanned and cost", async () => {
    await seedResult(2345);
    pageCalls.length = 0;
    const result = await runAthenaQuery(h.clients, h.env, {
      sql: "SELECT patient_id, code, value FROM gold.latest_observation",
      pageSize: 1000,
      pollIntervalMs: 50,
    });
    // 2,346 rows with the header: pages of 1000, 1000, 346; every NextToken followed.
    expect(pageCalls).toEqual([{ maxResults: 1000 }, { maxResults: 1000, nextToken: "1000" }, { maxResults: 1000, nextToken: "2000" }]);
    expect(result.pages).toBe(3);
    expect(result.columns.map((c) => c.name)).toEqual(COLUMNS);
    expect(result.rows).toHaveLength(2345);
    expect(result.rows[0]).toEqual(["p00000", "8867-4", null]);
    expect(result.rows[2344]).toEqual(["p02344", "8867-4", String(60 + (2344 % 40))]);
    // moto reports 0 bytes scanned: Athena still bills the 10 MB minimum.
    expect(result.bytesScanned).toBe(0);
    expect(result.billedBytes).toBe(10 * ATHENA_BYTES_PER_MB);
    expect(result.costUsd).toBeCloseTo(athenaQueryCost(0), 15);

    const text = renderQueryResult(result);
    expect(text.split("\n")[0]).toMatch(/^patient_id\s+\| code\s+\| value$/);
    expect(text).toContain("2345 rows in 3 pages; scanned 0 bytes (billed 10.0 MB), cost $0.0000477");
  });

  it("stops reading at --max-rows", async () => {
    await seedResult(2500);
    const result = await runAthenaQuery(h.clients, h.env, { sql: "SELECT 1", pageSize: 500, maxRows: 700, pollIntervalMs: 50 });
    expect(result.rows).toHaveLength(700);
    expect(result.truncated).toBe(true);
    expect(result.pages).toBe(2);
  });

  it("runs a named query of the workgroup by its name", async () => {
    await h.clients.athena.send(
      new CreateNamedQueryCommand({
        Name: "condition_prevalence",
        Database: "gold",
        QueryString: "SELECT code, patients FROM condition_prevalence",
        WorkGroup: h.env.workgroup,
      }),
    );
    await seedResult(3);
    const result = await runAthenaQuery(h.clients, h.env, { named: "condition_prevalence", pollIntervalMs: 50 });
    expect(result.query).toBe("SELECT code, patients FROM condition_prevalence");
    expect(result.database).toBe("gold");
    expect(result.rows).toHaveLength(3);
    await expect(runAthenaQuery(h.clients, h.env, { named: "no_such_query" })).rejects.toThrow(
      'no named query "no_such_query" in workgroup fhir-lakehouse-dev-analysts (known: condition_prevalence)',
    );
  });

  it("prints the rows as JSON objects with bytes scanned and cost (query --env --json)", async () => {
    await seedResult(2);
    const out: string[] = [];
    await queryInAws({
      envName: ENV_NAME,
      sql: "SELECT patient_id, code, value FROM latest_observation",
      json: true,
      pollIntervalMs: 50,
      clients: h.clients,
      out: { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream,
    });
    const printed = JSON.parse(out.join(""));
    expect(printed.rows).toEqual([
      { patient_id: "p00000", code: "8867-4", value: null },
      { patient_id: "p00001", code: "8867-4", value: "61" },
    ]);
    expect(printed.database).toBe("fhir_gold_dev");
    expect(printed.billedBytes).toBe(10 * ATHENA_BYTES_PER_MB);
    expect(printed.costUsd).toBeCloseTo(athenaQueryCost(0), 15);
  });

  it("runs from the command line: query --env with a table, --json and --list", async () => {
    // The CLI process has no paging stand-in: moto answers the whole result in one page.
    await seedResult(3);
    const table = await runCli(
      ["query", "--env", ENV_NAME, "SELECT patient_id, code, value FROM latest_observation"],
      emulatorEnv(h.moto.endpoint),
    );
    expect(table.stderr).toBe("");
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^patient_id \| code\s+\| value$/);
    expect(lines[2]).toMatch(/^p00000\s+\| 8867-4 \| NULL$/);
    expect(lines[lines.length - 1]).toMatch(/^3 rows in 1 page; scanned 0 bytes \(billed 10\.0 MB\), cost \$0\.0000477 \[query \S+\]$/);

    await seedResult(2);
    const json = await runCli(["query", "--env", ENV_NAME, "--named", "condition_prevalence", "--json"], emulatorEnv(h.moto.endpoint));
    expect(json.code).toBe(0);
    const printed = JSON.parse(json.stdout);
    expect(printed.query).toBe("SELECT code, patients FROM condition_prevalence");
    expect(printed.rows).toHaveLength(2);

    const list = await runCli(["query", "--env", ENV_NAME, "--list"], emulatorEnv(h.moto.endpoint));
    expect(list.code).toBe(0);
    expect(list.stdout).toBe("condition_prevalence\n");
  });
});
