"""Pure logic of the gold job (no Spark): full-or-incremental decisions, watermarks, DDL, ages."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from fhir_lakehouse.gold_incremental import (
    PlanInput,
    Watermark,
    appends_only,
    changed_groups,
    plan_table,
    read_watermark,
    too_many_changed,
    watermark_matches_table,
    watermark_properties,
)
from fhir_lakehouse.gold_job import GoldSettings, build_parser, settings_from_args
from fhir_lakehouse.gold_tables import (
    CONDITION_PREVALENCE,
    GOLD_TABLES,
    LATEST_OBSERVATION,
    OBSERVATION_DAILY_STATS,
    age_sql,
    create_table_sql,
    write_order_sql,
)
from fhir_lakehouse.iceberg_metadata import SnapshotInfo

PARAMS = {"suppression_threshold": "10", "reference_date": "2024-06-30"}
WM = Watermark("run-1", 11, {"observation": 5}, 7, PARAMS)


def plan(**overrides: object) -> tuple[str, str]:
    base: dict[str, object] = dict(
        table=LATEST_OBSERVATION,
        requested_full=False,
        change_source="silver",
        table_created=False,
        watermark=WM,
        watermark_valid=True,
        params=PARAMS,
    )
    base.update(overrides)
    p = plan_table(PlanInput(**base))  # type: ignore[arg-type]
    return p.mode, p.reason


def test_incremental_when_everything_is_known() -> None:
    assert plan() == ("incremental", "incremental (per_patient)")
    assert plan(table=OBSERVATION_DAILY_STATS) == ("incremental", "incremental (affected_groups)")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"requested_full": True}, "full recompute requested"),
        ({"table_created": True}, "new table"),
        ({"watermark": None}, "no watermark"),
        ({"watermark_valid": False}, "changed since its watermark"),
        ({"change_source": "none"}, "no changed patients"),
        ({"watermark": Watermark("r", 11, {}, None, PARAMS)}, "no changed-patients watermark"),
        (
            {"table": OBSERVATION_DAILY_STATS, "old_snapshots_available": False},
            "no longer available",
        ),
        ({"strategy": "full"}, "in full by design"),
    ],
)
def test_full_recompute_and_why(overrides: dict[str, object], reason: str) -> None:
    mode, why = plan(**overrides)
    assert mode == "full" and reason in why


def test_a_changed_setting_rebuilds_only_the_tables_that_depend_on_it() -> None:
    stricter = {**PARAMS, "suppression_threshold": "11"}
    table = CONDITION_PREVALENCE
    assert (
        plan(table=table, strategy="affected_groups", params=stricter)[1]
        == "setting suppression_threshold changed"
    )
    assert plan(params=stricter)[0] == "incremental"  # latest_observation does not depend on it


def test_explicit_keys_need_no_changed_patients_watermark() -> None:
    assert (
        plan(change_source="explicit", watermark=Watermark("r", 11, {}, None, PARAMS))[0]
        == "incremental"
    )


def test_too_many_changed_patients() -> None:
    assert too_many_changed(26, 100, 0.25)
    assert not too_many_changed(25, 100, 0.25)
    assert not too_many_changed(10, None, 0.25)


def snap(sid: int, op: str, parent: int | None = None) -> SnapshotInfo:
    return SnapshotInfo(sid, parent, op, {})


def test_watermark_survives_compaction_but_not_foreign_writes() -> None:
    assert watermark_matches_table(WM, [snap(11, "overwrite")])
    # compaction and manifest rewrites after gold's snapshot change no rows
    assert watermark_matches_table(
        WM, [snap(13, "replace", 12), snap(12, "replace", 11), snap(11, "overwrite")]
    )
    # someone else appended after gold
    assert not watermark_matches_table(WM, [snap(12, "append", 11), snap(11, "overwrite")])
    # gold's snapshot is not in the lineage (expired, or the table was replaced)
    assert not watermark_matches_table(WM, [snap(13, "replace", 12)])
    assert watermark_matches_table(Watermark("r", None, {}, None, {}), [])


def test_watermark_round_trips_through_table_properties() -> None:
    props = watermark_properties("run-9", 42, {"observation": 5, "patient": None}, 8, PARAMS)
    assert read_watermark(props) == Watermark(
        "run-9", 42, {"observation": 5, "patient": None}, 8, PARAMS
    )
    assert read_watermark({}) is None
    empty = watermark_properties("run-9", None, {}, None, {})
    assert read_watermark(empty) == Watermark("run-9", None, {}, None, {})


def test_ddl_documents_every_column_and_the_table() -> None:
    for table in GOLD_TABLES:
        ddl = create_table_sql(table, f"lake.gold.{table.name}", "s3://b/gold/x")
        for column in table.columns:
            assert f"{column.name} {column.type} COMMENT '" in ddl
        assert "COMMENT '" + table.comment.replace("'", "\\'")[:40] in ddl
        assert "LOCATION 's3://b/gold/x'" in ddl
        assert "'fhir.gold.definition' = '" + table.fingerprint() + "'" in ddl
        assert table.row_key and set(table.group_key) <= set(table.column_names)
        assert "_run_id" in table.column_names
    ddl = create_table_sql(LATEST_OBSERVATION, "lake.gold.latest_observation")
    assert "PARTITIONED BY (bucket(32, patient_key))" in ddl
    assert "'write.parquet.bloom-filter-enabled.column.patient_key' = 'true'" in ddl
    order = write_order_sql(LATEST_OBSERVATION, "t")
    assert (
        order
        == "ALTER TABLE t WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY patient_key, code_system, code"
    )


def test_fingerprint_changes_with_the_definition() -> None:
    from dataclasses import replace

    changed = replace(LATEST_OBSERVATION, sort_by=("patient_key",))
    assert changed.fingerprint() != LATEST_OBSERVATION.fingerprint()
    assert len({t.fingerprint() for t in GOLD_TABLES}) == len(GOLD_TABLES)


@pytest.mark.parametrize(
    ("birth", "ref", "age"),
    [
        ("1980-06-30", "2024-06-30", 44),  # birthday today
        ("1990-07-01", "2024-06-30", 33),  # birthday tomorrow
        ("2000-02-29", "2023-02-28", 22),  # leap-day birth: older on 1 March in common years
        ("2000-02-29", "2023-03-01", 23),
        ("2000-02-29", "2024-02-29", 24),
        ("2024-07-01", "2024-06-30", None),  # born after the reference date
        (None, "2024-06-30", None),
    ],
)
def test_age_in_whole_years(birth: str | None, ref: str, age: int | None) -> None:
    # The expression is plain SQL (year/month/day, CASE): evaluated here with DuckDB; the gold
    # tests evaluate it in Spark on the fixture's patients.
    b = f"DATE '{birth}'" if birth else "CAST(NULL AS DATE)"
    assert duckdb.sql(f"SELECT {age_sql(b, f'DATE {ref!r}')}").fetchall() == [(age,)]


def test_cli_settings() -> None:
    args = build_parser().parse_args(
        [
            "--lake",
            "file:///l",
            "--run-id",
            "r",
            "--settings-json",
            '{"gold": {"suppressionThreshold": 5}}',
        ]
    )
    settings, spark = settings_from_args(args)
    assert (settings.suppression_threshold, spark) == (5, None)
    args = build_parser().parse_args(
        [
            "--silver",
            "file:///w/lake/silver",
            "--run-id",
            "r",
            "--suppression-threshold",
            "7",
            "--reference-date",
            "2024-01-31",
        ]
    )
    settings, _ = settings_from_args(args)
    assert settings == GoldSettings(suppression_threshold=7, reference_date=date(2024, 1, 31))
    assert settings.params() == {"suppression_threshold": "7", "reference_date": "2024-01-31"}


def test_changed_groups_are_those_of_rows_added_removed_or_changed() -> None:
    # rows: (group..., row values...): group = (code, day)
    old = [("A", 1, "o1", 5.0), ("A", 1, "o2", 6.0), ("B", 2, "o3", 7.0), ("C", 3, "o4", 8.0)]
    new = [
        ("A", 1, "o1", 5.0),  # unchanged
        ("A", 1, "o2", 6.0),  # unchanged
        ("B", 4, "o3", 7.0),  # o3 moved from day 2 to day 4: both groups move
        ("D", 5, "o5", 1.0),  # added
    ]  # o4 removed
    assert changed_groups(old, new, 2) == {("B", 2), ("B", 4), ("C", 3), ("D", 5)}
    assert changed_groups(old, list(old), 2) == set()
    # a duplicated identical row is a change of the multiset
    assert changed_groups(old, old + [("A", 1, "o1", 5.0)], 2) == {("A", 1)}


def test_incremental_append_scan_only_over_appends_and_compactions() -> None:
    def snap(i: int, op: str) -> SnapshotInfo:
        return SnapshotInfo(i, i - 1 if i > 1 else None, op, {})

    chain = [snap(5, "append"), snap(4, "replace"), snap(3, "append"), snap(2, "append")]
    assert appends_only(chain, since=2, until=5)
    assert appends_only(chain, since=3, until=4)
    assert not appends_only(chain, since=1, until=5)  # since expired (not in the chain)
    rewritten = [snap(5, "append"), snap(4, "overwrite"), snap(3, "append")]
    assert not appends_only(rewritten, since=3, until=5)
    assert appends_only(rewritten, since=4, until=5)


def test_unchanged_inputs_leave_the_table_alone_unless_a_full_run_or_setting_says_otherwise() -> (
    None
):
    assert plan(inputs_unchanged=True)[0] == "unchanged"
    assert plan(table=CONDITION_PREVALENCE, inputs_unchanged=True)[0] == "unchanged"
    assert plan(inputs_unchanged=True, requested_full=True)[0] == "full"
    assert plan(inputs_unchanged=True, table_created=True)[0] == "full"
    assert plan(inputs_unchanged=True, watermark_valid=False)[0] == "full"
    stricter = {**PARAMS, "suppression_threshold": "11"}
    assert plan(table=CONDITION_PREVALENCE, inputs_unchanged=True, params=stricter)[0] == "full"
