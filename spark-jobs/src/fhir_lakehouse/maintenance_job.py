"""Table maintenance for silver and gold: compaction, manifest rewrite, snapshot expiry, orphans.

    python -m fhir_lakehouse.maintenance_job --lake file:///work/lake
        [--older-than 3d] [--retain-last 5] [--orphan-older-than 3d] [--orphan-interval 7d]
        [--compact-min-small-files 50] [--compact-small-files-share 0.5]
        [--compact-min-delete-files 20] [--compact-delete-files-per-data-file 1.0] [--small-file-bytes N]
        [--rewrite-manifests-min 16] [--every-step] [--namespaces silver,gold]

Per table, in this order (the Iceberg Spark procedures of catalog `lake`), each step only when it
is due (the policy, config `maintenance`; `--every-step` runs all four on every table):
1. rewrite_data_files, due when the small data files committed since the table's last compaction
   reach --compact-min-small-files and --compact-small-files-share of its data files, or its
   delete files reach --compact-min-delete-files and --compact-delete-files-per-data-file: small
   files compacted, and data files with delete files (merge-on-read MERGEs) rewritten without the
   deleted rows (sort strategy where the table has a sort order, binpack otherwise);
2. rewrite_manifests, due when the current snapshot has --rewrite-manifests-min manifests or more
   (one per commit), so planning stays fast;
3. expire_snapshots, due when a snapshot older than --older-than is neither one of the last
   --retain-last nor tagged (gold's watermarks are tags, see gold_incremental);
4. remove_orphan_files, due every --orphan-interval (it lists every file of the table): files no
   snapshot references and older than --orphan-older-than (the safety margin: a file a concurrent
   writer has written but not yet committed is young, so it is never touched; at least one hour).
Whether a step is due comes from the table's metadata alone (snapshot summaries, refs, the
manifest list, two table properties the job keeps), so a table nothing happened to costs a few
metadata reads and no Spark job. It reports, per table, what it did and why, and data files,
bytes, snapshots and manifests before and after.
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
from fhir_lakehouse.spark_session import catalog_tables

log = logging.getLogger("fhir_lakehouse.maintenance")

DEFAULT_NAMESPACES = (CONTRACT["silver"]["namespace"], CONTRACT["gold"]["namespace"])
MIN_ORPHAN_MARGIN = timedelta(hours=1)
MIB = 1024 * 1024

# Table properties the job keeps (a property update is a metadata commit, not a snapshot).
PROP_COMPACTED_SNAPSHOT = "fhir-lakehouse.maintenance.compacted-snapshot-id"
PROP_ORPHANS_CHECKED_AT = "fhir-lakehouse.maintenance.orphans-checked-at"


@dataclass(frozen=True)
class MaintenancePolicy:
    """When each step is due (config `maintenance`; defaults mirror config/schema.ts)."""

    compact_min_small_files: int = 50
    # ... and they are at least this share of the table's data files.
    compact_small_files_share: float = 0.5
    compact_min_delete_files: int = 20
    # ... and there are at least this many per data file (merge-on-read work per file read).
    compact_delete_files_per_data_file: float = 1.0
    small_file_bytes: int = 96 * MIB
    rewrite_manifests_min: int = 16
    orphan_interval: timedelta = timedelta(days=7)
    # False: every step on every table, the procedures deciding alone (tests, benchmarks that
    # want fully compacted tables).
    only_when_due: bool = True


EVERY_STEP = MaintenancePolicy(only_when_due=False)


@dataclass
class TableState:
    data_files: int
    delete_files: int
    bytes: int
    records: int
    snapshots: int
    manifests: int


@dataclass(frozen=True)
class SnapshotFacts:
    snapshot_id: int
    timestamp_ms: int
    added_data_files: int
    added_files_size: int
    total_data_files: int


@dataclass(frozen=True)
class TableFacts:
    """What the plan needs, all from table metadata (no data file is read)."""

    state: TableState
    current_snapshot_id: int | None
    # The current snapshot and its ancestors, newest first, down to the last full layout (the
    # recorded compaction, or a snapshot that wrote every file of the table) or at least as many
    # as retain_last.
    ancestry: list[SnapshotFacts]
    # Every snapshot of the table (any branch): id and commit time.
    snapshot_times: dict[int, int]
    ref_snapshot_ids: frozenset[int]
    compacted_snapshot_id: int | None
    orphans_checked_at: datetime | None


@dataclass
class TablePlan:
    """The steps due, each with the reason (a step absent is not due)."""

    compact: str | None = None
    rewrite_manifests: str | None = None
    expire: str | None = None
    remove_orphans: str | None = None

    def steps(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class TableMaintenance:
    table: str
    before: TableState | None = None
    after: TableState | None = None
    steps: dict[str, str] = field(default_factory=dict)
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
    policy: dict[str, Any] = field(default_factory=dict)
    tables: list[TableMaintenance] = field(default_factory=list)
    # Finding the tables (catalog listing); `seconds` includes it.
    list_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [t.table for t in self.tables if t.error]

    @property
    def skipped(self) -> list[str]:
        return [t.table for t in self.tables if not t.steps and not t.error]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_duration(text: str) -> timedelta:
    """A duration from '7d', '12h', '30m'."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if not match:
        raise ValueError(f"not a duration (7d, 12h, 30m): {text!r}")
    n, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def parse_age(text: str, now: datetime) -> datetime:
    """A point in time from '3d', '12h', '30m' (that long before `now`) or an ISO timestamp."""
    if re.fullmatch(r"\s*\d+\s*[dhm]\s*", text):
        return now - parse_duration(text)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# The plan (pure): which steps are due for one table.


def small_files_since_compaction(facts: TableFacts, small_file_bytes: int) -> int:
    """Data files committed since the last full layout whose commit's average file was small.

    A commit's files are small when its added bytes per added file are below `small_file_bytes`
    (the summary has no per-file sizes; a nightly commit's files are alike). The walk stops at the
    recorded compaction or at a snapshot that wrote every file of the table (a first load, a full
    rebuild): what the writer laid out in one go is not what compaction is for.
    """
    small = 0
    for snap in facts.ancestry:
        if snap.snapshot_id == facts.compacted_snapshot_id:
            break
        if snap.added_data_files and snap.added_data_files >= snap.total_data_files:
            break
        if (
            snap.added_data_files
            and snap.added_files_size / snap.added_data_files < small_file_bytes
        ):
            small += snap.added_data_files
    return small


def expirable_snapshots(facts: TableFacts, older_than: datetime, retain_last: int) -> int:
    """Snapshots expire_snapshots would remove: older than the cut-off, not one of the last
    `retain_last` of the current lineage, not referenced by a tag or branch."""
    cutoff_ms = older_than.timestamp() * 1000
    keep = {s.snapshot_id for s in facts.ancestry[:retain_last]} | facts.ref_snapshot_ids
    return sum(1 for sid, ts in facts.snapshot_times.items() if ts < cutoff_ms and sid not in keep)


def plan_table(
    facts: TableFacts,
    policy: MaintenancePolicy,
    now: datetime,
    older_than: datetime,
    orphan_older_than: datetime,
    retain_last: int,
) -> TablePlan:
    """The steps due for one table, from its metadata facts."""
    plan = TablePlan()
    st = facts.state
    if facts.current_snapshot_id is None:
        return plan  # never written: nothing to compact, expire or orphan
    if not policy.only_when_due:
        if st.data_files > 1 or st.delete_files:
            plan.compact = "every step"
        if st.manifests > 1:
            plan.rewrite_manifests = "every step"
        plan.expire = plan.remove_orphans = "every step"
        return plan
    # A nightly MERGE into a partitioned table adds a small data file and a delete file to every
    # partition it touches, so absolute counts alone would compact big tables every night: the
    # thresholds are also relative to the table's data files.
    small = small_files_since_compaction(facts, policy.small_file_bytes)
    min_deletes = max(
        policy.compact_min_delete_files, policy.compact_delete_files_per_data_file * st.data_files
    )
    min_small = max(
        policy.compact_min_small_files, policy.compact_small_files_share * st.data_files
    )
    if st.delete_files and st.delete_files >= min_deletes:
        plan.compact = f"{st.delete_files} delete files for {st.data_files} data files"
    elif small and small >= min_small:
        plan.compact = (
            f"{small} of {st.data_files} data files small, added since the last compaction"
        )
    if st.manifests >= policy.rewrite_manifests_min:
        plan.rewrite_manifests = f"{st.manifests} manifests >= {policy.rewrite_manifests_min}"
    expirable = expirable_snapshots(facts, older_than, retain_last)
    if expirable:
        plan.expire = f"{expirable} snapshots older than {older_than.isoformat()}"
    if facts.orphans_checked_at is not None:
        if now - facts.orphans_checked_at >= policy.orphan_interval:
            plan.remove_orphans = f"last orphan check {facts.orphans_checked_at.isoformat()}"
    elif facts.snapshot_times and min(facts.snapshot_times.values()) < (
        orphan_older_than.timestamp() * 1000
    ):
        # Never checked: an orphan older than the margin can only exist in a table that old.
        plan.remove_orphans = "never checked and older than the orphan margin"
    return plan


# ---------------------------------------------------------------------------------------------
# Metadata reads and the procedures (I/O).


def _state(table: Any) -> TableState:  # noqa: ANN401 - a py4j Iceberg Table
    """Counts from the snapshot summary and the manifest list of a loaded table: no data scan."""
    snap = table.currentSnapshot()
    snapshots = sum(1 for _ in table.snapshots())
    if snap is None:
        return TableState(0, 0, 0, 0, snapshots, 0)
    summary = dict(snap.summary())

    def total(key: str) -> int:
        return int(summary.get(key, 0))

    return TableState(
        data_files=total("total-data-files"),
        delete_files=total("total-delete-files"),
        bytes=total("total-files-size"),
        records=total("total-records"),
        snapshots=snapshots,
        manifests=int(snap.allManifests(table.io()).size()),
    )


def table_state(spark: SparkSession, name: str) -> TableState:
    """Counts from the table's metadata (snapshot summary and manifest list): no data scan."""
    return _state(meta._jvm_table(spark, name))


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _time_or_none(value: str | None) -> datetime | None:
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError:
        return None


def read_facts(table: Any, retain_last: int) -> TableFacts:  # noqa: ANN401 - py4j Table
    """The plan's facts from a loaded table (metadata file, manifest list; py4j calls only)."""
    props = dict(table.properties())
    compacted = _int_or_none(props.get(PROP_COMPACTED_SNAPSHOT))
    ancestry: list[SnapshotFacts] = []
    snap = table.currentSnapshot()
    full_layout_seen = False
    while snap is not None and (not full_layout_seen or len(ancestry) < retain_last):
        summary = dict(snap.summary())
        facts = SnapshotFacts(
            snapshot_id=int(snap.snapshotId()),
            timestamp_ms=int(snap.timestampMillis()),
            added_data_files=int(summary.get("added-data-files", 0)),
            added_files_size=int(summary.get("added-files-size", 0)),
            total_data_files=int(summary.get("total-data-files", 0)),
        )
        ancestry.append(facts)
        if facts.snapshot_id == compacted or (
            facts.added_data_files and facts.added_data_files >= facts.total_data_files
        ):
            full_layout_seen = True
        parent = snap.parentId()
        snap = None if parent is None else table.snapshot(parent)
    refs = table.refs()
    return TableFacts(
        state=_state(table),
        current_snapshot_id=ancestry[0].snapshot_id if ancestry else None,
        ancestry=ancestry,
        snapshot_times={int(s.snapshotId()): int(s.timestampMillis()) for s in table.snapshots()},
        ref_snapshot_ids=frozenset(int(refs.get(k).snapshotId()) for k in refs.keySet()),
        compacted_snapshot_id=compacted,
        orphans_checked_at=_time_or_none(props.get(PROP_ORPHANS_CHECKED_AT)),
    )


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("TIMESTAMP '%Y-%m-%d %H:%M:%S.%f'")


def maintain_table(
    spark: SparkSession,
    name: str,
    older_than: datetime,
    orphan_older_than: datetime,
    retain_last: int,
    policy: MaintenancePolicy = EVERY_STEP,
    now: datetime | None = None,
) -> TableMaintenance:
    """Runs the steps due on one table (`lake.ns.table`) and reports what changed."""
    now = now or datetime.now(UTC)
    short = name.split(".", 1)[1]  # procedures take the name without the catalog
    result = TableMaintenance(table=name)
    t0 = time.perf_counter()
    try:
        table = meta._jvm_table(spark, name)
        facts = read_facts(table, retain_last)
        result.before = facts.state
        plan = plan_table(facts, policy, now, older_than, orphan_older_than, retain_last)
        result.steps = plan.steps()
        if not result.steps:
            result.after = result.before
            result.seconds = round(time.perf_counter() - t0, 3)
            return result
        record: dict[str, str] = {}
        if plan.compact:
            strategy = "binpack" if table.sortOrder().isUnsorted() else "sort"
            row = spark.sql(
                f"CALL lake.system.rewrite_data_files(table => '{short}', strategy => '{strategy}', "
                "options => map('min-input-files', '2', 'delete-file-threshold', '1', "
                "'remove-dangling-deletes', 'true'))"
            ).first()
            if row is not None:
                result.rewritten_data_files = int(row["rewritten_data_files_count"])
                result.added_data_files = int(row["added_data_files_count"])
                result.rewritten_bytes = int(row["rewritten_bytes_count"])
            compacted = meta.current_snapshot_id(spark, name)
            if compacted is not None:
                record[PROP_COMPACTED_SNAPSHOT] = str(compacted)
        if plan.rewrite_manifests:
            row = spark.sql(f"CALL lake.system.rewrite_manifests('{short}')").first()
            if row is not None:
                result.rewritten_manifests = int(row["rewritten_manifests_count"])
                result.added_manifests = int(row["added_manifests_count"])
        if plan.expire:
            row = spark.sql(
                f"CALL lake.system.expire_snapshots(table => '{short}', "
                f"older_than => {_ts(older_than)}, retain_last => {int(retain_last)})"
            ).first()
            if row is not None:
                result.expired_data_files = int(row["deleted_data_files_count"])
                result.expired_manifest_lists = int(row["deleted_manifest_lists_count"])
        if plan.remove_orphans:
            orphans = spark.sql(
                f"CALL lake.system.remove_orphan_files(table => '{short}', "
                f"older_than => {_ts(orphan_older_than)})"
            ).collect()
            result.orphan_files_removed = len(orphans)
            record[PROP_ORPHANS_CHECKED_AT] = now.isoformat()
        if record:
            meta.set_properties(spark, name, record)
        result.after = table_state(spark, name)
    except Exception as err:  # one broken table must not stop the others; reported, exit 1
        result.error = f"{type(err).__name__}: {str(err).splitlines()[0][:500]}"
        log.error("maintenance of %s failed: %s", name, result.error)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def list_tables(spark: SparkSession, namespaces: Sequence[str]) -> list[str]:
    return sorted(f"lake.{ns}.{t}" for ns in namespaces for t in catalog_tables(spark, ns))


def run_maintenance(
    spark: SparkSession,
    older_than: datetime,
    orphan_older_than: datetime,
    retain_last: int = 5,
    namespaces: Sequence[str] = DEFAULT_NAMESPACES,
    tables: Sequence[str] | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
    policy: MaintenancePolicy = EVERY_STEP,
) -> MaintenanceReport:
    """Maintains every table of the namespaces (or the named `lake.ns.table`s).

    `policy` decides which steps are due per table; the default runs every step on every table
    (the pipeline's Maintenance Task passes the config's policy).
    """
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
        policy={
            **asdict(policy),
            "orphan_interval": str(policy.orphan_interval),
        },
    )
    t0 = time.perf_counter()
    names = list(tables) if tables else list_tables(spark, namespaces)
    report.list_seconds = round(time.perf_counter() - t0, 3)
    for name in names:
        entry = maintain_table(spark, name, older_than, orphan_older_than, retain_last, policy, now)
        b, a = entry.before, entry.after
        if b and a and entry.steps:
            log.info(
                "%s: %s; data files %d -> %d, bytes %d -> %d, snapshots %d -> %d, "
                "manifests %d -> %d, orphans removed %d (%.1fs)",
                name, ", ".join(f"{k} ({v})" for k, v in entry.steps.items()),
                b.data_files, a.data_files, b.bytes, a.bytes, b.snapshots, a.snapshots,
                b.manifests, a.manifests, entry.orphan_files_removed, entry.seconds,
            )  # fmt: skip
        report.tables.append(entry)
    report.seconds = round(time.perf_counter() - t0, 3)
    skipped = report.skipped
    if skipped:
        log.info("%d of %d tables had no step due", len(skipped), len(report.tables))
    return report


def record_metrics(metrics: MetricsCollector, report: MaintenanceReport) -> None:
    """Per table: RUNTIME, steps run, data files and bytes after, files compacted, orphans."""
    for t in report.tables:
        attrs = {"table": t.table}
        metrics.record(f"maintenance.{t.table}", "RUNTIME", t.seconds, "s", attrs)
        if t.error:
            metrics.error("maintenance.table_failed", 1, attrs)
        metrics.count("maintenance.steps_run", len(t.steps), attrs)
        if t.before and t.after:
            metrics.count("maintenance.data_files_before", t.before.data_files, attrs)
            metrics.count("maintenance.data_files_after", t.after.data_files, attrs)
            metrics.bytes("maintenance.bytes_after", t.after.bytes, attrs)
        metrics.count("maintenance.files_compacted", t.rewritten_data_files, attrs)
        metrics.count("maintenance.orphans_removed", t.orphan_files_removed, attrs)
    metrics.count("maintenance.tables_skipped", len(report.skipped))
    metrics.record_step(records=len(report.tables), seconds=report.seconds)


def build_parser() -> argparse.ArgumentParser:
    defaults = MaintenancePolicy()
    p = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.maintenance_job",
        description="Compact, rewrite manifests, expire snapshots and remove orphan files of the "
        "silver and gold Iceberg tables, each only when due; prints a JSON report (what was "
        "done and why, files before/after per table).",
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
    p.add_argument(
        "--orphan-interval",
        default="7d",
        help="look for orphan files in a table at most this often: 7d, 12h (default 7d)",
    )
    p.add_argument(
        "--compact-min-small-files",
        type=int,
        default=defaults.compact_min_small_files,
        help="compact a table once this many small data files were committed since its last "
        f"compaction (default {defaults.compact_min_small_files})",
    )
    p.add_argument(
        "--compact-small-files-share",
        type=float,
        default=defaults.compact_small_files_share,
        help="... and they are at least this share of its data files "
        f"(default {defaults.compact_small_files_share})",
    )
    p.add_argument(
        "--compact-delete-files-per-data-file",
        type=float,
        default=defaults.compact_delete_files_per_data_file,
        help="... and it has at least this many per data file "
        f"(default {defaults.compact_delete_files_per_data_file})",
    )
    p.add_argument(
        "--compact-min-delete-files",
        type=int,
        default=defaults.compact_min_delete_files,
        help="compact a table once it has this many delete files "
        f"(default {defaults.compact_min_delete_files})",
    )
    p.add_argument(
        "--small-file-bytes",
        type=int,
        default=defaults.small_file_bytes,
        help=f"a data file below this size is small (default {defaults.small_file_bytes})",
    )
    p.add_argument(
        "--rewrite-manifests-min",
        type=int,
        default=defaults.rewrite_manifests_min,
        help="rewrite a table's manifests once it has this many "
        f"(default {defaults.rewrite_manifests_min})",
    )
    p.add_argument(
        "--every-step",
        action="store_true",
        help="run every step on every table, due or not",
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


def policy_from_args(args: argparse.Namespace) -> MaintenancePolicy:
    """The policy the command line asks for (--every-step: every step on every table)."""
    for flag in ("compact_min_small_files", "compact_min_delete_files", "rewrite_manifests_min"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1")
    return MaintenancePolicy(
        compact_min_small_files=args.compact_min_small_files,
        compact_min_delete_files=args.compact_min_delete_files,
        compact_small_files_share=args.compact_small_files_share,
        compact_delete_files_per_data_file=args.compact_delete_files_per_data_file,
        small_file_bytes=args.small_file_bytes,
        rewrite_manifests_min=args.rewrite_manifests_min,
        orphan_interval=parse_duration(args.orphan_interval),
        only_when_due=not args.every_step,
    )


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
    policy = policy_from_args(args)
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
            policy=policy,
        )
        if metrics is not None:
            record_metrics(metrics, report)
    finally:
        if metrics is not None:
            metrics.flush()
    sys.stdout.write(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
