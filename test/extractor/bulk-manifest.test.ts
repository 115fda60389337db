// Bulk Data pieces that are pure: the kick-off URL, Epic's manifest quirks, work-unit planning.
import { groupExportUrl, parseBulkManifest, parseRequiresAccessToken } from "../../lambdas/extractor/bulk/bulk-export";
import { bulkUnits } from "../../lambdas/extractor/steps";
import type { RunContext } from "../../lib/core/pipeline-steps";

describe("bulk export", () => {
  it("builds the Group kick-off URL with _type and _since", () => {
    expect(groupExportUrl("https://epic.example/api/FHIR/R4/", "g.1", ["Patient", "Observation"])).toBe(
      "https://epic.example/api/FHIR/R4/Group/g.1/$export?_type=Patient%2CObservation",
    );
    expect(groupExportUrl("https://h/R4", "g", [], "2025-01-01T00:00:00Z")).toBe(
      "https://h/R4/Group/g/$export?_since=2025-01-01T00%3A00%3A00Z",
    );
  });

  it("reads requiresAccessToken as a boolean or Epic's string", () => {
    expect(parseRequiresAccessToken(true)).toBe(true);
    expect(parseRequiresAccessToken("true")).toBe(true);
    expect(parseRequiresAccessToken("True ")).toBe(true);
    expect(parseRequiresAccessToken(false)).toBe(false);
    expect(parseRequiresAccessToken("false")).toBe(false);
    expect(parseRequiresAccessToken(undefined)).toBe(false);
  });

  it("normalises a manifest: relative URLs, absent error/deleted, counts kept", () => {
    const m = parseBulkManifest(
      {
        transactionTime: "2025-01-01T00:00:00Z",
        request: "x",
        requiresAccessToken: "true",
        output: [
          { type: "Patient", url: "files/1.ndjson" },
          { type: "Observation", url: "https://cdn/2.ndjson", count: 5 },
        ],
      },
      "https://h/R4/BulkRequest/9",
    );
    expect(m).toEqual({
      transactionTime: "2025-01-01T00:00:00Z",
      request: "x",
      requiresAccessToken: true,
      output: [
        { type: "Patient", url: "https://h/R4/BulkRequest/files/1.ndjson" },
        { type: "Observation", url: "https://cdn/2.ndjson", count: 5 },
      ],
      error: [],
      deleted: [],
    });
    expect(() => parseBulkManifest({ output: [] }, "https://h")).toThrow("no transactionTime");
    expect(() => parseBulkManifest({ transactionTime: "t", output: [{ type: "Patient" }] }, "https://h")).toThrow(
      "output[0] has no type or url",
    );
  });

  it("plans units: up to N output files of one type each, one per error and deleted file", () => {
    const run: RunContext = { runId: "r", startedAt: "2025-02-03T04:05:06Z", mode: "bulk", groupIds: ["a", "b"], request: {} };
    const f = (type: string, n: number) => ({ type, url: `https://h/${type}-${n}` });
    const units = bulkUnits(
      run,
      "b",
      1,
      ["Patient", "Observation"],
      {
        transactionTime: "t",
        request: "",
        requiresAccessToken: true,
        output: [f("Observation", 1), f("Observation", 2), f("Observation", 3), f("Patient", 1), f("Observation", 4)],
        error: [f("OperationOutcome", 1)],
        deleted: [f("Bundle", 1)],
      },
      2,
    );
    expect(units.map((u) => [u.unitId, u.unitIndex, u.fileKind, u.resourceType, u.urls.length])).toEqual([
      ["g1-f00000", 100_000, "output", "Observation", 2],
      ["g1-f00001", 100_001, "output", "Observation", 1],
      ["g1-f00002", 100_002, "output", "Patient", 1],
      ["g1-f00003", 100_003, "output", "Observation", 1],
      ["g1-f00004", 100_004, "error", "OperationOutcome", 1],
      ["g1-f00005", 100_005, "deleted", "Bundle", 1],
    ]);
    expect(units.every((u) => u.ingestDate === "2025-02-03" && u.groupId === "b" && u.requiresAccessToken)).toBe(true);
  });
});
