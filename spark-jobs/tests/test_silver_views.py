"""View tables of the silver job: refreshed only for changed resources, schema evolution, bad views."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_bronze import observation, patient, write_bronze_run
from pyspark.sql import SparkSession

from fhir_lakehouse import silver_views
from fhir_lakehouse.silver_job import run_silver
from fhir_lakehouse.silver_tables import CATALOG, NAMESPACE
from fhir_lakehouse.views import ViewDefinitionError

DEFAULT_VIEWS = Path(__file__).resolve().parents[1] / "views"
OBS = f"{CATALOG}.{NAMESPACE}.observation"
PAT = f"{CATALOG}.{NAMESPACE}.patient"


def drop_silver(spark: SparkSession) -> None:
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.{NAMESPACE}")
    for t in spark.sql(f"SHOW TABLES IN {CATALOG}.{NAMESPACE}").collect():
        spark.sql(f"DROP TABLE IF EXISTS {CATALOG}.{NAMESPACE}.{t['tableName']} PURGE")


@pytest.fixture
def lake(spark: SparkSession, tmp_path: Path) -> Iterator[Path]:
    drop_silver(spark)
    yield tmp_path
    drop_silver(spark)


@pytest.fixture
def views(tmp_path: Path) -> Path:
    """The default patient and observation views (enough to exercise both kinds of table)."""
    d = tmp_path / "views"
    d.mkdir()
    for name in ("patient", "observation"):
        shutil.copy(DEFAULT_VIEWS / f"{name}.json", d / f"{name}.json")
    return d


def rows(spark: SparkSession, table: str) -> dict[str, dict[str, object]]:
    return {r["id"]: r.asDict() for r in spark.table(table).collect()}


def files(spark: SparkSession, table: str) -> set[str]:
    return {r[0] for r in spark.sql(f"SELECT file_path FROM {table}.files").collect()}


def snapshot_ids(spark: SparkSession, table: str) -> list[int]:
    return [r[0] for r in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()]


def test_views_are_built_then_refreshed_only_for_changed_resources(
    spark: SparkSession, lake: Path, views: Path
) -> None:
    first = [
        patient("p1"),
        patient("p2", family="Roe"),
        observation("o1", "p1"),
        observation("o2", "p2"),
    ]
    write_bronze_run(
        lake, "r1", first, complete=True, groups=["g"], types=["Patient", "Observation"]
    )
    result = run_silver(spark, f"file://{lake}", "r1", views)
    assert (
        result.views["observation"].rows_written == 2 and result.views["patient"].rows_written == 2
    )
    obs = rows(spark, OBS)
    assert obs["o1"]["patient_key"] == "p1" and obs["o1"]["value_quantity"] == 5.0
    assert obs["o1"]["_run_id"] == "r1" and len(obs["o1"]["_content_hash"]) == 64
    assert {"_run_id", "_content_hash", "_last_updated"} <= set(spark.table(PAT).columns)
    assert "_resource_id" not in spark.table(OBS).columns  # `id` is the resource key

    # Same run again: no new snapshot in any view table.
    snaps = {t: snapshot_ids(spark, t) for t in (OBS, PAT)}
    run_silver(spark, f"file://{lake}", "r1", views)
    assert {t: snapshot_ids(spark, t) for t in (OBS, PAT)} == snaps

    # o1 changes, o2 is gone from the snapshot, patients unchanged.
    obs_files = files(spark, OBS)
    write_bronze_run(
        lake,
        "r2",
        [patient("p1"), patient("p2", family="Roe"), observation("o1", "p1", value=6.5)],
        complete=True,
        groups=["g"],
        types=["Patient", "Observation"],
        ingest_date="2025-01-16",
    )
    result = run_silver(spark, f"file://{lake}", "r2", views)
    assert result.views["observation"].rows_written == 1
    assert result.views["patient"].rows_written == 0
    assert snapshot_ids(spark, PAT) == snaps[PAT]  # no patient changed: table untouched
    obs = rows(spark, OBS)
    assert (
        set(obs) == {"o1"} and obs["o1"]["value_quantity"] == 6.5 and obs["o1"]["_run_id"] == "r2"
    )
    assert obs_files <= files(spark, OBS)  # merge-on-read: old data files kept, deletes on top


def test_a_new_view_column_evolves_the_schema_without_rewriting_data(
    spark: SparkSession, lake: Path, views: Path
) -> None:
    write_bronze_run(lake, "r1", [patient("p1"), patient("p2")])
    run_silver(spark, f"file://{lake}", "r1", views)
    old_files = files(spark, PAT)
    view = json.loads((views / "patient.json").read_text())
    view["select"][0]["column"].append(
        {"name": "family_upper", "path": "name.first().family.upper()", "type": "string"}
    )
    (views / "patient.json").write_text(json.dumps(view))
    write_bronze_run(
        lake, "r2", [patient("p1", family="Newname"), patient("p2")], ingest_date="2025-01-16"
    )
    result = run_silver(spark, f"file://{lake}", "r2", views)
    assert "family_upper" in spark.table(PAT).columns
    assert result.views["patient"].rows_written == 1
    assert old_files <= files(spark, PAT)  # the old data files are still the table's
    pats = rows(spark, PAT)
    assert pats["p1"]["family_upper"] == "NEWNAME"
    assert pats["p2"]["family_upper"] is None  # unchanged resource: old row kept, not rewritten


def test_an_invalid_view_fails_before_any_data_is_touched(
    spark: SparkSession, lake: Path, views: Path
) -> None:
    write_bronze_run(lake, "r1", [patient("p1")])
    (views / "broken.json").write_text(
        json.dumps(
            {
                "resourceType": "ViewDefinition",
                "name": "broken",
                "resource": "Patient",
                "select": [{"column": [{"name": "x", "path": "name.where(("}]}],
            }
        )
    )
    with pytest.raises(ViewDefinitionError) as err:
        run_silver(spark, f"file://{lake}", "r1", views)
    assert "broken.json" in str(err.value) and "$.select[0].column[0]" in str(err.value)
    assert spark.sql(f"SHOW TABLES IN {CATALOG}.{NAMESPACE}").count() == 0


def test_a_resource_the_views_cannot_read_is_rejected(
    spark: SparkSession, lake: Path, views: Path
) -> None:
    odd = observation("o-odd", "p1")
    odd["code"] = "not-a-codeable-concept"
    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1"), odd])
    result = run_silver(spark, f"file://{lake}", "r1", views)
    assert result.views["observation"].rejected == 1
    assert set(rows(spark, OBS)) == {"o1"}
    reasons = {
        r["id"]: r["reason"] for r in spark.table(f"{CATALOG}.{NAMESPACE}.rejects").collect()
    }
    assert reasons["o-odd"].startswith("views: ")


def test_views_interrupted_in_one_run_are_finished_by_the_next(
    spark: SparkSession, lake: Path, views: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bronze_run(lake, "r1", [patient("p1"), observation("o1", "p1")])
    run_silver(spark, f"file://{lake}", "r1", views)
    write_bronze_run(
        lake, "r2", [patient("p1"), observation("o1", "p1", value=8.0)], ingest_date="2025-01-16"
    )
    real = silver_views.refresh_views

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash during the view refresh")

    monkeypatch.setattr(silver_views, "refresh_views", crash)
    with pytest.raises(RuntimeError):
        run_silver(spark, f"file://{lake}", "r2", views)
    monkeypatch.setattr(silver_views, "refresh_views", real)
    assert rows(spark, OBS)["o1"]["value_quantity"] == 5.0  # resources moved on, the view did not
    write_bronze_run(lake, "r3", [patient("p1")], ingest_date="2025-01-17")
    result = run_silver(spark, f"file://{lake}", "r3", views)
    assert result.recovered_runs == ["r2"]
    assert rows(spark, OBS)["o1"]["value_quantity"] == 8.0
