// Test helpers: read what a run wrote to bronze (Parquet, via parquet-wasm + apache-arrow), start
// the simulator with a fresh extractor around it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readParquetTable } from "../../lambdas/extractor/bronze/bronze-parquet";
import { createExtractorDeps, connectionFromClientFile } from "../../lambdas/extractor/extractor-setup";
import type { ExtractorDeps, ExtractorSettings } from "../../lambdas/extractor/extractor-deps";
import type { HttpSettings } from "../../lambdas/extractor/extractor-setup";
import { LocalUnitQueue } from "../../lib/../lambdas/extractor/unit-queue";
import type { SimulatorHandle } from "../../lib/simulator";

export interface BronzeRowJson {
  resource_type: string;
  id: string;
  version_id: string | null;
  last_updated: number | null;
  content_hash: string;
  patient_ref: string | null;
  run_id: string;
  source: string;
  ingested_at: number;
  resource: string;
}

/** Every Parquet file under dir (recursively), skipping hidden and _runs files. */
export function parquetFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".parquet")) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export function readRows<T = BronzeRowJson>(file: string): T[] {
  const t = readParquetTable(fs.readFileSync(file));
  const rows: T[] = [];
  for (const r of t) rows.push(r!.toJSON() as unknown as T);
  return rows;
}

/** Bronze rows of a run (all types), and the rejects. */
export function readBronze(bronzeDir: string, runId?: string): { rows: BronzeRowJson[]; rejects: Array<Record<string, unknown>> } {
  const rows: BronzeRowJson[] = [];
  const rejects: Array<Record<string, unknown>> = [];
  for (const f of parquetFiles(bronzeDir)) {
    if (runId && !f.includes(`run_id=${runId}`)) continue;
    if (f.includes(`${path.sep}_rejects${path.sep}`)) rejects.push(...readRows<Record<string, unknown>>(f));
    else if (!f.includes(`${path.sep}_runs${path.sep}`)) rows.push(...readRows(f));
  }
  return { rows, rejects };
}

export function countBy<T>(items: T[], key: (t: T) => string | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) {
    const k = key(i);
    if (k) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function depsFor(
  sim: SimulatorHandle,
  bronzeDir: string,
  settings: Partial<ExtractorSettings> = {},
  http: Partial<HttpSettings> = {},
): ExtractorDeps {
  return createExtractorDeps({
    connection: connectionFromClientFile(sim.clientConfig),
    bronzeUri: bronzeDir,
    queue: new LocalUnitQueue(),
    settings,
    http: { retry: { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 200 }, ...http },
  });
}
