"""The silver job: one bronze run -> lake.silver.resources (MERGE by content hash) -> view tables.

Steps, in the order that makes a crashed run safe to re-run:
 1. validate every ViewDefinition (an invalid one fails here, before any data is touched);
 2. read the run's manifest and only its bronze partitions;
 3. pick one row per resource from key columns alone and classify it against silver.resources
    (insert / update / unchanged / older), still without reading the JSON;
 4. parse the JSON of the inserts and updates only; what cannot be parsed goes to silver.rejects;
 5. work out deletes: the manifest's `deleted` entries and, for a complete snapshot, what the
    scope (groups x types) no longer holds;
 6. log the changes (silver.resource_changes), append the inserts, MERGE updates and deletes,
    update scope membership, record changed patients for gold;
 7. refresh each view table from the resources the run changed (and finish any earlier run whose
    views were interrupted), then record the run as done in silver.runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fhir_lakehouse import silver_views
from fhir_lakehouse.gold_incremental import record_changed_patients
from fhir_lakehouse.lake_contract import layer_uri
from fhir_lakehouse.silver_bronze import (
    BRONZE_SCHEMA,
    LOCATOR,
    SYSTEM_SCOPE,
    RunManifest,
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
    UNCHANGED,
    UPDATE,
    classify,
    latest_per_resource,
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
    qualified,
)

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
        with stages:
            yield
        elapsed = time.perf_counter() - t0
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
    """Why a resource's JSON is unusable, or null when it is fine (parses two fields only)."""
    parsed = F.from_json(
        F.col("resource"),
        "resourceType STRING, id STRING, _corrupt STRING",
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    )
    return (
        F.when(parsed.isNull() | parsed["_corrupt"].isNotNull(), F.lit("invalid JSON"))
        .when(parsed["resourceType"].isNull(), F.lit("no resourceType in the JSON"))
        .when(
            parsed["resourceType"] != F.col("resource_type"),
            F.concat(
                F.lit("resourceType "),
                parsed["resourceType"],
                F.lit(" is not "),
                F.col("resource_type"),
            ),
        )
        .when(
            parsed["id"].isNull() | (parsed["id"] != F.col("id")),
            F.lit("id in the JSON differs from the bronze id"),
        )
    )


def _at_locators(rows: DataFrame, locators: DataFrame, every_row: bool) -> DataFrame:
    """The bronze rows at `locators` (with the locators' extra columns).

    `every_row` (every bronze row of the run is selected, e.g. a first load) skips the join.
    """
    return rows if every_row else rows.join(locators, list(LOCATOR), "inner")


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
    rows = spark.table(qualified(RUNS)).where(F.col("run_id") == run_id).select("step").collect()
    return {str(r[0]) for r in rows}


def _patient_key(ref: Column) -> Column:
    """'Patient/123' (or a full URL, or a bare id) -> '123'."""
    return F.when(ref.contains("Patient/"), F.regexp_extract(ref, r"Patient/([^/]+)", 1)).otherwise(
        ref
    )


def _count_by(df: DataFrame, *cols: str) -> list[Row]:
    return df.groupBy(*cols).count().collect()


_OP_COUNTER = {
    INSERT: "inserted",
    UPDATE: "updated",
    UNCHANGED: "unchanged",
    OLDER: "ignored_older",
}


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
    defaults to spark-jobs/views. Tables go to the session's Iceberg catalog `lake`.
    """
    result = SilverResult(run_id=run_id)
    timer = _Timings(spark, result, metrics)
    with timer("validate_views"):
        views = silver_views.load_silver_views(views_dir)
    bronze = bronze_uri or layer_uri(lake_root, "bronze")
    with timer("read_manifest"):
        manifest = read_manifest(spark, bronze, run_id)
        partitions = run_inputs(spark, bronze, manifest)
        result.bronze_rejected = bronze_reject_counts(spark, bronze, manifest)
    result.complete_snapshot, result.scope = manifest.complete, manifest.scope
    log.info("silver run %s: reading %d bronze paths", run_id, len(partitions))
    with timer("prepare_tables"):
        ensure_core_tables(spark)
        silver_views.ensure_view_tables(spark, views)
        finished_before = RUN_DONE in done_steps(spark, run_id)

    rows = read_run(spark, partitions) if partitions else _empty_bronze(spark)
    persisted: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return persisted[-1]

    try:
        with timer("classify"):
            latest = latest_per_resource(rows.drop("resource", "source", "run_id"))
            stored = spark.table(qualified(RESOURCES)).select(
                *KEY, "version_id", "last_updated", "content_hash", "patient_ref"
            )
            classified = keep(classify(latest, stored.drop("patient_ref")))
            for r in (
                classified.groupBy("resource_type", "_op")
                .agg(F.count(F.lit(1)).alias("n"), F.sum("_copies").alias("copies"))
                .collect()
            ):
                c = result.types.setdefault(r["resource_type"], TypeCounts())
                c.read += int(r["copies"])
                c.duplicates += int(r["copies"]) - int(r["n"])
                counter = _OP_COUNTER[r["_op"]]
                setattr(c, counter, getattr(c, counter) + int(r["n"]))

        with timer("parse_check"):
            # A first load (every bronze row is a new resource) needs no join with the plan.
            all_inserts = result.total("inserted") == result.total("read") > 0
            changed_locs = classified.where(F.col("_op").isin(INSERT, UPDATE)).select(
                *LOCATOR, "_op"
            )
            changed_rows = (
                rows.withColumn("_op", F.lit(INSERT))
                if all_inserts
                else _at_locators(rows, changed_locs, False)
            )
            checked = keep(
                changed_rows.select(
                    *KEY, *LOCATOR, "_op", "patient_ref", reject_reason().alias("_reason")
                )
            )
            bad_counts = _count_by(
                checked.where(F.col("_reason").isNotNull()), "resource_type", "_op"
            )
            for r in bad_counts:
                c = result.types[r["resource_type"]]
                c.rejected += int(r["count"])
                counter = _OP_COUNTER[r["_op"]]
                setattr(c, counter, getattr(c, counter) - int(r["count"]))
            no_rejects = not bad_counts

        with timer("write_rejects"):
            if not no_rejects:
                append_new(
                    checked.where(F.col("_reason").isNotNull()).select(
                        F.lit(run_id).alias("run_id"),
                        *KEY,
                        F.col("_reason").alias("reason"),
                        F.lit(_now()).alias("rejected_at"),
                    ),
                    REJECTS,
                    ["resource_type", "id", "reason"],
                    run_id,
                )

        with timer("plan_deletes"):
            deletes, releases = _plan_deletes(
                spark, manifest, latest_keys=classified, result=result
            )
            n_releases = 0
            if manifest.deleted or manifest.complete:  # otherwise both are empty: no Spark job
                deletes = keep(deletes)
                for r in _count_by(deletes, "resource_type"):
                    c = result.types.setdefault(r["resource_type"], TypeCounts())
                    c.deleted = int(r["count"])
                releases = keep(releases)
                n_releases = releases.count()
        n_changes = sum(c.inserted + c.updated + c.deleted for c in result.types.values())

        good = checked.where(F.col("_reason").isNull()).select(*KEY, *LOCATOR, "_op", "patient_ref")
        with timer("log_changes"):
            changes = good.select(*KEY, "_op").unionByName(
                deletes.select(*KEY, F.lit(DELETE).alias("_op"))
            )
            if n_changes:
                append_new(
                    changes.select(
                        F.lit(run_id).alias("run_id"),
                        *KEY,
                        F.col("_op").alias("op"),
                        F.lit(_now()).alias("changed_at"),
                    ),
                    CHANGES,
                    ["resource_type", "id", "op"],
                    run_id,
                )

        with timer("write_resources"):
            resource_cols = [f.name for f in RESOURCES_SCHEMA.fields]

            def full_rows(op: str, every_row: bool) -> DataFrame:
                locs = good.where(F.col("_op") == op).select(*LOCATOR)
                return _at_locators(rows, locs, every_row).select(
                    *[F.lit(run_id).alias(c) if c == "run_id" else F.col(c) for c in resource_cols]
                )

            if result.total("inserted"):
                full_rows(INSERT, all_inserts and no_rejects).writeTo(qualified(RESOURCES)).append()
            n_deletes = sum(c.deleted for c in result.types.values())
            if result.total("updated") or n_deletes:
                source = (
                    full_rows(UPDATE, False)
                    .withColumn("_op", F.lit(UPDATE))
                    .unionByName(
                        deletes.select(*KEY, F.lit(DELETE).alias("_op")), allowMissingColumns=True
                    )
                )
                view = f"silver_resource_changes_{abs(hash(run_id))}"
                source.createOrReplaceTempView(view)
                types = sorted(result.types)
                spark.sql(resources_merge_sql(qualified(RESOURCES), view, resource_cols, types))
                spark.catalog.dropTempView(view)

        with timer("write_scopes"):
            members = classified.select(
                F.lit(manifest.scope).alias("scope"), *KEY, F.lit(run_id).alias("run_id")
            )
            scopes = spark.table(qualified(SCOPES)).where(F.col("scope") == manifest.scope)
            if scopes.limit(1).count():
                append_new(members, SCOPES, ["scope", "resource_type", "id"], None)
            elif result.total("read"):  # the scope's first run: nothing to compare with
                members.writeTo(qualified(SCOPES)).append()
            if n_releases:
                view = f"silver_scope_releases_{abs(hash(run_id))}"
                releases.createOrReplaceTempView(view)
                spark.sql(
                    f"MERGE INTO {qualified(SCOPES)} t USING {view} s "
                    "ON t.resource_type = s.resource_type AND t.id = s.id "
                    "AND (s.scope IS NULL OR t.scope = s.scope) WHEN MATCHED THEN DELETE"
                )
                spark.catalog.dropTempView(view)

        with timer("changed_patients"):
            if n_changes:
                replaced = result.total("updated") + result.total("deleted")
                _record_changed_patients(spark, run_id, good, stored, deletes, bool(replaced))

        with timer("refresh_views"):
            pending = _unfinished_runs(spark, run_id)
            result.recovered_runs = pending
            for rid in [*pending, *([] if finished_before else [run_id])]:
                refreshed = silver_views.refresh_views(spark, views, rid)
                if rid == run_id:
                    result.views = refreshed
                    _record_done(spark, rid, RUN_DONE, result)
                else:
                    _record_done(spark, rid, RUN_DONE, None)
    finally:
        for df in persisted:
            df.unpersist()
    if metrics is not None:
        _record_metrics(metrics, result)
    return result


def _keys_frame(spark: SparkSession, keys: list[tuple[str, str]]) -> DataFrame:
    return spark.createDataFrame(keys, "resource_type string, id string")


def _plan_deletes(
    spark: SparkSession, manifest: RunManifest, latest_keys: DataFrame, result: SilverResult
) -> tuple[DataFrame, DataFrame]:
    """(rows to delete from silver.resources, scope memberships to release).

    Deletes: the manifest's `deleted` entries (unless the same run also delivered the resource:
    then it exists now) and, for a complete snapshot, what its scope no longer holds and no other
    scope holds either. Only keys present in silver.resources are returned.
    """
    run_keys = latest_keys.select(*KEY)
    stored_keys = spark.table(qualified(RESOURCES)).select(*KEY)
    deletes = [_keys_frame(spark, [])]
    releases = [spark.createDataFrame([], "scope string, resource_type string, id string")]
    if manifest.deleted:
        named = _keys_frame(spark, sorted({(d.resource_type, d.id) for d in manifest.deleted}))
        named = named.join(run_keys, list(KEY), "left_anti")
        deletes.append(named)
        releases.append(named.select(F.lit(None).cast("string").alias("scope"), *KEY))
    if manifest.complete:
        types = _snapshot_types(spark, manifest, result)
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
    replaced: bool,
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
        keys = keys.unionByName(owner(stored.join(touched, list(KEY), "left_semi")))
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
    doc = json.dumps({"totals": detail.to_dict()["totals"]}) if detail is not None else None
    row = spark.createDataFrame([(run_id, step, _now(), doc)], schema=RUNS_SCHEMA)
    append_new(row, RUNS, ["step"], run_id)


def _record_metrics(metrics: MetricsCollector, result: SilverResult) -> None:
    for rtype, counts in sorted(result.types.items()):
        for name, value in asdict(counts).items():
            metrics.count(f"silver.{name}", value, {"resource_type": rtype})
    for view, refresh in sorted(result.views.items()):
        metrics.count("silver.view_rows_written", refresh.rows_written, {"view": view})
    total = sum(result.timings.values())
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
        "--views", help="directory of ViewDefinition JSON files (default: spark-jobs/views)"
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
