"""The silver layer's Iceberg tables: names, DDL, table properties, partitioning, schema evolution.

Choices (the README's "Silver tables" section says why at more length):
- format-version 2, merge-on-read for MERGE/UPDATE/DELETE: a nightly run changes a scattered few
  percent of rows; copy-on-write would rewrite nearly every data file that holds one of them,
  merge-on-read writes only the new rows plus small position-delete files (compaction by the
  maintenance job folds them back).
- zstd Parquet, a target file size per table, a Parquet bloom filter on the patient key so a
  per-patient lookup skips row groups, and full (untruncated) min/max for `run_id` so a filter on one
  run's id prunes every file written by other runs.
- resources partitioned by resource_type (every MERGE and view refresh reads one type);
  observation (by far the largest view) by month(effective_at); the other views are small and stay
  unpartitioned (partitioning them would only make small files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from fhir_lakehouse.lake_contract import CONTRACT

CATALOG = "lake"
NAMESPACE: str = CONTRACT["silver"]["namespace"]
RESOURCES: str = CONTRACT["silver"]["resourcesTable"]
REJECTS: str = CONTRACT["silver"]["rejectsTable"]
# Which (type, id) each group scope last delivered: a complete snapshot of a scope deletes only
# what no scope holds any more (shared Practitioners/Organizations survive another group's snapshot).
SCOPES = "resource_scopes"
# What each run changed in `resources` (insert/update/delete): drives the view refresh (and lets a
# re-run after a crash finish the views), and tells the gold job which resources moved.
CHANGES = "resource_changes"
# One row per finished step of a run (`resources`, `view:<name>`, `run`): re-runs skip done work.
RUNS = "runs"

METADATA_COLUMNS: tuple[tuple[str, T.DataType], ...] = (
    ("_run_id", T.StringType()),
    ("_content_hash", T.StringType()),
    ("_last_updated", T.TimestampType()),
)
# Added to a view's rows only when the view has no top-level `id` column holding the resource key.
RESOURCE_ID_COLUMN = "_resource_id"

MIB = 1024 * 1024


def qualified(table: str) -> str:
    """`lake.silver.<table>`."""
    return f"{CATALOG}.{NAMESPACE}.{table}"


def base_properties(target_file_mib: int) -> dict[str, str]:
    """Properties every silver table gets."""
    return {
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "zstd",
        "write.target-file-size-bytes": str(target_file_mib * MIB),
        "write.delete.mode": "merge-on-read",
        "write.update.mode": "merge-on-read",
        "write.merge.mode": "merge-on-read",
        # A run's MERGE/DELETE carries its few changed rows: written without a shuffle by
        # partition (Iceberg still sorts them locally), which halves a small MERGE's time.
        "write.merge.distribution-mode": "none",
        "write.update.distribution-mode": "none",
        "write.delete.distribution-mode": "none",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "50",
    }


@dataclass(frozen=True)
class TableLayout:
    """Partitioning and write properties of one table."""

    partition_by: str | None
    properties: dict[str, str]


def resources_layout() -> TableLayout:
    """silver.resources: the JSON column dominates, so bigger files; writes need no shuffle."""
    props = base_properties(256)
    props.update(
        {
            "write.parquet.bloom-filter-enabled.column.patient_ref": "true",
            "write.metadata.metrics.column.run_id": "full",
            # Bronze files hold one type each and are written as read (no shuffle of the JSON):
            # the fanout writer keeps one open file per type in a task.
            "write.distribution-mode": "none",
            "write.spark.fanout.enabled": "true",
        }
    )
    return TableLayout("resource_type", props)


# Partitioning per view table, by expected size: observation is ~70% of all rows and is mostly
# queried by time range, so month(effective_at); the rest stay unpartitioned.
VIEW_PARTITIONING: Mapping[str, str] = {"observation": "months(effective_at)"}


def view_layout(view_name: str, columns: set[str]) -> TableLayout:
    """A view table's layout: bloom filter on patient_key (or id for patient), partitioning above."""
    props = base_properties(128)
    for key in ("patient_key", "id") if view_name == "patient" else ("patient_key",):
        if key in columns:
            props[f"write.parquet.bloom-filter-enabled.column.{key}"] = "true"
    props["write.metadata.metrics.column._run_id"] = "full"
    partition = VIEW_PARTITIONING.get(view_name)
    if partition is not None and _partition_source(partition) not in columns:
        partition = None
    # Unpartitioned tables: write as computed (no shuffle); partitioned: cluster by partition.
    props["write.distribution-mode"] = "hash" if partition else "none"
    return TableLayout(partition, props)


def _partition_source(transform: str) -> str:
    return transform.split("(", 1)[1].rstrip(")").split(",")[-1].strip()


def _props_sql(props: Mapping[str, str]) -> str:
    return ", ".join(f"'{k}'='{v}'" for k, v in sorted(props.items()))


def create_table_sql(table: str, schema: T.StructType, layout: TableLayout) -> str:
    """CREATE TABLE IF NOT EXISTS for an Iceberg table with the given layout."""
    cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
    partition = f" PARTITIONED BY ({layout.partition_by})" if layout.partition_by else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified(table)} ({cols}) USING iceberg{partition} "
        f"TBLPROPERTIES ({_props_sql(layout.properties)})"
    )


RESOURCES_SCHEMA = T.StructType(
    [
        T.StructField("resource_type", T.StringType(), False),
        T.StructField("id", T.StringType(), False),
        T.StructField("version_id", T.StringType()),
        T.StructField("last_updated", T.TimestampType()),
        T.StructField("content_hash", T.StringType(), False),
        T.StructField("patient_ref", T.StringType()),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType()),
        T.StructField("resource", T.StringType(), False),
    ]
)
assert [f.name for f in RESOURCES_SCHEMA.fields] == CONTRACT["silver"]["resourceColumns"]

REJECTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("resource_type", T.StringType()),
        T.StructField("id", T.StringType()),
        T.StructField("reason", T.StringType(), False),
        T.StructField("rejected_at", T.TimestampType(), False),
    ]
)

SCOPES_SCHEMA = T.StructType(
    [
        T.StructField("scope", T.StringType(), False),
        T.StructField("resource_type", T.StringType(), False),
        T.StructField("id", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

CHANGES_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("resource_type", T.StringType(), False),
        T.StructField("id", T.StringType(), False),
        T.StructField("op", T.StringType(), False),
        T.StructField("changed_at", T.TimestampType(), False),
    ]
)

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("step", T.StringType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("detail", T.StringType()),
    ]
)


def _small_table_layout(bloom_column: str | None = None) -> TableLayout:
    props = base_properties(64)
    props["write.distribution-mode"] = "none"
    props["write.metadata.metrics.column.run_id"] = "full"
    if bloom_column:
        props[f"write.parquet.bloom-filter-enabled.column.{bloom_column}"] = "true"
    return TableLayout(None, props)


CORE_TABLES: Mapping[str, tuple[T.StructType, TableLayout]] = {
    RESOURCES: (RESOURCES_SCHEMA, resources_layout()),
    REJECTS: (REJECTS_SCHEMA, _small_table_layout()),
    SCOPES: (SCOPES_SCHEMA, TableLayout("scope", _small_table_layout().properties)),
    CHANGES: (CHANGES_SCHEMA, _small_table_layout()),
    RUNS: (RUNS_SCHEMA, _small_table_layout()),
}


def existing_tables(spark: SparkSession) -> set[str]:
    """Names of the tables in lake.silver (one catalog listing; empty when the namespace is new)."""
    if not spark.catalog.databaseExists(f"{CATALOG}.{NAMESPACE}"):
        return set()
    return {str(r[1]) for r in spark.sql(f"SHOW TABLES IN {CATALOG}.{NAMESPACE}").collect()}


def ensure_core_tables(spark: SparkSession, existing: set[str] | None = None) -> None:
    """Creates the namespace and the non-view silver tables when missing.

    `existing`: the tables `existing_tables` listed; those are not asked for again (each
    CREATE ... IF NOT EXISTS is a statement and a catalog round trip).
    """
    if not existing:
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.{NAMESPACE}")
    for name, (schema, layout) in CORE_TABLES.items():
        if existing is None or name not in existing:
            spark.sql(create_table_sql(name, schema, layout))


def table_exists(spark: SparkSession, table: str) -> bool:
    """Whether lake.silver.<table> exists."""
    return bool(spark.catalog.tableExists(qualified(table)))


# Widenings Iceberg allows in place (metadata only).
_WIDENINGS = {("int", "bigint"), ("float", "double")}


class SchemaEvolutionError(ValueError):
    """A view's column changed in a way Iceberg cannot evolve in place."""


def plan_schema_evolution(table: str, existing: T.StructType, wanted: T.StructType) -> list[str]:
    """ALTER TABLE statements taking `existing` to a superset of `wanted` (pure).

    New columns are added (nullable, metadata only: old data files are untouched and read as
    null); int->bigint and float->double are widened; columns no longer produced stay (null in new
    rows); any other type change is an error, since it would need a rewrite.
    """
    have = {f.name: f.dataType.simpleString() for f in existing.fields}
    statements: list[str] = []
    for field in wanted.fields:
        new_type = field.dataType.simpleString()
        old_type = have.get(field.name)
        if old_type is None:
            statements.append(
                f"ALTER TABLE {qualified(table)} ADD COLUMN `{field.name}` {new_type}"
            )
        elif old_type != new_type:
            if (old_type, new_type) in _WIDENINGS:
                statements.append(
                    f"ALTER TABLE {qualified(table)} ALTER COLUMN `{field.name}` TYPE {new_type}"
                )
            elif (new_type, old_type) not in _WIDENINGS:
                raise SchemaEvolutionError(
                    f"{qualified(table)}.{field.name}: type changed from {old_type} to {new_type};"
                    " Iceberg cannot change it in place: drop the table to rebuild it from"
                    " silver.resources"
                )
    return statements


def evolve_schema(spark: SparkSession, table: str, wanted: T.StructType) -> list[str]:
    """Applies plan_schema_evolution to lake.silver.<table>; returns the statements run."""
    existing = spark.table(qualified(table)).schema
    statements = plan_schema_evolution(table, existing, wanted)
    for sql in statements:
        spark.sql(sql)
    return statements
