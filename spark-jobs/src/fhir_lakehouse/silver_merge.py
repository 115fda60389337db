"""The merge plan of the silver job: which bronze row wins, what changed, what a snapshot deleted.

Pure logic: DataFrame transformations and SQL text, no reads or writes. Everything here works on
key columns only (type, id, version, timestamps, hash, locator), never on the resource JSON, so the
big column is touched once, when the winners are fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fhir_lakehouse.silver_bronze import LOCATOR, SYSTEM_SCOPE

KEY = ("resource_type", "id")

INSERT, UPDATE, UNCHANGED, OLDER, DELETE = "insert", "update", "unchanged", "older", "delete"
# A member of a group scope that the scope's complete snapshot no longer holds (deleted only when
# no other scope holds it).
RELEASE = "release"
OPS = (INSERT, UPDATE, UNCHANGED, OLDER)


def version_number(col: str = "version_id") -> Column:
    """meta.versionId as a number when it is one (null otherwise): '10' must beat '9'."""
    return F.expr(f"try_cast(`{col}` AS BIGINT)")


def latest_per_resource(rows: DataFrame) -> DataFrame:
    """One row per (resource_type, id): the newest by version, then lastUpdated, then ingest time.

    Content hash and locator break the remaining ties, so the choice is deterministic. A hash
    aggregate of max(struct(...)) (struct ordering puts nulls first, so max = "desc nulls last")
    instead of a window: no sort, and only key columns are shuffled. Adds `_copies`.
    """
    order = F.struct(
        version_number().alias("_v"),
        F.col("last_updated"),
        F.col("ingested_at"),
        F.col("content_hash"),
        F.col("version_id"),
        F.col("patient_ref"),
        F.col(LOCATOR[0]),
        F.col(LOCATOR[1]),
    )
    return (
        rows.groupBy(*KEY)
        .agg(F.max(order).alias("_w"), F.count(F.lit(1)).alias("_copies"))
        .select(*KEY, "_w.*", "_copies")
    )


def duplicate_keys(rows: DataFrame) -> DataFrame:
    """(resource_type, id, _copies) of the resources the rows hold more than once.

    A count per key is a hash aggregate of the keys alone; the winner's max(struct) would be a
    sort aggregate of every key column (strings in the buffer), so it runs on duplicates only.
    """
    return rows.groupBy(*KEY).agg(F.count(F.lit(1)).alias("_copies")).where(F.col("_copies") > 1)


def as_latest(rows: DataFrame) -> DataFrame:
    """Rows of resources delivered once, in latest_per_resource's shape (`_copies` = 1)."""
    return rows.select(
        *KEY,
        version_number().alias("_v"),
        "last_updated",
        "ingested_at",
        "content_hash",
        "version_id",
        "patient_ref",
        *LOCATOR,
        F.lit(1).cast("bigint").alias("_copies"),
    )


def pick_latest(rows: DataFrame, duplicates: DataFrame, broadcast: bool) -> DataFrame:
    """One row per resource: rows of keys in `duplicates` through latest_per_resource, the rest
    as they are (no aggregate). `broadcast`: the duplicate keys are few enough to broadcast."""
    dups = duplicates.select(*KEY)
    if broadcast:
        dups = F.broadcast(dups)
    single = as_latest(rows.join(dups, list(KEY), "left_anti"))
    return single.unionByName(latest_per_resource(rows.join(dups, list(KEY), "left_semi")))


def older_expr(s_version: str, t_version: str, s_updated: str, t_updated: str) -> str:
    """SQL: is the source row older than the target row? (pure text, used in MERGE and classify).

    Versions decide when both sides have numeric, different ones; otherwise lastUpdated when both
    have it; otherwise the incoming row is not older (Epic bulk gives neither: the hash decides).
    """
    sv, tv = f"try_cast({s_version} AS BIGINT)", f"try_cast({t_version} AS BIGINT)"
    return (
        f"(CASE WHEN {sv} IS NOT NULL AND {tv} IS NOT NULL AND {sv} <> {tv} THEN {sv} < {tv} "
        f"WHEN {s_updated} IS NOT NULL AND {t_updated} IS NOT NULL "
        f"THEN {s_updated} < {t_updated} ELSE false END)"
    )


def older_sql(s: str, t: str) -> str:
    """older_expr for two aliased rows `s` (incoming) and `t` (stored)."""
    return older_expr(
        f"{s}.version_id", f"{t}.version_id", f"{s}.last_updated", f"{t}.last_updated"
    )


def classify(
    latest: DataFrame,
    target: DataFrame,
    snapshot_types: Sequence[str] | None = None,
    members: DataFrame | None = None,
) -> DataFrame:
    """Adds `_op` to each incoming winner: insert, update, unchanged (same hash) or older.

    `target` is silver.resources' key columns (type, id, version_id, last_updated, content_hash).

    With `snapshot_types` the run is a complete snapshot and its absences come out of the same
    join, with the winner's columns null: no second pass over silver.resources and the run's keys.
    Without `members` (the system scope: silver.resources is the scope) a stored key of those
    types that the run does not hold gets `_op` = delete. With `members` (the group scope's
    memberships: key columns) such a member gets `_op` = release, `_member` tells the run's rows
    that are members already, and `_stored` the released keys silver.resources holds.
    `target` must then hold only the types that matter (those of the run and the snapshot).
    """
    t = target.select(
        *KEY,
        F.col("version_id").alias("_t_version_id"),
        F.col("last_updated").alias("_t_last_updated"),
        F.col("content_hash").alias("_t_hash"),
    )
    s_older = older_expr("version_id", "_t_version_id", "last_updated", "_t_last_updated")
    op = (
        F.when(F.col("_t_hash").isNull(), F.lit(INSERT))
        .when(F.col("content_hash") == F.col("_t_hash"), F.lit(UNCHANGED))
        .when(F.expr(s_older), F.lit(OLDER))
        .otherwise(F.lit(UPDATE))
    )
    absent = F.col("_copies").isNull()  # a stored key or a member with no winner in the run
    in_snapshot = ~absent | F.col("resource_type").isin(list(snapshot_types or []))
    if snapshot_types is None:
        joined = latest.join(t, list(KEY), "left")
    elif members is None:
        op = F.when(absent, F.lit(DELETE)).otherwise(op)
        joined = latest.join(t, list(KEY), "full_outer").where(in_snapshot)
    else:
        op = F.when(absent, F.lit(RELEASE)).otherwise(op)
        flagged = members.select(*KEY, F.lit(True).alias("_member"))
        joined = (
            latest.join(flagged, list(KEY), "full_outer")
            .where(in_snapshot)
            .join(t, list(KEY), "left")
            .withColumn("_stored", F.col("_t_hash").isNotNull())
        )
    return joined.withColumn("_op", op).drop("_t_version_id", "_t_last_updated", "_t_hash")


def snapshot_removals(
    scopes: DataFrame,
    resources_keys: DataFrame,
    snapshot_keys: DataFrame,
    scope: str,
    types: Sequence[str],
) -> DataFrame:
    """Keys a complete snapshot of (scope x types) no longer contains, that no other scope holds.

    Returns (resource_type, id, _release): `_release` rows are to leave the scope's membership;
    rows with `_delete` = true are also to leave silver.resources (no other scope holds them).
    For the system scope ('*', a run not limited to groups) every resource of the types is in
    scope and nothing is held elsewhere.
    """
    type_filter = F.col("resource_type").isin(list(types))
    if scope == SYSTEM_SCOPE:
        in_scope = resources_keys.where(type_filter).select(*KEY)
        others = in_scope.limit(0)
    else:
        in_scope = scopes.where((F.col("scope") == scope) & type_filter).select(*KEY)
        others = scopes.where(F.col("scope") != scope).select(*KEY).distinct()
    removed = in_scope.join(snapshot_keys.select(*KEY), list(KEY), "left_anti")
    held = others.withColumn("_held", F.lit(True))
    return removed.join(held, list(KEY), "left").select(
        *KEY, F.col("_held").isNull().alias("_delete")
    )


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return f"`{name}`"


def resources_merge_sql(
    table: str, source_view: str, columns: Iterable[str], types: Sequence[str]
) -> str:
    """MERGE of updates and deletes into silver.resources (inserts are appended separately).

    The guard repeats the classification (hash differs, not older) so a concurrent writer can
    never make the MERGE go back in time; the type list prunes partitions statically.
    """
    sets = ", ".join(f"t.{_ident(c)} = s.{_ident(c)}" for c in columns)
    type_list = ", ".join(sql_string(t) for t in sorted(set(types))) or "NULL"
    return (
        f"MERGE INTO {table} t USING {source_view} s "
        f"ON t.resource_type = s.resource_type AND t.id = s.id AND t.resource_type IN ({type_list}) "
        f"WHEN MATCHED AND s._op = '{DELETE}' THEN DELETE "
        f"WHEN MATCHED AND s._op = '{UPDATE}' AND t.content_hash <> s.content_hash "
        f"AND NOT {older_sql('s', 't')} THEN UPDATE SET {sets}"
    )


def view_refresh_sql(table: str, source_view: str, key: str, columns: Iterable[str]) -> str:
    """One-commit refresh of a view table: delete the rows of changed ids, insert the new rows.

    The source holds delete markers (`_op` = 'delete', one per id) and the compiled rows (`_op` =
    'insert'). Only markers can match, each target row at most one marker, so rows of views that
    give several rows per resource (forEach) are fine.
    """
    cols = list(columns)
    names = ", ".join(_ident(c) for c in cols)
    values = ", ".join(f"s.{_ident(c)}" for c in cols)
    return (
        f"MERGE INTO {table} t USING {source_view} s "
        f"ON t.{_ident(key)} = s.{_ident(key)} AND s._op = '{DELETE}' "
        f"WHEN MATCHED THEN DELETE "
        f"WHEN NOT MATCHED AND s._op = '{INSERT}' THEN INSERT ({names}) VALUES ({values})"
    )
