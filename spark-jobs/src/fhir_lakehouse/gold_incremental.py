"""What an incremental gold run recomputes: changed patients, watermarks, affected groups.

Contract with the silver job: silver appends the patient keys each run changed (rows added,
changed or deleted in any view) to `lake.silver.changed_patients (run_id, patient_key)` with
`record_changed_patients`. Gold does not trust run ids to be ordered: each gold table remembers
(in its table properties, next to the gold snapshot it wrote) the snapshot of changed_patients and
of every silver view it was computed from. The next run recomputes the patients appended since
that snapshot (so a run gold missed is caught up), and for cross-patient aggregates reads the
changed patients' *previous* rows from the remembered silver snapshots (time travel) to find the
groups (months, codes, days) whose numbers moved. When the watermark cannot be trusted (no
watermark, a gold snapshot written by someone else, an expired silver snapshot, a changed
setting) the table is recomputed in full: slower, never wrong.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.gold_tables import SILVER_INPUTS, GoldTable
from fhir_lakehouse.lake_contract import CONTRACT

SILVER_NS = f"lake.{CONTRACT['silver']['namespace']}"
CHANGED_PATIENTS_TABLE = f"{SILVER_NS}.changed_patients"

# Table properties holding a gold table's watermark.
P_RUN_ID = "fhir.gold.run-id"
P_SNAPSHOT = "fhir.gold.snapshot-id"
P_SILVER = "fhir.gold.silver-snapshots"
P_CHANGED = "fhir.gold.changed-patients-snapshot"
P_PARAMS = "fhir.gold.params"
# Tag on each gold table (its watermark snapshot) and on each silver table gold read (the
# snapshot the next run diffs against): snapshot expiry keeps tagged snapshots.
WATERMARK_TAG = "gold_watermark"


def ensure_changed_patients_table(spark: SparkSession) -> None:
    """Creates lake.silver.changed_patients if it does not exist (silver or gold may call it)."""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {SILVER_NS}")
    spark.sql(
        f"""CREATE TABLE IF NOT EXISTS {CHANGED_PATIENTS_TABLE} (
  run_id string COMMENT 'Silver run that changed the patient.',
  patient_key string COMMENT 'Id of a patient any of whose silver rows were added, changed or deleted.'
) USING iceberg
COMMENT 'Patients changed by each silver run: the work list of the incremental gold run.'
TBLPROPERTIES ('format-version' = '2', 'write.parquet.compression-codec' = 'zstd')"""
    )


def record_changed_patients(spark: SparkSession, run_id: str, patient_keys: DataFrame) -> None:
    """Appends a run's changed patient keys (a DataFrame with a `patient_key` column).

    Called by the silver job once per run, in one append commit. Re-running it for the same run
    appends only keys not yet recorded, so a retried silver run does not duplicate rows.
    """
    ensure_changed_patients_table(spark)
    keys = (
        patient_keys.select(F.col("patient_key").cast("string").alias("patient_key"))
        .where(F.col("patient_key").isNotNull())
        .distinct()
    )
    existing = spark.table(CHANGED_PATIENTS_TABLE).where(F.col("run_id") == run_id)
    new = keys.join(existing, "patient_key", "left_anti").select(
        F.lit(run_id).alias("run_id"), "patient_key"
    )
    new.writeTo(CHANGED_PATIENTS_TABLE).append()


def changed_patients_between(
    spark: SparkSession, since_snapshot: int | None, until_snapshot: int | None
) -> DataFrame:
    """Patient keys appended to changed_patients after `since_snapshot`, up to `until_snapshot`
    (a key may repeat: callers collect the few keys and deduplicate them in the driver, which
    saves the shuffle of a distinct).

    When every snapshot in between only appended rows (or compacted files), an incremental append
    scan reads just the files those snapshots added; otherwise (silver rewrote the table, e.g.
    retention of old runs) a set difference of the two snapshots.
    """
    if until_snapshot is None or since_snapshot == until_snapshot:
        return spark.createDataFrame([], "patient_key string")
    table = CHANGED_PATIENTS_TABLE
    if since_snapshot is not None and appends_only(
        meta.ancestry(spark, table), since_snapshot, until_snapshot
    ):
        now = (
            spark.read.option("start-snapshot-id", str(since_snapshot))
            .option("end-snapshot-id", str(until_snapshot))
            .table(table)
        )
    else:
        now = meta.read_at(spark, table, until_snapshot).select("run_id", "patient_key")
        if since_snapshot is not None:
            # (run_id, key) pairs, so a key recorded again by a later run counts as changed again.
            before = meta.read_at(spark, table, since_snapshot).select("run_id", "patient_key")
            now = now.exceptAll(before)
    return now.select("patient_key").where(F.col("patient_key").isNotNull())


def appends_only(chain: list[meta.SnapshotInfo], since: int, until: int) -> bool:
    """True when `until` descends from `since` through snapshots that only appended rows or
    rewrote files (`replace`): the rows added in between are then exactly the appended files."""
    seen_until = False
    for snap in chain:
        if snap.snapshot_id == until:
            seen_until = True
        if not seen_until:
            continue
        if snap.snapshot_id == since:
            return True
        if snap.operation not in ("append", "replace"):
            return False
    return False


@dataclass(frozen=True)
class Watermark:
    """What a gold table was last computed from (read from its table properties)."""

    run_id: str | None
    gold_snapshot: int | None
    silver_snapshots: dict[str, int | None]
    changed_patients_snapshot: int | None
    params: dict[str, str]


def read_watermark(props: dict[str, str]) -> Watermark | None:
    if P_SNAPSHOT not in props or P_SILVER not in props:
        return None
    changed = props.get(P_CHANGED) or None
    return Watermark(
        run_id=props.get(P_RUN_ID),
        gold_snapshot=int(props[P_SNAPSHOT]) if props[P_SNAPSHOT] else None,
        silver_snapshots=json.loads(props[P_SILVER]),
        changed_patients_snapshot=int(changed) if changed else None,
        params=json.loads(props.get(P_PARAMS, "{}")),
    )


def watermark_properties(
    run_id: str,
    gold_snapshot: int | None,
    silver_snapshots: dict[str, int | None],
    changed_patients_snapshot: int | None,
    params: dict[str, str],
) -> dict[str, str]:
    return {
        P_RUN_ID: run_id,
        P_SNAPSHOT: "" if gold_snapshot is None else str(gold_snapshot),
        P_SILVER: json.dumps(silver_snapshots, sort_keys=True),
        P_CHANGED: "" if changed_patients_snapshot is None else str(changed_patients_snapshot),
        P_PARAMS: json.dumps(params, sort_keys=True),
    }


def watermark_matches_table(wm: Watermark, ancestry: list[meta.SnapshotInfo]) -> bool:
    """True when the table still holds what the watermark describes.

    That is: the recorded snapshot is the current one, or every snapshot committed after it only
    rewrote files without changing rows (operation `replace`: compaction, manifest rewrites).
    """
    if wm.gold_snapshot is None:
        return not ancestry
    for snap in ancestry:
        if snap.snapshot_id == wm.gold_snapshot:
            return True
        if snap.operation != "replace":
            return False
    return False


ChangeSource = Literal["explicit", "silver", "none"]


@dataclass(frozen=True)
class PlanInput:
    """Everything the full-or-incremental decision for one table depends on (no I/O)."""

    table: GoldTable
    requested_full: bool
    change_source: ChangeSource
    table_created: bool
    watermark: Watermark | None
    watermark_valid: bool
    params: dict[str, str]
    # For affected_groups tables: whether each source's remembered silver snapshot still exists.
    old_snapshots_available: bool = True
    strategy: str | None = None  # overrides table.strategy (benchmarks compare the two)
    # Every silver view the table reads is at the snapshot the watermark recorded (and nothing
    # else the rows depend on, such as the reference date, moved).
    inputs_unchanged: bool = False


@dataclass(frozen=True)
class Plan:
    mode: Literal["full", "incremental", "unchanged"]
    reason: str
    strategy: str = field(default="full")


def plan_table(p: PlanInput) -> Plan:
    """Full recompute or incremental MERGE for one table, and why."""
    strategy = p.strategy or p.table.strategy

    def full(reason: str) -> Plan:
        return Plan("full", reason, "full")

    if p.requested_full:
        return full("full recompute requested")
    if p.table_created:
        return full("new table")
    if p.watermark is None:
        return full("no watermark from an earlier gold run")
    if not p.watermark_valid:
        return full("table changed since its watermark (not by gold)")
    for name in p.table.depends_on:
        if p.watermark.params.get(name) != p.params.get(name):
            return full(f"setting {name} changed")
    if p.inputs_unchanged:
        return Plan("unchanged", "silver inputs unchanged since the last gold run", "none")
    if strategy == "full":
        return full("table is recomputed in full by design (cheaper than finding affected groups)")
    if p.change_source == "silver" and p.watermark.changed_patients_snapshot is None:
        return full("no changed-patients watermark")
    if p.change_source == "none":
        return full("no changed patients available")
    if strategy == "affected_groups" and not p.old_snapshots_available:
        return full("previous silver snapshot no longer available")
    return Plan("incremental", f"incremental ({strategy})", strategy)


def too_many_changed(changed: int, total: int | None, max_fraction: float) -> bool:
    """Whether so many patients changed that recomputing everything is cheaper than a MERGE."""
    return total is not None and total > 0 and changed > max_fraction * total


def null_safe_match(left: list[SparkColumn], right: list[SparkColumn]) -> SparkColumn:
    cond = left[0].eqNullSafe(right[0])
    for a, b in zip(left[1:], right[1:], strict=True):
        cond = cond & a.eqNullSafe(b)
    return cond


def changed_groups(
    old_rows: list[tuple[Any, ...]], new_rows: list[tuple[Any, ...]], n_keys: int
) -> set[tuple[Any, ...]]:
    """Group keys of the rows that differ between two versions of the changed patients' rows.

    Each row is (group key values..., row values...). A row added, removed or changed (a row's
    old and new versions both count) moves its group; identical rows (as a multiset) move none.
    Rows are compared whole, group keys included (a row moved to another day moves both days).
    """
    before = Counter(old_rows)
    after = Counter(new_rows)
    moved = (before - after) + (after - before)
    return {r[:n_keys] for r in moved}


def group_prune_predicate(
    table: GoldTable, view: str, groups: list[tuple[Any, ...]]
) -> SparkColumn | None:
    """Literal predicates a scan can prune files with, implied by membership in `groups`.

    A group key that is a plain column becomes `column IN (values)` (or NULL); a key that is the
    day or month of a timestamp (table.group_ranges) becomes a range on that timestamp. The
    exact (null-safe) group match is still applied afterwards; this only lets Iceberg skip files
    and row groups (partitions by month, min/max statistics).
    """
    key_exprs = table.sources[view]
    columns = set(SILVER_INPUTS[view])
    preds: list[SparkColumn] = []
    for i, key in enumerate(table.group_key):
        values = {g[i] for g in groups}
        expr = key_exprs[key]
        if expr in columns:
            known = sorted(v for v in values if v is not None)
            pred = F.col(expr).isin(known) if known else F.lit(False)
            preds.append(pred | F.col(expr).isNull() if None in values else pred)
        elif key in table.group_ranges and None not in values:
            column, unit = table.group_ranges[key]
            lo, hi = min(values), max(values)
            upper = F.date_add(F.lit(hi), 1) if unit == "day" else F.add_months(F.lit(hi), 1)
            preds.append(
                (F.col(column) >= F.lit(lo).cast("timestamp"))
                & (F.col(column) < upper.cast("timestamp"))
            )
    if not preds:
        return None
    out = preds[0]
    for p in preds[1:]:
        out = out & p
    return out


def rows_of_groups(view: str, table: GoldTable, source: DataFrame, groups: DataFrame) -> DataFrame:
    """The rows of a silver source that belong to the given groups (null-safe key match)."""
    key_exprs = table.sources[view]
    g = groups.select(*[F.col(k).alias(f"_g_{k}") for k in table.group_key])
    cond = null_safe_match(
        [F.expr(key_exprs[k]) for k in table.group_key],
        [F.col(f"_g_{k}") for k in table.group_key],
    )
    return source.join(F.broadcast(g), cond, "left_semi")
