"""The silver job: one bronze run -> lake.silver.resources (MERGE by content hash) -> view tables.

Steps, in the order that makes a crashed run safe to re-run:
 1. validate every ViewDefinition (an invalid one fails here, before any data is touched);
 2. read the run's manifest and only its bronze partitions;
 3. pick one row per resource from key columns alone and classify it against silver.resources
    (insert / update / unchanged / older), still without reading the JSON; a type silver.resources
    does not hold (Iceberg metadata says so) is all inserts, with no join;
 4. parse the JSON of the inserts and updates once per type, with the views' schema (plus
    resourceType, id and the corrupt-record field), and keep that parse: it feeds the reject check
    (what cannot be parsed goes to silver.rejects), the counts and, in step 7, the views;
 5. work out deletes: the manifest's `deleted` entries and, for a complete snapshot, what the
    scope (groups x types) no longer holds (found by step 3's join when the manifest names the
    snapshot's types);
 6. log the changes (silver.resource_changes); then, at once (they write different tables):
    append the inserts and MERGE updates and deletes, update scope membership, record changed
    patients for gold, and (step 7) refresh the views;
 7. refresh each view table from the run's parse of the resources it changed (and finish any
    earlier run whose views were interrupted, from its change log and silver.resources), then
    record the run as done in silver.runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse import silver_views
from fhir_lakehouse.concurrent_jobs import job_description, run_concurrently
from fhir_lakehouse.gold_incremental import record_changed_patients
from fhir_lakehouse.lake_contract import layer_uri
from fhir_lakehouse.silver_bronze import (
    BRONZE_SCHEMA,
    LOCATOR,
    SYSTEM_SCOPE,
    RunManifest,
    bronze_file_schema,
    bronze_reject_counts,
    read_manifest,
    read_run,
    run_inputs,
)
from fhir_lakehouse.silver_merge import (
    DELETE,
    INSERT,
    KEY,
    OLDER,
    RELEASE,
    UNCHANGED,
    UPDATE,
    as_latest,
    classify,
    duplicate_keys,
    pick_latest,
    resources_merge_sql,
    snapshot_removals,
)
from fhir_lakehouse.silver_tables import (
    CHANGES,
    REJECTS,
    RESOURCES,
    RESOURCES_SCHEMA,
    RUNS,
    RUNS_SCHEMA,
    SCOPES,
    ensure_core_tables,
    existing_tables,
    qualified,
)
from fhir_lakehouse.silver_views import PASSTHROUGH, RESOURCE_ID_COLUMN
from fhir_lakehouse.views import ParsedResources, build_views, parse_resources, view_readable
from fhir_lakehouse.views.compiler import ROOT
from fhir_lakehouse.views.schema import CORRUPT_RECORD

if TYPE_CHECKING:
    from fhir_lakehouse.metrics import MetricsCollector

log = logging.getLogger("fhir_lakehouse.silver")

STEP = "silver"
RUN_DONE = "run"


@dataclass
class TypeCounts:
    """What the run did to one resource type in silver.resources."""

    read: int = 0  # bronze rows of the run
    duplicates: int = 0  # extra copies of a resource inside the run (one version kept)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # same content hash as stored: nothing written
    ignored_older: int = 0  # an older version than the stored one: nothing written
    deleted: int = 0  # removed by `deleted` entries or by a complete snapshot
    rejected: int = 0  # JSON that could not be parsed: to silver.rejects


@dataclass
class SilverResult:
    """The outcome of one silver run (also printed as JSON by the CLI)."""

    run_id: str
    types: dict[str, TypeCounts] = field(default_factory=dict)
    views: dict[str, silver_views.ViewRefresh] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    complete_snapshot: bool = False
    scope: str = SYSTEM_SCOPE
    bronze_rejected: dict[str, int] = field(default_factory=dict)
    recovered_runs: list[str] = field(default_factory=list)
    overlapped: list[str] = field(default_factory=list)  # timings inside another (concurrent)
    notes: list[str] = field(default_factory=list)

    def total(self, counter: str) -> int:
        """Sum of one counter (read, inserted, ...) over all types."""
        return sum(getattr(c, counter) for c in self.types.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["totals"] = {k: self.total(k) for k in asdict(TypeCounts())}
        return d


class _Timings:
    """Per-step wall times, kept in the result and mirrored to the metrics collector if any
    (with the Spark stages each step ran: shuffle, spill, GC, memory)."""

    def __init__(
        self, spark: SparkSession, result: SilverResult, metrics: MetricsCollector | None
    ) -> None:
        self.spark = spark
        self.result = result
        self.metrics = metrics

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        stages = (
            self.metrics.spark_stages(self.spark, f"silver.{name}")
            if self.metrics is not None
            else nullcontext()
        )
        with stages, self._described(name):
            yield
        self._record(name, time.perf_counter() - t0)

    def _described(self, name: str) -> AbstractContextManager[None]:
        # The step names its Spark jobs (Spark UI, status store): "silver <step>".
        return job_description(self.spark, f"silver {name}")

    def wall(self, name: str, step: Callable[[], None]) -> Callable[[], None]:
        """`step` timed by wall clock alone, for steps run at once (whose Spark stages the
        enclosing step records: the status store cannot tell their stages apart)."""

        def timed() -> None:
            t0 = time.perf_counter()
            with self._described(name):
                step()
            self._record(name, time.perf_counter() - t0)

        self.result.overlapped.append(name)
        return timed

    def _record(self, name: str, elapsed: float) -> None:
        self.result.timings[name] = round(elapsed, 3)
        if self.metrics is not None:
            self.metrics.record(f"silver.{name}", "RUNTIME", elapsed, "s")


def _now() -> datetime:
    return datetime.now(UTC)


def _empty_bronze(spark: SparkSession) -> DataFrame:
    schema = T.StructType(
        [
            *BRONZE_SCHEMA.fields,
            T.StructField(LOCATOR[0], T.LongType()),
            T.StructField(LOCATOR[1], T.LongType()),
        ]
    )
    return spark.createDataFrame([], schema)


def reject_reason() -> Column:
    """Why a parsed resource cannot be stored, or null when it is fine.

    Reads the one parse of the run (ROOT, the struct `from_json` made with the views' schema plus
    `resourceType`, `id` and the corrupt-record field): text that is not JSON at all leaves every
    field null; JSON whose shape is wrong only in an element the views read keeps `resourceType`
    and `id` (Spark keeps the other top-level fields), so it is stored and only the views reject it.
    """
    parsed = F.col(ROOT)
    rtype, rid = parsed.getField("resourceType"), parsed.getField("id")
    return (
        F.when(
            parsed.isNull() | (parsed.getField(CORRUPT_RECORD).isNotNull() & rtype.isNull()),
            F.lit("invalid JSON"),
        )
        .when(rtype.isNull(), F.lit("no resourceType in the JSON"))
        .when(
            rtype != F.col("resource_type"),
            F.concat(F.lit("resourceType "), rtype, F.lit(" is not "), F.col("resource_type")),
        )
        .when(
            rid.isNull() | (rid != F.col("id")),
            F.lit("id in the JSON differs from the bronze id"),
        )
    )


# Up to this many rows a locator or key list is broadcast to the side that reads bronze or
# silver.resources (a hash join without a shuffle of the big side); above it AQE decides.
BROADCAST_ROWS = 2_000_000

# View tables refreshed at once (types), next to the other writes of a run: a daily run's writes
# are mostly job and commit latency on small data, which overlaps well even on a 2-core driver.
VIEW_WORKERS = 4


def _small(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= BROADCAST_ROWS else df


def append_new(df: DataFrame, table: str, key_cols: list[str], run_id: str | None) -> int:
    """Appends the rows of `df` not already in `table` (by key_cols, within run_id if given).

    Makes every append idempotent: re-running a run adds nothing (and commits nothing).
    """
    existing = df.sparkSession.table(qualified(table))
    if run_id is not None:
        existing = existing.where(F.col("run_id") == run_id)
    new = df.join(existing.select(*key_cols), key_cols, "left_anti").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        n = new.count()
        if n:
            new.writeTo(qualified(table)).append()
        return n
    finally:
        new.unpersist()


def done_steps(spark: SparkSession, run_id: str) -> set[str]:
    """Steps of a run already recorded as finished in silver.runs."""
    if not meta.values_with_files(spark, qualified(RUNS), "run_id", [run_id]):
        return set()  # file bounds on run_id prove the run has no rows: no Spark job
    rows = spark.table(qualified(RUNS)).where(F.col("run_id") == run_id).select("step").collect()
    return {str(r[0]) for r in rows}


def _patient_key(ref: Column) -> Column:
    """'Patient/123' (or a full URL, or a bare id) -> '123'."""
    return F.when(ref.contains("Patient/"), F.regexp_extract(ref, r"Patient/([^/]+)", 1)).otherwise(
        ref
    )


def _count_by(df: DataFrame, *cols: str) -> list[Row]:
    return df.groupBy(*cols).count().collect()


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


_OP_COUNTER = {
    INSERT: "inserted",
    UPDATE: "updated",
    UNCHANGED: "unchanged",
    OLDER: "ignored_older",
}

_TYPE_DIR = re.compile(r"/resource_type=([^/]+)/")


def files_by_type(paths: list[str]) -> dict[str, list[str]] | None:
    """The run's bronze paths grouped by the `resource_type=` directory they sit in (pure).

    None when a path has no such directory: the types are then only known from the data.
    """
    out: dict[str, list[str]] = {}
    for p in paths:
        m = _TYPE_DIR.search(p + "/")
        if m is None:
            return None
        out.setdefault(unquote(m.group(1)), []).append(p)
    return out


# The kinds of parsed row counted per type: stored and fed to the views, stored but unreadable by
# the views (rejected there with "views: ..."), or not stored at all (rejected by its keys).
_OK, _VIEW_REJECT, _KEY_REJECT = "ok", "view", "key"


def run_silver(
    spark: SparkSession,
    lake_root: str,
    run_id: str,
    views_dir: str | Path | None = None,
    *,
    bronze_uri: str | None = None,
    metrics: MetricsCollector | None = None,
) -> SilverResult:
    """Runs the silver job for one bronze run (the steps are in the module docstring).

    `lake_root` is file:///… or s3://…; bronze defaults to `{lake_root}/bronze`; `views_dir`
    defaults to the package's default views. Tables go to the session's Iceberg catalog `lake`.
    """
    result = SilverResult(run_id=run_id)
    timer = _Timings(spark, result, metrics)
    with timer("validate_views"):
        views = silver_views.load_silver_views(views_dir)
    views_by_type: dict[str, list[silver_views.SilverView]] = {}
    for v in views:
        views_by_type.setdefault(v.resource_type, []).append(v)
    bronze = bronze_uri or layer_uri(lake_root, "bronze")
    with timer("read_manifest"):
        manifest = read_manifest(spark, bronze, run_id)
        partitions = run_inputs(spark, bronze, manifest)
        result.bronze_rejected = bronze_reject_counts(spark, bronze, manifest)
    result.complete_snapshot, result.scope = manifest.complete, manifest.scope
    log.info("silver run %s: reading %d bronze paths", run_id, len(partitions))
    by_type = files_by_type(partitions)
    file_schema: T.StructType | None = None
    rows = _empty_bronze(spark)
    n_dups = 0
    finished_before = logged_before = False

    def prepare_tables() -> None:
        nonlocal finished_before, logged_before
        existing = existing_tables(spark)
        ensure_core_tables(spark, existing)
        silver_views.ensure_view_tables(spark, views, existing)
        finished_before = RUN_DONE in done_steps(spark, run_id)
        # Changes of this run already logged = an earlier attempt got that far: the views are then
        # refreshed from the change log (what that attempt wrote), not from this attempt's parse.
        logged_before = bool(
            meta.values_with_files(spark, qualified(CHANGES), "run_id", [run_id])
        ) and bool(spark.table(qualified(CHANGES)).where(F.col("run_id") == run_id).take(1))

    def count_copies() -> None:
        # Copies of a resource inside the run: counted by a hash aggregate of the keys (bronze
        # only, so it needs no table and runs while the tables are prepared).
        nonlocal file_schema, rows, n_dups
        if partitions:
            file_schema = bronze_file_schema(spark, partitions)
            rows = read_run(spark, partitions, file_schema)
        n_dups = duplicate_keys(rows.drop("resource", "source", "run_id")).count()

    with timer("prepare"):  # the catalog's round trips overlap the first bronze job
        run_concurrently(
            [
                timer.wall("prepare_tables", prepare_tables),
                timer.wall("count_copies", count_copies),
            ],
            2,
        )
    persisted: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return persisted[-1]

    checkpoints: list[DataFrame] = []

    def pin(df: DataFrame) -> DataFrame:
        # Materialized once, with the lineage cut: a frame computed from silver.resources or
        # silver.resource_scopes would otherwise be dropped from the cache (and recomputed from
        # the new table state) as soon as this run writes to that table.
        pinned = df.localCheckpoint(eager=True)
        checkpoints.append(pinned)
        return pinned

    def bronze_of(rtype: str) -> DataFrame:
        if by_type is not None:
            if rtype in by_type:
                return read_run(spark, by_type[rtype], file_schema)
            return _empty_bronze(spark)
        return rows.where(F.col("resource_type") == rtype)

    try:
        with timer("classify"):
            keys = rows.drop("resource", "source", "run_id")
            # The winner of each resource delivered more than once is picked only where there
            # are copies (none on a normal run; the aggregate is recomputed in that rare case).
            latest = (
                as_latest(keys)
                if n_dups == 0
                else pick_latest(keys, duplicate_keys(keys), n_dups <= BROADCAST_ROWS)
            )
            # Which of the run's types silver.resources holds, from Iceberg's manifests (no scan).
            # A type it does not hold needs no comparison: every winner is an insert.
            stored_types: set[str] | None = None
            if by_type is not None:
                stored_types = meta.values_with_files(
                    spark, qualified(RESOURCES), "resource_type", sorted(by_type)
                )
            # silver.resources as it was before this run (pinned: later reads of `stored` must
            # not see the rows this run writes).
            before = meta.current_summary(spark, qualified(RESOURCES))
            stored = (
                spark.table(qualified(RESOURCES))
                if before is None
                else meta.read_at(spark, qualified(RESOURCES), before[0])
            ).select(*KEY, "version_id", "last_updated", "content_hash", "patient_ref")
            # The types a complete snapshot proves absences for, when the manifest names them.
            snap_types = (
                _snapshot_types(spark, manifest, result)
                if manifest.complete and manifest.types and stored_types != set()
                else None
            )
            # A complete snapshot finds what left its scope in the classify join: no second
            # pass over the stored keys (system scope) or the scope's memberships (groups).
            fused = bool(snap_types and stored_types and not manifest.deleted)
            members = None
            if fused and manifest.scope != SYSTEM_SCOPE:
                members = (
                    spark.table(qualified(SCOPES))
                    .where(F.col("scope") == manifest.scope)
                    .select(*KEY)
                )
            if stored_types is None:
                classified = classify(latest, stored.drop("patient_ref"))
            elif not stored_types:
                classified = latest.withColumn("_op", F.lit(INSERT))
            elif fused:
                targets = sorted(stored_types | set(snap_types or []))
                classified = classify(
                    latest,
                    stored.where(F.col("resource_type").isin(targets)).drop("patient_ref"),
                    snap_types,
                    members,
                )
            else:
                held = F.col("resource_type").isin(sorted(stored_types))
                classified = latest.where(~held).withColumn("_op", F.lit(INSERT))
                classified = classified.unionByName(
                    classify(latest.where(held), stored.where(held).drop("patient_ref"))
                )
            # A first load's plan reads bronze alone: cached, the counts below fill the cache.
            # Otherwise it reads silver.resources, which this run writes: checkpointed.
            classified = keep(classified) if stored_types == set() else pin(classified)
            changed_by_type: dict[str, int] = {}
            n_released = n_new_members = 0
            new_member = (F.col("_member").isNull() if members is not None else F.lit(False)).alias(
                "_new_member"
            )
            for r in (
                classified.groupBy("resource_type", "_op", new_member)
                .agg(F.count(F.lit(1)).alias("n"), F.sum("_copies").alias("copies"))
                .collect()
            ):
                if r["_op"] == RELEASE:  # left the group scope: deleted if no other scope holds it
                    n_released += int(r["n"])
                    continue
                n_new_members += int(r["n"]) if r["_new_member"] else 0
                c = result.types.setdefault(r["resource_type"], TypeCounts())
                if r["_op"] == DELETE:  # a stored resource the system snapshot no longer holds
                    c.deleted += int(r["n"])
                    continue
                c.read += int(r["copies"])
                c.duplicates += int(r["copies"]) - int(r["n"])
                counter = _OP_COUNTER[r["_op"]]
                setattr(c, counter, getattr(c, counter) + int(r["n"]))
                if r["_op"] in (INSERT, UPDATE):
                    changed_by_type[r["resource_type"]] = changed_by_type.get(
                        r["resource_type"], 0
                    ) + int(r["n"])

            snapshot_deletes = fused_releases = None
            if fused:
                absent = classified.where(F.col("_op").isin(DELETE, RELEASE))
                classified = classified.where(~F.col("_op").isin(DELETE, RELEASE))
                if members is None:
                    snapshot_deletes = absent.select(*KEY)
                else:
                    fused_releases = absent.select(F.lit(manifest.scope).alias("scope"), *KEY)
                    others = spark.table(qualified(SCOPES)).where(F.col("scope") != manifest.scope)
                    snapshot_deletes = (
                        absent.where(F.col("_stored"))
                        .select(*KEY)
                        .join(others.select(*KEY), list(KEY), "left_anti")
                    )

        with timer("parse"):
            # Every bronze row of the type is a new resource (first load, no duplicates): the
            # type's files are the input as they are, no join with the plan.
            whole = {t for t, c in result.types.items() if c.read and c.inserted == c.read}
            parsed: dict[str, tuple[ParsedResources, DataFrame]] = {}
            kind_counts: list[DataFrame] = []
            # The other types' inserts and updates (a few on a daily run) are fetched from bronze
            # by locator in one read of those types' files, kept for the parse and the writes.
            partial = sorted(t for t in changed_by_type if t not in whole)
            fetched: DataFrame | None = None
            if partial:
                locs = classified.where(
                    F.col("resource_type").isin(partial) & F.col("_op").isin(INSERT, UPDATE)
                ).select(*LOCATOR, "_op")
                src = (
                    rows
                    if by_type is None
                    else read_run(spark, [f for t in partial for f in by_type[t]], file_schema)
                )
                n_partial = sum(changed_by_type[t] for t in partial)
                fetched = keep(src.join(_small(locs, n_partial), list(LOCATOR), "inner"))
            for rtype in sorted(changed_by_type):
                if rtype in whole:
                    changed = bronze_of(rtype).withColumn("_op", F.lit(INSERT))
                else:
                    assert fetched is not None
                    changed = fetched.where(F.col("resource_type") == rtype)
                changed = changed.select(
                    *KEY,
                    *LOCATOR,
                    "_op",
                    "patient_ref",
                    F.lit(run_id).alias("_run_id"),
                    F.col("content_hash").alias("_content_hash"),
                    F.col("last_updated").alias("_last_updated"),
                    F.col("id").alias(RESOURCE_ID_COLUMN),
                    "resource",
                )
                # The one JSON parse of the run: the views' schema, which also holds
                # resourceType, id and the corrupt-record field the reject check reads.
                p = parse_resources(
                    [v.definition for v in views_by_type.get(rtype, [])], changed, rtype
                )
                frame = keep(p.frame.drop("resource").withColumn("_reason", reject_reason()))
                parsed[rtype] = (p, frame)
                kind = (
                    F.when(F.col("_reason").isNotNull(), F.lit(_KEY_REJECT))
                    .when(view_readable(rtype), F.lit(_OK))
                    .otherwise(F.lit(_VIEW_REJECT))
                )
                kind_counts.append(frame.select("resource_type", "_op", kind.alias("_kind")))
            view_rejects: dict[str, int] = {}
            key_rejects: set[str] = set()
            # One Spark job parses every type (and fills the caches every later step reads): one
            # aggregate over the union, so one shuffle, not one per type.
            counted = (
                _union(kind_counts).groupBy("resource_type", "_op", "_kind").count().collect()
                if kind_counts
                else []
            )
            for r in counted:
                rtype, n = str(r["resource_type"]), int(r["count"])
                if r["_kind"] == _KEY_REJECT:
                    c = result.types[rtype]
                    c.rejected += n
                    counter = _OP_COUNTER[r["_op"]]
                    setattr(c, counter, getattr(c, counter) - n)
                    key_rejects.add(rtype)
                elif r["_kind"] == _VIEW_REJECT:
                    view_rejects[rtype] = view_rejects.get(rtype, 0) + n

        with timer("write_rejects"):
            reject_frames = [
                frame.where(F.col("_reason").isNotNull()).select(
                    *KEY, F.col("_reason").alias("reason")
                )
                for rtype, (_, frame) in sorted(parsed.items())
                if rtype in key_rejects
            ]
            for rtype, (p, frame) in sorted(parsed.items()):
                if rtype in view_rejects:
                    bad = build_views(p, True, PASSTHROUGH, frame.where(F.col("_reason").isNull()))
                    reject_frames.append(
                        bad.rejects.select(
                            F.lit(rtype).alias("resource_type"),
                            F.col(RESOURCE_ID_COLUMN).alias("id"),
                            F.concat(F.lit("views: "), F.col("reason")).alias("reason"),
                        )
                    )
            if reject_frames:
                append_new(
                    _union(reject_frames).select(
                        F.lit(run_id).alias("run_id"),
                        *KEY,
                        "reason",
                        F.lit(_now()).alias("rejected_at"),
                    ),
                    REJECTS,
                    ["resource_type", "id", "reason"],
                    run_id,
                )

        with timer("plan_deletes"):
            may_hold = snapshot_deletes is None and _may_hold_deletions(
                spark, manifest, stored_types
            )
            deletes, releases = _plan_deletes(
                spark,
                manifest,
                latest_keys=classified,
                result=result,
                may_hold=may_hold,
                snapshot_types=snap_types,
            )
            n_releases = 0
            if fused_releases is not None:  # found (and counted) by the classify join
                releases, n_releases = fused_releases, n_released
                if n_released:  # deleted: those no other scope holds
                    deletes = pin(snapshot_deletes)
                    for r in _count_by(deletes, "resource_type"):
                        c = result.types.setdefault(r["resource_type"], TypeCounts())
                        c.deleted = int(r["count"])
            elif snapshot_deletes is not None:  # found and counted by the classify join
                deletes = snapshot_deletes
            if may_hold:  # otherwise both are empty: no Spark job
                deletes = pin(deletes)
                for r in _count_by(deletes, "resource_type"):
                    c = result.types.setdefault(r["resource_type"], TypeCounts())
                    c.deleted = int(r["count"])
                if manifest.deleted or manifest.scope != SYSTEM_SCOPE:
                    # (the system scope keeps no memberships: only `deleted` entries release)
                    releases = pin(releases)
                    n_releases = releases.count()
        n_changes = sum(c.inserted + c.updated + c.deleted for c in result.types.values())

        # The rows the run writes (inserts and updates whose JSON passed the check).
        if key_rejects:
            good = _union(
                [
                    frame.where(F.col("_reason").isNull()).select(
                        *KEY, *LOCATOR, "_op", "patient_ref"
                    )
                    for _, frame in parsed.values()
                ]
            )
        else:
            good = classified.where(F.col("_op").isin(INSERT, UPDATE)).select(
                *KEY, *LOCATOR, "_op", "patient_ref"
            )
        with timer("log_changes"):
            changes = good.select(*KEY, "_op").unionByName(
                deletes.select(*KEY, F.lit(DELETE).alias("_op"))
            )
            log_rows = changes.select(
                F.lit(run_id).alias("run_id"),
                *KEY,
                F.col("_op").alias("op"),
                F.lit(_now()).alias("changed_at"),
            )
            if n_changes and logged_before:
                append_new(log_rows, CHANGES, ["resource_type", "id", "op"], run_id)
            elif n_changes:  # nothing of this run is logged yet: a plain append
                log_rows.writeTo(qualified(CHANGES)).append()

        def write_resources() -> None:
            resource_cols = [f.name for f in RESOURCES_SCHEMA.fields]

            def as_resource(df: DataFrame) -> DataFrame:
                return df.select(
                    *[F.lit(run_id).alias(c) if c == "run_id" else F.col(c) for c in resource_cols]
                )

            def changed_rows(rtype: str, op: str) -> DataFrame:
                n = result.types[rtype].inserted if op == INSERT else result.types[rtype].updated
                if rtype in whole:  # every row of the type's files, as they are
                    base = bronze_of(rtype)
                else:
                    assert fetched is not None
                    base = fetched.where((F.col("resource_type") == rtype) & (F.col("_op") == op))
                if rtype not in key_rejects:
                    return base
                locs = good.where((F.col("resource_type") == rtype) & (F.col("_op") == op))
                return base.join(_small(locs.select(*LOCATOR), n), list(LOCATOR), "left_semi")

            inserted = [t for t, c in sorted(result.types.items()) if c.inserted]
            if inserted:
                as_resource(_union([changed_rows(t, INSERT) for t in inserted])).writeTo(
                    qualified(RESOURCES)
                ).append()
            n_deletes = sum(c.deleted for c in result.types.values())
            updated = [t for t, c in sorted(result.types.items()) if c.updated]
            if updated or n_deletes:
                # Delete markers carry every column (null) so the MERGE's SET list resolves.
                source = deletes.select(
                    *[
                        F.col(f.name)
                        if f.name in KEY
                        else F.lit(None).cast(f.dataType).alias(f.name)
                        for f in RESOURCES_SCHEMA.fields
                    ],
                    F.lit(DELETE).alias("_op"),
                )
                if updated:
                    source = (
                        as_resource(_union([changed_rows(t, UPDATE) for t in updated]))
                        .withColumn("_op", F.lit(UPDATE))
                        .unionByName(source)
                    )
                view = f"silver_resource_changes_{abs(hash(run_id))}"
                source.createOrReplaceTempView(view)
                types = sorted(result.types)
                spark.sql(resources_merge_sql(qualified(RESOURCES), view, resource_cols, types))
                spark.catalog.dropTempView(view)

        def write_scopes() -> None:
            def membership(rows: DataFrame) -> DataFrame:
                return rows.select(
                    F.lit(manifest.scope).alias("scope"), *KEY, F.lit(run_id).alias("run_id")
                )

            if members is not None:  # the classify join found the run's new members
                if n_new_members:
                    membership(classified.where(F.col("_member").isNull())).writeTo(
                        qualified(SCOPES)
                    ).append()
            elif meta.values_with_files(spark, qualified(SCOPES), "scope", [manifest.scope]):
                append_new(membership(classified), SCOPES, ["scope", "resource_type", "id"], None)
            elif result.total("read"):  # the scope's first run: nothing to compare with
                membership(classified).writeTo(qualified(SCOPES)).append()
            if n_releases:
                view = f"silver_scope_releases_{abs(hash(run_id))}"
                releases.createOrReplaceTempView(view)
                spark.sql(
                    f"MERGE INTO {qualified(SCOPES)} t USING {view} s "
                    "ON t.resource_type = s.resource_type AND t.id = s.id "
                    "AND (s.scope IS NULL OR t.scope = s.scope) WHEN MATCHED THEN DELETE"
                )
                spark.catalog.dropTempView(view)

        def changed_patients() -> None:
            if n_changes:
                n_replaced = result.total("updated") + result.total("deleted")
                _record_changed_patients(spark, run_id, good, stored, deletes, n_replaced)

        def refresh_views() -> None:
            if finished_before:
                return
            run_changes = None
            if not logged_before:
                run_changes = silver_views.RunChanges(
                    parsed={
                        t: (p, frame.where(F.col("_reason").isNull()))
                        for t, (p, frame) in parsed.items()
                    },
                    replaced_ids={
                        t: _replaced_ids(good, deletes, t, c.updated)
                        for t, c in result.types.items()
                        if c.updated or c.deleted
                    },
                    changed_types={
                        t for t, c in result.types.items() if c.inserted + c.updated + c.deleted
                    },
                    stored_before=stored_types,
                    view_rejects=view_rejects,
                )
            result.views = silver_views.refresh_views(
                spark, views, run_id, run_changes, workers=VIEW_WORKERS
            )

        with timer("recover_views"):
            # Earlier runs whose views never finished, from their change logs and the current
            # silver.resources (what this run writes next only replaces rows it changed).
            pending = _unfinished_runs(spark, run_id)
            result.recovered_runs = pending
            for rid in pending:
                silver_views.refresh_views(spark, views, rid)
                _record_done(spark, rid, RUN_DONE, None)
        writes = {  # in the order a retried run needs them
            "write_resources": write_resources,
            "write_scopes": write_scopes,
            "changed_patients": changed_patients,
            "refresh_views": refresh_views,
        }
        if logged_before:
            # A retried run's views are rebuilt from silver.resources: after it is written.
            for name, write in writes.items():
                with timer(name):
                    write()
        else:
            # The writes go to different tables from inputs already computed and pinned: at
            # once. Each part's wall time is kept; the stages are recorded for the whole step.
            # All four at once: the views (the longest, themselves up to VIEW_WORKERS types at
            # a time) must not wait for a free thread behind the others.
            with timer("write"):
                run_concurrently(
                    [timer.wall(name, write) for name, write in writes.items()], len(writes)
                )
        if not finished_before:
            _record_done(spark, run_id, RUN_DONE, result)
    finally:
        for df in persisted:
            df.unpersist()
        for df in checkpoints:
            _release_checkpoint(df)
    if metrics is not None:
        _record_metrics(metrics, result)
    return result


def _release_checkpoint(df: DataFrame) -> None:
    """Drops the blocks of a localCheckpoint now (a long-lived session, like the local pipeline's
    step server, would otherwise keep them until the JVM's garbage collector finds the RDD)."""
    plan = df._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def _replaced_ids(good: DataFrame, deletes: DataFrame, rtype: str, n_updated: int) -> DataFrame:
    """Ids of `rtype` the run updated or deleted: their old view rows are to go."""
    ids = deletes.where(F.col("resource_type") == rtype).select("id")
    if n_updated:
        updated = good.where((F.col("resource_type") == rtype) & (F.col("_op") == UPDATE))
        ids = ids.unionByName(updated.select("id"))
    return ids


def _may_hold_deletions(
    spark: SparkSession, manifest: RunManifest, stored_types: set[str] | None
) -> bool:
    """Whether the run can delete anything: `deleted` entries, or a complete snapshot of a scope
    silver already holds rows of (Iceberg metadata decides; a first load deletes nothing)."""
    if manifest.deleted:
        return True
    if not manifest.complete:
        return False
    if manifest.scope == SYSTEM_SCOPE:
        if stored_types:
            return True
        current = meta.current_summary(spark, qualified(RESOURCES))
        return current is not None and current[1].get("total-data-files", "1") != "0"
    return bool(meta.values_with_files(spark, qualified(SCOPES), "scope", [manifest.scope]))


def _keys_frame(spark: SparkSession, keys: list[tuple[str, str]]) -> DataFrame:
    return spark.createDataFrame(keys, "resource_type string, id string")


def _plan_deletes(
    spark: SparkSession,
    manifest: RunManifest,
    latest_keys: DataFrame,
    result: SilverResult,
    may_hold: bool = True,
    snapshot_types: list[str] | None = None,
) -> tuple[DataFrame, DataFrame]:
    """(rows to delete from silver.resources, scope memberships to release).

    Deletes: the manifest's `deleted` entries (unless the same run also delivered the resource:
    then it exists now) and, for a complete snapshot, what its scope no longer holds and no other
    scope holds either. Only keys present in silver.resources are returned. `snapshot_types`:
    what `_snapshot_types` already returned for this run (computed here when None).
    """
    # The run's keys are broadcast to the anti joins below (no shuffle of silver.resources).
    run_keys = _small(latest_keys.select(*KEY), result.total("read"))
    stored_keys = spark.table(qualified(RESOURCES)).select(*KEY)
    deletes = [_keys_frame(spark, [])]
    releases = [spark.createDataFrame([], "scope string, resource_type string, id string")]
    if not may_hold:  # nothing stored the run could delete (decided from Iceberg metadata)
        return deletes[0], releases[0]
    if manifest.deleted:
        named = _keys_frame(spark, sorted({(d.resource_type, d.id) for d in manifest.deleted}))
        named = named.join(run_keys, list(KEY), "left_anti")
        deletes.append(named)
        releases.append(named.select(F.lit(None).cast("string").alias("scope"), *KEY))
    if manifest.complete:
        types = (
            _snapshot_types(spark, manifest, result) if snapshot_types is None else snapshot_types
        )
        if types:
            scopes = spark.table(qualified(SCOPES))
            removed = snapshot_removals(scopes, stored_keys, run_keys, manifest.scope, types)
            deletes.append(removed.where(F.col("_delete")).select(*KEY))
            if manifest.scope != SYSTEM_SCOPE:
                releases.append(removed.select(F.lit(manifest.scope).alias("scope"), *KEY))
    union_deletes = deletes[0]
    for d in deletes[1:]:
        union_deletes = union_deletes.unionByName(d)
    union_releases = releases[0]
    for r in releases[1:]:
        union_releases = union_releases.unionByName(r)
    return union_deletes.distinct().join(
        stored_keys, list(KEY), "left_semi"
    ), union_releases.distinct()


def _snapshot_types(spark: SparkSession, manifest: RunManifest, result: SilverResult) -> list[str]:
    """The types a complete snapshot proves absences for.

    An empty `scope.types` means every type: those of the run plus those the scope held. A type
    with lines bronze could not read is left out: the snapshot cannot show what those lines were.
    """
    types = set(manifest.types)
    if not types:
        types = set(result.types)
        held = spark.table(qualified(SCOPES if manifest.scope != SYSTEM_SCOPE else RESOURCES))
        if manifest.scope != SYSTEM_SCOPE:
            held = held.where(F.col("scope") == manifest.scope)
        types |= {str(r[0]) for r in held.select("resource_type").distinct().collect()}
    unreadable = set(result.bronze_rejected)
    if "" in unreadable:
        result.notes.append(
            "snapshot deletes skipped: bronze rejected lines of unknown type in this run"
        )
        return []
    skipped = sorted(types & unreadable)
    if skipped:
        result.notes.append(
            "snapshot deletes skipped for types with bronze rejects: " + ", ".join(skipped)
        )
    return sorted(types - unreadable)


def _record_changed_patients(
    spark: SparkSession,
    run_id: str,
    good: DataFrame,
    stored: DataFrame,
    deletes: DataFrame,
    replaced: int,
) -> None:
    """Tells the gold job which patients this run touched: the owners of the rows it wrote and,
    for updates and deletes, the owners of the rows they replaced."""

    def owner(df: DataFrame) -> DataFrame:
        return df.select(
            F.when(F.col("resource_type") == "Patient", F.col("id"))
            .otherwise(_patient_key(F.col("patient_ref")))
            .alias("patient_key")
        )

    keys = owner(good)
    if replaced:
        touched = good.where(F.col("_op") == UPDATE).select(*KEY).unionByName(deletes.select(*KEY))
        keys = keys.unionByName(
            owner(stored.join(_small(touched, replaced), list(KEY), "left_semi"))
        )
    record_changed_patients(spark, run_id, keys.where(F.col("patient_key").isNotNull()))


def _unfinished_runs(spark: SparkSession, run_id: str) -> list[str]:
    """Earlier runs whose changes are logged but whose views never finished (oldest first)."""
    logged = spark.table(qualified(CHANGES)).groupBy("run_id").agg(F.min("changed_at").alias("t"))
    done = spark.table(qualified(RUNS)).where(F.col("step") == RUN_DONE).select("run_id")
    rows = (
        logged.join(done, "run_id", "left_anti")
        .where(F.col("run_id") != run_id)
        .orderBy("t", "run_id")
        .collect()
    )
    return [str(r["run_id"]) for r in rows]


def _record_done(spark: SparkSession, run_id: str, step: str, detail: SilverResult | None) -> None:
    """Records a finished step; called only for steps not recorded yet (a plain append)."""
    doc = json.dumps({"totals": detail.to_dict()["totals"]}) if detail is not None else None
    row = spark.createDataFrame([(run_id, step, _now(), doc)], schema=RUNS_SCHEMA)
    row.writeTo(qualified(RUNS)).append()


def _record_metrics(metrics: MetricsCollector, result: SilverResult) -> None:
    for rtype, counts in sorted(result.types.items()):
        for name, value in asdict(counts).items():
            metrics.count(f"silver.{name}", value, {"resource_type": rtype})
    for view, refresh in sorted(result.views.items()):
        metrics.count("silver.view_rows_written", refresh.rows_written, {"view": view})
    total = sum(t for name, t in result.timings.items() if name not in result.overlapped)
    metrics.record_step(records=result.total("read"), seconds=total)


def settings_from_json(text_or_path: str) -> dict[str, Any]:
    """Spark settings from a JSON file or inline JSON: a whole config (processing.localSpark is
    used), a `processing` block, or the settings object itself."""
    inline = text_or_path.lstrip().startswith("{")
    doc = json.loads(text_or_path if inline else Path(text_or_path).read_text(encoding="utf-8"))
    if "processing" in doc:
        doc = doc["processing"]
    if "localSpark" in doc:
        doc = doc["localSpark"]
    return dict(doc)


def main(argv: list[str] | None = None) -> int:
    """CLI: python -m fhir_lakehouse.silver_job --lake URI --run-id RUN [...]."""
    parser = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.silver_job",
        description=(
            "Silver job: merge one bronze run into lake.silver.resources (by content hash, never"
            " back to an older version), apply deletes and snapshot absences, refresh the view"
            " tables for the changed resources. Prints the result as JSON."
        ),
    )
    parser.add_argument(
        "--lake",
        help="lake root URI: file:///path or s3://bucket/prefix (default: the parent of --silver)",
    )
    parser.add_argument("--run-id", required=True, help="the bronze run to process")
    parser.add_argument(
        "--settings-json",
        help="Spark settings: a JSON file or inline JSON (a config file, whose"
        " processing.localSpark is used, or the settings object itself)",
    )
    parser.add_argument(
        "--views",
        help="directory of ViewDefinition JSON files (default: the package's default views,"
        " fhir_lakehouse/default_views, also at spark-jobs/views)",
    )
    parser.add_argument("--bronze", help="bronze URI (default: {lake}/bronze)")
    parser.add_argument(
        "--no-metrics", action="store_true", help="do not write {lake}/metrics/performance_metrics"
    )
    # The orchestrator's uniform job arguments (lib/core/pipeline-steps.ts sparkJobArguments).
    parser.add_argument(
        "--silver", help="silver layer URI (orchestrator form; lake root is its parent)"
    )
    parser.add_argument("--gold", help=argparse.SUPPRESS)
    parser.add_argument("--metrics", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", choices=["local", "glue"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.lake:
        if not args.silver:
            parser.error("give --lake URI (or the layer URIs --bronze/--silver)")
        args.lake = str(args.silver).rstrip("/").rsplit("/", 1)[0]
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    from fhir_lakehouse.metrics import MetricsCollector
    from fhir_lakehouse.spark_session import get_or_create_session

    settings = settings_from_json(args.settings_json) if args.settings_json else None
    spark = get_or_create_session(args.lake, settings)
    metrics = None if args.no_metrics else MetricsCollector(args.run_id, STEP, args.lake)
    try:
        result = run_silver(
            spark, args.lake, args.run_id, args.views, bronze_uri=args.bronze, metrics=metrics
        )
    except silver_views.ViewDefinitionError as err:
        print(f"invalid ViewDefinition: {err}", file=sys.stderr)
        return 2
    finally:
        if metrics is not None:
            metrics.flush()
    print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
