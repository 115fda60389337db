"""The official SQL-on-FHIR v2 test suite (../shared/sql-on-fhir-v2/tests), one pytest test per case.

Every `shareable` case must pass. A case with another tag must either pass or be listed, with its
reason, in sof_known_gaps.json: a listed gap that starts passing fails too, so the list stays
exact. `--sof-report PATH` writes the results in the official report format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fhir_lakehouse.views import ViewDefinitionError, compile_views, validate_view

REPO_ROOT = Path(__file__).resolve().parents[2]
GAPS_FILE = Path(__file__).with_name("sof_known_gaps.json")


def suite_dir() -> Path:
    """The suite's tests directory: $FHIR_SOF_TESTS_DIR, else ../shared/sql-on-fhir-v2/tests."""
    override = os.environ.get("FHIR_SOF_TESTS_DIR")
    base = Path(override) if override else REPO_ROOT.parent / "shared" / "sql-on-fhir-v2"
    return base / "tests" if (base / "tests").is_dir() else base


def load_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(test id, file content, case) for every case of the suite."""
    directory = suite_dir()
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    cases = []
    for file in files:
        content = json.loads(file.read_text(encoding="utf-8"))
        content["_file"] = file.name
        for case in content["tests"]:
            cases.append((f"{file.stem}::{case['title']}", content, case))
    return cases


CASES = load_cases()
KNOWN_GAPS: dict[str, str] = json.loads(GAPS_FILE.read_text(encoding="utf-8"))


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 9) + 0.0
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return str(value)


def _row_key(row: dict[str, Any]) -> str:
    return json.dumps(_canonical(row), sort_keys=True)


def resource_frame(spark: SparkSession, resources: list[dict[str, Any]]) -> DataFrame:
    """A bronze-like frame (resource_type, resource JSON text) of a case's resources.

    Built from literals so it lives in the JVM: a frame made by createDataFrame from Python rows
    would start Python workers for every case, which costs about a second each.
    """
    rows = [
        F.struct(
            F.lit(r.get("resourceType")).alias("resource_type"),
            F.lit(json.dumps(r)).alias("resource"),
        )
        for r in resources
    ]
    if not rows:
        return spark.range(0).select(
            F.lit(None).cast("string").alias("resource_type"),
            F.lit(None).cast("string").alias("resource"),
        )
    return spark.range(0, 1, 1, numPartitions=1).select(F.inline(F.array(*rows)))


def run_case(
    spark: SparkSession, content: dict[str, Any], case: dict[str, Any]
) -> tuple[bool, str | None]:
    """Runs one case; (passed, error message)."""
    source = f"{content['_file']}::{case['title']}"
    try:
        view = validate_view(case["view"], source)
    except ViewDefinitionError as exc:
        if case.get("expectError"):
            return True, None
        return False, f"unexpected validation error: {exc}"
    if case.get("expectError"):
        return False, "expected an error, but the view was accepted"
    resources = content.get("resources", [])
    df = resource_frame(spark, resources).where(F.col("resource_type") == view.resource)
    frame = compile_views([view], df, typed=False).tables[view.name]
    columns = frame.columns
    rows = [row.asDict(recursive=True) for row in frame.collect()]
    expected_columns = case.get("expectColumns")
    if expected_columns is not None and columns != expected_columns:
        return False, f"expected columns {expected_columns}, got {columns}"
    expected = case.get("expect", [])
    for row in expected:
        if set(row) != set(columns):
            return False, f"expected columns {sorted(row)}, got {sorted(columns)}"
    got = sorted(_row_key(r) for r in rows)
    want = sorted(_row_key(r) for r in expected)
    if got != want:
        return False, f"rows differ: expected {want}, got {got}"
    return True, None


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Collects results; writes the official report at the end when --sof-report is given."""
    results: dict[str, list[dict[str, Any]]] = {}
    yield results
    path = request.config.getoption("--sof-report")
    if path:
        ordered = {file: {"tests": entries} for file, entries in sorted(results.items())}
        Path(path).write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")


def test_suite_is_present() -> None:
    directory = suite_dir()
    assert CASES, (
        f"SQL-on-FHIR v2 test suite not found in {directory}: put the suite at "
        "../shared/sql-on-fhir-v2/tests beside the repository or set FHIR_SOF_TESTS_DIR"
    )


def test_known_gaps_are_not_shareable() -> None:
    shareable = {cid for cid, _, case in CASES if "shareable" in case.get("tags", [])}
    assert not shareable & KNOWN_GAPS.keys(), "shareable cases may not be listed as known gaps"
    assert KNOWN_GAPS.keys() <= {cid for cid, _, _ in CASES}, (
        "known gaps name cases that do not exist"
    )


@pytest.mark.parametrize(("case_id", "content", "case"), CASES, ids=[c[0] for c in CASES])
def test_case(
    spark: SparkSession,
    report: dict[str, list[dict[str, Any]]],
    case_id: str,
    content: dict[str, Any],
    case: dict[str, Any],
) -> None:
    try:
        passed, error = run_case(spark, content, case)
    except Exception as exc:  # a crash is a failed case, reported like the others
        passed, error = (
            False,
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        )
    result: dict[str, Any] = {"passed": passed}
    if error:
        result["error"] = error[:2000]
    report.setdefault(content["_file"], []).append({"name": case["title"], "result": result})
    if "shareable" in case.get("tags", []):
        assert passed, error
    elif passed:
        assert case_id not in KNOWN_GAPS, (
            f"{case_id} now passes: remove it from sof_known_gaps.json"
        )
    else:
        assert case_id in KNOWN_GAPS, f"{case_id} fails and is not a recorded gap: {error}"


def test_report_matches_schema(
    request: pytest.FixtureRequest, report: dict[str, list[dict[str, Any]]]
) -> None:
    """Runs after the cases: the report holds every case that ran, in the official format."""
    ran = [item for item in request.session.items if item.name.startswith("test_case[")]
    assert sum(len(entries) for entries in report.values()) == len(ran)
    document = {file: {"tests": entries} for file, entries in report.items()}
    schema_file = suite_dir().parent / "test-report.schema.json"
    assert schema_file.is_file(), f"{schema_file} is missing"
    jsonschema.validate(document, json.loads(schema_file.read_text(encoding="utf-8")))
