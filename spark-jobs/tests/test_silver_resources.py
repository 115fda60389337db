"""silver.resources: MERGE by content hash, versions, deletes, snapshots, rejects (real Spark + Iceberg)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures_bronze import (
    broken_row,
    condition,
    observation,
    patient,
    write_bronze_run,
)
from pyspark.sql import SparkSession

from fhir_lakehouse.silver_job import SilverResult, run_silver
from fhir_lakehouse.silver_tables import CATALOG, NAMESPACE

RES = f"{CATALOG}.{NAMESPACE}.resources"


def drop_silver(spark: SparkSession) -> None:
    """Drops every table of lake.silver so a test starts from an empty silver layer."""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.{NAMESPACE}")
    for t in spark.sql(f"SHOW TABLES IN {CATALOG}.{NAMESPACE}").collect():
        spark.sql(f"DROP TABLE IF EXISTS {CATALOG}.{NAMESPACE}.{t['tableName']} PURGE")


@pytest.fixture
def lake(spark: SparkSession, tmp_path: Path) -> Iterator[Path]:
    """A fresh lake directory for bronze and an empty lake.silver namespace."""
    drop_silver(spark)
    yield tmp_path
    drop_silver(spark)


@pytest.fixture
def no_views(tmp_path: Path) -> Path:
    d = tmp_path / "views-none"
    d.mkdir()
    return d


def silver(spark: SparkSession, lake: Path, run_id: str, views: Path) -> SilverResult:
    return run_silver(spark, f"file://{lake}", run_id, views)


def current(spark: SparkSession) -> dict[tuple[str, str], dict[str, object]]:
    rows = spark.table(RES).collect()
    return {(r["resource_type"], r["id"]): r.asDict() for r in rows}


def snapshots(spark: SparkSession) -> dict[str, list[int]]:
    """Snapshot ids of every silver table (a write of any kind adds one)."""
    out = {}
    for t in spark.sql(f"SHOW TABLES IN {CATALOG}.{NAMESPACE}").collect():
        name = f"{CATALOG}.{NAMESPACE}.{t['tableName']}"
        out[name] = sorted(
            r[0] for r in spark.sql(f"SELECT snapshot_id FROM {name}.snapshots").collect()
        )
    return out


def data_files(spark: SparkSession, table: str = RES) -> set[str]:
    return {r[0] for r in spark.sql(f"SELECT file_path FROM {table}.files").collect()}


def test_first_load_then_same_run_again_changes_nothing(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    rows = [patient("p1"), patient("p2"), observation("o1", "p1"), observation("o2", "p2")]
    write_bronze_run(lake, "r1", rows, groups=["gA"])
    first = silver(spark, lake, "r1", no_views)
    assert first.types["Patient"].inserted == 2 and first.types["Observation"].inserted == 2
    assert first.total("read") == 4 and first.total("rejected") == 0
    stored = current(spark)
    assert set(stored) == {
        ("Patient", "p1"),
        ("Patient", "p2"),
        ("Observation", "o1"),
        ("Observation", "o2"),
    }
    assert all(r["run_id"] == "r1" for r in stored.values())

    before, files_before = snapshots(spark), data_files(spark)
    second = silver(spark, lake, "r1", no_views)
    assert second.total("unchanged") == 4
    assert second.total("inserted") == second.total("updated") == second.total("deleted") == 0
    assert snapshots(spark) == before  # not a single commit to any silver table
    assert data_files(spark) == files_before
    assert current(spark) == stored


def test_changed_content_replaces_old_and_unchanged_is_not_touched(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1"), observation("o2", "p1")])
    silver(spark, lake, "r1", no_views)
    files_r1 = data_files(spark)
    write_bronze_run(
        lake,
        "r2",
        [patient("p1"), observation("o1", "p1", value=7.5), observation("o2", "p1")],
        ingest_date="2025-01-16",
    )
    result = silver(spark, lake, "r2", no_views)
    assert result.types["Observation"].updated == 1
    assert result.types["Observation"].unchanged == 1 and result.types["Patient"].unchanged == 1
    stored = current(spark)
    assert '"value":7.5' in str(stored[("Observation", "o1")]["resource"])
    assert stored[("Observation", "o1")]["run_id"] == "r2"
    assert stored[("Observation", "o2")]["run_id"] == "r1"
    assert stored[("Patient", "p1")]["run_id"] == "r1"
    assert len(stored) == 3
    # merge-on-read: the first run's data files are all still referenced (nothing rewritten)
    assert files_r1 <= data_files(spark)
    changes = (
        spark.table(f"{CATALOG}.{NAMESPACE}.resource_changes").where("run_id = 'r2'").collect()
    )
    assert [(c["resource_type"], c["id"], c["op"]) for c in changes] == [
        ("Observation", "o1", "update")
    ]


def test_late_arriving_older_version_is_ignored(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    v9 = observation(
        "o1", "p1", value=9.0, meta={"versionId": "9", "lastUpdated": "2025-01-10T00:00:00Z"}
    )
    v10 = observation(
        "o1", "p1", value=10.0, meta={"versionId": "10", "lastUpdated": "2025-01-11T00:00:00Z"}
    )
    # Only lastUpdated (no versions): the timestamp decides.
    new_ts = condition("c1", "p1", meta={"lastUpdated": "2025-01-12T00:00:00Z"})
    old_ts = condition("c1", "p1", code="73211009", meta={"lastUpdated": "2025-01-01T00:00:00Z"})
    write_bronze_run(lake, "r1", [v10, new_ts])
    silver(spark, lake, "r1", no_views)
    write_bronze_run(lake, "r2", [v9, old_ts], ingest_date="2025-01-16")
    result = silver(spark, lake, "r2", no_views)
    assert result.types["Observation"].ignored_older == 1
    assert result.types["Condition"].ignored_older == 1
    stored = current(spark)
    assert stored[("Observation", "o1")]["version_id"] == "10"
    assert stored[("Condition", "c1")]["run_id"] == "r1"


def test_one_version_per_resource_within_a_run_numeric_versions(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    v9 = observation("o1", "p1", value=9.0, meta={"versionId": "9"})
    v10 = observation("o1", "p1", value=10.0, meta={"versionId": "10"})
    write_bronze_run(lake, "r1", [v10, v9, patient("p1"), patient("p1")], rows_per_file=1)
    result = silver(spark, lake, "r1", no_views)
    assert result.types["Observation"].read == 2 and result.types["Observation"].duplicates == 1
    assert result.types["Patient"].duplicates == 1 and result.total("inserted") == 2
    assert current(spark)[("Observation", "o1")]["version_id"] == "10"


def test_deleted_entries_remove_rows(spark: SparkSession, lake: Path, no_views: Path) -> None:
    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1"), observation("o2", "p1")])
    silver(spark, lake, "r1", no_views)
    write_bronze_run(
        lake,
        "r2",
        [observation("o2", "p1")],
        deleted=[("Observation", "o1"), ("Observation", "nope")],
        ingest_date="2025-01-16",
    )
    result = silver(spark, lake, "r2", no_views)
    assert result.types["Observation"].deleted == 1  # "nope" was never in silver
    assert set(current(spark)) == {("Patient", "p1"), ("Observation", "o2")}
    ops = spark.table(f"{CATALOG}.{NAMESPACE}.resource_changes").where("run_id = 'r2'").collect()
    assert [(o["id"], o["op"]) for o in ops] == [("o1", "delete")]


def test_snapshot_absences_are_deleted_only_inside_the_snapshot_scope(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    shared = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Who"}]}
    types = ["Patient", "Observation", "Practitioner"]
    # Group A: p1, p2 (+ observations, a condition loaded once, the shared practitioner).
    write_bronze_run(
        lake,
        "a1",
        [
            patient("p1"),
            patient("p2"),
            observation("o1", "p1"),
            observation("o2", "p2"),
            condition("c2", "p2"),
            shared,
        ],
        complete=True,
        groups=["gA"],
        types=[*types, "Condition"],
    )
    silver(spark, lake, "a1", no_views)
    # Group B: p3 and the same practitioner.
    write_bronze_run(
        lake,
        "b1",
        [patient("p3"), observation("o3", "p3"), shared],
        complete=True,
        groups=["gB"],
        types=types,
    )
    silver(spark, lake, "b1", no_views)
    # Group A again, complete for Patient/Observation/Practitioner: p2, o2 and dr1 are gone from A.
    write_bronze_run(
        lake,
        "a2",
        [patient("p1"), observation("o1", "p1")],
        complete=True,
        groups=["gA"],
        types=types,
        ingest_date="2025-01-16",
    )
    result = silver(spark, lake, "a2", no_views)
    remaining = set(current(spark))
    assert ("Patient", "p2") not in remaining and ("Observation", "o2") not in remaining
    assert ("Patient", "p3") in remaining and ("Observation", "o3") in remaining  # group B survives
    assert ("Practitioner", "dr1") in remaining  # still held by group B's snapshot
    assert ("Condition", "c2") in remaining  # Condition is outside a2's snapshot types
    assert result.types["Patient"].deleted == 1 and result.types["Observation"].deleted == 1
    # An incomplete run deletes nothing.
    write_bronze_run(
        lake,
        "b2",
        [patient("p3")],
        complete=False,
        groups=["gB"],
        types=types,
        ingest_date="2025-01-17",
    )
    silver(spark, lake, "b2", no_views)
    assert ("Observation", "o3") in set(current(spark))
    # B's complete snapshot without the practitioner: now nobody holds it.
    write_bronze_run(
        lake,
        "b3",
        [patient("p3"), observation("o3", "p3")],
        complete=True,
        groups=["gB"],
        types=types,
        ingest_date="2025-01-18",
    )
    silver(spark, lake, "b3", no_views)
    assert ("Practitioner", "dr1") not in set(current(spark))


def test_bronze_rejects_stop_snapshot_deletes_of_their_type(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    types = ["Patient", "Observation"]
    write_bronze_run(
        lake,
        "r1",
        [patient("p1"), observation("o1", "p1"), observation("o2", "p1")],
        complete=True,
        groups=["g"],
        types=types,
    )
    silver(spark, lake, "r1", no_views)
    write_bronze_run(
        lake,
        "r2",
        [patient("p1")],
        complete=True,
        groups=["g"],
        types=types,
        ingest_date="2025-01-16",
        rejects=[{"resource_type": "Observation", "reason": "invalid JSON"}],
    )
    result = silver(spark, lake, "r2", no_views)
    assert {("Observation", "o1"), ("Observation", "o2")} <= set(current(spark))
    assert result.bronze_rejected == {"Observation": 1}
    assert any("Observation" in n for n in result.notes)


def test_unparseable_json_goes_to_rejects_and_the_run_goes_on(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    bad = broken_row("Observation", "o-bad", '{"resourceType":"Observation","id":"o-bad","status":')
    wrong_type = broken_row("Observation", "o-pat", '{"resourceType":"Patient","id":"o-pat"}')
    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1"), bad, wrong_type])
    result = silver(spark, lake, "r1", no_views)
    assert result.types["Observation"].rejected == 2 and result.types["Observation"].inserted == 1
    assert set(current(spark)) == {("Patient", "p1"), ("Observation", "o1")}
    rejects = {r["id"]: r for r in spark.table(f"{CATALOG}.{NAMESPACE}.rejects").collect()}
    assert rejects["o-bad"]["reason"] == "invalid JSON" and rejects["o-bad"]["run_id"] == "r1"
    assert "is not Observation" in rejects["o-pat"]["reason"]
    assert isinstance(rejects["o-bad"]["rejected_at"], datetime)
    # Re-running the run does not reject twice.
    silver(spark, lake, "r1", no_views)
    assert spark.table(f"{CATALOG}.{NAMESPACE}.rejects").count() == 2


def test_reads_only_the_runs_own_partitions(
    spark: SparkSession, lake: Path, no_views: Path
) -> None:
    write_bronze_run(lake, "r1", [patient("p1"), patient("p2")])
    # No file list in the manifest: the run's partitions are found by a glob on its run_id.
    write_bronze_run(lake, "r2", [patient("p3")], ingest_date="2025-01-16", list_files=False)
    result = silver(spark, lake, "r2", no_views)
    assert result.total("read") == 1
    assert set(current(spark)) == {("Patient", "p3")}


def test_timestamps_survive(spark: SparkSession, lake: Path, no_views: Path) -> None:
    o = observation("o1", "p1", meta={"versionId": "1", "lastUpdated": "2025-01-10T08:30:00Z"})
    write_bronze_run(lake, "r1", [o])
    silver(spark, lake, "r1", no_views)
    got = current(spark)[("Observation", "o1")]
    assert got["last_updated"].replace(tzinfo=None) == datetime(
        2025, 1, 10, 8, 30, tzinfo=UTC
    ).replace(tzinfo=None)
    assert got["patient_ref"] == "Patient/p1"


def test_cli_prints_the_result_and_records_metrics(
    spark: SparkSession, lake: Path, no_views: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import pandas as pd

    from fhir_lakehouse.silver_job import main

    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1")])
    assert main(["--lake", f"file://{lake}", "--run-id", "r1", "--views", str(no_views)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["inserted"] == 2 and out["types"]["Patient"]["inserted"] == 1
    m = pd.read_parquet(lake / "metrics" / "performance_metrics")
    silver = m[m.step == "silver"]
    assert set(silver[silver.metric_type == "RUNTIME"].name) >= {"step_total", "silver.classify"}
    assert silver[silver.name == "step_records"].value.iloc[0] == 2
