"""The gold job: silver views -> gold aggregate tables (Iceberg), incremental where it pays.

    python -m fhir_lakehouse.gold_job --lake file:///work/lake --run-id RUN
        [--changed-patients-from silver|all] [--suppression-threshold N]
        [--reference-date YYYY-MM-DD] [--settings-json JSON] [--tables a,b]

Per table (definitions in gold_tables.py) the job either recomputes everything and replaces the
table atomically, or recomputes only the affected groups (patients, or code-days) and MERGEs them
(see gold_incremental.py for when and why). Every silver table is read at one snapshot pinned at
the start, so all gold tables of a run describe the same silver state.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructField, StructType

from fhir_lakehouse import gold_incremental as inc
from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.concurrent_jobs import job_description, run_concurrently
from fhir_lakehouse.gold_tables import (
    GOLD_TABLES,
    PATIENT_SUMMARY,
    SILVER_INPUTS,
    TABLES_BY_NAME,
    GoldTable,
    age_sql,
    create_table_sql,
    patient_column,
    write_order_sql,
)
from fhir_lakehouse.lake_contract import CONTRACT
from fhir_lakehouse.metrics import MetricsCollector

log = logging.getLogger("fhir_lakehouse.gold")

GOLD_NS = f"lake.{CONTRACT['gold']['namespace']}"
SILVER_NS = inc.SILVER_NS

ChangedPatients = DataFrame | Sequence[str] | Literal["silver"] | None


@dataclass(frozen=True)
class GoldSettings:
    """Run settings. `reference_date` (default: today, UTC) is the date ages are computed for."""

    suppression_threshold: int = 10
    reference_date: date | None = None
    # Per-table strategy overrides ("full", "affected_groups", "per_patient"): for benchmarks.
    strategies: dict[str, str] = field(default_factory=dict)
    # Up to this many changed patients are pushed down as an IN list (file and partition pruning);
    # more are matched with a broadcast join.
    key_list_limit: int = 5000
    # An incremental run that changed more than this fraction of all patients recomputes in full.
    max_changed_fraction: float = 0.25
    # Up to this many recomputed groups (patients, code-days), new and current rows are compared
    # in the driver and only differing rows are MERGEd from a local relation.
    local_merge_groups: int = 20000
    # Tables refreshed at once (threads of the driver sharing the session's executors).
    parallel_tables: int = 3

    def resolved_reference_date(self) -> date:
        return self.reference_date or datetime.now(UTC).date()

    def params(self) -> dict[str, str]:
        return {
            "suppression_threshold": str(self.suppression_threshold),
            "reference_date": self.resolved_reference_date().isoformat(),
        }


@dataclass
class TableReport:
    table: str
    mode: str
    reason: str
    seconds: float
    groups_recomputed: int | None = None
    added_records: int = 0
    deleted_records: int = 0
    snapshot_id: int | None = None
    spark_jobs: int = 0


@dataclass
class GoldRunReport:
    run_id: str
    seconds: float = 0.0
    spark_jobs: int = 0
    tables: list[TableReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SilverPin:
    snapshot_id: int | None
    frame: DataFrame
    table: meta.LoadedTable | None = None


def _project(df: DataFrame, columns: dict[str, str]) -> DataFrame:
    """The columns gold reads, cast to gold's types; a column silver lacks reads as NULL."""
    present = set(df.columns)
    return df.select(
        *[(F.col(c) if c in present else F.lit(None)).cast(t).alias(c) for c, t in columns.items()]
    )


def _empty(spark: SparkSession, view: str) -> DataFrame:
    schema = ", ".join(f"{c} {t}" for c, t in SILVER_INPUTS[view].items())
    return spark.createDataFrame([], schema)


def _silver_at(spark: SparkSession, view: str, snapshot_id: int | None) -> DataFrame:
    """A silver view as of a snapshot (None: a table never written), gold's columns only."""
    if snapshot_id is None:
        return _empty(spark, view)
    return _project(meta.read_at(spark, f"{SILVER_NS}.{view}", snapshot_id), SILVER_INPUTS[view])


def pin_silver(spark: SparkSession) -> dict[str, SilverPin]:
    """Every silver view gold reads, at its current snapshot (missing tables read as empty)."""
    pins = {}
    for view in SILVER_INPUTS:
        name = f"{SILVER_NS}.{view}"
        if not meta.table_exists(spark, name):
            pins[view] = SilverPin(None, _empty(spark, view))
            continue
        loaded = meta.LoadedTable(spark, name)
        snap = loaded.current_snapshot_id()
        pins[view] = SilverPin(snap, _silver_at(spark, view, snap), loaded)
    return pins


def ensure_gold_table(
    spark: SparkSession, table: GoldTable, location: str | None
) -> tuple[bool, meta.LoadedTable]:
    """Creates the table, or replaces it when its definition changed. True if (re)created."""
    name = f"{GOLD_NS}.{table.name}"
    if meta.table_exists(spark, name):
        loaded = meta.LoadedTable(spark, name)
        if loaded.properties().get("fhir.gold.definition") == table.fingerprint():
            return False, loaded
        log.info("gold table %s: definition changed, replacing it", table.name)
        ddl = create_table_sql(table, name).replace("CREATE TABLE", "CREATE OR REPLACE TABLE", 1)
    else:
        ddl = create_table_sql(table, name, location)
    spark.sql(ddl)
    order = write_order_sql(table, name)
    if order:
        spark.sql(order)
    return True, meta.LoadedTable(spark, name)


class ChangedRows:
    """The changed patients' rows of each silver view, read once per run and shared by every
    table that needs them.

    One filtered scan per view and snapshot: the keys as a literal IN list, which Iceberg pushes
    into file and row-group pruning (bloom filters on the patient key), or a broadcast semi join
    when the list is long. The result is a small fraction of the view; for a view several tables
    read (`shared`) it is persisted (lazily: the first table that reads it materializes it) and
    the other tables read it from memory. A view one table reads is not: building a cache costs a
    Spark job of its own (adaptive execution runs it as a separate stage) and would save nothing.
    """

    def __init__(
        self,
        spark: SparkSession,
        pins: dict[str, SilverPin],
        keys: list[str],
        limit: int,
        shared: set[str] | None = None,
    ) -> None:
        self.spark = spark
        self.pins = pins
        self.keys = keys
        self.in_list = len(keys) <= limit
        self.shared = set(pins) if shared is None else shared
        self._frames: dict[tuple[str, int | None], DataFrame] = {}
        self._lock = threading.Lock()  # tables refreshed in parallel share the frames

    def _filtered(self, view: str, frame: DataFrame, persist: bool = True) -> DataFrame:
        col = F.col(patient_column(view))
        if self.in_list:
            out = frame.where(col.isin(self.keys))
        else:
            keys = self.spark.createDataFrame([(k,) for k in self.keys], "_pk string")
            out = frame.join(F.broadcast(keys), col == F.col("_pk"), "left_semi")
        # As many partitions as cores: the rows are few, and every later query on them runs one
        # task per partition.
        out = out.coalesce(max(1, self.spark.sparkContext.defaultParallelism))
        return out.persist() if persist else out

    def new(self, view: str) -> DataFrame:
        """The changed patients' rows of the view at the pinned (current) snapshot."""
        pin = self.pins[view]
        return self._get(view, pin.snapshot_id, pin.frame)

    def old(self, view: str, snapshot_id: int | None) -> DataFrame:
        """The changed patients' rows of the view as of an earlier snapshot (None: empty).

        Not persisted: one table reads them once (materializing a cache would cost a Spark job
        of its own, as adaptive execution runs a cache's first build as a separate stage)."""
        if snapshot_id == self.pins[view].snapshot_id:
            return self.new(view)
        return self._filtered(view, _silver_at(self.spark, view, snapshot_id), persist=False)

    def _get(self, view: str, snapshot_id: int | None, frame: DataFrame) -> DataFrame:
        key = (view, snapshot_id)
        with self._lock:
            if key not in self._frames:
                self._frames[key] = self._filtered(view, frame, persist=view in self.shared)
            return self._frames[key]

    def release(self) -> None:
        for frame in self._frames.values():
            frame.unpersist()
        self._frames.clear()


def _compute(
    spark: SparkSession,
    table: GoldTable,
    sources: dict[str, DataFrame],
    settings: GoldSettings,
    run_id: str,
) -> DataFrame:
    """Runs the table's SQL over the given source frames; columns in table order and types."""
    bindings = {}
    for view in table.sources:
        temp = f"gold_src_{table.name}_{view}"
        sources[view].createOrReplaceTempView(temp)
        bindings[view] = temp
    sql = table.sql.format(
        **bindings,
        suppression_threshold=int(settings.suppression_threshold),
        reference_date=settings.resolved_reference_date().isoformat(),
    )
    df = spark.sql(sql).withColumn("_run_id", F.lit(run_id))
    return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in table.columns])


def _group_match(table: GoldTable, groups: DataFrame) -> tuple[DataFrame, Any]:
    g = groups.select(*[F.col(k).alias(f"_g_{k}") for k in table.group_key])
    cond = inc.null_safe_match(
        [F.col(k) for k in table.group_key], [F.col(f"_g_{k}") for k in table.group_key]
    )
    return g, cond


def _current_rows(
    spark: SparkSession, table: GoldTable, groups: DataFrame, patient_keys: list[str] | None
) -> DataFrame:
    """The table's rows in the given groups (IN-list pushdown when the groups are patients)."""
    target = spark.table(f"{GOLD_NS}.{table.name}")
    if patient_keys is not None:
        return target.where(F.col("patient_key").isin(patient_keys))
    g, cond = _group_match(table, groups)
    return target.join(F.broadcast(g), cond, "left_semi")


def _merge_frames(
    spark: SparkSession,
    table: GoldTable,
    new_rows: DataFrame,
    groups: DataFrame,
    patient_keys: list[str] | None,
    extra_upserts: DataFrame | None = None,
) -> None:
    """MERGE for large changes, the source computed by Spark: the new rows of the groups, delete
    markers for rows of the groups no longer produced, and `extra_upserts` outside the groups."""
    current = _current_rows(spark, table, groups, patient_keys)
    keys = new_rows.select(*[F.col(k).alias(f"_n_{k}") for k in table.row_key])
    gone = current.join(
        keys,
        inc.null_safe_match(
            [F.col(k) for k in table.row_key], [F.col(f"_n_{k}") for k in table.row_key]
        ),
        "left_anti",
    )
    source = new_rows.withColumn("_gold_delete", F.lit(False)).unionByName(
        gone.select(*table.column_names).withColumn("_gold_delete", F.lit(True))
    )
    if extra_upserts is not None:
        g, cond = _group_match(table, groups)
        others = extra_upserts.join(g, cond, "left_anti")
        source = source.unionByName(
            others.select(*table.column_names).withColumn("_gold_delete", F.lit(False))
        )
    _run_merge(spark, table, source, patient_keys)


def _merge_rows(
    spark: SparkSession,
    table: GoldTable,
    schema: StructType,
    new_rows: list[tuple[Any, ...]],
    current_rows: list[tuple[Any, ...]],
    patient_keys: list[str] | None,
) -> int:
    """MERGE for small changes: new and current rows of the groups (tuples in the table's column
    order) are compared in the driver and only rows that differ (ignoring _run_id) are written,
    from a local relation, so the MERGE plans no scans for its source. Returns the rows written
    or deleted."""
    names = table.column_names
    key_at = [names.index(k) for k in table.row_key]
    body_at = [i for i, c in enumerate(names) if c != "_run_id"]

    def row_key(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(r[i] for i in key_at)

    def body(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(r[i] for i in body_at)

    current = {row_key(r): r for r in current_rows}
    new = {row_key(r): r for r in new_rows}
    upserts = [r for k, r in new.items() if k not in current or body(current[k]) != body(r)]
    deletes = [r for k, r in current.items() if k not in new]
    if not upserts and not deletes:
        return 0
    data = [(*r, False) for r in upserts] + [(*r, True) for r in deletes]
    with_flag = StructType([*schema.fields, StructField("_gold_delete", BooleanType())])
    source = spark.createDataFrame(data, with_flag)
    _run_merge(spark, table, source, patient_keys)
    return len(data)


def _run_merge(
    spark: SparkSession, table: GoldTable, source: DataFrame, patient_keys: list[str] | None
) -> None:
    """One MERGE commit: delete-marked source rows are deleted, the others upserted by row key."""
    name = f"{GOLD_NS}.{table.name}"
    view = f"gold_merge_{table.name}"
    source.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in table.row_key)
    if patient_keys is not None:
        # A target-only predicate in ON is pushed into the target scan (bucket pruning).
        on += " AND t.patient_key IN (" + ", ".join(_sql_string(k) for k in patient_keys) + ")"
    cols = table.column_names
    spark.sql(
        f"""MERGE INTO {name} t USING {view} s ON {on}
WHEN MATCHED AND s._gold_delete THEN DELETE
WHEN MATCHED THEN UPDATE SET {", ".join(f"t.{c} = s.{c}" for c in cols)}
WHEN NOT MATCHED AND NOT s._gold_delete THEN INSERT ({", ".join(cols)}) VALUES ({", ".join(f"s.{c}" for c in cols)})"""
    )
    spark.catalog.dropTempView(view)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Up to this many rows, a small frame built in the driver is a SQL VALUES list (see _local_frame).
LOCAL_FRAME_ROWS = 2000


def _local_frame(spark: SparkSession, rows: list[tuple[Any, ...]], schema: StructType) -> DataFrame:
    """A small frame of strings, dates and integers built in the driver, held in the query plan
    itself (a VALUES list): broadcasting or joining it runs no Spark job, unlike a frame from
    createDataFrame, whose rows are an RDD that a job must collect first. Larger lists (parsing
    gets slow) and other types go through createDataFrame."""

    def literal(value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, str):
            return _sql_string(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            return f"DATE '{value.isoformat()}'"
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise TypeError(type(value).__name__)

    try:
        if not rows or len(rows) > LOCAL_FRAME_ROWS:
            raise TypeError("size")
        values = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)
    except TypeError:
        return spark.createDataFrame(rows, schema)
    aliases = [f"c{i}" for i in range(len(schema.fields))]
    cols = ", ".join(
        f"CAST({a} AS {f.dataType.simpleString()}) AS `{f.name}`"
        for a, f in zip(aliases, schema.fields, strict=True)
    )
    return spark.sql(f"SELECT {cols} FROM VALUES {values} AS v({', '.join(aliases)})")


def _rows_with_new_age(
    spark: SparkSession, name: str, patient: DataFrame, settings: GoldSettings, run_id: str
) -> DataFrame:
    """patient_summary rows with age and age_as_of moved to the run's reference date.

    A new reference date changes age_as_of on every row (and the age of patients whose birthday
    fell in between); the counts stay as they are, so only the narrow patient view is read.
    """
    ref = settings.resolved_reference_date().isoformat()
    spark.table(name).createOrReplaceTempView("gold_age_summary")
    patient.createOrReplaceTempView("gold_age_patients")
    cols = ", ".join(
        {
            "age_years": f"CAST({age_sql('p.birth_date', f'DATE {_sql_string(ref)}')} AS INT) AS age_years",
            "age_as_of": f"DATE {_sql_string(ref)} AS age_as_of",
            "_run_id": f"{_sql_string(run_id)} AS _run_id",
        }.get(c, f"s.{c}")
        for c in PATIENT_SUMMARY.column_names
    )
    return spark.sql(
        f"SELECT {cols} FROM gold_age_summary s LEFT JOIN gold_age_patients p ON p.id = s.patient_key"
    )


def _job_ids(spark: SparkSession, group: str | None) -> set[int]:
    """Ids of the Spark jobs of a job group so far (None: jobs outside any group)."""
    return set(spark.sparkContext.statusTracker().getJobIdsForGroup(group) or [])


def _job_description(table: str) -> str:
    return f"gold table {table}"


def _jobs_by_description(spark: SparkSession, job_ids: list[int]) -> dict[str, int]:
    """How many of the given jobs carry each job description (from Spark's status store)."""
    store = spark.sparkContext._jsc.sc().statusStore()  # type: ignore[union-attr]
    out: dict[str, int] = {}
    for job_id in job_ids:
        try:
            description = store.job(job_id).description()
        except Exception:  # noqa: BLE001 - evicted from the status store: not counted
            continue
        if description.isDefined():
            out[description.get()] = out.get(description.get(), 0) + 1
    return out


def _refresh_tables(
    spark: SparkSession, tables: list[GoldTable], ctx: _RunContext, workers: int
) -> list[TableReport]:
    """Refreshes the tables, up to `workers` at a time.

    The tables are independent (each reads pinned silver and writes only itself), and an
    incremental refresh is a chain of small jobs and metadata commits whose latency (planning,
    catalog round trips, commits) leaves the executors idle: refreshing several tables at once
    fills those gaps. Each thread inherits the caller's job group (the local pipeline's progress
    follows it) and labels its jobs with the table's name.
    """

    def one(table: GoldTable) -> TableReport:
        with job_description(spark, _job_description(table.name)):
            return _refresh_table(spark, table, ctx)

    return run_concurrently([partial(one, t) for t in tables], workers)


def shared_changed_views(tables: Sequence[GoldTable], settings: GoldSettings) -> set[str]:
    """Silver views whose changed rows more than one of the tables may read in an incremental
    run (tables recomputed in full by design read the whole view instead)."""
    readers: Counter[str] = Counter()
    for table in tables:
        if settings.strategies.get(table.name, table.strategy) != "full":
            readers.update(list(table.sources))  # the view names (a dict would add its values)
    return {view for view, n in readers.items() if n > 1}


def _explicit_keys(spark: SparkSession, changed: DataFrame | Sequence[str]) -> DataFrame:
    if isinstance(changed, DataFrame):
        return changed.select(F.col("patient_key").cast("string"))  # deduplicated when collected
    rows = [(k,) for k in sorted(set(changed))]
    return spark.createDataFrame(rows, "patient_key string")


def run_gold(
    spark: SparkSession,
    lake_root: str,
    run_id: str,
    changed_patients: ChangedPatients = None,
    settings: GoldSettings | None = None,
    gold_location: str | None = None,
    tables: Sequence[str] | None = None,
    metrics: MetricsCollector | None = None,
) -> GoldRunReport:
    """Builds or refreshes the gold tables from silver.

    changed_patients: None recomputes every table in full; "silver" takes the patients silver
    recorded in lake.silver.changed_patients since each table's watermark; a list (or a DataFrame
    with a `patient_key` column) names the patients changed since the last gold run.
    gold_location: base URI for new gold tables (e.g. s3://bucket/gold); default the warehouse.
    `lake_root` locates the local catalog; the session passed in is already bound to it.
    metrics: per-table RUNTIME and row COUNTs go there (names gold.<table>.*), no PHI.

    A table none of whose silver inputs changed since its watermark is left as it is (mode
    `unchanged`); the changed patients' silver rows are read once and shared by all tables.
    """
    del lake_root  # the session carries the catalog; kept for the job's uniform signature
    settings = settings or GoldSettings()
    started = time.perf_counter()
    report = GoldRunReport(run_id=run_id)
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {GOLD_NS}")

    pins = pin_silver(spark)
    changed_table: meta.LoadedTable | None = None
    if meta.table_exists(spark, inc.CHANGED_PATIENTS_TABLE):
        changed_table = meta.LoadedTable(spark, inc.CHANGED_PATIENTS_TABLE)
    changed_pin = changed_table.current_snapshot_id() if changed_table else None
    change_source: inc.ChangeSource = "none"
    explicit: DataFrame | None = None
    if changed_patients is None:
        pass
    elif isinstance(changed_patients, str):
        if changed_patients != "silver":
            raise ValueError(
                f"changed_patients must be 'silver', a list or a DataFrame, not {changed_patients!r}"
            )
        if changed_table is not None:
            change_source = "silver"
    else:
        explicit = _explicit_keys(spark, changed_patients)
        change_source = "explicit"

    # The changed patients and their silver rows, per changed-patients watermark (the tables
    # of a run normally share one, so this is read once).
    changed_cache: dict[int | None, ChangedRows] = {}

    changed_lock = threading.Lock()

    def changed_rows(wm: inc.Watermark) -> ChangedRows:
        since = -1 if explicit is not None else wm.changed_patients_snapshot
        with changed_lock:
            return _changed_rows_for(since)

    def _changed_rows_for(since: int | None) -> ChangedRows:
        if since not in changed_cache:
            df = (
                explicit
                if explicit is not None
                else inc.changed_patients_between(spark, since, changed_pin)
            )
            keys = sorted({r[0] for r in df.collect() if r[0] is not None})
            changed_cache[since] = ChangedRows(
                spark, pins, keys, settings.key_list_limit, shared_changed_views(selected, settings)
            )
        return changed_cache[since]

    patient_pin = pins["patient"]
    patient_total = (
        patient_pin.table.total_records(patient_pin.snapshot_id) if patient_pin.table else None
    )
    ctx = _RunContext(
        pins=pins,
        settings=settings,
        run_id=run_id,
        gold_location=gold_location,
        requested_full=changed_patients is None,
        change_source=change_source,
        changed_rows=changed_rows,
        patient_total=patient_total,
        changed_pin=changed_pin,
    )
    selected = [TABLES_BY_NAME[t] for t in tables] if tables else list(GOLD_TABLES)
    group = spark.sparkContext.getLocalProperty("spark.jobGroup.id")
    jobs_before = _job_ids(spark, group)
    try:
        report.tables = _refresh_tables(spark, selected, ctx, settings.parallel_tables)
    finally:
        for rows in changed_cache.values():
            rows.release()
    new_jobs = sorted(_job_ids(spark, group) - jobs_before)
    per_table = _jobs_by_description(spark, new_jobs)
    report.spark_jobs = len(new_jobs)
    for entry in report.tables:
        entry.spark_jobs = per_table.get(_job_description(entry.table), 0)
        log.info(
            "gold table %s: %s (%s) in %.2fs, %d Spark jobs, +%d/-%d rows",
            entry.table, entry.mode, entry.reason, entry.seconds, entry.spark_jobs,
            entry.added_records, entry.deleted_records,
        )  # fmt: skip
        if metrics is not None:
            _record_metrics(metrics, entry)
    # Keep the silver snapshots this run read until the next run has diffed against them (only
    # the views an affected-groups table reads: the others are never read at an old snapshot).
    diffed_views = {
        view
        for t in GOLD_TABLES
        if settings.strategies.get(t.name, t.strategy) == "affected_groups"
        for view in t.sources
    }
    for view, pin in sorted(pins.items()):
        if pin.table is None or pin.snapshot_id is None:
            continue
        if view in diffed_views:
            pin.table.set_tag(inc.WATERMARK_TAG, pin.snapshot_id)
        else:  # a tag left by an earlier run would keep an old snapshot's files forever
            pin.table.remove_tag(inc.WATERMARK_TAG)
    if changed_table is not None and changed_pin is not None:
        changed_table.set_tag(inc.WATERMARK_TAG, changed_pin)
    report.seconds = round(time.perf_counter() - started, 3)
    if metrics is not None:
        written = sum(t.added_records for t in report.tables)
        metrics.record_step(records=written, seconds=report.seconds)
    return report


def _record_metrics(metrics: MetricsCollector, entry: TableReport) -> None:
    attrs = {"table": entry.table, "mode": entry.mode}
    metrics.record(f"gold.{entry.table}", "RUNTIME", entry.seconds, "s", attrs)
    metrics.count(f"gold.{entry.table}.rows_added", entry.added_records, attrs)
    metrics.count(f"gold.{entry.table}.rows_deleted", entry.deleted_records, attrs)
    metrics.count(f"gold.{entry.table}.spark_jobs", entry.spark_jobs, attrs)
    if entry.groups_recomputed is not None:
        metrics.count(f"gold.{entry.table}.groups_recomputed", entry.groups_recomputed, attrs)


@dataclass(frozen=True)
class _RunContext:
    """What every table of one gold run shares."""

    pins: dict[str, SilverPin]
    settings: GoldSettings
    run_id: str
    gold_location: str | None
    requested_full: bool
    change_source: inc.ChangeSource
    changed_rows: Callable[[inc.Watermark], ChangedRows]
    patient_total: int | None
    changed_pin: int | None


def _refresh_table(spark: SparkSession, table: GoldTable, ctx: _RunContext) -> TableReport:
    """Plans and runs one table's refresh, then records its watermark. Returns its report."""
    pins, settings, run_id, gold_location = ctx.pins, ctx.settings, ctx.run_id, ctx.gold_location
    t0 = time.perf_counter()
    params = settings.params()
    name = f"{GOLD_NS}.{table.name}"
    location = f"{gold_location.rstrip('/')}/{table.name}" if gold_location else None
    created, target = ensure_gold_table(spark, table, location)
    wm = inc.read_watermark(target.properties())
    chain = target.ancestry()
    valid = wm is not None and inc.watermark_matches_table(wm, chain)
    strategy = settings.strategies.get(table.name)
    old_ok = True
    if wm is not None and (strategy or table.strategy) == "affected_groups":
        old_ok = all(
            wm.silver_snapshots.get(v) is None
            or (pins[v].table is not None and pins[v].table.snapshot_exists(int(wm.silver_snapshots[v])))  # type: ignore[arg-type, union-attr]
            for v in table.sources
        )  # fmt: skip
    ref_moved = (
        wm is not None
        and "{reference_date}" in table.sql
        and wm.params.get("reference_date") != params["reference_date"]
    )
    inputs_unchanged = (
        wm is not None
        and not ref_moved
        and all(wm.silver_snapshots.get(v) == pins[v].snapshot_id for v in table.sources)
    )
    plan = inc.plan_table(
        inc.PlanInput(
            table=table,
            requested_full=ctx.requested_full,
            change_source=ctx.change_source,
            table_created=created,
            watermark=wm,
            watermark_valid=valid,
            params=params,
            old_snapshots_available=old_ok,
            strategy=strategy,
            inputs_unchanged=inputs_unchanged,
        )
    )
    changed: ChangedRows | None = None
    if plan.mode == "incremental":
        assert wm is not None
        changed = ctx.changed_rows(wm)
        total = ctx.patient_total
        if inc.too_many_changed(len(changed.keys), total, settings.max_changed_fraction):
            plan = inc.Plan(
                "full", f"{len(changed.keys)} of {total} patients changed: full is cheaper"
            )
    entry = TableReport(table=table.name, mode=plan.mode, reason=plan.reason, seconds=0.0)
    if plan.mode == "full":
        sources = {v: pins[v].frame for v in table.sources}
        _compute(spark, table, sources, settings, run_id).writeTo(name).overwrite(F.lit(True))
    elif plan.mode == "incremental":
        assert wm is not None and changed is not None
        aged = None
        if table is PATIENT_SUMMARY and ref_moved:
            aged = _rows_with_new_age(spark, name, pins["patient"].frame, settings, run_id)
        if plan.strategy == "per_patient":
            entry.groups_recomputed = _refresh_patients(
                spark, table, changed, settings, run_id, aged
            )
        else:
            entry.groups_recomputed = _refresh_groups(spark, table, changed, wm, settings, run_id)
    else:
        entry.groups_recomputed = 0
    if plan.mode != "unchanged":
        target.refresh()
        chain = target.ancestry()
    head = chain[0].snapshot_id if chain else None
    if chain and head != (wm.gold_snapshot if wm else None):
        entry.snapshot_id = head
        entry.added_records = int(chain[0].summary.get("added-records", 0))
        entry.deleted_records = int(chain[0].summary.get("deleted-records", 0))
    silver_snapshots = {v: p.snapshot_id for v, p in pins.items()}
    props = inc.watermark_properties(run_id, head, silver_snapshots, ctx.changed_pin, params)
    # One metadata commit: the new watermark and the tag that keeps its snapshot through expiry.
    target.set_properties(props, (inc.WATERMARK_TAG, head) if head is not None else None)
    entry.seconds = round(time.perf_counter() - t0, 3)
    return entry


def _refresh_patients(
    spark: SparkSession,
    table: GoldTable,
    changed: ChangedRows,
    settings: GoldSettings,
    run_id: str,
    extra_upserts: DataFrame | None = None,
) -> int:
    """Recomputes the changed patients' rows of a per-patient table and MERGEs what differs.

    `extra_upserts`: further rows to write over their current versions in the same MERGE
    (patient_summary's new ages); rows of the recomputed patients take precedence.
    Returns the number of patients recomputed.
    """
    keys = changed.keys
    if not keys and extra_upserts is None:
        return 0
    sources = {v: changed.new(v) for v in table.sources}
    new_rows = _compute(spark, table, sources, settings, run_id)
    in_list = keys if changed.in_list else None
    groups = spark.createDataFrame([(k,) for k in keys], "patient_key string")
    _merge_recomputed(spark, table, new_rows, groups, len(keys), in_list, settings, extra_upserts)
    return len(keys)


def _refresh_groups(
    spark: SparkSession,
    table: GoldTable,
    changed: ChangedRows,
    wm: inc.Watermark,
    settings: GoldSettings,
    run_id: str,
) -> int:
    """Recomputes the groups (months, codes, code-days) whose rows changed and MERGEs them.

    The changed patients' rows at the watermark's silver snapshot and now are compared in the
    driver (both are small and shared with the other tables): only groups of rows added, removed
    or changed move. Their rows are then read from silver with literal predicates (code IN,
    time ranges) that prune files before the exact group match. Returns the group count.
    """
    if not changed.keys:
        return 0
    groups: set[tuple[Any, ...]] = set()
    key_schema: StructType | None = None
    for view, key_exprs in table.sources.items():
        n = len(table.group_key)
        select = [F.expr(key_exprs[k]).alias(k) for k in table.group_key] + [
            F.col(c) for c in SILVER_INPUTS[view]
        ]
        new = changed.new(view).select(*select, F.lit(True).alias("_gold_is_new"))
        old = changed.old(view, wm.silver_snapshots.get(view)).select(
            *select, F.lit(False).alias("_gold_is_new")
        )
        key_schema = StructType(new.schema.fields[:n])
        # Old and new rows in one collect: one Spark job instead of two.
        rows = [tuple(r) for r in new.union(old).collect()]  # by position: key names repeat columns
        groups |= inc.changed_groups(
            [r[:-1] for r in rows if not r[-1]], [r[:-1] for r in rows if r[-1]], n
        )
    if not groups:
        return 0
    assert key_schema is not None
    group_list = sorted(groups, key=lambda g: tuple("" if v is None else str(v) for v in g))
    groups_df = _local_frame(spark, group_list, key_schema)
    sources = {}
    for view in table.sources:
        frame = changed.pins[view].frame
        prune = inc.group_prune_predicate(table, view, group_list)
        if prune is not None:
            frame = frame.where(prune)
        sources[view] = inc.rows_of_groups(view, table, frame, groups_df)
    new_rows = _compute(spark, table, sources, settings, run_id)
    _merge_recomputed(spark, table, new_rows, groups_df, len(group_list), None, settings, None)
    return len(group_list)


def _merge_recomputed(
    spark: SparkSession,
    table: GoldTable,
    new_rows: DataFrame,
    groups: DataFrame,
    n_groups: int,
    in_list: list[str] | None,
    settings: GoldSettings,
    extra_upserts: DataFrame | None,
) -> None:
    """MERGEs the recomputed rows of `groups` over the table's current rows of those groups:
    compared in the driver when they are few (only differing rows are written), else by Spark."""
    if extra_upserts is None and n_groups <= settings.local_merge_groups:
        # New and current rows in one collect (one Spark job fewer than two collects).
        side = "_gold_is_new"
        current = _current_rows(spark, table, groups, in_list).select(*table.column_names)
        both = new_rows.withColumn(side, F.lit(True)).unionByName(
            current.withColumn(side, F.lit(False))
        )
        rows = [tuple(r) for r in both.collect()]
        _merge_rows(
            spark,
            table,
            new_rows.schema,
            [r[:-1] for r in rows if r[-1]],
            [r[:-1] for r in rows if not r[-1]],
            in_list,
        )
        return
    new_rows = new_rows.persist()
    try:
        _merge_frames(
            spark,
            table,
            new_rows,
            groups,
            in_list if extra_upserts is None else None,
            extra_upserts,
        )
    finally:
        new_rows.unpersist()


# ---------------------------------------------------------------------------------------------
# Command line


def _lake_root_from_args(args: argparse.Namespace) -> str:
    if args.lake:
        return str(args.lake)
    if args.silver:
        return str(args.silver).rstrip("/").rsplit("/", 1)[0]
    raise SystemExit("gold_job: give --lake URI (or the layer URIs --silver/--gold)")


def settings_from_args(args: argparse.Namespace) -> tuple[GoldSettings, dict[str, Any] | None]:
    """GoldSettings (and local Spark settings, if any) from --settings-json and the flags."""
    raw: dict[str, Any] = json.loads(args.settings_json) if args.settings_json else {}
    gold = raw.get("gold", raw)
    threshold = args.suppression_threshold or gold.get("suppressionThreshold") or 10
    ref = args.reference_date or gold.get("referenceDate")
    settings = GoldSettings(
        suppression_threshold=int(threshold),
        reference_date=date.fromisoformat(ref) if ref else None,
        strategies=dict(gold.get("strategies", {})),
        parallel_tables=int(gold.get("parallelTables", GoldSettings.parallel_tables)),
    )
    return settings, raw.get("spark") or raw.get("localSpark")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.gold_job",
        description="Build or refresh the gold tables (lake.gold.*) from the silver views.",
    )
    p.add_argument(
        "--lake", help="lake root URI (file:///... locally; holds catalog/ and warehouse/)"
    )
    p.add_argument(
        "--run-id", required=True, help="pipeline run id (recorded on every row written)"
    )
    p.add_argument(
        "--changed-patients-from",
        choices=["silver", "all"],
        default="silver",
        help="silver: recompute the patients lake.silver.changed_patients lists since the last gold "
        "run (default); all: recompute every table in full",
    )
    p.add_argument("--suppression-threshold", type=int, help="small-cell threshold (default 10)")
    p.add_argument(
        "--reference-date", help="date ages are computed for (YYYY-MM-DD, default today UTC)"
    )
    p.add_argument(
        "--settings-json",
        help='JSON: {"gold": {"suppressionThreshold": 10, "referenceDate": "..."}, "spark": {...}}',
    )
    p.add_argument("--tables", help="comma-separated subset of gold tables (default: all)")
    p.add_argument(
        "--no-metrics", action="store_true", help="do not write {lake}/metrics/performance_metrics"
    )
    # The orchestrator's uniform job arguments (lib/core/pipeline-steps.ts sparkJobArguments).
    p.add_argument("--bronze", help=argparse.SUPPRESS)
    p.add_argument("--silver", help="silver layer URI (orchestrator form; lake root is its parent)")
    p.add_argument("--gold", help="gold layer URI: new gold tables are created under it")
    p.add_argument("--metrics", help=argparse.SUPPRESS)
    p.add_argument(
        "--catalog", choices=["local", "glue"], default="local", help="Iceberg catalog kind"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    args = build_parser().parse_args(argv)
    lake_root = _lake_root_from_args(args)
    settings, spark_settings = settings_from_args(args)
    from fhir_lakehouse.spark_session import get_or_create_session

    # The active session on EMR (Glue catalog) and in the local step server; else a local one.
    spark = get_or_create_session(lake_root, spark_settings)
    metrics = None if args.no_metrics else MetricsCollector(args.run_id, "gold", lake_root)
    changed: ChangedPatients = None if args.changed_patients_from == "all" else "silver"
    try:
        report = run_gold(
            spark,
            lake_root,
            args.run_id,
            changed,
            settings,
            gold_location=args.gold,
            tables=args.tables.split(",") if args.tables else None,
            metrics=metrics,
        )
    finally:
        if metrics is not None:
            metrics.flush()
    sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
