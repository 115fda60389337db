"""Gold job on the hand-built silver fixture (tests/fixtures_silver.py), real Spark + Iceberg.

Every expected row below was worked out by hand from the fixture rows (not computed by the job's
code). Suppression threshold 3 and reference date 2024-06-30 throughout, unless a test says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fhir_lakehouse import iceberg_metadata as meta
from fhir_lakehouse.gold_job import GoldRunReport, GoldSettings, run_gold
from fhir_lakehouse.gold_tables import GOLD_TABLES
from tests.fixtures_silver import FIXTURE, after_p2_change, isolated_lake_session, write_silver

REF = date(2024, 6, 30)
SETTINGS = GoldSettings(suppression_threshold=3, reference_date=REF)
ALL = ["p1", "p2", "p3", "p4", "p5", "p6"]


def read(spark: SparkSession, table: str, cols: list[str]) -> list[tuple[Any, ...]]:
    """Rows of lake.gold.<table> as tuples of `cols`, sorted; dates and times as ISO strings."""
    df = spark.table(f"lake.gold.{table}")
    types = dict(df.dtypes)
    exprs = [
        F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss").alias(c)
        if types[c] == "timestamp"
        else (F.col(c).cast("string").alias(c) if types[c] == "date" else F.col(c))
        for c in cols
    ]
    rows = [tuple(r) for r in df.select(*exprs).collect()]
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def snapshot(
    spark: SparkSession, names: list[str] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every gold table (or the named ones), all columns, for comparing two runs."""
    tables = [t for t in GOLD_TABLES if names is None or t.name in names]
    return {t.name: read(spark, t.name, t.column_names) for t in tables}


class Lake:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.reports: dict[str, GoldRunReport] = {}
        self.states: dict[str, dict[str, list[tuple[Any, ...]]]] = {}


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """One lake for the module, taken through the runs in order, each run's gold kept in memory.

    run-1: full build on FIXTURE. run-2: silver changes p2 only; incremental. run-3: a full
    recompute on the same silver (must equal run-2). run-4: no patient changed, only the
    reference date moves. run-5: only the suppression threshold changes (prevalence only).
    """
    root: Path = tmp_path_factory.mktemp("gold-lake")
    session = isolated_lake_session(spark, f"file://{root}")
    lk = Lake(session)
    write_silver(session, FIXTURE, "run-1", ALL)
    lk.reports["run-1"] = run_gold(session, str(root), "run-1", None, SETTINGS)
    lk.states["run-1"] = snapshot(session)
    write_silver(session, after_p2_change(), "run-2", ["p2"])
    lk.reports["run-2"] = run_gold(session, str(root), "run-2", "silver", SETTINGS)
    lk.states["run-2"] = snapshot(session)
    lk.reports["run-3"] = run_gold(session, str(root), "run-3", None, SETTINGS)
    lk.states["run-3"] = snapshot(session)
    later = GoldSettings(suppression_threshold=3, reference_date=date(2024, 7, 1))
    lk.reports["run-4"] = run_gold(session, str(root), "run-4", "silver", later)
    lk.states["run-4"] = snapshot(session)
    stricter = GoldSettings(suppression_threshold=4, reference_date=date(2024, 7, 1))
    lk.reports["run-5"] = run_gold(
        session, str(root), "run-5", "silver", stricter, tables=["condition_prevalence"]
    )
    lk.states["run-5"] = snapshot(session)
    yield lk


def cols(table: str) -> list[str]:
    return next(t for t in GOLD_TABLES if t.name == table).column_names


def pick(
    state: dict[str, list[tuple[Any, ...]]], table: str, names: list[str]
) -> list[tuple[Any, ...]]:
    all_cols = cols(table)
    idx = [all_cols.index(n) for n in names]
    rows = [tuple(r[i] for i in idx) for r in state[table]]
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def modes(report: GoldRunReport) -> dict[str, str]:
    return {t.table: t.mode for t in report.tables}


# ---------------------------------------------------------------------------------------------
# run-1: full build

LATEST_COLS = ["patient_key", "code", "observation_id", "effective_at", "value_quantity", "value_unit", "value_code", "value_string"]  # fmt: skip
LATEST_RUN1 = [
    # p1: HbA1c obs-02 is newer than obs-01
    ("p1", "4548-4", "obs-02", "2024-06-20T09:00:00", 6.8, "%", None, None),
    ("p1", "72166-2", "obs-18", "2024-05-10T09:10:00", None, None, "8517006", None),
    ("p1", "8480-6", "obs-10", "2024-06-20T09:05:00", 150.0, "mm[Hg]", None, None),
    ("p1", "8867-4", "obs-14", "2024-06-20T09:06:00", 72.0, "/min", None, None),
    # p2: obs-03 and obs-04 share the effective time; obs-04 was updated later. obs-19 has no code.
    ("p2", "4548-4", "obs-04", "2024-06-15T08:30:00", 8.4, "%", None, None),
    ("p2", "8480-6", "obs-11", "2024-06-15T08:35:00", 120.0, "mm[Hg]", None, None),
    ("p2", "8867-4", "obs-13", "2024-06-28T10:00:00", 110.0, "/min", None, None),
    # p3: its only observation was entered in error -> no rows
    # p4: obs-05/obs-06 tie on time and both lack _last_updated -> the higher id wins
    ("p4", "4548-4", "obs-06", "2024-05-01T00:30:00", 6.3, "%", None, None),
    ("p4", "8480-6", "obs-12", "2024-05-01T00:35:00", 165.0, "mm[Hg]", None, None),
    # p5: obs-08/obs-09 tie on time; obs-09 has a _last_updated, obs-08 none (unknown sorts last)
    ("p5", "4548-4", "obs-09", "2024-06-01T12:00:00", 6.0, "%", None, None),
    ("p5", "8310-5", "obs-15", "2024-06-29T23:30:00", 38.4, "Cel", None, None),
    ("p5", "8867-4", "obs-22", "2024-06-28T12:00:00", 95.0, "/min", None, None),
    # p6: HbA1c in another unit; blood pressure refused (no value) beats obs-17, which has no time
    ("p6", "4548-4", "obs-21", "2024-06-15T07:00:00", 48.0, "mmol/mol", None, None),
    ("p6", "8480-6", "obs-16", "2024-06-10T10:00:00", None, None, None, "refused"),
    ("p6", "8867-4", "obs-23", "2024-06-28T18:00:00", 60.0, "/min", None, None),
]  # fmt: skip


def test_latest_observation(lake: Lake) -> None:
    assert pick(lake.states["run-1"], "latest_observation", LATEST_COLS) == LATEST_RUN1
    rows = pick(lake.states["run-1"], "latest_observation", ["patient_key", "code", "code_system", "category", "status", "value_code_system", "_run_id"])  # fmt: skip
    assert (
        "p1",
        "72166-2",
        "http://loinc.org",
        "social-history",
        "final",
        "http://snomed.info/sct",
        "run-1",
    ) in rows
    assert ("p2", "4548-4", "http://loinc.org", "laboratory", "amended", None, "run-1") in rows


SUMMARY_COLS = cols("patient_summary")
SUMMARY_RUN1 = [
    # patient, sex, age, as of, deceased, encounters, active conditions, active meds, first, last
    # p1: born 1980-06-30 -> 44 on its birthday; e1, e2, e9; c1 + c4 (c5 inactive); m1, m2 (m3 stopped)
    ("p1", "female", 44, "2024-06-30", False, 3, 2, 2, "2024-05-10", "2024-06-02", "run-1"),
    # p2: born 1990-07-01 -> still 33; e3, e4; c2 (c9 entered in error); m4
    ("p2", "male", 33, "2024-06-30", None, 2, 1, 1, "2024-05-20", "2024-06-15", "run-1"),
    # p3: unknown birth date; its one encounter was entered in error; c8; m5 completed
    ("p3", "female", None, "2024-06-30", None, 0, 1, 0, None, None, "run-1"),
    # p4: born 2000-02-29 -> 24; e6 (30 April 23:59:59 UTC), e7; c3 resolved
    ("p4", "male", 24, "2024-06-30", False, 2, 0, 0, "2024-04-30", "2024-05-01", "run-1"),
    # p5: no gender; e8 has no start (counted, no dates); c6 + c10 (no code still counts); m6
    ("p5", None, 74, "2024-06-30", True, 1, 2, 1, None, None, "run-1"),
    # p6: no encounters; c7 refuted
    ("p6", "other", 13, "2024-06-30", None, 0, 0, 0, None, None, "run-1"),
]  # fmt: skip


def test_patient_summary(lake: Lake) -> None:
    assert lake.states["run-1"]["patient_summary"] == SUMMARY_RUN1


MEDS_RUN1 = [
    ("p1", "m1", "860975", "metformin 500 MG", "order", "2024-05-10T09:30:00", "e1", "pr1", "run-1"),
    ("p1", "m2", "197361", "amlodipine 5 MG", "order", "2024-05-10T09:31:00", "e1", "pr1", "run-1"),
    ("p2", "m4", None, "Custom compound", "plan", None, None, None, "run-1"),
    ("p5", "m6", "860975", "metformin 500 MG", "order", "2024-06-01T12:00:00", "e8", "pr2", "run-1"),
]  # fmt: skip


def test_active_medications(lake: Lake) -> None:
    assert lake.states["run-1"]["active_medications"] == MEDS_RUN1


SCT = "http://snomed.info/sct"
MONTHLY_RUN1 = [
    # e6 starts 2024-04-30T23:59:59Z: April; e7 at 2024-05-01T00:00Z: May
    ("2024-04-01", "EMER", SCT, "50849002", "Emergency room admission", 1, 1, "run-1"),
    # e9 has no type
    ("2024-05-01", "AMB", None, None, None, 1, 1, "run-1"),
    # e1 and e3: two displays of one code -> the alphabetically last
    ("2024-05-01", "AMB", SCT, "185349003", "Encounter for check up (procedure)", 2, 2, "run-1"),
    ("2024-05-01", "IMP", SCT, "32485007", "Hospital admission", 1, 1, "run-1"),
    ("2024-06-01", "IMP", SCT, "32485007", "Hospital admission", 2, 2, "run-1"),
    # e5 entered in error and e8 without a start are not counted
]  # fmt: skip


def test_encounter_monthly(lake: Lake) -> None:
    assert lake.states["run-1"]["encounter_monthly"] == MONTHLY_RUN1


ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
PREVALENCE_RUN1 = [
    # p3 only -> 1 < 3: suppressed
    (ICD10, "E11.9", "Type 2 diabetes mellitus without complications", None, True, 3, "run-1"),
    # p1 (twice: c4, c5) and p5; p6's is refuted -> 2 < 3: suppressed
    (SCT, "38341003", "Hypertension", None, True, 3, "run-1"),
    # p1, p2, p4 (resolved still counts) -> exactly the threshold: shown
    (SCT, "44054006", "Type 2 diabetes mellitus", 3, False, 3, "run-1"),
    # c9 (asthma) entered in error and c10 without a code: no rows
]  # fmt: skip


def test_condition_prevalence_suppresses_below_the_threshold_not_at_it(lake: Lake) -> None:
    assert lake.states["run-1"]["condition_prevalence"] == PREVALENCE_RUN1


LOINC = "http://loinc.org"
A1C = "Hemoglobin A1c/Hemoglobin.total in Blood"
STATS_COLS = ["code", "value_unit", "day", "value_count", "min_value", "max_value", "mean_value", "p50_value", "p95_value"]  # fmt: skip
STATS_RUN1 = [
    ("4548-4", "%", "2024-05-01", 2, 6.1, 6.3, 6.2, 6.2, 6.29),  # 6.1 + 0.95 * 0.2
    ("4548-4", "%", "2024-05-10", 1, 7.2, 7.2, 7.2, 7.2, 7.2),
    ("4548-4", "%", "2024-06-01", 2, 5.9, 6.0, 5.95, 5.95, 5.995),
    ("4548-4", "%", "2024-06-15", 2, 8.1, 8.4, 8.25, 8.25, 8.385),
    ("4548-4", "%", "2024-06-20", 1, 6.8, 6.8, 6.8, 6.8, 6.8),
    ("4548-4", "mmol/mol", "2024-06-15", 1, 48.0, 48.0, 48.0, 48.0, 48.0),  # units kept apart
    ("8310-5", "Cel", "2024-06-29", 1, 38.4, 38.4, 38.4, 38.4, 38.4),
    ("8480-6", "mm[Hg]", "2024-05-01", 1, 165.0, 165.0, 165.0, 165.0, 165.0),
    ("8480-6", "mm[Hg]", "2024-06-15", 1, 120.0, 120.0, 120.0, 120.0, 120.0),
    ("8480-6", "mm[Hg]", "2024-06-20", 1, 150.0, 150.0, 150.0, 150.0, 150.0),
    ("8867-4", "/min", "2024-06-20", 1, 72.0, 72.0, 72.0, 72.0, 72.0),
    # 60, 80 (no patient: still a value), 95, 110: median at rank 1.5 -> 87.5; p95 at 2.85 -> 107.75
    ("8867-4", "/min", "2024-06-28", 4, 60.0, 110.0, 86.25, 87.5, 107.75),
    # not counted: obs-07 (in error), obs-16 (no value), obs-17 (no time), obs-18 (coded), obs-19 (no code)
]  # fmt: skip


def assert_stats(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert [r[:4] for r in actual] == [r[:4] for r in expected]
    for a, e in zip(actual, expected, strict=True):
        assert a[4:] == pytest.approx(e[4:], abs=1e-9), a[:3]


def test_observation_daily_stats(lake: Lake) -> None:
    assert_stats(pick(lake.states["run-1"], "observation_daily_stats", STATS_COLS), STATS_RUN1)
    displays = {r[:2]: r[2] for r in pick(lake.states["run-1"], "observation_daily_stats", ["code", "value_unit", "code_display"])}  # fmt: skip
    assert displays[("4548-4", "%")] == A1C


def test_first_run_is_a_full_build(lake: Lake) -> None:
    assert set(modes(lake.reports["run-1"]).values()) == {"full"}


# ---------------------------------------------------------------------------------------------
# run-2: silver changed p2 only (fixtures_silver.after_p2_change), incremental


def test_incremental_run_recomputes_only_the_changed_patient(lake: Lake) -> None:
    report = lake.reports["run-2"]
    assert modes(report) == {
        "latest_observation": "incremental",
        "patient_summary": "incremental",
        "active_medications": "incremental",
        "encounter_monthly": "full",
        "condition_prevalence": "full",
        "observation_daily_stats": "incremental",
    }
    by_table = {t.table: t for t in report.tables}
    assert by_table["latest_observation"].groups_recomputed == 1
    # Only p2's rows that differ between the silver snapshots move (code, unit, day) groups:
    # obs-24 added (A1c, %, 06-29) and obs-13 deleted (HR, /min, 06-28, found in the previous
    # snapshot). Its unchanged obs-03/04/11/19 leave their groups alone.
    assert by_table["observation_daily_stats"].groups_recomputed == 2


def test_incremental_latest_observation(lake: Lake) -> None:
    rows = pick(lake.states["run-2"], "latest_observation", LATEST_COLS + ["_run_id"])
    p2 = [r for r in rows if r[0] == "p2"]
    assert p2 == [
        ("p2", "4548-4", "obs-24", "2024-06-29T09:00:00", 7.5, "%", None, None, "run-2"),
        # blood pressure unchanged: not rewritten (still as run-1 wrote it)
        ("p2", "8480-6", "obs-11", "2024-06-15T08:35:00", 120.0, "mm[Hg]", None, None, "run-1"),
        # heart rate: obs-13 deleted, no other -> row gone
    ]
    others = [r for r in rows if r[0] != "p2"]
    assert others == [
        r + ("run-1",) for r in LATEST_RUN1 if r[0] != "p2"
    ]  # untouched, not rewritten


def test_incremental_patient_summary_and_medications(lake: Lake) -> None:
    summary = lake.states["run-2"]["patient_summary"]
    # p2: e3 deleted -> 1 encounter (e4); c2 resolved but new c11 active -> 1; m4 stopped -> 0
    assert [r for r in summary if r[0] == "p2"] == [
        ("p2", "male", 33, "2024-06-30", None, 1, 1, 0, "2024-06-15", "2024-06-15", "run-2")
    ]
    assert [r for r in summary if r[0] != "p2"] == [r for r in SUMMARY_RUN1 if r[0] != "p2"]
    assert lake.states["run-2"]["active_medications"] == [r for r in MEDS_RUN1 if r[0] != "p2"]


def test_incremental_aggregates(lake: Lake) -> None:
    state = lake.states["run-2"]
    assert state["encounter_monthly"] == [
        ("2024-04-01", "EMER", SCT, "50849002", "Emergency room admission", 1, 1, "run-2"),
        ("2024-05-01", "AMB", None, None, None, 1, 1, "run-2"),
        # only e1 left: its display
        ("2024-05-01", "AMB", SCT, "185349003", "Encounter for check up", 1, 1, "run-2"),
        ("2024-05-01", "IMP", SCT, "32485007", "Hospital admission", 1, 1, "run-2"),
        ("2024-06-01", "IMP", SCT, "32485007", "Hospital admission", 2, 2, "run-2"),
    ]  # fmt: skip
    assert state["condition_prevalence"] == [
        (ICD10, "E11.9", "Type 2 diabetes mellitus without complications", None, True, 3, "run-2"),
        # p2's new c11: p1, p2, p5 -> 3, reaches the threshold and is shown
        (SCT, "38341003", "Hypertension", 3, False, 3, "run-2"),
        # c2 resolved: still a diagnosis of p2 -> still 3
        (SCT, "44054006", "Type 2 diabetes mellitus", 3, False, 3, "run-2"),
    ]  # fmt: skip
    stats = pick(state, "observation_daily_stats", STATS_COLS + ["_run_id"])
    expected = [r + ("run-1",) for r in STATS_RUN1]
    # HR 06-28 without obs-13: 60, 80, 95 -> mean 78.33, median 80, p95 at rank 1.9 -> 93.5
    expected[11] = ("8867-4", "/min", "2024-06-28", 3, 60.0, 95.0, 235.0 / 3, 80.0, 93.5, "run-2")
    expected.insert(5, ("4548-4", "%", "2024-06-29", 1, 7.5, 7.5, 7.5, 7.5, 7.5, "run-2"))  # obs-24
    assert [r[-1] for r in stats] == [r[-1] for r in expected]
    assert_stats([r[:-1] for r in stats], [r[:-1] for r in expected])


def without_run_id(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in GOLD_TABLES:
        if table.name not in state:
            continue
        i = table.column_names.index("_run_id")
        out[table.name] = sorted(
            (r[:i] + r[i + 1 :] for r in state[table.name]),
            key=lambda r: tuple("" if v is None else str(v) for v in r),
        )
    return out


def test_incremental_equals_full_recompute(lake: Lake) -> None:
    assert set(modes(lake.reports["run-3"]).values()) == {"full"}
    incremental, full = without_run_id(lake.states["run-2"]), without_run_id(lake.states["run-3"])
    for table in GOLD_TABLES:
        if table.name == "observation_daily_stats":
            assert_stats([r[:3] + r[4:] for r in incremental[table.name]], [r[:3] + r[4:] for r in full[table.name]])  # fmt: skip
        else:
            assert incremental[table.name] == full[table.name], table.name


# ---------------------------------------------------------------------------------------------
# run-4: the reference date moves a day; run-5: the threshold changes; run-6: nothing changes


def test_new_reference_date_moves_every_age_without_recomputing_counts(lake: Lake) -> None:
    report = lake.reports["run-4"]
    assert modes(report)["patient_summary"] == "incremental"
    summary = lake.states["run-4"]["patient_summary"]
    # p2 (born 1990-07-01) turns 34 on 2024-07-01; every row is now as of 2024-07-01
    ages = [(r[0], r[2], r[3]) for r in summary]
    assert ages == [
        ("p1", 44, "2024-07-01"), ("p2", 34, "2024-07-01"), ("p3", None, "2024-07-01"),
        ("p4", 24, "2024-07-01"), ("p5", 74, "2024-07-01"), ("p6", 13, "2024-07-01"),
    ]  # fmt: skip
    counts_before = [
        r[:3] + r[4:-1] for r in lake.states["run-3"]["patient_summary"] if r[0] != "p2"
    ]
    counts_after = [r[:3] + r[4:-1] for r in summary if r[0] != "p2"]
    assert counts_after == counts_before


def test_new_threshold_recomputes_prevalence(lake: Lake) -> None:
    entry = next(t for t in lake.reports["run-5"].tables if t.table == "condition_prevalence")
    assert entry.mode == "full"
    assert lake.states["run-5"]["condition_prevalence"] == [
        (ICD10, "E11.9", "Type 2 diabetes mellitus without complications", None, True, 4, "run-5"),
        (SCT, "38341003", "Hypertension", None, True, 4, "run-5"),  # 3 < 4
        (SCT, "44054006", "Type 2 diabetes mellitus", None, True, 4, "run-5"),
    ]  # fmt: skip


def test_run_without_changed_patients_rewrites_nothing(lake: Lake) -> None:
    report = lake.reports["run-4"]
    # Silver did not change since run-3: every table that does not depend on the reference date
    # is left as it is, without reading silver.
    for name in ("latest_observation", "active_medications", "encounter_monthly", "observation_daily_stats"):  # fmt: skip
        entry = next(t for t in report.tables if t.table == name)
        assert (entry.mode, entry.groups_recomputed, entry.snapshot_id) == ("unchanged", 0, None)
        assert entry.spark_jobs == 0
        assert lake.states["run-4"][name] == lake.states["run-3"][name]


# ---------------------------------------------------------------------------------------------
# Table metadata and layout


def test_tables_have_a_comment_and_every_column_is_documented(lake: Lake) -> None:
    for table in GOLD_TABLES:
        name = f"lake.gold.{table.name}"
        comment = meta.properties(lake.spark, name).get("comment")
        assert comment == table.comment
        described = lake.spark.sql(f"DESCRIBE TABLE {name}").collect()
        docs = {r["col_name"]: r["comment"] for r in described if r["col_name"] and not r["col_name"].startswith("#")}  # fmt: skip
        for column in table.columns:
            assert docs.get(column.name), f"{table.name}.{column.name} has no comment"


def test_latest_observation_is_bucketed_sorted_and_bloom_filtered(lake: Lake) -> None:
    name = "lake.gold.latest_observation"
    partitions = lake.spark.sql(f"SELECT partition FROM {name}.files").collect()
    assert len(partitions) > 1  # one file per patient bucket holding rows
    jvm_table = meta._jvm_table(lake.spark, name)
    assert str(jvm_table.spec().fields().get(0).transform()) == "bucket[32]"
    schema = jvm_table.schema()
    sort_fields = jvm_table.sortOrder().fields()
    sorted_by = [
        schema.findColumnName(sort_fields.get(i).sourceId()) for i in range(sort_fields.size())
    ]
    assert sorted_by == ["patient_key", "code_system", "code"]
    assert (
        meta.properties(lake.spark, name)["write.parquet.bloom-filter-enabled.column.patient_key"]
        == "true"
    )


# ---------------------------------------------------------------------------------------------
# The aggregates' other strategy: affected groups instead of a full recompute


def test_aggregates_by_affected_groups_equal_a_full_recompute(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """encounter_monthly and condition_prevalence are recomputed in full by default; the
    benchmark also runs them by affected groups (months, codes), which must give the same rows."""
    root: Path = tmp_path_factory.mktemp("gold-groups-lake")
    session = isolated_lake_session(spark, f"file://{root}")
    names = ["encounter_monthly", "condition_prevalence", "observation_daily_stats"]
    flipped = GoldSettings(
        suppression_threshold=3,
        reference_date=REF,
        strategies={n: "affected_groups" for n in names},
    )
    write_silver(session, FIXTURE, "run-1", ALL)
    run_gold(session, str(root), "run-1", None, flipped, tables=names)
    write_silver(session, after_p2_change(), "run-2", ["p2"])
    report = run_gold(session, str(root), "run-2", "silver", flipped, tables=names)
    assert modes(report) == dict.fromkeys(names, "incremental")
    groups = {t.table: t.groups_recomputed for t in report.tables}
    assert groups["condition_prevalence"] == 2  # diabetes (c2 resolved) and hypertension (c11)
    incremental = without_run_id(snapshot(session, names))
    run_gold(session, str(root), "run-3", None, flipped, tables=names)
    full = without_run_id(snapshot(session, names))
    for name in names:
        if name == "observation_daily_stats":
            assert_stats([r[:3] + r[4:] for r in incremental[name]], [r[:3] + r[4:] for r in full[name]])  # fmt: skip
        else:
            assert incremental[name] == full[name], name


def test_parallel_tables_run_in_the_callers_job_group_and_label_their_jobs(lake: Lake) -> None:
    """The local pipeline follows a job's progress by its job group: the table threads inherit it,
    and each labels its jobs with its table, so the report counts jobs per table."""
    sc = lake.spark.sparkContext
    sc.setJobGroup("gold-test-group", "gold")
    try:
        report = run_gold(
            lake.spark, "unused", "run-jobs", None, SETTINGS,
            tables=["latest_observation", "active_medications"],
        )  # fmt: skip
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    in_group = sc.statusTracker().getJobIdsForGroup("gold-test-group")
    assert report.spark_jobs == len(in_group) > 0
    assert all(t.mode == "full" and t.spark_jobs > 0 for t in report.tables)
    assert sum(t.spark_jobs for t in report.tables) == report.spark_jobs


def test_small_driver_frames_are_values_lists_with_the_same_rows(spark: SparkSession) -> None:
    """Group keys built in the driver become a VALUES list (no Spark job to broadcast them):
    quotes, backslashes, NULLs and dates survive; other types and long lists use createDataFrame."""
    from pyspark.sql.types import DateType, StringType, StructField, StructType

    from fhir_lakehouse.gold_job import LOCAL_FRAME_ROWS, _local_frame

    schema = StructType([StructField("code", StringType()), StructField("day", DateType())])
    rows = [("it's", date(2024, 2, 29)), ("a\\b", None), (None, date(2024, 1, 1))]
    frame = _local_frame(spark, rows, schema)
    assert "LocalTableScan" in frame._jdf.queryExecution().executedPlan().toString()
    assert frame.schema == schema
    assert sorted(map(tuple, frame.collect()), key=str) == sorted(rows, key=str)
    many = [(str(i), None) for i in range(LOCAL_FRAME_ROWS + 1)]
    assert _local_frame(spark, many, schema).count() == len(many)


def test_only_views_several_incremental_tables_read_are_cached() -> None:
    from fhir_lakehouse.gold_job import shared_changed_views

    assert shared_changed_views(GOLD_TABLES, SETTINGS) == {"observation", "medication_request"}
    by_groups = GoldSettings(strategies={"encounter_monthly": "affected_groups"})
    assert "encounter" in shared_changed_views(GOLD_TABLES, by_groups)
    one = [t for t in GOLD_TABLES if t.name == "latest_observation"]
    assert shared_changed_views(one, SETTINGS) == set()
