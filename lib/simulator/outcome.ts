// OperationOutcome bodies as Epic sends them (an Epic code in details.coding where Epic has one).
import { EPIC_OUTCOME_SYSTEM } from "./codes";

export interface OutcomeIssue {
  severity: "fatal" | "error" | "warning" | "information";
  code: string;
  text: string;
  epicCode?: string;
  diagnostics?: string;
}

export function operationOutcome(...issues: OutcomeIssue[]): Record<string, unknown> {
  return {
    resourceType: "OperationOutcome",
    issue: issues.map((i) => {
      const issue: Record<string, unknown> = {
        severity: i.severity,
        code: i.code,
        details: i.epicCode
          ? { coding: [{ system: EPIC_OUTCOME_SYSTEM, code: i.epicCode, display: i.text }], text: i.text }
          : { text: i.text },
      };
      if (i.diagnostics) issue.diagnostics = i.diagnostics;
      return issue;
    }),
  };
}

/** Epic's "no results" outcome (code 4101), the only entry of an empty search Bundle. */
export const NO_RESULTS = operationOutcome({
  severity: "warning",
  code: "processing",
  epicCode: "4101",
  text: "Resource request returns no results.",
});
