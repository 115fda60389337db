// The summary of one local run: what `run --local --json` prints and what the demo shows as
// tables (pure: building and rendering; local-run.ts gathers the numbers). Ids, counts and
// timings only.
import type { LayerCensus } from "./spark-step-server";
import type { Reconciliation, SilverTypeCounts } from "./reconciliation";

export interface LayerCounts {
  /** Distinct resources the server sent (null: a real Epic, not counted). */
  served: number | null;
  bronze: number;
  rejected: number;
  silver: number;
}

export interface TypeChanges {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

export interface GoldTableChange {
  mode: string;
  /** Why the gold job chose the mode (e.g. "12 of 20 patients changed: full is cheaper"). */
  reason?: string;
  addedRecords: number;
  deletedRecords: number;
  seconds?: number;
}

export interface RunSummary {
  runId: string;
  status: "succeeded" | "failed";
  /** Set when the run failed: the state machine's error. */
  error?: { error: string; cause: string };
  mode: "bulk" | "search";
  source:
    { kind: "simulator"; patients: number; seed: number; profile: string; day: number; faults?: string } | { kind: "epic"; config: string };
  resumed: boolean;
  workdir: string;
  lake: string;
  report?: string;
  /** Per resource type: counts at each layer. */
  layers: Record<string, LayerCounts>;
  totals: LayerCounts;
  /** What the run changed in silver (per type) and in gold (per table). */
  changed: { silver: Record<string, TypeChanges>; silverTotal: TypeChanges; gold: Record<string, GoldTableChange> };
  /** What the Maintenance Task did: tables looked at, and the steps run per table that had one due. */
  maintenance?: MaintenanceDigest;
  /** Seconds per stage (extract, silver, gold, maintenance, metrics) and in total. */
  stages: Record<string, number>;
  /** Seconds the local Spark session took to start (overlapping the extraction). */
  sparkStartupSeconds?: number;
  silverTables: Record<string, number>;
  goldTables: Record<string, number>;
  reconciled: boolean;
  reconciliation: {
    silverCheck: Reconciliation["silverCheck"];
    problems: string[];
    untypedRejects: number;
    /**
     * A resumed run reuses the units an earlier attempt finished; their server is gone, so for
     * them `served` counts what that attempt recorded (resources + rejects) instead.
     */
    unitsFromEarlierAttempt?: number;
  };
  simulator?: { requests: number; throttled: number; faults: Record<string, number> };
}

export interface MaintenanceDigest {
  tables: number;
  /** Table -> the steps run on it (compact, rewrite_manifests, expire, remove_orphans). */
  maintained: Record<string, string[]>;
  failed: string[];
}

/** The maintenance job's JSON report -> what the summary keeps (undefined if it printed none). */
export function maintenanceDigest(output: unknown): MaintenanceDigest | undefined {
  const tables = (output as { tables?: unknown } | undefined)?.tables;
  if (!Array.isArray(tables)) return undefined;
  const digest: MaintenanceDigest = { tables: tables.length, maintained: {}, failed: [] };
  for (const t of tables as { table?: unknown; steps?: unknown; error?: unknown }[]) {
    if (typeof t.table !== "string") continue;
    if (t.error) digest.failed.push(t.table);
    const steps = t.steps && typeof t.steps === "object" ? Object.keys(t.steps) : [];
    if (steps.length) digest.maintained[t.table] = steps;
  }
  return digest;
}

const ZERO_CHANGES: TypeChanges = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };

/** Silver's per-type counts -> the summary's change counts (rejected resources are not changes). */
export function silverChanges(types: Record<string, SilverTypeCounts> | undefined): {
  silver: Record<string, TypeChanges>;
  silverTotal: TypeChanges;
} {
  const silver: Record<string, TypeChanges> = {};
  const total = { ...ZERO_CHANGES };
  for (const [type, c] of Object.entries(types ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const t: TypeChanges = { inserted: c.inserted ?? 0, updated: c.updated ?? 0, deleted: c.deleted ?? 0, unchanged: c.unchanged ?? 0 };
    silver[type] = t;
    for (const k of Object.keys(total) as (keyof TypeChanges)[]) total[k] += t[k];
  }
  return { silver, silverTotal: total };
}

/** Per-type layer counts from a reconciliation (which has already lined the types up). */
export function layerCounts(rec: Reconciliation): { layers: Record<string, LayerCounts>; totals: LayerCounts } {
  const layers: Record<string, LayerCounts> = {};
  const totals: LayerCounts = { served: null, bronze: 0, rejected: 0, silver: 0 };
  for (const t of rec.types) {
    layers[t.type] = { served: t.served, bronze: t.bronze, rejected: t.rejected, silver: t.silver };
    if (t.served !== null) totals.served = (totals.served ?? 0) + t.served;
    totals.bronze += t.bronze;
    totals.rejected += t.rejected;
    totals.silver += t.silver;
  }
  totals.rejected += rec.untypedRejects;
  return { layers, totals };
}

/** The census's gold table rows, and silver tables other than the bookkeeping ones. */
export function tableRows(census: LayerCensus | undefined): { silverTables: Record<string, number>; goldTables: Record<string, number> } {
  return { silverTables: { ...(census?.silverTables ?? {}) }, goldTables: { ...(census?.gold ?? {}) } };
}

// ---------------------------------------------------------------------------------------------
// Terminal rendering.

/** A plain text table: first column left-aligned, the others right-aligned. */
export function textTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export const fmtSeconds = (s: number | undefined): string => (s === undefined ? "-" : s >= 100 ? `${s.toFixed(0)} s` : `${s.toFixed(1)} s`);

/** Resources per type at each layer, with the totals. */
export function renderLayerTable(summary: RunSummary): string {
  const dash = (v: number | null) => (v === null ? "-" : v);
  const rows = Object.entries(summary.layers).map(([type, c]) => [type, dash(c.served), c.bronze, c.rejected, c.silver]);
  const t = summary.totals;
  rows.push(["total", dash(t.served), t.bronze, t.rejected, t.silver]);
  return textTable(["resource type", "served", "bronze rows", "rejected", "silver rows"], rows);
}

/** Seconds per stage. */
export function renderStageTable(summary: RunSummary): string {
  const rows = Object.entries(summary.stages).map(([stage, s]) => [stage, fmtSeconds(s)]);
  return textTable(["stage", "time"], rows);
}

/** One line on how much the run changed. */
export function renderChangeLine(summary: RunSummary): string {
  const c = summary.changed.silverTotal;
  const gold = Object.entries(summary.changed.gold);
  const count = (mode: string): number => gold.filter(([, g]) => g.mode === mode).length;
  // "unchanged": the table's silver inputs did not move, so gold did no work for it.
  const untouched = count("unchanged");
  const rebuilt = count("full");
  const goldPart = gold.length
    ? `; gold: ${gold.length - untouched - rebuilt} of ${gold.length} tables refreshed incrementally, ${rebuilt} rebuilt` +
      (untouched ? `, ${untouched} unchanged` : "")
    : "";
  const m = summary.maintenance;
  const maintained = m ? Object.keys(m.maintained).length : 0;
  const maintPart = m ? `; maintenance: ${maintained} of ${m.tables} tables had a step due` : "";
  return `silver: ${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted, ${c.unchanged} unchanged${goldPart}${maintPart}`;
}

/** The human-readable end of a run (the demo prints more around it). */
export function renderSummaryText(summary: RunSummary): string {
  const out: string[] = [];
  const src =
    summary.source.kind === "simulator"
      ? `simulator, ${summary.source.patients} patients, seed ${summary.source.seed}, day ${summary.source.day}`
      : `Epic (${summary.source.config})`;
  out.push(`run ${summary.runId} ${summary.status}${summary.resumed ? " (resumed)" : ""} · ${summary.mode} mode · ${src}`);
  if (summary.error) out.push(`error: ${summary.error.error}: ${summary.error.cause}`);
  out.push("", renderLayerTable(summary), "", renderStageTable(summary), "", renderChangeLine(summary));
  if (summary.reconciled) {
    out.push(
      summary.reconciliation.silverCheck === "exact"
        ? "reconciled: for every type, served = bronze + rejected, and silver holds exactly what bronze holds"
        : "reconciled: for every type, served = bronze + rejected, and silver holds at least what bronze holds (types outside the snapshot keep earlier rows)",
    );
  } else if (summary.status !== "succeeded") {
    out.push("not reconciled: the run did not finish");
  } else {
    out.push(`NOT reconciled:\n  ${summary.reconciliation.problems.join("\n  ")}`);
  }
  const reused = summary.reconciliation.unitsFromEarlierAttempt;
  if (reused)
    out.push(`(resumed: ${reused} work units came from the interrupted attempt; "served" counts them as that attempt recorded them)`);
  if (summary.report) out.push(`HTML report: ${summary.report}`);
  return out.join("\n") + "\n";
}
