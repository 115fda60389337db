// Reconciliation of one run, per resource type, across the layers (pure):
//   served by Epic (the simulator's /_admin/stats)  =  bronze rows + bronze rejects
//   bronze rows − duplicates − silver's own rejects =  silver.resources rows (after deletes)
// The first line proves the extraction kept or counted every resource it was sent; the second
// that silver holds exactly what bronze holds. The second is an equality only when the run was a
// complete snapshot of its scope (silver then deletes what the snapshot no longer has); otherwise
// silver also keeps rows of earlier runs, and only `silver >= expected` can be checked.

/** What silver did to one type in the run (silver_job TypeCounts). */
export interface SilverTypeCounts {
  read?: number;
  duplicates?: number;
  inserted?: number;
  updated?: number;
  unchanged?: number;
  ignored_older?: number;
  deleted?: number;
  rejected?: number;
}

export interface ReconciliationInput {
  /** Distinct resources served per type; undefined for a real Epic (nothing to compare with). */
  served?: Record<string, number>;
  bronze: Record<string, number>;
  /** Bronze reject lines per type ("" = type unknown). */
  bronzeRejected: Record<string, number>;
  /** silver.resources rows per type after the run. */
  silver: Record<string, number>;
  /** What the silver job did per type (duplicates, rejects, deletes). */
  silverChanges?: Record<string, SilverTypeCounts>;
  /** The run was a complete snapshot of its scope (the manifest's `complete`). */
  completeSnapshot: boolean;
  /**
   * The types the snapshot covers (the manifest's scope.types; empty or absent: every type).
   * Types outside it (e.g. Observation crawled by category in search mode) get the lower bound.
   */
  snapshotTypes?: readonly string[];
}

export interface TypeReconciliation {
  type: string;
  served: number | null;
  bronze: number;
  rejected: number;
  silver: number;
  /** bronze − duplicates − silver rejects: what silver should hold of this run. */
  expectedSilver: number;
  /** served = bronze + rejected (null when nothing was served to compare with). */
  extractionReconciled: boolean | null;
  /** silver = expectedSilver (type in a complete snapshot) or silver >= expectedSilver (otherwise). */
  silverReconciled: boolean;
  silverCheck: "exact" | "at-least";
  reconciled: boolean;
}

export interface Reconciliation {
  types: TypeReconciliation[];
  /** Reject lines whose resource type could not be told (they make per-type counts fall short). */
  untypedRejects: number;
  /** Every type reconciles, and no reject is of an unknown type. */
  reconciled: boolean;
  /** "exact" when every type's silver count is an equality, else "at-least" for some types. */
  silverCheck: "exact" | "at-least";
  /** Why it does not reconcile, one line per problem (types and counts only). */
  problems: string[];
}

const n = (m: Record<string, number> | undefined, k: string): number => Number(m?.[k] ?? 0);

/** Reconciles one run's counts (see the module comment). */
export function reconcile(input: ReconciliationInput): Reconciliation {
  const typeNames = new Set<string>([
    ...Object.keys(input.served ?? {}),
    ...Object.keys(input.bronze),
    ...Object.keys(input.bronzeRejected).filter((t) => t !== ""),
    ...Object.keys(input.silver),
  ]);
  const problems: string[] = [];
  const types = [...typeNames].sort().map((type): TypeReconciliation => {
    const served = input.served ? n(input.served, type) : null;
    const bronze = n(input.bronze, type);
    const rejected = n(input.bronzeRejected, type);
    const silver = n(input.silver, type);
    const changes = input.silverChanges?.[type] ?? {};
    const expectedSilver = bronze - Number(changes.duplicates ?? 0) - Number(changes.rejected ?? 0);
    const extractionReconciled = served === null ? null : served === bronze + rejected;
    const exact = input.completeSnapshot && (!input.snapshotTypes?.length || input.snapshotTypes.includes(type));
    const silverReconciled = exact ? silver === expectedSilver : silver >= expectedSilver;
    if (extractionReconciled === false) problems.push(`${type}: served ${served} != bronze ${bronze} + rejected ${rejected}`);
    if (!silverReconciled) {
      problems.push(`${type}: silver ${silver} ${exact ? "!=" : "<"} bronze ${bronze} - duplicates - silver rejects = ${expectedSilver}`);
    }
    return {
      type,
      served,
      bronze,
      rejected,
      silver,
      expectedSilver,
      extractionReconciled,
      silverReconciled,
      silverCheck: exact ? "exact" : "at-least",
      reconciled: extractionReconciled !== false && silverReconciled,
    };
  });
  const untypedRejects = n(input.bronzeRejected, "");
  if (untypedRejects > 0) problems.push(`${untypedRejects} rejected line(s) of unknown resource type`);
  return {
    types,
    untypedRejects,
    reconciled: problems.length === 0,
    silverCheck: types.every((t) => t.silverCheck === "exact") ? "exact" : "at-least",
    problems,
  };
}
