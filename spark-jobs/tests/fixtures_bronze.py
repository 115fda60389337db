"""Builds real bronze runs for tests: Parquet partitions (pyarrow, zstd) and a run manifest.

Follows the bronze contract (lake_contract.json) exactly: the partition path template, the column
names and types, `_runs/{run}/manifest.json` and `_rejects/run_id={run}/`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fhir_lakehouse.lake_contract import CONTRACT

_ARROW = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "int64": pa.int64()}
BRONZE_ARROW_SCHEMA = pa.schema(
    [pa.field(c["name"], _ARROW[c["type"]], c["nullable"]) for c in CONTRACT["bronze"]["columns"]]
)
REJECT_ARROW_SCHEMA = pa.schema(
    [
        pa.field(c["name"], _ARROW[c["type"]], c["nullable"])
        for c in CONTRACT["bronze"]["rejectColumns"]
    ]
)


def content_hash(resource: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) without meta.versionId/lastUpdated."""
    body = json.loads(json.dumps(resource))
    meta = body.get("meta")
    if isinstance(meta, dict):
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        if not meta:
            body.pop("meta")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _patient_ref(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource['id']}"
    for field in ("subject", "patient"):
        ref = (resource.get(field) or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    return None


def _parse_instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class BronzeRow:
    """One bronze row: a resource as served (or broken JSON text standing in for one)."""

    resource_type: str
    id: str
    text: str
    content_hash: str
    version_id: str | None = None
    last_updated: datetime | None = None
    patient_ref: str | None = None


def row(resource: dict[str, Any]) -> BronzeRow:
    """A bronze row for a resource, with the key columns the extractor derives from it."""
    meta = resource.get("meta") or {}
    return BronzeRow(
        resource_type=resource["resourceType"],
        id=resource["id"],
        text=json.dumps(resource, separators=(",", ":")),
        content_hash=content_hash(resource),
        version_id=meta.get("versionId"),
        last_updated=_parse_instant(meta.get("lastUpdated")),
        patient_ref=_patient_ref(resource),
    )


def broken_row(resource_type: str, rid: str, text: str) -> BronzeRow:
    """A bronze row whose `resource` text is not valid JSON (as if bronze had been damaged)."""
    return BronzeRow(resource_type, rid, text, hashlib.sha256(text.encode()).hexdigest())


def patient(pid: str, family: str = "Doe", **extra: Any) -> dict[str, Any]:
    """A small Patient."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": extra.pop("gender", "female"),
        "birthDate": extra.pop("birthDate", "1980-02-03"),
        "name": [{"family": family, "given": ["Ann", "B"]}],
        **extra,
    }


def observation(oid: str, pid: str, value: float = 5.0, **extra: Any) -> dict[str, Any]:
    """A small Observation (a lab value) of patient `pid`."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": extra.pop("status", "final"),
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": extra.pop("effectiveDateTime", "2024-03-01T10:00:00Z"),
        "valueQuantity": {"value": value, "unit": "%"},
        **extra,
    }


def condition(cid: str, pid: str, code: str = "44054006", **extra: Any) -> dict[str, Any]:
    """A small Condition of patient `pid`."""
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        **extra,
    }


def write_bronze_run(
    lake_root: Path,
    run_id: str,
    rows: Iterable[BronzeRow | dict[str, Any]],
    *,
    complete: bool = False,
    groups: Sequence[str] = (),
    types: Sequence[str] | None = None,
    deleted: Sequence[tuple[str, str]] = (),
    ingest_date: str = "2025-01-15",
    ingested_at: datetime | None = None,
    rows_per_file: int = 1000,
    rejects: Sequence[dict[str, Any]] = (),
    source: str = "bulk",
    list_files: bool = True,
) -> Path:
    """Writes one run: part files per type, the manifest, optional reject lines. Returns bronze."""
    bronze = lake_root / CONTRACT["layers"]["bronze"]
    at = ingested_at or datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
    by_type: dict[str, list[BronzeRow]] = defaultdict(list)
    for r in rows:
        br = r if isinstance(r, BronzeRow) else row(r)
        by_type[br.resource_type].append(br)
    template = CONTRACT["bronze"]["partitionTemplate"]
    written: list[str] = []
    for rtype, items in by_type.items():
        for part, start in enumerate(range(0, len(items), rows_per_file)):
            chunk = items[start : start + rows_per_file]
            rel = template.format(
                resourceType=rtype, ingestDate=ingest_date, runId=run_id, part=f"{part:05d}"
            )
            path = bronze / rel
            written.append(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist(
                [
                    {
                        "resource_type": r.resource_type,
                        "id": r.id,
                        "version_id": r.version_id,
                        "last_updated": r.last_updated,
                        "content_hash": r.content_hash,
                        "patient_ref": r.patient_ref,
                        "run_id": run_id,
                        "source": source,
                        "ingested_at": at,
                        "resource": r.text,
                    }
                    for r in chunk
                ],
                schema=BRONZE_ARROW_SCHEMA,
            )
            pq.write_table(table, path, compression="zstd")
    if rejects:
        rej_dir = bronze / CONTRACT["bronze"]["rejectsDir"] / f"run_id={run_id}"
        rej_dir.mkdir(parents=True, exist_ok=True)
        rej_rows = [
            {
                "run_id": run_id,
                "source": source,
                "resource_type": r.get("resource_type"),
                "line_number": r.get("line_number", 1),
                "reason": r.get("reason", "invalid JSON"),
                "line": r.get("line", "{"),
                "rejected_at": at,
            }
            for r in rejects
        ]
        pq.write_table(
            pa.Table.from_pylist(rej_rows, schema=REJECT_ARROW_SCHEMA),
            rej_dir / "part-00000.parquet",
            compression="zstd",
        )
        written.append(f"{CONTRACT['bronze']['rejectsDir']}/run_id={run_id}/part-00000.parquet")
    # The extractor's RunManifest (lambdas/extractor/run-records.ts), the fields silver reads.
    by_reject_type: dict[str, int] = defaultdict(int)
    for r in rejects:
        if r.get("resource_type"):
            by_reject_type[r["resource_type"]] += 1
    manifest: dict[str, Any] = {
        "runId": run_id,
        "complete": complete,
        "scope": {"groups": list(groups), "types": list(types or sorted(by_type))},
        "deleted": [{"resourceType": t, "id": i} for t, i in deleted],
        "resources": {t: len(v) for t, v in sorted(by_type.items())},
        "rejects": {
            "total": len(rejects),
            "byType": dict(by_reject_type),
            "untyped": sum(1 for r in rejects if not r.get("resource_type")),
        },
    }
    if list_files:
        manifest["files"] = written
    run_dir = bronze / CONTRACT["bronze"]["runsDir"] / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONTRACT["bronze"]["manifestFile"]).write_text(json.dumps(manifest, indent=2))
    return bronze
