"""Shared pytest fixtures: one real local SparkSession (with Iceberg) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from fhir_lakehouse.spark_session import local_session


@pytest.fixture(scope="session")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake directory (file://) shared by the tests of one pytest run."""
    return tmp_path_factory.mktemp("lake")


@pytest.fixture(scope="session")
def spark(lake_root: Path) -> Iterator[SparkSession]:
    """A real local SparkSession with the Iceberg SQLite catalog under `lake_root`."""
    session = local_session(f"file://{lake_root}", app_name="pytest")
    yield session
    session.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--sof-report PATH`: tests/test_sof_suite.py writes the official SQL-on-FHIR v2 report there."""
    parser.addoption(
        "--sof-report",
        action="store",
        default=None,
        help="write the SQL-on-FHIR v2 test report (test-report.schema.json format) to this path",
    )
