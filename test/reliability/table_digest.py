"""Content digests of a local run's Iceberg tables, for the reliability tests (test/reliability).

    spark-jobs/.venv/bin/python test/reliability/table_digest.py LAKE_DIR

Prints one JSON object: {"namespace.table": {"rows": N, "sha256": HEX, "duplicateKeys": D}}.
Each table is read at its current snapshot through PyIceberg (no JVM); the columns that name a
run or a moment of processing (run ids, ingest/commit timestamps) are dropped, every row becomes
canonical JSON, the rows are sorted and hashed. Two lakes built from the same data by different
runs (a crashed-and-resumed run, a re-submitted run) must give the same digests. `duplicateKeys`
counts rows beyond the first per key: (resource_type, id) in silver.resources, id in the views.
Only digests and counts are printed, never row content.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from fhir_lakehouse.local_query import catalog_tables

# Columns that say which run wrote a row, or when it was processed: not content.
PROCESSING_COLUMNS = frozenset(
    {
        "run_id",
        "_run_id",
        "ingested_at",
        "rejected_at",
        "changed_at",
        "finished_at",
    }
)
# Tables that log what each run did (one row per run, per change): history, not state.
RUN_LOG_TABLES = frozenset({"silver.runs", "silver.resource_changes", "silver.changed_patients"})


def _canonical(value: Any) -> Any:  # noqa: ANN401 (any Arrow value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def table_digest(metadata_location: str, name: str) -> dict[str, Any]:
    """rows, sha256 of the sorted canonical rows, and duplicate keys of one table."""
    from pyiceberg.table import StaticTable

    table = StaticTable.from_metadata(metadata_location)
    arrow = table.scan().to_arrow()
    keep = [c for c in arrow.column_names if c not in PROCESSING_COLUMNS]
    rows = arrow.select(keep).to_pylist()
    lines = sorted(json.dumps(_canonical(r), sort_keys=True) for r in rows)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    key: tuple[str, ...] | None = None
    if name == "silver.resources":
        key = ("resource_type", "id")
    elif name.startswith("silver.") and "id" in keep and "_content_hash" in arrow.column_names:
        key = ("id",)
    duplicates = 0
    if key is not None:
        counts = Counter(tuple(r[k] for k in key) for r in rows)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
    return {"rows": len(rows), "sha256": h.hexdigest(), "duplicateKeys": duplicates}


def lake_digests(lake_dir: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (namespace, table), location in sorted(catalog_tables(lake_dir).items()):
        name = f"{namespace}.{table}"
        if name in RUN_LOG_TABLES:
            continue
        out[name] = table_digest(location, name)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: table_digest.py LAKE_DIR", file=sys.stderr)
        return 2
    print(json.dumps(lake_digests(Path(argv[0])), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
