"""Maintenance job on real Iceberg tables: compaction, manifests, snapshot expiry, orphan files."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.gold_incremental import WATERMARK_TAG, record_changed_patients
from fhir_lakehouse.gold_job import GoldSettings, run_gold
from fhir_lakehouse.maintenance_job import (
    MaintenanceReport,
    TableMaintenance,
    parse_age,
    run_maintenance,
)
from tests.fixtures_silver import (
    FIXTURE,
    META,
    SILVER_SCHEMAS,
    after_p2_change,
    isolated_lake_session,
)

SETTINGS = GoldSettings(3, date(2024, 6, 30))
TABLES = ["latest_observation", "observation_daily_stats"]
OBS = "lake.silver.observation"
LATEST = "lake.gold.latest_observation"


def observation_rows(rows: list[dict[str, object]], run_id: str) -> list[tuple[object, ...]]:
    cols = SILVER_SCHEMAS["observation"] + META
    return [tuple(run_id if c == "_run_id" else r.get(c) for c, _ in cols) for r in rows]


def table_dir(spark: SparkSession, name: str) -> Path:
    return Path(meta._jvm_table(spark, name).location().removeprefix("file:")) / "data"


@dataclass
class Maintained:
    spark: SparkSession
    report: MaintenanceReport
    rows_before: dict[str, list[tuple[object, ...]]]
    tagged_silver_snapshot: int
    old_orphan: Path
    young_orphan: Path


@pytest.fixture(scope="module")
def maintained(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Maintained:
    """silver.observation written in four small appends, gold built twice, two orphan files;
    then maintenance expiring everything it may (keep 1)."""
    root = tmp_path_factory.mktemp("maint-lake")
    s = isolated_lake_session(spark, f"file://{root}")
    s.sql("CREATE NAMESPACE IF NOT EXISTS lake.silver")
    schema = ", ".join(f"{c} {t}" for c, t in SILVER_SCHEMAS["observation"] + META)
    s.sql(f"CREATE TABLE {OBS} ({schema}) USING iceberg TBLPROPERTIES ('format-version'='2')")
    rows = FIXTURE["observation"]
    for i in range(4):
        s.createDataFrame(observation_rows(rows[i::4], "run-1"), schema).coalesce(1).writeTo(
            OBS
        ).append()
    keys = s.createDataFrame(
        [(k,) for k in ["p1", "p2", "p3", "p4", "p5", "p6"]], "patient_key string"
    )
    record_changed_patients(s, "run-1", keys)
    run_gold(s, str(root), "run-1", None, SETTINGS, tables=TABLES)
    run_gold(s, str(root), "run-1b", None, SETTINGS, tables=TABLES)
    tagged = int(meta._jvm_table(s, OBS).refs().get(WATERMARK_TAG).snapshotId())

    data = table_dir(s, LATEST)
    old_orphan, young_orphan = data / "orphan-old.parquet", data / "orphan-young.parquet"
    for f in (old_orphan, young_orphan):
        f.write_bytes(b"not referenced by any snapshot")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old_orphan, (ten_days_ago, ten_days_ago))

    names = [OBS, LATEST, "lake.gold.observation_daily_stats"]
    before = {n: sorted(tuple(r) for r in s.table(n).collect()) for n in names}
    now = datetime.now(UTC)
    report = run_maintenance(
        s,
        older_than=now + timedelta(days=1),  # everything but the last and the tagged
        orphan_older_than=now - timedelta(days=3),
        retain_last=1,
        namespaces=["silver", "gold"],
        run_id="run-1",
        now=now,
    )
    return Maintained(s, report, before, tagged, old_orphan, young_orphan)


def entry(m: Maintained, name: str) -> TableMaintenance:
    return next(t for t in m.report.tables if t.table == name)


def test_report_covers_silver_and_gold_tables(maintained: Maintained) -> None:
    names = {t.table for t in maintained.report.tables}
    assert {
        OBS,
        "lake.silver.changed_patients",
        LATEST,
        "lake.gold.observation_daily_stats",
    } <= names
    assert maintained.report.failed == []
    json.dumps(maintained.report.to_json())  # the job prints it


def test_small_files_are_compacted_and_rows_kept(maintained: Maintained) -> None:
    e = entry(maintained, OBS)
    assert e.before is not None and e.after is not None
    assert e.before.data_files == 4 and e.after.data_files == 1
    assert (e.rewritten_data_files, e.added_data_files) == (4, 1)
    assert e.after.records == e.before.records == len(FIXTURE["observation"])
    for name, rows in maintained.rows_before.items():
        assert sorted(tuple(r) for r in maintained.spark.table(name).collect()) == rows, name


def test_manifests_are_merged(maintained: Maintained) -> None:
    e = entry(maintained, OBS)
    assert e.before is not None and e.after is not None
    assert e.before.manifests >= 4 and e.after.manifests == 1


def test_snapshots_expire_except_the_last_and_the_tagged(maintained: Maintained) -> None:
    obs = entry(maintained, OBS)
    assert obs.before is not None and obs.after is not None
    assert obs.before.snapshots == 4
    # kept: the compacted current snapshot and the one gold's watermark tags
    assert obs.after.snapshots == 2
    assert meta.snapshot_exists(maintained.spark, OBS, maintained.tagged_silver_snapshot)
    gold = entry(maintained, LATEST)
    assert gold.before is not None and gold.after is not None
    # the first build expired (its files deleted); kept: the manifest rewrite and the tagged
    assert (gold.before.snapshots, gold.after.snapshots) == (2, 2)
    assert gold.expired_data_files == gold.before.data_files  # the first build's files
    assert gold.added_manifests == 1


def test_only_orphans_older_than_the_margin_are_removed(maintained: Maintained) -> None:
    assert entry(maintained, LATEST).orphan_files_removed == 1
    assert not maintained.old_orphan.exists()
    assert maintained.young_orphan.exists()  # could be a write in progress


def test_gold_stays_incremental_after_maintenance(maintained: Maintained) -> None:
    s = maintained.spark
    schema = ", ".join(f"{c} {t}" for c, t in SILVER_SCHEMAS["observation"] + META)
    s.createDataFrame(observation_rows(after_p2_change()["observation"], "run-2"), schema).writeTo(
        OBS
    ).overwritePartitions()
    record_changed_patients(s, "run-2", s.createDataFrame([("p2",)], "patient_key string"))
    report = run_gold(s, "unused", "run-2", "silver", SETTINGS, tables=TABLES)
    assert {t.table: t.mode for t in report.tables} == {
        "latest_observation": "incremental",
        "observation_daily_stats": "incremental",
    }
    p2 = s.sql(
        f"SELECT observation_id FROM {LATEST} WHERE patient_key = 'p2' ORDER BY code"
    ).collect()
    assert [r[0] for r in p2] == ["obs-24", "obs-11"]


def test_parse_age_and_safety_margin() -> None:
    now = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert parse_age("3d", now) == datetime(2024, 6, 28, 12, 0, tzinfo=UTC)
    assert parse_age("12h", now) == datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    assert parse_age("2024-06-01T00:00:00", now) == datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="write in progress"):
        run_maintenance(None, now, now - timedelta(minutes=5), now=now)  # type: ignore[arg-type]
