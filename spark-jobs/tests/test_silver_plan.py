"""Pure parts of the silver job: manifest parsing, partition glob, schema evolution, SQL text."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from fhir_lakehouse.bench_silver import sample_every
from fhir_lakehouse.silver_bronze import parse_manifest, run_partition_glob, scope_key
from fhir_lakehouse.silver_job import files_by_type, settings_from_json
from fhir_lakehouse.silver_merge import older_sql, resources_merge_sql, view_refresh_sql
from fhir_lakehouse.silver_tables import SchemaEvolutionError, plan_schema_evolution, view_layout
from fhir_lakehouse.silver_views import resource_key_column


def test_manifest_in_the_extractors_shape() -> None:
    m = parse_manifest(
        {
            "runId": "r1",
            "mode": "bulk",
            "complete": True,
            "scope": {"groups": ["gB", "gA"], "types": ["Patient"]},
            "deleted": [{"resourceType": "Patient", "id": "x"}],
            "resources": {"Patient": 3},
            "rejects": {"total": 2, "byType": {"Patient": 1, "Observation": 0}, "untyped": 1},
            "files": [
                "resource_type=Patient/ingest_date=2025-01-01/run_id=r1/part-00000.parquet",
                "_rejects/run_id=r1/part-00000.parquet",
            ],
        },
        "r1",
    )
    assert m.complete and m.scope == "gA,gB" and m.types == ("Patient",)
    assert m.deleted[0].resource_type == "Patient" and m.deleted[0].id == "x"
    assert m.part_files == (
        "resource_type=Patient/ingest_date=2025-01-01/run_id=r1/part-00000.parquet",
    )
    assert m.rejects_by_type == {"Patient": 1, "": 1}


def test_manifest_of_another_run_or_odd_complete_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'r2'"):
        parse_manifest({"runId": "r1"}, "r2")
    with pytest.raises(ValueError, match="boolean"):
        parse_manifest({"runId": "r1", "complete": "true"}, "r1")


def test_deleted_entries_in_bulk_request_form() -> None:
    m = parse_manifest({"deleted": ["Observation/o1", {"request": {"url": "Patient/p9"}}]}, "r")
    assert [(d.resource_type, d.id) for d in m.deleted] == [
        ("Observation", "o1"),
        ("Patient", "p9"),
    ]


def test_scope_key_and_partition_glob() -> None:
    assert scope_key([]) == "*" and scope_key(["b", "a", "b"]) == "a,b"
    assert run_partition_glob("s3://b/bronze/", "run[1]") == (
        "s3://b/bronze/resource_type=*/ingest_date=*/run_id=run\\[1\\]"
    )


def test_schema_evolution_adds_and_widens_but_refuses_rewrites() -> None:
    old = T.StructType([T.StructField("id", T.StringType()), T.StructField("n", T.IntegerType())])
    new = T.StructType(
        [
            T.StructField("id", T.StringType()),
            T.StructField("n", T.LongType()),
            T.StructField("x", T.DateType()),
        ]
    )
    assert plan_schema_evolution("v", old, new) == [
        "ALTER TABLE lake.silver.v ALTER COLUMN `n` TYPE bigint",
        "ALTER TABLE lake.silver.v ADD COLUMN `x` date",
    ]
    assert plan_schema_evolution("v", new, old) == []  # a dropped column stays; narrower is cast
    with pytest.raises(SchemaEvolutionError, match="from int to string"):
        plan_schema_evolution("v", old, T.StructType([T.StructField("n", T.StringType())]))


def test_layouts() -> None:
    obs = view_layout("observation", {"id", "patient_key", "effective_at"})
    assert obs.partition_by == "months(effective_at)"
    assert obs.properties["write.parquet.bloom-filter-enabled.column.patient_key"] == "true"
    assert obs.properties["write.parquet.compression-codec"] == "zstd"
    assert obs.properties["write.merge.mode"] == "merge-on-read"
    assert view_layout("condition", {"id", "patient_key"}).partition_by is None


def test_resource_key_column() -> None:
    top = {"select": [{"column": [{"name": "id", "path": "getResourceKey()"}]}]}
    nested = {"select": [{"forEach": "name", "column": [{"name": "id", "path": "id"}]}]}
    assert resource_key_column(top) == "id" and resource_key_column(nested) == "_resource_id"


def test_sql_text() -> None:
    assert "try_cast(s.version_id AS BIGINT) < try_cast(t.version_id AS BIGINT)" in older_sql(
        "s", "t"
    )
    merge = resources_merge_sql(
        "lake.silver.resources", "src", ["id", "resource"], ["Patient", "O'Neil"]
    )
    assert "t.resource_type IN ('O\\'Neil', 'Patient')" in merge
    assert "WHEN MATCHED AND s._op = 'delete' THEN DELETE" in merge
    refresh = view_refresh_sql("lake.silver.patient", "src", "id", ["id", "gender"])
    assert "ON t.`id` = s.`id` AND s._op = 'delete'" in refresh
    assert "INSERT (`id`, `gender`) VALUES (s.`id`, s.`gender`)" in refresh


def test_settings_json_forms(tmp_path: object) -> None:
    local = {"driverMemory": "1g", "shufflePartitions": 2}
    assert (
        settings_from_json(
            '{"processing": {"localSpark": {"driverMemory": "1g", "shufflePartitions": 2}}}'
        )
        == local
    )
    assert settings_from_json('{"driverMemory": "1g", "shufflePartitions": 2}') == local


def test_files_by_type_from_the_partition_directories() -> None:
    paths = [
        "file:///b/resource_type=Patient/ingest_date=2025-01-01/run_id=r/part-0.parquet",
        "file:///b/resource_type=Observation/ingest_date=2025-01-01/run_id=r/part-0.parquet",
        "file:///b/resource_type=Observation/ingest_date=2025-01-01/run_id=r/part-1.parquet",
        "file:///b/resource_type=Patient/ingest_date=2025-01-01/run_id=r",  # a partition dir
    ]
    by_type = files_by_type(paths)
    assert by_type is not None and sorted(by_type) == ["Observation", "Patient"]
    assert len(by_type["Observation"]) == 2 and len(by_type["Patient"]) == 2
    # A path outside the layout: the types are only known from the data.
    assert files_by_type([*paths, "file:///elsewhere/part-9.parquet"]) is None


def test_naive_sample_size() -> None:
    assert sample_every(50_000) == 1  # small runs: the naive way reads everything
    every = sample_every(1_023_321)
    assert every > 1 and 1_023_321 / every >= 100_000 * 1.04
