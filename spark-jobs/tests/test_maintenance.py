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
    EVERY_STEP,
    PROP_COMPACTED_SNAPSHOT,
    PROP_ORPHANS_CHECKED_AT,
    MaintenancePolicy,
    MaintenanceReport,
    SnapshotFacts,
    TableFacts,
    TableMaintenance,
    TableState,
    parse_age,
    parse_duration,
    plan_table,
    run_maintenance,
    small_files_since_compaction,
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


# ---------------------------------------------------------------------------------------------
# The policy: each step only when due, decided from metadata.

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR_MS = 3600 * 1000


def facts(
    ancestry: list[SnapshotFacts],
    *,
    delete_files: int = 0,
    manifests: int = 1,
    compacted: int | None = None,
    refs: frozenset[int] = frozenset(),
    orphans_checked_at: datetime | None = None,
) -> TableFacts:
    state = TableState(
        data_files=ancestry[0].total_data_files if ancestry else 0,
        delete_files=delete_files,
        bytes=0,
        records=0,
        snapshots=len(ancestry),
        manifests=manifests,
    )
    return TableFacts(
        state=state,
        current_snapshot_id=ancestry[0].snapshot_id if ancestry else None,
        ancestry=ancestry,
        snapshot_times={s.snapshot_id: s.timestamp_ms for s in ancestry},
        ref_snapshot_ids=refs,
        compacted_snapshot_id=compacted,
        orphans_checked_at=orphans_checked_at,
    )


def nightly(days: int, files_per_night: int, size: int = 1_000_000) -> list[SnapshotFacts]:
    """A first load of 4 files, then one small commit per night; newest first."""
    t0 = int((NOW - timedelta(days=days)).timestamp() * 1000)
    snaps = [SnapshotFacts(1, t0, 4, 400_000_000, 4)]
    for d in range(1, days + 1):
        total = 4 + d * files_per_night
        snaps.append(SnapshotFacts(1 + d, t0 + d * 24 * HOUR_MS, files_per_night, size, total))
    return snaps[::-1]


# The pipeline's policy with lower absolute floors, so that the arithmetic stays small.
PIPELINE = MaintenancePolicy(compact_min_small_files=10, compact_min_delete_files=8)


def plan_for(f: TableFacts, policy: MaintenancePolicy = PIPELINE) -> dict[str, str]:
    older = NOW - timedelta(days=3)
    return plan_table(f, policy, NOW, older, NOW - timedelta(days=3), 5).steps()


def test_a_first_load_is_not_compacted_and_a_young_table_has_nothing_due() -> None:
    young = [SnapshotFacts(1, int(NOW.timestamp() * 1000) - HOUR_MS, 40, 40_000_000, 40)]
    assert small_files_since_compaction(facts(young), 96 * 1024 * 1024) == 0
    assert plan_for(facts(young)) == {}


def test_small_files_since_the_last_compaction_decide_compaction() -> None:
    # Two nights of 4 small files: 8 < 10. Three nights: 12 >= 10.
    assert "compact" not in plan_for(facts(nightly(2, 4)))
    assert "compact" in plan_for(facts(nightly(3, 4)))
    # Counting stops at the recorded compaction (snapshot 3 of 4 nights): one night since.
    assert small_files_since_compaction(facts(nightly(4, 4), compacted=4), 96 * 1024 * 1024) == 4
    # Large commits are not small files.
    assert "compact" not in plan_for(facts(nightly(6, 4, size=4 * 512 * 1024 * 1024)))


def test_thresholds_are_relative_to_the_table_s_data_files() -> None:
    # A month-partitioned table: a first load of 100 files, then nights touching 20 partitions.
    t0 = int((NOW - timedelta(days=2)).timestamp() * 1000)
    load = SnapshotFacts(1, t0, 100, 100 * 1_000_000, 100)
    night1 = SnapshotFacts(2, t0 + 24 * HOUR_MS, 20, 20 * 100_000, 120)
    night2 = SnapshotFacts(3, t0 + 48 * HOUR_MS, 20, 20 * 100_000, 140)
    one_night = facts([night1, load], delete_files=20)
    assert "compact" not in plan_for(one_night)  # 20 small of 120, 20 deletes for 120 files
    assert "compact" not in plan_for(facts([night2, night1, load], delete_files=40))
    many_deletes = facts([night2, night1, load], delete_files=140)
    assert plan_for(many_deletes)["compact"] == "140 delete files for 140 data files"
    half_small = MaintenancePolicy(compact_min_small_files=10, compact_small_files_share=0.25)
    assert "compact" in plan_for(facts([night2, night1, load]), half_small)  # 40 of 140


def test_delete_files_and_manifests_have_their_own_thresholds() -> None:
    f = facts(nightly(1, 1), delete_files=8, manifests=16)
    assert set(plan_for(f)) >= {"compact", "rewrite_manifests"}
    f = facts(nightly(1, 1), delete_files=7, manifests=15)
    assert not {"compact", "rewrite_manifests"} & set(plan_for(f))


def test_expiry_is_due_only_for_old_snapshots_outside_the_kept_ones() -> None:
    # 6 nightly snapshots + the first load: the last 5 are kept, the 2 oldest are > 3 days old.
    assert "2 snapshots" in plan_for(facts(nightly(6, 1)))["expire"]
    # A tag keeps one of them.
    assert "1 snapshots" in plan_for(facts(nightly(6, 1), refs=frozenset({1})))["expire"]
    assert "expire" not in plan_for(facts(nightly(4, 1)))  # all within the last 5


def test_orphans_are_looked_for_once_per_interval() -> None:
    assert "remove_orphans" in plan_for(facts(nightly(6, 1)))  # old table, never checked
    recent = facts(nightly(6, 1), orphans_checked_at=NOW - timedelta(days=2))
    assert "remove_orphans" not in plan_for(recent)
    due = facts(nightly(6, 1), orphans_checked_at=NOW - timedelta(days=7))
    assert "remove_orphans" in plan_for(due)


def test_every_step_ignores_the_thresholds() -> None:
    steps = plan_for(facts(nightly(1, 1)), EVERY_STEP)
    assert set(steps) == {"compact", "expire", "remove_orphans"}  # one manifest: no rewrite
    assert plan_for(facts([]), EVERY_STEP) == {}  # a table never written


@pytest.fixture(scope="module")
def policy_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    root = tmp_path_factory.mktemp("maint-policy-lake")
    s = isolated_lake_session(spark, f"file://{root}")
    s.sql("CREATE NAMESPACE IF NOT EXISTS lake.silver")
    return s


def small_appends(s: SparkSession, name: str, n: int) -> None:
    s.sql(f"CREATE TABLE IF NOT EXISTS {name} (id string, v int) USING iceberg")
    for i in range(n):
        s.createDataFrame([(f"r{i}", i)], "id string, v int").coalesce(1).writeTo(name).append()


def test_pipeline_policy_on_real_tables(policy_lake: SparkSession) -> None:
    s = policy_lake
    quiet, busy = "lake.silver.quiet", "lake.silver.busy"
    small_appends(s, quiet, 2)  # first load + one small commit: below any threshold
    small_appends(s, busy, 5)  # first load + four small commits
    policy = MaintenancePolicy(compact_min_small_files=3)
    older = datetime.now(UTC) - timedelta(days=3)

    def run() -> dict[str, TableMaintenance]:
        report = run_maintenance(s, older, older, tables=[quiet, busy], policy=policy)
        assert report.failed == []
        return {t.table: t for t in report.tables}

    first = run()
    assert first[quiet].steps == {} and first[quiet].after == first[quiet].before
    assert set(first[busy].steps) == {"compact"}  # young tables: no expiry, no orphan listing
    assert first[busy].after is not None and first[busy].after.data_files == 1
    assert s.table(busy).count() == 5
    props = meta.properties(s, busy)
    assert props[PROP_COMPACTED_SNAPSHOT] == str(meta.current_snapshot_id(s, busy))

    again = run()  # nothing written since: nothing due anywhere
    assert again[quiet].steps == {} and again[busy].steps == {}

    small_appends(s, busy, 2)  # two small files since the compaction: 2 < 3
    assert run()[busy].steps == {}
    small_appends(s, busy, 1)
    assert set(run()[busy].steps) == {"compact"}


def test_orphan_check_is_recorded_and_waits_for_its_interval(policy_lake: SparkSession) -> None:
    s = policy_lake
    name = "lake.silver.orphaned"
    small_appends(s, name, 1)
    orphan = table_dir(s, name) / "orphan-old.parquet"
    orphan.write_bytes(b"not referenced by any snapshot")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(orphan, (ten_days_ago, ten_days_ago))
    older = datetime.now(UTC) - timedelta(days=3)
    checked = datetime.now(UTC) - timedelta(days=1)
    meta.set_properties(s, name, {PROP_ORPHANS_CHECKED_AT: checked.isoformat()})

    report = run_maintenance(s, older, older, tables=[name], policy=MaintenancePolicy())
    assert report.tables[0].steps == {} and orphan.exists()  # checked a day ago: not due

    weekly = MaintenancePolicy(orphan_interval=timedelta(hours=12))
    report = run_maintenance(s, older, older, tables=[name], policy=weekly)
    assert set(report.tables[0].steps) == {"remove_orphans"}
    assert report.tables[0].orphan_files_removed == 1 and not orphan.exists()
    recorded = datetime.fromisoformat(meta.properties(s, name)[PROP_ORPHANS_CHECKED_AT])
    assert recorded > checked


def test_parse_duration() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(" 12h ") == timedelta(hours=12)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("weekly")
