"""ViewDefinition validation: every problem is found before any data is touched, and named by
file, JSON path inside the view and what is wrong. No Spark needed (the compiler runs dry)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import types as T

from fhir_lakehouse.views import (
    ViewDefinitionError,
    derive_schema,
    load_view,
    load_views,
    validate_view,
)

VIEWS_DIR = Path(__file__).resolve().parents[1] / "views"


def view(*columns: dict[str, Any], resource: str = "Patient", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ViewDefinition",
        "name": "v",
        "resource": resource,
        "select": [{"column": list(columns)}],
        **extra,
    }


def col(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "path": path, **extra}


def error_of(obj: Any) -> ViewDefinitionError:
    with pytest.raises(ViewDefinitionError) as info:
        validate_view(obj, "views/v.json")
    return info.value


@pytest.mark.parametrize(
    ("obj", "json_path", "problem"),
    [
        ({}, "$.resource", "is required"),
        (
            {"resource": "Patientt", "select": [{"column": [col("id", "id")]}]},
            "$.resource",
            "not a FHIR R4 resource type",
        ),
        ({"resource": "Patient"}, "$.select", "is required"),
        (
            view(col("x", "name.given.frobnicate()")),
            "$.select[0].column[0].path",
            "unknown or unsupported FHIRPath function frobnicate()",
        ),
        (
            view(col("x", "name.familyy")),
            "$.select[0].column[0].path",
            "unknown element 'familyy' on HumanName",
        ),
        (
            view(col("x", "name.family..x")),
            "$.select[0].column[0].path",
            "expected an identifier at position 12",
        ),
        (
            view(col("id", "id"), col("id", "gender")),
            "$.select[0].column[1]",
            "column name 'id' is used more than once",
        ),
        (view(col("bad name", "id")), "$.select[0].column[0].name", "not a valid column name"),
        (
            view(col("x", "name.family", collection=False)),
            "$.select[0].column[0].path",
            "'collection' is false",
        ),
        (
            view(col("x", "value"), resource="Observation"),
            "$.select[0].column[0].path",
            "choice element",
        ),
        (
            view(col("x", "code"), resource="Observation"),
            "$.select[0].column[0].path",
            "CodeableConcept values",
        ),
        (view(col("x", "%nope")), "$.select[0].column[0].path", "undefined constant %nope"),
        (
            view(col("x", "id"), where=[{"path": "name.family"}]),
            "$.where[0].path",
            "must be boolean",
        ),
        (
            view(col("x", "id"), constant=[{"name": "c"}]),
            "$.constant[0]",
            "needs exactly one value[x]",
        ),
        (
            view(col("x", "id", type="strng")),
            "$.select[0].column[0].type",
            "unknown FHIR type 'strng'",
        ),
        (
            view(col("x", "subject.getReferenceKey()"), resource="Patient"),
            "$.select[0].column[0].path",
            "unknown element 'subject'",
        ),
        (
            view(col("x", "gender.getReferenceKey()")),
            "$.select[0].column[0].path",
            "needs a Reference",
        ),
        (
            {
                "resource": "Patient",
                "select": [
                    {"unionAll": [{"column": [col("a", "id")]}, {"column": [col("b", "id")]}]}
                ],
            },
            "$.select[0].unionAll[1]",
            "same columns in the same order",
        ),
        (
            {"resource": "Patient", "select": [{"forEach": 1, "column": [col("a", "id")]}]},
            "$.select[0].forEach",
            "must be a FHIRPath string",
        ),
        (
            {"resource": "Patient", "select": [{"forEach": "name"}]},
            "$.select[0]",
            "needs at least one column, select or unionAll",
        ),
    ],
)
def test_invalid_views_are_rejected_with_file_path_and_problem(
    obj: Any, json_path: str, problem: str
) -> None:
    err = error_of(obj)
    assert err.source_file == "views/v.json"
    assert err.json_path == json_path
    assert problem in err.problem
    assert str(err).startswith(f"views/v.json: {json_path}: ")


def test_load_view_names_the_file_for_bad_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resource": "Patient",', encoding="utf-8")
    with pytest.raises(ViewDefinitionError) as info:
        load_view(broken)
    assert info.value.source_file == str(broken) and "not valid JSON" in info.value.problem


def test_load_view_defaults_the_name_to_the_file_stem(tmp_path: Path) -> None:
    file = tmp_path / "my_view.json"
    file.write_text(
        json.dumps({"resource": "Patient", "select": [{"column": [col("id", "id")]}]}),
        encoding="utf-8",
    )
    assert load_view(file).name == "my_view"


def test_load_views_rejects_duplicate_view_names(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.json").write_text(json.dumps(view(col("id", "id"))), encoding="utf-8")
    with pytest.raises(ViewDefinitionError, match="view name 'v' is also used"):
        load_views(tmp_path)


def test_derive_schema_reads_only_what_the_views_use() -> None:
    obs = validate_view(
        view(
            col("v", "value.ofType(Quantity).value"),
            col("s", "value.ofType(string)"),
            resource="Observation",
        ),
        "a.json",
    )
    codes = validate_view(
        view(
            col("c", "code.coding.where(system = 'x').code.first()"),
            resource="Observation",
            name="w",
        ),
        "b.json",
    )
    schema = derive_schema([obs, codes])
    assert schema.simpleString() == (
        "struct<code:struct<coding:array<struct<code:string,system:string>>>,id:string,resourceType:string,"
        "valueQuantity:struct<value:string>,valueString:string>"
    )
    assert isinstance(schema["code"].dataType, T.StructType)
    with pytest.raises(ValueError, match="one resource type"):
        derive_schema([obs, validate_view(view(col("id", "id")), "c.json")])


def test_exists_on_an_object_reads_its_presence_only() -> None:
    v = validate_view(view(col("has_name", "name.exists()"), col("n", "name.count()")), "a.json")
    assert derive_schema([v])["name"].dataType.simpleString() == "array<struct<id:string>>"


def test_validation_needs_no_jvm() -> None:
    """The whole check runs dry: a fresh interpreter validates every default view without Spark."""
    code = (
        "from pyspark import SparkContext\n"
        "from fhir_lakehouse.views import load_views, derive_schema\n"
        f"views = load_views({str(VIEWS_DIR)!r})\n"
        "for v in views: derive_schema([v])\n"
        "assert SparkContext._active_spark_context is None\n"
        "print(len(views))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "9"
