"""The README's gold tables and named queries are generated from gold_tables.py and the query
folder, and must be current."""

from __future__ import annotations

import pytest

from fhir_lakehouse.gold_dictionary import END, REGENERATE, START, render, replace_section
from fhir_lakehouse.gold_tables import GOLD_TABLES
from fhir_lakehouse.named_queries import load_named_queries
from fhir_lakehouse.readme_sections import README


def test_readme_gold_section_is_current() -> None:
    current = README.read_text(encoding="utf-8")
    assert replace_section(current, render()) == current, (
        f"README.md gold tables section is stale: run {REGENERATE}"
    )


def test_section_has_every_table_column_and_named_query() -> None:
    section = render()
    for table in GOLD_TABLES:
        assert f"### `gold.{table.name}`" in section
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in section
    assert "- grain: one row per `patient_key`, `code_system`, `code`" in section
    for name in load_named_queries():
        assert f"| `{name}` |" in section


def test_replace_section_keeps_the_rest_and_needs_markers() -> None:
    text = f"intro\n{START}\nold\n{END}\noutro\n"
    assert replace_section(text, "new\n") == f"intro\n{START}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers", "x")
