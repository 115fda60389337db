"""The silver view tables: load and validate the ViewDefinitions, keep one Iceberg table per view,
refresh it from the resources a run changed.

A refresh touches only the rows of resources the run inserted, updated or deleted (from
silver.resource_changes and the rows of silver.resources the run wrote), in one commit per table:
a MERGE whose source holds a delete marker per changed id and the newly compiled rows. A view table
that has never been written is built from every current resource of its type.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache, partial
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.concurrent_jobs import run_concurrently
from fhir_lakehouse.silver_merge import DELETE, INSERT, UPDATE, view_refresh_sql
from fhir_lakehouse.silver_tables import (
    CHANGES,
    CORE_TABLES,
    METADATA_COLUMNS,
    REJECTS,
    RESOURCE_ID_COLUMN,
    RESOURCES,
    create_table_sql,
    evolve_schema,
    qualified,
    table_exists,
    view_layout,
)
from fhir_lakehouse.views import (
    ParsedResources,
    ViewDefinition,
    ViewDefinitionError,
    build_views,
    compile_views,
    load_view,
)

__all__ = [
    "DEFAULT_VIEWS_DIR",
    "RunChanges",
    "SilverView",
    "ViewDefinitionError",
    "ViewRefresh",
    "ensure_view_tables",
    "load_silver_views",
    "refresh_views",
]

# The default views are package data (fhir_lakehouse/default_views; spark-jobs/views links there),
# so they travel inside the zipped package EMR Serverless gets on spark.submit.pyFiles.
DEFAULT_VIEWS_PACKAGE = "fhir_lakehouse"
DEFAULT_VIEWS_RESOURCE = "default_views"
DEFAULT_VIEWS_DIR = Path(__file__).resolve().parent / DEFAULT_VIEWS_RESOURCE


def default_views() -> Traversable:
    """The default ViewDefinitions' directory as a package resource (a zip works too)."""
    return importlib.resources.files(DEFAULT_VIEWS_PACKAGE) / DEFAULT_VIEWS_RESOURCE


_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SilverView:
    """A validated ViewDefinition and the table it fills."""

    name: str  # table name: lake.silver.<name>
    resource_type: str
    definition: ViewDefinition
    source: str  # the file it came from
    key: str  # the column holding the resource id: `id`, or `_resource_id` added by silver


@dataclass
class ViewRefresh:
    """What one refresh did to one view table."""

    rows_written: int = 0
    rows_deleted: int = 0
    full_build: bool = False
    added_columns: list[str] = field(default_factory=list)
    rejected: int = 0


def resource_key_column(definition: dict[str, Any]) -> str:
    """`id` when the view has a top-level column `id` holding the resource key, else `_resource_id`.

    Top-level means in a select without forEach/forEachOrNull/repeat, so one value per resource.
    """
    for select in definition.get("select") or []:
        if any(k in select for k in ("forEach", "forEachOrNull", "repeat", "unionAll")):
            continue
        for column in select.get("column") or []:
            path = str(column.get("path", "")).replace(" ", "")
            if column.get("name") == "id" and path in ("id", "getResourceKey()"):
                return "id"
    return RESOURCE_ID_COLUMN


def load_silver_views(views_dir: str | Path | None = None) -> list[SilverView]:
    """Loads and validates every *.json in `views_dir` (default: the package's default views,
    read through importlib.resources so a zipped package works); the first problem raises
    ViewDefinitionError naming the file, the path inside the view and what is wrong."""
    directory: Traversable = (
        default_views() if views_dir is None else Path(str(views_dir).removeprefix("file://"))
    )
    if not directory.is_dir():
        raise ViewDefinitionError(str(directory), "$", "not a directory of ViewDefinitions")
    views: list[SilverView] = []
    names: dict[str, str] = {}
    files = [e for e in directory.iterdir() if e.name.endswith(".json") and e.is_file()]
    for path in sorted(files, key=lambda e: e.name):
        definition = load_view(path)
        name = definition.name
        if not _TABLE_NAME.match(name) or name in CORE_TABLES:
            raise ViewDefinitionError(
                str(path),
                "$.name",
                f"{name!r} cannot be a silver table name (lower case letters, digits and _;"
                f" not one of {', '.join(sorted(CORE_TABLES))})",
            )
        if name in names:
            raise ViewDefinitionError(
                str(path), "$.name", f"{name!r} is also the name of {names[name]}"
            )
        names[name] = str(path)
        views.append(
            SilverView(
                name,
                definition.resource,
                definition,
                str(path),
                resource_key_column(definition.raw),
            )
        )
    return views


# Carried from silver.resources into every view row (and into the compiler's rejects).
PASSTHROUGH = [*(c for c, _ in METADATA_COLUMNS), RESOURCE_ID_COLUMN]


def _source_schema() -> T.StructType:
    fields = [T.StructField("resource", T.StringType())]
    fields += [T.StructField(n, t) for n, t in METADATA_COLUMNS]
    return T.StructType([*fields, T.StructField(RESOURCE_ID_COLUMN, T.StringType())])


def _table_frame(view: SilverView, frame: DataFrame) -> DataFrame:
    """A compiled view frame as stored: `_resource_id` only where the view has no `id` key."""
    return frame if view.key == RESOURCE_ID_COLUMN else frame.drop(RESOURCE_ID_COLUMN)


def table_schema(spark: SparkSession, view: SilverView) -> T.StructType:
    """The view table's columns: the compiled (typed) view columns plus silver's metadata columns.

    Taken from the compiled plan over an empty input: no data is read.
    """
    empty = spark.createDataFrame([], _source_schema())
    frame = compile_views([view.definition], empty, typed=True, passthrough=PASSTHROUGH)
    schema = _table_frame(view, frame.tables[view.name]).schema
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in schema.fields])


# Table property holding a fingerprint of what a view table's schema was derived from (the view
# and the compiler's code): when it matches, the table is known to be current and the view is not
# compiled again just to compare schemas (a few seconds of Spark analysis per run).
SCHEMA_KEY_PROPERTY = "fhir-lakehouse.view-schema-key"


@cache
def _compiler_fingerprint() -> str:
    digest = hashlib.sha256()
    package = importlib.resources.files("fhir_lakehouse")
    sources = [package / "silver_views.py", package / "silver_tables.py"]
    sources += sorted(
        (e for e in (package / "views").iterdir() if e.name.endswith(".py")), key=lambda e: e.name
    )
    for source in sources:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def schema_key(view: SilverView) -> str:
    """Fingerprint of a view table's schema inputs: the ViewDefinition and the compiler (pure)."""
    text = json.dumps(view.definition.raw, sort_keys=True) + _compiler_fingerprint()
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_view_tables(
    spark: SparkSession, views: list[SilverView], existing: set[str] | None = None
) -> dict[str, list[str]]:
    """Creates missing view tables and evolves existing ones; returns columns added per table.

    A table whose schema key (SCHEMA_KEY_PROPERTY) matches the view is current: left as it is.
    `existing`: lake.silver's tables as `existing_tables` listed them (else asked per view).
    """
    added: dict[str, list[str]] = {}
    for view in views:
        key = schema_key(view)
        exists = table_exists(spark, view.name) if existing is None else view.name in existing
        if exists and meta.properties(spark, qualified(view.name)).get(SCHEMA_KEY_PROPERTY) == key:
            continue
        schema = table_schema(spark, view)
        if not exists:
            layout = view_layout(view.name, set(schema.fieldNames()))
            layout.properties[SCHEMA_KEY_PROPERTY] = key
            spark.sql(create_table_sql(view.name, schema, layout))
            continue
        statements = evolve_schema(spark, view.name, schema)
        # The layout's write properties too, so a table made by an earlier version gets today's
        # (its partitioning stays: changing it would be a rewrite).
        props = view_layout(view.name, set(schema.fieldNames())).properties
        props = {k: v for k, v in props.items() if k != "format-version"}  # reserved: set once
        meta.set_properties(spark, qualified(view.name), {**props, SCHEMA_KEY_PROPERTY: key})
        added[view.name] = [s.split("`")[1] for s in statements if " ADD COLUMN " in s]
    return added


def current_snapshot_id(spark: SparkSession, table: str) -> int | None:
    """The table's current snapshot id, from its metadata (a catalog lookup, no Spark job)."""
    current = meta.current_summary(spark, qualified(table))
    return None if current is None else current[0]


def _source(spark: SparkSession, resource_type: str, run_id: str | None) -> DataFrame:
    rows = spark.table(qualified(RESOURCES)).where(F.col("resource_type") == resource_type)
    if run_id is not None:
        rows = rows.where(F.col("run_id") == run_id)
    return rows.select(
        "resource",
        F.col("run_id").alias("_run_id"),
        F.col("content_hash").alias("_content_hash"),
        F.col("last_updated").alias("_last_updated"),
        F.col("id").alias(RESOURCE_ID_COLUMN),
    )


def _aligned(df: DataFrame, schema: T.StructType) -> DataFrame:
    present = set(df.columns)
    return df.select(
        *[
            (F.col(f.name) if f.name in present else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in schema.fields
        ]
    )


def _write_view(
    spark: SparkSession,
    view: SilverView,
    rows: DataFrame,
    delete_ids: DataFrame | None,
    refresh: ViewRefresh,
    ids_unique: bool = False,
) -> None:
    """Appends `rows` to the view's table, or (with `delete_ids`) replaces those ids' rows in one
    MERGE. `ids_unique`: the ids are known to be distinct (no shuffle to make them so)."""
    table = qualified(view.name)
    schema = spark.table(table).schema
    aligned = _aligned(rows, schema)
    before = current_snapshot_id(spark, view.name)
    if delete_ids is None:
        aligned.writeTo(table).append()
    else:
        markers = delete_ids.select(F.col("id").alias(view.key))
        if not ids_unique:  # a target row must match one marker at most
            markers = markers.distinct()
        source = aligned.withColumn("_op", F.lit(INSERT)).unionByName(
            markers.withColumn("_op", F.lit(DELETE)), allowMissingColumns=True
        )
        temp = f"silver_view_refresh_{view.name}"
        source.createOrReplaceTempView(temp)
        spark.sql(view_refresh_sql(table, temp, view.key, schema.fieldNames()))
        spark.catalog.dropTempView(temp)
    current = meta.current_summary(spark, table)
    if current is not None and current[0] != before:
        summary = current[1]  # what the commit did, from the metadata: no count() job
        refresh.rows_written += int(summary.get("added-records", 0))
        refresh.rows_deleted += int(summary.get("added-position-deletes", 0)) + int(
            summary.get("deleted-records", 0)
        )


def _write_rejects(spark: SparkSession, run_id: str, rejects: DataFrame) -> None:
    from fhir_lakehouse.silver_job import append_new

    rows = rejects.select(
        F.lit(run_id).alias("run_id"),
        F.col("resource_type").cast("string"),
        F.col("id").cast("string"),
        F.col("reason").cast("string"),
        F.current_timestamp().alias("rejected_at"),
    )
    append_new(rows, REJECTS, ["resource_type", "id", "reason"], run_id)


@dataclass
class RunChanges:
    """What the silver job already parsed for the run it is applying, so that the views need no
    second read of silver.resources and no second parse of the JSON.

    `parsed`: per type, the one parse of the run's stored inserts and updates (a persisted frame
    with the pass-through columns and the parsed struct). `replaced_ids`: per type, the ids whose
    old view rows must go (updated or deleted). `stored_before`: the types silver.resources held
    before the run (None when unknown): a never-written view of a type new to silver is built
    from the parse alone; otherwise from every current resource of its type.
    """

    parsed: dict[str, tuple[ParsedResources, DataFrame]]
    replaced_ids: dict[str, DataFrame]
    changed_types: set[str]
    stored_before: set[str] | None
    view_rejects: dict[str, int] = field(default_factory=dict)


def refresh_views(
    spark: SparkSession,
    views: list[SilverView],
    run_id: str,
    run_changes: RunChanges | None = None,
    workers: int = 1,
) -> dict[str, ViewRefresh]:
    """Refreshes every view table for the changes `run_id` made to silver.resources.

    Without `run_changes` the work list is the run's change log and the rows are read back from
    silver.resources (recovery of an interrupted run); with it, from the job's own parse, up to
    `workers` resource types at once (each type's views are their own tables).
    """
    results = {v.name: ViewRefresh() for v in views}
    if not views:
        return results
    by_type: dict[str, list[SilverView]] = defaultdict(list)
    for view in views:
        by_type[view.resource_type].append(view)
    if run_changes is not None:
        run_concurrently(
            [
                partial(_refresh_from_parse, spark, rtype, tviews, run_changes, results)
                for rtype, tviews in sorted(by_type.items())
            ],
            workers,
        )
        return results
    changes = spark.table(qualified(CHANGES)).where(F.col("run_id") == run_id)
    op_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for r in changes.groupBy("resource_type", "op").count().collect():
        op_counts[str(r["resource_type"])][str(r["op"])] = int(r["count"])
    for rtype, tviews in sorted(by_type.items()):
        fresh = [v for v in tviews if current_snapshot_id(spark, v.name) is None]
        stale = [v for v in tviews if v not in fresh and rtype in op_counts]
        if fresh:
            _refresh_group(spark, rtype, fresh, None, None, False, results)
            for v in fresh:
                results[v.name].full_build = True
        if stale:
            typed = changes.where(F.col("resource_type") == rtype)
            replaces = any(op_counts[rtype].get(op) for op in (UPDATE, DELETE))
            _refresh_group(spark, rtype, stale, run_id, typed, replaces, results)
    return results


def _refresh_from_parse(
    spark: SparkSession,
    rtype: str,
    views: list[SilverView],
    changes: RunChanges,
    results: dict[str, ViewRefresh],
) -> None:
    """The views of one type from the run's parse: an append when the run only added rows (or
    the table is new and so is the type), else one MERGE with delete markers for replaced ids."""
    fresh = [v for v in views if current_snapshot_id(spark, v.name) is None]
    new_type = changes.stored_before is not None and rtype not in changes.stored_before
    rebuild = [v for v in fresh if not (new_type and rtype in changes.parsed)]
    if rebuild:  # a new view over resources silver already held: built from all of them
        _refresh_group(spark, rtype, rebuild, None, None, False, results)
        for v in rebuild:
            results[v.name].full_build = True
    to_refresh = [
        v for v in views if v not in rebuild and (v in fresh or rtype in changes.changed_types)
    ]
    if not to_refresh:
        return
    compiled = None
    if rtype in changes.parsed:
        parse, frame = changes.parsed[rtype]
        compiled = build_views(parse, True, PASSTHROUGH, frame)
    markers = changes.replaced_ids.get(rtype)
    for view in to_refresh:
        refresh = results[view.name]
        refresh.full_build = view in fresh
        refresh.rejected += changes.view_rejects.get(rtype, 0)
        if compiled is not None:
            frame = _table_frame(view, compiled.tables[view.name])
        else:  # only deletes of this type: markers and no rows
            frame = spark.createDataFrame([], _aligned_schema(spark, view))
        # The run's updated and deleted ids: each resource once (a key is one or the other).
        _write_view(
            spark, view, frame, None if view in fresh else markers, refresh, ids_unique=True
        )


def _aligned_schema(spark: SparkSession, view: SilverView) -> T.StructType:
    return spark.table(qualified(view.name)).schema


def _refresh_group(
    spark: SparkSession,
    rtype: str,
    views: list[SilverView],
    run_id: str | None,
    changes: DataFrame | None,
    replaces: bool,
    results: dict[str, ViewRefresh],
) -> None:
    """Compiles the views of one type over their source rows (one JSON parse) and writes them."""
    source = _source(spark, rtype, run_id)
    compiled = compile_views(
        [v.definition for v in views], source, typed=True, passthrough=PASSTHROUGH
    )
    # Every table and the rejects come from the one parsed frame: keep it, parse once.
    parsed = compiled.parsed.persist(StorageLevel.MEMORY_AND_DISK)
    for view in views:
        delete_ids = None
        if changes is not None and run_id is not None:
            # A view already holding rows of this run was refreshed by an interrupted attempt:
            # replace every id the run touched, not only updated and deleted ones.
            redo = (
                spark.table(qualified(view.name)).where(F.col("_run_id") == run_id).limit(1).count()
                > 0
            )
            if redo or replaces:
                ops = [INSERT, UPDATE, DELETE] if redo else [UPDATE, DELETE]
                delete_ids = changes.where(F.col("op").isin(ops)).select("id")
        frame = _table_frame(view, compiled.tables[view.name])
        _write_view(spark, view, frame, delete_ids, results[view.name])
    try:
        rejects = compiled.rejects.persist(StorageLevel.MEMORY_AND_DISK)
        n = rejects.count()
        if n:
            for view in views:
                results[view.name].rejected += n
            _write_rejects(
                spark,
                run_id or "",
                rejects.select(
                    F.lit(rtype).alias("resource_type"),
                    F.col(RESOURCE_ID_COLUMN).alias("id"),
                    F.concat(F.lit("views: "), F.col("reason")).alias("reason"),
                ),
            )
        rejects.unpersist()
    finally:
        parsed.unpersist()
