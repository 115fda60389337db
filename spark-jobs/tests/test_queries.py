"""Named analyst queries (analytics/queries/*.sql): portable SQL, and the expected answers on the
hand-built fixture when run locally (DuckDB over the Iceberg tables the gold job wrote)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from pyspark.sql import SparkSession

from fhir_lakehouse.gold_job import GoldSettings, run_gold
from fhir_lakehouse.gold_tables import GOLD_TABLES, SILVER_INPUTS
from fhir_lakehouse.local_query import (
    QueryError,
    connect,
    main,
    register_table,
    rows_as_json,
    run_sql,
)
from fhir_lakehouse.named_queries import (
    QUERIES_DIR,
    load_named_queries,
    parse_named_query,
    portability_problems,
    referenced_tables,
)
from tests.fixtures_silver import FIXTURE, isolated_lake_session, write_silver

QUERIES = load_named_queries()
VIEWS = {p.stem for p in (Path(__file__).resolve().parents[1] / "views").glob("*.json")}
KNOWN_TABLES = {("gold", t.name) for t in GOLD_TABLES} | {
    ("silver", v) for v in VIEWS | {"resources"}
}
SCT = "http://snomed.info/sct"


# ---------------------------------------------------------------------------------------------
# Static checks (no engine)


def test_the_queries_the_issue_asks_for_exist() -> None:
    assert {
        "latest_hba1c_diabetic_patients",
        "monthly_admissions",
        "top_conditions",
        "abnormal_vitals_last_30_days",
        "active_medications_per_patient",
    } <= set(QUERIES)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_is_portable_between_athena_and_duckdb(name: str) -> None:
    query = QUERIES[name]
    assert query.description
    assert portability_problems(query.sql, KNOWN_TABLES) == []
    assert referenced_tables(query.sql) <= KNOWN_TABLES
    # Trino's grammar (Athena engine v3): the query parses as Trino SQL.
    sqlglot.parse_one(query.sql, read="trino")


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT x::date FROM gold.t", "'::' casts"),
        ("SELECT date_add('day', -30, d) FROM gold.t", "date_add differs"),
        (
            "SELECT * FROM gold.t WHERE d > current_date - INTERVAL 30 DAY",
            "INTERVAL needs a quoted number",
        ),
        (
            "SELECT * FROM gold.t WHERE d > current_date - INTERVAL '30 days'",
            "INTERVAL '30 days' is DuckDB only",
        ),
        ("SELECT * FROM gold.t WHERE name ILIKE 'a%'", "ILIKE is DuckDB only"),
        ("SELECT * FROM gold.t QUALIFY row_number() OVER () = 1", "QUALIFY is DuckDB only"),
        ("SELECT ifnull(a, 0) FROM gold.t", "IFNULL/NVL"),
        ("SELECT approx_percentile(v, 0.5) FROM gold.t", "approx_percentile"),
        ("SELECT median(v) FROM gold.t", "DuckDB-only percentile"),
        ("SELECT `a` FROM gold.t", "backtick"),
        ("SELECT a FROM gold.t GROUP BY ALL", "GROUP/ORDER BY ALL"),
        ("DELETE FROM gold.t", "read-only"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM gold.nope", "unknown table gold.nope"),
    ],
)
def test_portability_check_rejects_non_portable_sql(sql: str, problem: str) -> None:
    problems = portability_problems(sql, KNOWN_TABLES | {("gold", "t")})
    assert any(problem in p for p in problems), problems


def test_portability_check_ignores_comments_and_string_literals() -> None:
    sql = "-- name: x\n-- description: uses :: and ILIKE in prose\nSELECT 'a::b; ILIKE' AS s FROM gold.t"
    assert portability_problems(sql, {("gold", "t")}) == []


def test_header_is_required_and_names_are_snake_case() -> None:
    with pytest.raises(ValueError, match="no '-- name:'"):
        parse_named_query("SELECT 1")
    with pytest.raises(ValueError, match="no '-- description:'"):
        parse_named_query("-- name: a\nSELECT 1")
    with pytest.raises(ValueError, match="lower_snake_case"):
        parse_named_query("-- name: Bad-Name\n-- description: d\nSELECT 1")
    q = parse_named_query("-- name: a_b\n-- description: first\n--   second line\nSELECT 1;\n")
    assert (q.name, q.description, q.sql.endswith("SELECT 1")) == ("a_b", "first second line", True)


# ---------------------------------------------------------------------------------------------
# Running them locally on the fixture's gold


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's silver and its gold (threshold 3, reference date 2024-06-30)."""
    root = tmp_path_factory.mktemp("query-lake")
    session = isolated_lake_session(spark, f"file://{root}")
    write_silver(session, FIXTURE, "run-1", ["p1", "p2", "p3", "p4", "p5", "p6"])
    run_gold(session, str(root), "run-1", None, GoldSettings(3, date(2024, 6, 30)))
    # A merge-on-read table with a delete file: the runner must read it through PyIceberg.
    session.sql("CREATE NAMESPACE IF NOT EXISTS lake.scratch")
    session.sql(
        "CREATE TABLE lake.scratch.mor (k string, v int) USING iceberg TBLPROPERTIES "
        "('format-version'='2', 'write.delete.mode'='merge-on-read')"
    )
    session.sql("INSERT INTO lake.scratch.mor VALUES ('a', 1), ('b', 2), ('c', 3)")
    session.sql("DELETE FROM lake.scratch.mor WHERE k = 'b'")
    return root


EXPECTED: dict[str, list[dict[str, Any]]] = {
    # diabetic: p1, p2 (SNOMED, active), p4 (SNOMED, resolved), p3 (ICD-10 E11.9); p3's only
    # HbA1c was entered in error -> a care gap
    "latest_hba1c_diabetic_patients": [
        {"patient_key": "p1", "hba1c": 6.8, "unit": "%", "measured_at": "2024-06-20T09:00:00Z"},
        {"patient_key": "p2", "hba1c": 8.4, "unit": "%", "measured_at": "2024-06-15T08:30:00Z"},
        {"patient_key": "p3", "hba1c": None, "unit": None, "measured_at": None},
        {"patient_key": "p4", "hba1c": 6.3, "unit": "%", "measured_at": "2024-05-01T00:30:00Z"},
    ],
    # IMP: e7 in May; e2, e4 in June
    "monthly_admissions": [
        {"month": "2024-05-01", "admissions": 1},
        {"month": "2024-06-01", "admissions": 2},
    ],
    # hypertension (2) and E11.9 (1) are suppressed at threshold 3
    "top_conditions": [
        {"code_system": SCT, "code": "44054006", "code_display": "Type 2 diabetes mellitus", "patient_count": 3},
    ],
    # newest vital: obs-15 on 2024-06-29 -> readings after 2024-05-30; SBP 165 on 05-01 is older,
    # obs-20 (80/min) has no patient and is normal anyway
    "abnormal_vitals_last_30_days": [
        {"patient_key": "p1", "code": "8480-6", "code_display": "Systolic blood pressure", "value_quantity": 150.0, "value_unit": "mm[Hg]", "effective_at": "2024-06-20T09:05:00Z"},
        {"patient_key": "p2", "code": "8867-4", "code_display": "Heart rate", "value_quantity": 110.0, "value_unit": "/min", "effective_at": "2024-06-28T10:00:00Z"},
        {"patient_key": "p5", "code": "8310-5", "code_display": "Body temperature", "value_quantity": 38.4, "value_unit": "Cel", "effective_at": "2024-06-29T23:30:00Z"},
    ],
    "active_medications_per_patient": [
        {"patient_key": "p1", "active_medications": 2},
        {"patient_key": "p2", "active_medications": 1},
        {"patient_key": "p5", "active_medications": 1},
    ],
    # p6 13 other; p2 33 and p4 24 male; p1 44 female; p5 74 no sex; p3 no birth date
    "patients_by_age_band_and_sex": [
        {"age_band": "0-17", "sex": "other", "patients": 1},
        {"age_band": "18-39", "sex": "male", "patients": 2},
        {"age_band": "40-64", "sex": "female", "patients": 1},
        {"age_band": "65+", "sex": "unknown", "patients": 1},
        {"age_band": "unknown", "sex": "female", "patients": 1},
    ],
    # newest day 2024-06-29 -> days after 2024-05-30 (SBP on 05-01 left out)
    "vital_sign_daily_stats_last_30_days": [
        {"code": "8310-5", "code_display": "Body temperature", "value_unit": "Cel", "day": "2024-06-29", "value_count": 1, "p50_value": 38.4, "p95_value": 38.4},
        {"code": "8480-6", "code_display": "Systolic blood pressure", "value_unit": "mm[Hg]", "day": "2024-06-15", "value_count": 1, "p50_value": 120.0, "p95_value": 120.0},
        {"code": "8480-6", "code_display": "Systolic blood pressure", "value_unit": "mm[Hg]", "day": "2024-06-20", "value_count": 1, "p50_value": 150.0, "p95_value": 150.0},
        {"code": "8867-4", "code_display": "Heart rate", "value_unit": "/min", "day": "2024-06-20", "value_count": 1, "p50_value": 72.0, "p95_value": 72.0},
        {"code": "8867-4", "code_display": "Heart rate", "value_unit": "/min", "day": "2024-06-28", "value_count": 4, "p50_value": 87.5, "p95_value": pytest.approx(107.75)},
    ],
}  # fmt: skip


def test_every_named_query_has_expected_rows() -> None:
    assert set(EXPECTED) == set(QUERIES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_query_returns_the_expected_rows(lake: Path, name: str) -> None:
    assert rows_as_json(run_sql(lake, QUERIES[name].sql)) == EXPECTED[name]


def test_cli_prints_json_and_tables(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lake", f"file://{lake}", "--named", "monthly_admissions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED["monthly_admissions"]
    assert main(["--lake", str(lake), "SELECT count(*) AS n FROM gold.patient_summary"]) == 0
    assert capsys.readouterr().out == "n\n-\n6\n(1 row)\n"
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in QUERIES)


def test_cli_errors_name_the_problem(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lake", str(lake), "SELECT * FROM gold.no_such_table"]) == 2
    err = capsys.readouterr().err
    assert "unknown table(s) gold.no_such_table" in err and "gold.patient_summary" in err
    assert main(["--lake", str(lake), "--named", "nope"]) == 2
    assert "no named query 'nope'" in capsys.readouterr().err
    assert main(["--lake", str(lake), "SELECT nonsense FROM gold.patient_summary"]) == 2
    assert "query failed" in capsys.readouterr().err
    assert main(["--lake", str(lake / "missing"), "SELECT 1"]) == 2
    assert "no Iceberg catalog" in capsys.readouterr().err


def test_runner_reads_parquet_directly_unless_iceberg_must_merge_deletes(lake: Path) -> None:
    con = connect(lake, set())
    from fhir_lakehouse.local_query import catalog_tables

    tables = catalog_tables(lake)
    gold = register_table(con, "gold", "latest_observation", tables[("gold", "latest_observation")])
    assert gold.mode == "parquet" and gold.files > 1
    mor = register_table(con, "scratch", "mor", tables[("scratch", "mor")])
    assert mor.mode == "arrow"
    assert con.sql("SELECT k FROM scratch.mor ORDER BY k").fetchall() == [("a",), ("c",)]


def test_query_reads_only_the_tables_it_names(lake: Path) -> None:
    with pytest.raises(QueryError, match="silver.nope"):
        run_sql(lake, "SELECT 1 FROM silver.nope")
    # silver views are queryable too
    rows = rows_as_json(run_sql(lake, "SELECT count(*) AS n FROM silver.observation"))
    assert rows == [{"n": len(FIXTURE["observation"])}]


def test_queries_folder_and_silver_inputs_are_the_repository_ones() -> None:
    assert QUERIES_DIR.name == "queries" and QUERIES_DIR.parent.name == "analytics"
    assert set(SILVER_INPUTS) <= VIEWS  # gold reads only views that spark-jobs/views defines
