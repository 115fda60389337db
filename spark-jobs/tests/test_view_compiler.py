"""Compiler behaviour on a real SparkSession: rejects, pass-through columns, one parse per row,
no Python in the plan, typing, references and repeat's depth limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fhir_lakehouse.views import compile_views, validate_view
from fhir_lakehouse.views.compiler import repeat_depth


def frame(spark: SparkSession, texts: list[str | None]) -> DataFrame:
    return spark.createDataFrame(
        [(t, f"h{i}", "run-9") for i, t in enumerate(texts)],
        "resource string, _content_hash string, _run_id string",
    )


PATIENT_VIEW = validate_view(
    {
        "name": "patient_names",
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()"},
                    {"name": "birth", "path": "birthDate", "type": "date"},
                ]
            },
            {
                "forEach": "name",
                "column": [
                    {"name": "family", "path": "family"},
                    {"name": "n", "path": "%rowIndex", "type": "integer"},
                ],
            },
        ],
    },
    "test",
)


def patient(pid: str, **fields: Any) -> str:
    return json.dumps({"resourceType": "Patient", "id": pid, **fields})


def test_rejects_carry_their_reason_and_the_run_goes_on(spark: SparkSession) -> None:
    texts = [
        patient("ok", name=[{"family": "A"}, {"family": "B"}], unknownElement={"deep": [1, 2]}),
        '{"resourceType": "Patient", "id": "cut',
        json.dumps({"resourceType": "Observation", "id": "o1"}),
        patient("bad-shape", name={"family": "not an array"}),
        "[1, 2, 3]",
        None,
    ]
    compiled = compile_views(
        [PATIENT_VIEW], frame(spark, texts), typed=True, passthrough=["_content_hash", "_run_id"]
    )
    rows = compiled.tables["patient_names"].collect()
    assert sorted((r["id"], r["family"], r["n"], r["_content_hash"]) for r in rows) == [
        ("ok", "A", 0, "h0"),
        ("ok", "B", 1, "h0"),
    ]
    rejects = {r["_content_hash"]: r["reason"] for r in compiled.rejects.collect()}
    assert rejects == {
        "h1": "not valid JSON, or not a FHIR resource object (no resourceType)",
        "h2": "resourceType Observation is not Patient",
        "h3": "JSON objects or arrays do not have the FHIR R4 shape in an element the views read",
        "h4": "not valid JSON, or not a FHIR resource object (no resourceType)",
        "h5": "resource JSON is null",
    }
    assert set(compiled.rejects.columns) == {"_content_hash", "_run_id", "resource", "reason"}


def test_json_is_parsed_once_and_no_python_runs(spark: SparkSession) -> None:
    compiled = compile_views(
        [PATIENT_VIEW], frame(spark, [patient("p", name=[{"family": "A"}])]), typed=True
    )
    table = compiled.tables["patient_names"]
    optimized = table._jdf.queryExecution().optimizedPlan().toString()
    assert optimized.count("from_json(") == 1
    physical = table._jdf.queryExecution().executedPlan().toString()
    for python_node in (
        "BatchEvalPython",
        "ArrowEvalPython",
        "PythonUDF",
        "MapInPandas",
        "FlatMapGroupsInPandas",
    ):
        assert python_node not in physical


def test_typed_and_untyped_columns(spark: SparkSession) -> None:
    df = frame(spark, [patient("p", birthDate="1970-06", name=[{"family": "A"}])])
    typed = compile_views([PATIENT_VIEW], df, typed=True).tables["patient_names"]
    raw = compile_views([PATIENT_VIEW], df, typed=False).tables["patient_names"]
    assert (
        typed.schema["birth"].dataType == T.DateType()
        and raw.schema["birth"].dataType == T.StringType()
    )
    assert typed.schema["n"].dataType == T.IntegerType()
    assert str(typed.first()["birth"]) == "1970-06-01" and raw.first()["birth"] == "1970-06"


def test_passthrough_clash_is_refused(spark: SparkSession) -> None:
    df = frame(spark, [patient("p")]).withColumnRenamed("_run_id", "family")
    with pytest.raises(ValueError, match="clash"):
        compile_views([PATIENT_VIEW], df, typed=True, passthrough=["family"])


def test_reference_keys(spark: SparkSession) -> None:
    view = validate_view(
        {
            "name": "refs",
            "resource": "Observation",
            "select": [
                {
                    "column": [
                        {"name": "id", "path": "id"},
                        {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                    ]
                },
                {"column": [{"name": "any", "path": "subject.getReferenceKey()"}]},
            ],
        },
        "test",
    )
    refs = {
        "rel": "Patient/abc",
        "abs": "https://fhir.example.org/api/FHIR/R4/Patient/e63wRTbPfr1p8UW81d8Seiw3",
        "hist": "Patient/abc/_history/3",
        "group": "Group/g1",
        "contained": "#med1",
    }
    texts = [
        json.dumps({"resourceType": "Observation", "id": k, "subject": {"reference": v}})
        for k, v in refs.items()
    ]
    rows = {
        r["id"]: (r["patient"], r["any"])
        for r in compile_views([view], frame(spark, texts), typed=False).tables["refs"].collect()
    }
    assert rows == {
        "rel": ("abc", "abc"),
        "abs": ("e63wRTbPfr1p8UW81d8Seiw3", "e63wRTbPfr1p8UW81d8Seiw3"),
        "hist": ("abc", "abc"),
        "group": (None, "g1"),
        "contained": (None, None),
    }


def test_repeat_visits_items_to_its_depth_limit(spark: SparkSession) -> None:
    depth = repeat_depth(1)
    item: dict[str, Any] = {"linkId": str(depth + 2)}
    for level in range(depth + 1, 0, -1):
        item = {"linkId": str(level), "item": [item]}
    qr = json.dumps(
        {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed", "item": [item]}
    )
    view = validate_view(
        {
            "name": "items",
            "resource": "QuestionnaireResponse",
            "select": [{"repeat": ["item"], "column": [{"name": "link", "path": "linkId"}]}],
        },
        "test",
    )
    links = [
        r["link"]
        for r in compile_views([view], frame(spark, [qr]), typed=False).tables["items"].collect()
    ]
    assert sorted(links, key=int) == [str(i) for i in range(1, depth + 1)]
