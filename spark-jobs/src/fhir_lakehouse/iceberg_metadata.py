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


class LoadedTable:
    """One Iceberg table loaded once from the catalog; its metadata is read from that object
    (loading costs a catalog round trip and a metadata file read; `refresh()` after a write)."""

    def __init__(self, spark: SparkSession, name: str) -> None:
        self.name = name
        self._table = _jvm_table(spark, name)

    def refresh(self) -> None:
        self._table.refresh()

    def current_snapshot_id(self) -> int | None:
        snap = self._table.currentSnapshot()
        return None if snap is None else int(snap.snapshotId())

    def properties(self) -> dict[str, str]:
        return dict(self._table.properties())

    def ancestry(self) -> list[SnapshotInfo]:
        """The current snapshot and its ancestors, newest first (expired ancestors end the list)."""
        snap = self._table.currentSnapshot()
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
            snap = None if parent is None else self._table.snapshot(parent)
        return chain

    def snapshot_exists(self, snapshot_id: int) -> bool:
        return self._table.snapshot(snapshot_id) is not None

    def total_records(self, snapshot_id: int | None) -> int | None:
        """Rows at a snapshot, from the snapshot summary (no scan); None if unknown."""
        if snapshot_id is None:
            return None
        snap = self._table.snapshot(snapshot_id)
        if snap is None:
            return None
        value = dict(snap.summary()).get("total-records")
        return int(value) if value is not None else None

    def set_properties(self, values: dict[str, str], tag: tuple[str, int] | None = None) -> None:
        """Sets table properties and (optionally) points a tag at a snapshot, in one metadata
        commit (creates no snapshot). Snapshot expiry keeps tagged snapshots, so a tag protects a
        snapshot someone will read again (gold's watermarks)."""
        txn = self._table.newTransaction()
        if values:
            update = txn.updateProperties()
            for key, value in values.items():
                update = update.set(key, value)
            update.commit()
        if tag is not None:
            name, snapshot_id = tag
            current = self._table.refs().get(name)
            if current is None or int(current.snapshotId()) != snapshot_id:
                manage = txn.manageSnapshots()
                manage = (
                    manage.replaceTag(name, snapshot_id)
                    if current is not None
                    else manage.createTag(name, snapshot_id)
                )
                manage.commit()
        txn.commitTransaction()

    def set_tag(self, tag: str, snapshot_id: int) -> None:
        """Points tag `tag` at a snapshot (creating or moving it); no commit if it already does."""
        current = self._table.refs().get(tag)
        if current is not None and int(current.snapshotId()) == snapshot_id:
            return
        self.set_properties({}, (tag, snapshot_id))

    def remove_tag(self, tag: str) -> None:
        """Removes tag `tag` if the table has it (no commit otherwise)."""
        if self._table.refs().get(tag) is not None:
            self._table.manageSnapshots().removeTag(tag).commit()


def current_snapshot_id(spark: SparkSession, name: str) -> int | None:
    """Id of the table's current snapshot; None for a table that was never written."""
    return LoadedTable(spark, name).current_snapshot_id()


def properties(spark: SparkSession, name: str) -> dict[str, str]:
    return LoadedTable(spark, name).properties()


def set_properties(spark: SparkSession, name: str, values: dict[str, str]) -> None:
    """Sets table properties in one metadata commit (creates no snapshot)."""
    LoadedTable(spark, name).set_properties(values)


def set_tag(spark: SparkSession, name: str, tag: str, snapshot_id: int) -> None:
    """Points tag `tag` at a snapshot (creating or moving it); see LoadedTable.set_properties."""
    LoadedTable(spark, name).set_tag(tag, snapshot_id)


def ancestry(spark: SparkSession, name: str) -> list[SnapshotInfo]:
    """The current snapshot and its ancestors, newest first (expired ancestors end the list)."""
    return LoadedTable(spark, name).ancestry()


def total_records(spark: SparkSession, name: str, snapshot_id: int | None) -> int | None:
    """Rows in the table at a snapshot, from the snapshot summary (no scan); None if unknown."""
    return LoadedTable(spark, name).total_records(snapshot_id)


def read_at(spark: SparkSession, name: str, snapshot_id: int) -> DataFrame:
    """The table as of a snapshot.

    Always through the `snapshot-id` read option, never `VERSION AS OF`: Iceberg's SparkTable
    equality ignores the snapshot, so Spark may treat two `VERSION AS OF` reads of one table as
    the same relation (a union of old and new rows then silently loses one side); the read
    option is part of the relation and keeps them apart.
    """
    return spark.read.option("snapshot-id", str(snapshot_id)).table(name)


def snapshot_exists(spark: SparkSession, name: str, snapshot_id: int) -> bool:
    return LoadedTable(spark, name).snapshot_exists(snapshot_id)


def current_summary(spark: SparkSession, name: str) -> tuple[int, dict[str, str]] | None:
    """(id, summary) of the table's current snapshot from its metadata (no Spark job); None for
    a table never written. The summary counts what that commit added and deleted."""
    snap = _jvm_table(spark, name).currentSnapshot()
    return None if snap is None else (int(snap.snapshotId()), dict(snap.summary()))


def values_with_files(spark: SparkSession, name: str, column: str, values: list[str]) -> set[str]:
    """Which of `values` of `column` have at least one live data file in the table.

    Scan planning only (manifest partition summaries and file column bounds prune): no Spark job,
    no data read. A value with files whose rows were all deleted still counts (a safe answer for
    "may hold rows").
    """
    table = _jvm_table(spark, name)
    if table.currentSnapshot() is None or not values:
        return set()
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    expressions = jvm.org.apache.iceberg.expressions.Expressions
    found: set[str] = set()
    for value in values:
        tasks = table.newScan().filter(expressions.equal(column, value)).planFiles()
        try:
            if tasks.iterator().hasNext():
                found.add(value)
        finally:
            tasks.close()
    return found
