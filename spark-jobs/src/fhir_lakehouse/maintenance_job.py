"""Table maintenance for silver and gold: compaction, manifest rewrite, snapshot expiry, orphans.

    python -m fhir_lakehouse.maintenance_job --lake file:///work/lake
        [--older-than 3d] [--retain-last 5] [--orphan-older-than 3d] [--namespaces silver,gold]

Per table, in this order (the Iceberg Spark procedures of catalog `lake`):
1. rewrite_data_files: small files compacted, and data files with delete files (gold's
   merge-on-read MERGEs) rewritten without the deleted rows (sort strategy where the table has a
   sort order, so gold stays sorted by patient; binpack otherwise);
2. rewrite_manifests: many small manifests (one per commit) merged, so planning stays fast;
3. expire_snapshots: snapshots older than --older-than expired, always keeping the last
   --retain-last and every tagged snapshot (gold's watermarks are tags, see gold_incremental);
4. remove_orphan_files: files no snapshot references and older than --orphan-older-than (the
   safety margin: a file a concurrent writer has written but not yet committed is young, so it is
   never touched; the margin may not be below one hour).
It reports, per table, data files, bytes, snapshots and manifests before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.lake_contract import CONTRACT
from fhir_lakehouse.metrics import MetricsCollector

log = logging.getLogger("fhir_lakehouse.maintenance")

DEFAULT_NAMESPACES = (CONTRACT["silver"]["namespace"], CONTRACT["gold"]["namespace"])
MIN_ORPHAN_MARGIN = timedelta(hours=1)


@dataclass
class TableState:
    data_files: int
    delete_files: int
    bytes: int
    records: int
    snapshots: int
    manifests: int


@dataclass
class TableMaintenance:
    table: str
    before: TableState | None = None
    after: TableState | None = None
    rewritten_data_files: int = 0
    added_data_files: int = 0
    rewritten_bytes: int = 0
    rewritten_manifests: int = 0
    added_manifests: int = 0
    expired_data_files: int = 0
    expired_manifest_lists: int = 0
    orphan_files_removed: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class MaintenanceReport:
    run_id: str | None
    older_than: str
    orphan_older_than: str
    retain_last: int
    tables: list[TableMaintenance] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [t.table for t in self.tables if t.error]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_age(text: str, now: datetime) -> datetime:
    """A point in time from '3d', '12h', '30m' (that long before `now`) or an ISO timestamp."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
        return now - delta
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def table_state(spark: SparkSession, name: str) -> TableState:
    """Counts from the table's metadata (snapshot summary and manifest list): no data scan."""
    table = meta._jvm_table(spark, name)
    snap = table.currentSnapshot()
    snapshots = sum(1 for _ in table.snapshots())
    if snap is None:
        return TableState(0, 0, 0, 0, snapshots, 0)
    summary = dict(snap.summary())

    def total(key: str) -> int:
        return int(summary.get(key, 0))

    manifests = snap.allManifests(table.io()).size()
    return TableState(
        data_files=total("total-data-files"),
        delete_files=total("total-delete-files"),
        bytes=total("total-files-size"),
        records=total("total-records"),
        snapshots=snapshots,
        manifests=int(manifests),
    )


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("TIMESTAMP '%Y-%m-%d %H:%M:%S.%f'")


def maintain_table(
    spark: SparkSession,
    name: str,
    older_than: datetime,
    orphan_older_than: datetime,
    retain_last: int,
) -> TableMaintenance:
    """Runs the four procedures on one table (`lake.ns.table`) and reports what changed."""
    short = name.split(".", 1)[1]  # procedures take the name without the catalog
    result = TableMaintenance(table=name)
    t0 = time.perf_counter()
    try:
        result.before = table_state(spark, name)
        if result.before.data_files > 1 or result.before.delete_files:
            sorted_table = not meta._jvm_table(spark, name).sortOrder().isUnsorted()
            strategy = "sort" if sorted_table else "binpack"
            row = spark.sql(
                f"CALL lake.system.rewrite_data_files(table => '{short}', strategy => '{strategy}', "
                "options => map('min-input-files', '2', 'delete-file-threshold', '1', "
                "'remove-dangling-deletes', 'true'))"
            ).first()
            if row is not None:
                result.rewritten_data_files = int(row["rewritten_data_files_count"])
                result.added_data_files = int(row["added_data_files_count"])
                result.rewritten_bytes = int(row["rewritten_bytes_count"])
        if result.before.manifests > 1:
            row = spark.sql(f"CALL lake.system.rewrite_manifests('{short}')").first()
            if row is not None:
                result.rewritten_manifests = int(row["rewritten_manifests_count"])
                result.added_manifests = int(row["added_manifests_count"])
        row = spark.sql(
            f"CALL lake.system.expire_snapshots(table => '{short}', older_than => {_ts(older_than)}, "
            f"retain_last => {int(retain_last)})"
        ).first()
        if row is not None:
            result.expired_data_files = int(row["deleted_data_files_count"])
            result.expired_manifest_lists = int(row["deleted_manifest_lists_count"])
        orphans = spark.sql(
            f"CALL lake.system.remove_orphan_files(table => '{short}', "
            f"older_than => {_ts(orphan_older_than)})"
        ).collect()
        result.orphan_files_removed = len(orphans)
        result.after = table_state(spark, name)
    except Exception as err:  # one broken table must not stop the others; reported, exit 1
        result.error = f"{type(err).__name__}: {str(err).splitlines()[0][:500]}"
        log.error("maintenance of %s failed: %s", name, result.error)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def list_tables(spark: SparkSession, namespaces: Sequence[str]) -> list[str]:
    names = []
    for ns in namespaces:
        if not spark.catalog.databaseExists(f"lake.{ns}"):
            continue
        for row in spark.sql(f"SHOW TABLES IN lake.{ns}").collect():
            if not row["isTemporary"]:
                names.append(f"lake.{ns}.{row['tableName']}")
    return sorted(names)


def run_maintenance(
    spark: SparkSession,
    older_than: datetime,
    orphan_older_than: datetime,
    retain_last: int = 5,
    namespaces: Sequence[str] = DEFAULT_NAMESPACES,
    tables: Sequence[str] | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
) -> MaintenanceReport:
    """Maintains every table of the namespaces (or the named `lake.ns.table`s)."""
    now = now or datetime.now(UTC)
    if now - orphan_older_than < MIN_ORPHAN_MARGIN:
        raise ValueError(
            f"orphan files younger than {MIN_ORPHAN_MARGIN} may belong to a write in progress: "
            "use an older --orphan-older-than"
        )
    if retain_last < 1:
        raise ValueError("retain_last must be at least 1")
    report = MaintenanceReport(
        run_id=run_id,
        older_than=older_than.isoformat(),
        orphan_older_than=orphan_older_than.isoformat(),
        retain_last=retain_last,
    )
    t0 = time.perf_counter()
    for name in tables or list_tables(spark, namespaces):
        entry = maintain_table(spark, name, older_than, orphan_older_than, retain_last)
        b, a = entry.before, entry.after
        if b and a:
            log.info(
                "%s: data files %d -> %d, bytes %d -> %d, snapshots %d -> %d, manifests %d -> %d, "
                "orphans removed %d (%.1fs)",
                name, b.data_files, a.data_files, b.bytes, a.bytes, b.snapshots, a.snapshots,
                b.manifests, a.manifests, entry.orphan_files_removed, entry.seconds,
            )  # fmt: skip
        report.tables.append(entry)
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def record_metrics(metrics: MetricsCollector, report: MaintenanceReport) -> None:
    """Per table: RUNTIME, data files and bytes after, files compacted, orphans removed."""
    for t in report.tables:
        attrs = {"table": t.table}
        metrics.record(f"maintenance.{t.table}", "RUNTIME", t.seconds, "s", attrs)
        if t.error:
            metrics.error("maintenance.table_failed", 1, attrs)
        if t.before and t.after:
            metrics.count("maintenance.data_files_before", t.before.data_files, attrs)
            metrics.count("maintenance.data_files_after", t.after.data_files, attrs)
            metrics.bytes("maintenance.bytes_after", t.after.bytes, attrs)
        metrics.count("maintenance.files_compacted", t.rewritten_data_files, attrs)
        metrics.count("maintenance.orphans_removed", t.orphan_files_removed, attrs)
    metrics.record_step(records=len(report.tables), seconds=report.seconds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.maintenance_job",
        description="Compact, rewrite manifests, expire snapshots and remove orphan files of the "
        "silver and gold Iceberg tables; prints a JSON report (files before/after per table).",
    )
    p.add_argument("--lake", help="lake root URI (file:///... locally)")
    p.add_argument("--run-id", help="pipeline run id (recorded in the report)")
    p.add_argument(
        "--older-than",
        default="3d",
        help="expire snapshots older than this: 3d, 12h, 30m or an ISO timestamp (default 3d)",
    )
    p.add_argument("--retain-last", type=int, default=5, help="snapshots always kept (default 5)")
    p.add_argument(
        "--orphan-older-than",
        default="3d",
        help="remove unreferenced files older than this (default 3d, at least 1h)",
    )
    p.add_argument("--namespaces", default=",".join(DEFAULT_NAMESPACES), help="comma-separated")
    p.add_argument("--tables", help="comma-separated lake.ns.table names instead of namespaces")
    # The orchestrator's uniform job arguments (lib/core/pipeline-steps.ts sparkJobArguments).
    p.add_argument("--bronze", help=argparse.SUPPRESS)
    p.add_argument("--silver", help="silver layer URI (orchestrator form; lake root is its parent)")
    p.add_argument("--gold", help=argparse.SUPPRESS)
    p.add_argument("--metrics", help=argparse.SUPPRESS)
    p.add_argument(
        "--catalog", choices=["local", "glue"], default="local", help="Iceberg catalog kind"
    )
    p.add_argument("--settings-json", help='JSON: {"spark": {...local Spark settings...}}')
    p.add_argument(
        "--no-metrics", action="store_true", help="do not write {lake}/metrics/performance_metrics"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    args = build_parser().parse_args(argv)
    if args.lake:
        lake_root = str(args.lake)
    elif args.silver:
        lake_root = str(args.silver).rstrip("/").rsplit("/", 1)[0]
    else:
        raise SystemExit("maintenance_job: give --lake URI (or --silver URI)")
    now = datetime.now(UTC)
    raw = json.loads(args.settings_json) if args.settings_json else {}
    from fhir_lakehouse.metrics import MetricsCollector
    from fhir_lakehouse.spark_session import get_or_create_session

    spark = get_or_create_session(lake_root, raw.get("spark") or raw.get("localSpark"))
    metrics = (
        None
        if args.no_metrics or not args.run_id
        else MetricsCollector(args.run_id, "maintenance", lake_root)
    )
    try:
        report = run_maintenance(
            spark,
            older_than=parse_age(args.older_than, now),
            orphan_older_than=parse_age(args.orphan_older_than, now),
            retain_last=args.retain_last,
            namespaces=[n for n in args.namespaces.split(",") if n],
            tables=args.tables.split(",") if args.tables else None,
            run_id=args.run_id,
            now=now,
        )
        if metrics is not None:
            record_metrics(metrics, report)
    finally:
        if metrics is not None:
            metrics.flush()
    sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
