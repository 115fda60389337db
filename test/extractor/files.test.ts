// Files mode (`--mode files --source DIR`) and the bronze writer's edges: every line is kept or
// counted as a reject with its reason (not JSON, not a resource, unexpected type, invalid UTF-8,
// a line over the cap — a 20 MB line does not break the run), an empty file is fine, parts roll
// over at the size bound, and a large file streams through in bounded memory (child process).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { FileKeySource } from "../../lambdas/extractor/auth/key-source";
import { PROCESS_MEMORY_BUDGET, UnitWriter } from "../../lambdas/extractor/bronze/bronze-writer";
import { LineSplitter } from "../../lambdas/extractor/bronze/ndjson-lines";
import { createExtractorDeps } from "../../lambdas/extractor/extractor-setup";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import { FileStorage, pathToFileUri } from "../../lib/core/storage";
import { countBy, parquetFiles, readBronze, readRows, tempDir } from "./bronze-reader";
import { templateLines, writeNdjson } from "./ndjson-generator";

function filesDeps(out: string, maxLineBytes?: number) {
  return createExtractorDeps({
    connection: {
      baseUrl: "http://127.0.0.1",
      tokenUrl: "http://127.0.0.1",
      clientId: "-",
      keySource: new FileKeySource("-"),
      algorithm: "RS384",
    },
    bronzeUri: out,
    queue: new LocalUnitQueue(),
    settings: maxLineBytes ? { maxLineBytes } : {},
  });
}

describe("files mode", () => {
  let src: string;
  let out: string;
  beforeAll(() => {
    src = tempDir("ndjson-src-");
    out = tempDir("ndjson-out-");
  });
  afterAll(() => {
    fs.rmSync(src, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("keeps every resource byte for byte and counts every other line as a reject with its reason", async () => {
    const good = templateLines(2, 3);
    const huge = `{"resourceType":"Observation","id":"huge","note":"${"x".repeat(20 << 20)}"}`;
    fs.writeFileSync(
      path.join(src, "mixed.ndjson"),
      [
        good[0],
        "not json at all",
        `{"resourceType":"Observation","id":"cut`,
        `{"no":"resourceType"}`,
        `{"resourceType":"Medication","id":"m1"}`,
        huge,
        good[1],
      ].join("\n") + "\n",
    );
    fs.writeFileSync(path.join(src, "rest.ndjson"), good.slice(2).join("\r\n"));
    fs.writeFileSync(path.join(src, "empty.ndjson"), "");
    fs.writeFileSync(
      path.join(src, "bad-utf8.ndjson"),
      Buffer.concat([
        Buffer.from(`{"resourceType":"Patient","id":"u","name":[{"text":"`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from(`"}]}\n`),
      ]),
    );
    fs.writeFileSync(path.join(src, "ignored.txt"), "not an ndjson file");

    const deps = filesDeps(out);
    const s = await runExtraction(
      {
        mode: "files",
        groupIds: [],
        source: src,
        types: [
          "Patient",
          "Observation",
          "Condition",
          "Encounter",
          "MedicationRequest",
          "AllergyIntolerance",
          "Procedure",
          "Immunization",
          "DiagnosticReport",
        ],
      },
      deps,
    );
    const { rows, rejects } = readBronze(out, s.runId);
    const expected = good
      .map((l) => JSON.parse(l) as { resourceType: string; id: string })
      .filter((r) => r.resourceType !== "Practitioner" && r.resourceType !== "Organization");
    expect(rows).toHaveLength(expected.length);
    // the raw text, byte for byte
    const byKey = new Map(
      good.map((l) => [`${(JSON.parse(l) as { resourceType: string }).resourceType}/${(JSON.parse(l) as { id: string }).id}`, l]),
    );
    for (const r of rows) expect(r.resource).toBe(byKey.get(`${r.resource_type}/${r.id}`));
    expect(countBy(rejects, (r) => r.reason as string)).toEqual({
      not_json: 2,
      not_a_resource: 1,
      unexpected_type: 1,
      line_too_large: 1,
      invalid_utf8: 1,
    });
    const tooLarge = rejects.find((r) => r.reason === "line_too_large")!;
    expect(tooLarge.resource_type).toBe("Observation");
    expect(String(tooLarge.line).length).toBeLessThan(10_000);
    expect(rejects.find((r) => r.reason === "unexpected_type")!.resource_type).toBe("Medication");
    expect(rejects.find((r) => String(r.line).startsWith(`{"resourceType":"Observation","id":"cut`))!.resource_type).toBe("Observation");
    expect(s.rejected).toBe(6);
    const m = s.manifest;
    expect(m.mode).toBe("files");
    expect(m.complete).toBe(false);
    expect(m.requested.source).toBe(src);
    expect(m.rejects.byReason).toEqual({ not_json: 2, not_a_resource: 1, unexpected_type: 1, line_too_large: 1, invalid_utf8: 1 });
    expect(m.units).toEqual({ total: 4, done: 4, failed: 0 });
    await deps.http.close();
  });

  it("rolls parts over at the size bound, and writes nothing half-finished", async () => {
    const dir = tempDir("parts-");
    try {
      const storage = new FileStorage();
      const writer = new UnitWriter({
        storage,
        bronzeUri: pathToFileUri(dir),
        runId: "r1",
        ingestDate: "2025-01-02",
        unitIndex: 3,
        source: "test",
        partRawBytes: 200_000,
      });
      const splitter = new LineSplitter(writer);
      const lines = templateLines(10, 1).filter((l) => l.includes('"resourceType":"Observation"'));
      for (const l of lines) {
        splitter.push(Buffer.from(l + "\n"));
        await writer.flushFull();
      }
      splitter.end();
      const result = await writer.finish();
      const files = parquetFiles(dir);
      expect(files.length).toBeGreaterThan(3);
      expect(result.types.Observation).toMatchObject({ resources: lines.length, parts: files.length });
      expect(files.map((f) => path.relative(dir, f))).toEqual(
        Array.from(
          { length: files.length },
          (_, k) => `resource_type=Observation/ingest_date=2025-01-02/run_id=r1/part-0${3000 + k}.parquet`,
        ).sort(),
      );
      expect(files.reduce((a, f) => a + readRows(f).length, 0)).toBe(lines.length);
      // no temporary files left
      expect(fs.readdirSync(path.dirname(files[0])).filter((f) => f.startsWith("."))).toEqual([]);
      expect(PROCESS_MEMORY_BUDGET.bytes).toBe(0);
      // abort() removes what an attempt wrote
      await writer.abort();
      expect(parquetFiles(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // 2 GB in the benchmark (bench/extract.bench.ts); a smaller default here keeps the suite fast
  // on two cores. EXTRACT_BIG_FILE_MB=2048 runs the full size.
  const sizeMb = Number(process.env.EXTRACT_BIG_FILE_MB ?? 300);
  it(`streams a ${sizeMb} MB NDJSON file through with peak RSS under 300 MB`, async () => {
    const dir = tempDir("big-");
    try {
      const srcDir = path.join(dir, "src");
      fs.mkdirSync(srcDir);
      const counts = await writeNdjson(path.join(srcDir, "big.ndjson"), sizeMb << 20);
      const res = spawnSync(
        process.execPath,
        ["-r", "tsx/cjs", path.join(__dirname, "files-import-child.ts"), srcDir, path.join(dir, "bronze")],
        {
          encoding: "utf8",
          maxBuffer: 1 << 20,
        },
      );
      expect(res.stderr).toBe("");
      expect(res.status).toBe(0);
      const r = JSON.parse(res.stdout.trim()) as {
        maxRssBytes: number;
        resources: Record<string, number>;
        rejected: number;
        bytes: number;
      };
      expect(r.resources).toEqual(counts);
      expect(r.rejected).toBe(0);
      expect(r.bytes).toBe(fs.statSync(path.join(srcDir, "big.ndjson")).size);
      expect(r.maxRssBytes).toBeLessThan(300 << 20);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
