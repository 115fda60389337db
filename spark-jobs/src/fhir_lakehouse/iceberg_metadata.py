"""Iceberg table metadata read through the session's catalog (JVM), without running Spark jobs.

Snapshot ids, lineage and properties come from the table's metadata file, so reading them costs
no Spark job; the same calls work locally (SQLite JDBC catalog) and on EMR (Glue catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    parent_id: int | None
    operation: str | None
    summary: dict[str, str]


def _jvm_table(spark: SparkSession, name: str) -> Any:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    # Iceberg resolves parts of the catalog set-up through the thread's active session: make it
    # this session (a py4j call, unlike spark.sql, does not activate it).
    jvm.org.apache.spark.sql.SparkSession.setActiveSession(spark._jsparkSession)
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, name)
    table.refresh()
    return table


def table_exists(spark: SparkSession, name: str) -> bool:
    """True when `catalog.namespace.table` exists (a catalog lookup, no Spark job)."""
    return bool(spark.catalog.tableExists(name))


def current_snapshot_id(spark: SparkSession, name: str) -> int | None:
    """Id of the table's current snapshot; None for a table that was never written."""
    snap = _jvm_table(spark, name).currentSnapshot()
    return None if snap is None else int(snap.snapshotId())


def properties(spark: SparkSession, name: str) -> dict[str, str]:
    return dict(_jvm_table(spark, name).properties())


def set_properties(spark: SparkSession, name: str, values: dict[str, str]) -> None:
    """Sets table properties in one metadata commit (creates no snapshot)."""
    update = _jvm_table(spark, name).updateProperties()
    for key, value in values.items():
        update = update.set(key, value)
    update.commit()


def set_tag(spark: SparkSession, name: str, tag: str, snapshot_id: int) -> None:
    """Points tag `tag` at a snapshot (creating or moving it). Snapshot expiry keeps tagged
    snapshots, so a tag protects a snapshot someone will read again (gold's watermarks)."""
    table = _jvm_table(spark, name)
    refs = table.refs()
    current = refs.get(tag)
    if current is not None and int(current.snapshotId()) == snapshot_id:
        return
    manage = table.manageSnapshots()
    manage = (
        manage.replaceTag(tag, snapshot_id)
        if current is not None
        else manage.createTag(tag, snapshot_id)
    )
    manage.commit()


def ancestry(spark: SparkSession, name: str) -> list[SnapshotInfo]:
    """The current snapshot and its ancestors, newest first (expired ancestors end the list)."""
    table = _jvm_table(spark, name)
    snap = table.currentSnapshot()
    chain: list[SnapshotInfo] = []
    while snap is not None:
        parent = snap.parentId()
        chain.append(
            SnapshotInfo(
                snapshot_id=int(snap.snapshotId()),
                parent_id=None if parent is None else int(parent),
                operation=snap.operation(),
                summary=dict(snap.summary()),
            )
        )
        snap = None if parent is None else table.snapshot(parent)
    return chain


def total_records(spark: SparkSession, name: str, snapshot_id: int | None) -> int | None:
    """Rows in the table at a snapshot, from the snapshot summary (no scan); None if unknown."""
    if snapshot_id is None:
        return None
    snap = _jvm_table(spark, name).snapshot(snapshot_id)
    if snap is None:
        return None
    value = dict(snap.summary()).get("total-records")
    return int(value) if value is not None else None


def read_at(spark: SparkSession, name: str, snapshot_id: int) -> DataFrame:
    """The table as of a snapshot.

    Always through the `snapshot-id` read option, never `VERSION AS OF`: Iceberg's SparkTable
    equality ignores the snapshot, so Spark may treat two `VERSION AS OF` reads of one table as
    the same relation (a union of old and new rows then silently loses one side); the read
    option is part of the relation and keeps them apart.
    """
    return spark.read.option("snapshot-id", str(snapshot_id)).table(name)


def snapshot_exists(spark: SparkSession, name: str, snapshot_id: int) -> bool:
    return _jvm_table(spark, name).snapshot(snapshot_id) is not None
