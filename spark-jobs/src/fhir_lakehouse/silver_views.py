"""The silver view tables: load and validate the ViewDefinitions, keep one Iceberg table per view,
refresh it from the resources a run changed.

A refresh touches only the rows of resources the run inserted, updated or deleted (from
silver.resource_changes and the rows of silver.resources the run wrote), in one commit per table:
a MERGE whose source holds a delete marker per changed id and the newly compiled rows. A view table
that has never been written is built from every current resource of its type.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

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
    ViewDefinition,
    ViewDefinitionError,
    compile_views,
    load_view,
)

__all__ = [
    "DEFAULT_VIEWS_DIR",
    "SilverView",
    "ViewDefinitionError",
    "ViewRefresh",
    "ensure_view_tables",
    "load_silver_views",
    "refresh_views",
]

DEFAULT_VIEWS_DIR = Path(__file__).resolve().parents[2] / "views"
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
    """Loads and validates every *.json in `views_dir`; the first problem raises
    ViewDefinitionError naming the file, the path inside the view and what is wrong."""
    directory = Path(str(views_dir or DEFAULT_VIEWS_DIR).removeprefix("file://"))
    if not directory.is_dir():
        raise ViewDefinitionError(str(directory), "$", "not a directory of ViewDefinitions")
    views: list[SilverView] = []
    names: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
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


def ensure_view_tables(spark: SparkSession, views: list[SilverView]) -> dict[str, list[str]]:
    """Creates missing view tables and evolves existing ones; returns columns added per table."""
    added: dict[str, list[str]] = {}
    for view in views:
        schema = table_schema(spark, view)
        if not table_exists(spark, view.name):
            layout = view_layout(view.name, set(schema.fieldNames()))
            spark.sql(create_table_sql(view.name, schema, layout))
            continue
        statements = evolve_schema(spark, view.name, schema)
        added[view.name] = [s.split("`")[1] for s in statements if " ADD COLUMN " in s]
    return added


def current_snapshot_id(spark: SparkSession, table: str) -> int | None:
    """The table's current snapshot id, from its properties (a catalog lookup, no Spark job)."""
    rows = spark.sql(f"SHOW TBLPROPERTIES {qualified(table)} ('current-snapshot-id')").collect()
    value = str(rows[0]["value"]) if rows else "none"
    return int(value) if value.lstrip("-").isdigit() else None


def _snapshot_summary(spark: SparkSession, table: str, snapshot_id: int) -> dict[str, str]:
    row = (
        spark.sql(f"SELECT summary FROM {qualified(table)}.snapshots")
        .where(F.col("snapshot_id") == snapshot_id)
        .first()
    )
    return dict(row["summary"]) if row is not None else {}


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
) -> None:
    table = qualified(view.name)
    schema = spark.table(table).schema
    aligned = _aligned(rows, schema)
    before = current_snapshot_id(spark, view.name)
    if delete_ids is None:
        aligned.writeTo(table).append()
    else:
        markers = delete_ids.select(F.col("id").alias(view.key)).distinct()
        source = aligned.withColumn("_op", F.lit(INSERT)).unionByName(
            markers.withColumn("_op", F.lit(DELETE)), allowMissingColumns=True
        )
        temp = f"silver_view_refresh_{view.name}"
        source.createOrReplaceTempView(temp)
        spark.sql(view_refresh_sql(table, temp, view.key, schema.fieldNames()))
        spark.catalog.dropTempView(temp)
    after = current_snapshot_id(spark, view.name)
    if after is not None and after != before:
        summary = _snapshot_summary(spark, view.name, after)
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


def refresh_views(
    spark: SparkSession, views: list[SilverView], run_id: str
) -> dict[str, ViewRefresh]:
    """Refreshes every view table for the changes `run_id` made to silver.resources."""
    results = {v.name: ViewRefresh() for v in views}
    if not views:
        return results
    changes = spark.table(qualified(CHANGES)).where(F.col("run_id") == run_id)
    op_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for r in changes.groupBy("resource_type", "op").count().collect():
        op_counts[str(r["resource_type"])][str(r["op"])] = int(r["count"])
    by_type: dict[str, list[SilverView]] = defaultdict(list)
    for view in views:
        by_type[view.resource_type].append(view)
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
