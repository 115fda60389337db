"""Writes a small lake for the `fhir-pipeline query` CLI test: gold tables (the gold job's own
schemas, from fhir_lakehouse.gold_tables) with a few literal rows, committed with PyIceberg to an
Iceberg SQL catalog on SQLite at LAKE/catalog/iceberg.db, the layout a local run has. No JVM.

    spark-jobs/.venv/bin/python test/query/write_sample_lake.py LAKE_DIR
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
from fhir_lakehouse.gold_tables import TABLES_BY_NAME
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

ICEBERG = {
    "string": StringType(), "bigint": LongType(), "int": IntegerType(), "double": DoubleType(),
    "date": DateType(), "timestamp": TimestamptzType(), "boolean": BooleanType(),
}  # fmt: skip
ARROW = {
    "string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(),
    "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"), "boolean": pa.bool_(),
}  # fmt: skip
SCT = "http://snomed.info/sct"
ROWS = {
    "encounter_monthly": [
        (date(2024, 5, 1), "IMP", SCT, "32485007", "Hospital admission", 3, 3, "run-q"),
        (date(2024, 5, 1), "AMB", SCT, "185349003", "Encounter for check up", 5, 4, "run-q"),
        (date(2024, 6, 1), "ACUTE", SCT, "32485007", "Hospital admission", 2, 2, "run-q"),
    ],
    "patient_summary": [
        ("q1", "female", 51, date(2024, 6, 30), False, 4, 1, 2, date(2024, 1, 2), date(2024, 6, 1), "run-q"),
        ("q2", "male", 8, date(2024, 6, 30), False, 1, 0, 0, date(2024, 3, 3), date(2024, 3, 3), "run-q"),
    ],
}  # fmt: skip


def main(lake_dir: str) -> None:
    lake = Path(lake_dir)
    (lake / "catalog").mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        "lake",
        uri=f"sqlite:///{lake / 'catalog' / 'iceberg.db'}",
        warehouse=f"file://{lake / 'warehouse'}",
    )
    catalog.create_namespace_if_not_exists("gold")
    for name, rows in ROWS.items():
        cols = TABLES_BY_NAME[name].columns
        schema = Schema(
            *[
                NestedField(i + 1, c.name, ICEBERG[c.type], required=False)
                for i, c in enumerate(cols)
            ]
        )
        arrow_schema = pa.schema([pa.field(c.name, ARROW[c.type]) for c in cols])
        data = pa.Table.from_pylist(
            [dict(zip([c.name for c in cols], r, strict=True)) for r in rows],
            arrow_schema,
        )
        table = catalog.create_table(f"gold.{name}", schema=schema)
        table.append(data)


if __name__ == "__main__":
    main(sys.argv[1])
