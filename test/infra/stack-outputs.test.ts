// Reading a deployed environment's outputs (the CLI's view), and the named-query folder reader.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readQueryFiles } from "../../lib/constructs/athena-named-queries";
import {
  exportName,
  outputsFromExports,
  outputsFromStacks,
  STACK_OUTPUTS,
  stackName,
  stackNames,
  type StackOutputKey,
} from "../../lib/core/stack-outputs";

const keys = Object.keys(STACK_OUTPUTS) as StackOutputKey[];

describe("stack outputs", () => {
  test("stack and export names are stable", () => {
    expect(stackNames("dev")).toEqual([
      "fhir-lakehouse-dev-storage",
      "fhir-lakehouse-dev-ingestion",
      "fhir-lakehouse-dev-processing",
      "fhir-lakehouse-dev-orchestration",
      "fhir-lakehouse-dev-analytics",
      "fhir-lakehouse-dev-monitoring",
    ]);
    expect(exportName("prod", "StateMachineArn")).toBe("fhir-lakehouse-prod-StateMachineArn");
  });

  test("from ListExports: picks this environment's exports only", () => {
    const exports = [
      ...keys.map((k) => ({ Name: exportName("dev", k), Value: `dev-${k}` })),
      ...keys.map((k) => ({ Name: exportName("prod", k), Value: `prod-${k}` })),
    ];
    const out = outputsFromExports("prod", exports);
    expect(out.StateMachineArn).toBe("prod-StateMachineArn");
    expect(Object.keys(out).sort()).toEqual([...keys].sort());
  });

  test("from DescribeStacks: a missing stack is named in the error with how to fix it", () => {
    const stacks = keys
      .filter((k) => STACK_OUTPUTS[k] !== "analytics")
      .map((k) => ({ StackName: stackName("dev", STACK_OUTPUTS[k]), Outputs: [{ OutputKey: k, OutputValue: "v" }] }));
    expect(() => outputsFromStacks("dev", stacks)).toThrow(/lacks outputs AthenaWorkGroup.*npx cdk deploy -c env=dev --all/);
  });
});

describe("readQueryFiles", () => {
  test("one query per .sql file, named after it, described by its leading comments", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "queries-"));
    fs.writeFileSync(
      path.join(dir, "monthly_admissions.sql"),
      "-- Inpatient admissions per month\n-- from gold.encounter_monthly\nSELECT 1\n",
    );
    fs.writeFileSync(path.join(dir, "bare.sql"), "SELECT 2");
    fs.writeFileSync(path.join(dir, "notes.md"), "not a query");
    expect(readQueryFiles(dir)).toEqual([
      { name: "bare", description: "bare", sql: "SELECT 2" },
      {
        name: "monthly_admissions",
        description: "Inpatient admissions per month from gold.encounter_monthly",
        sql: "-- Inpatient admissions per month\n-- from gold.encounter_monthly\nSELECT 1",
      },
    ]);
    expect(readQueryFiles(path.join(dir, "missing"))).toEqual([]);
  });
});
