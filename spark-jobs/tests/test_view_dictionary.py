"""The README's silver data dictionary is generated from the views and must be current."""

from __future__ import annotations

import pytest

from fhir_lakehouse.readme_sections import README
from fhir_lakehouse.views.dictionary import END, REGENERATE, START, render, replace_section


def test_readme_data_dictionary_is_current() -> None:
    current = README.read_text(encoding="utf-8")
    assert replace_section(current, render()) == current, (
        f"README.md data dictionary is stale: run {REGENERATE}"
    )


def test_dictionary_lists_every_column_with_its_type_and_path() -> None:
    section = render()
    assert "### `silver.observation` (Observation)" in section
    assert "| `value_quantity` | double | decimal | `value.ofType(Quantity).value` |" in section
    assert "| `birth_date` | date | date | `birthDate` |" in section
    assert (
        "| `effective_at` | timestamp | dateTime | `(effective.ofType(dateTime) \\| effective.ofType(Period).start).first()` |"
        in section
    )


def test_replace_section_keeps_the_rest_and_needs_markers() -> None:
    text = f"intro\n{START}\nold\n{END}\noutro\n"
    assert replace_section(text, "new\n") == f"intro\n{START}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers", "x")
