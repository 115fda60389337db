"""The README's silver data dictionary, generated from the ViewDefinitions (never written twice).

spark-jobs/.venv/bin/python -m fhir_lakehouse.views.dictionary          # print the section
spark-jobs/.venv/bin/python -m fhir_lakehouse.views.dictionary --write  # update README.md
spark-jobs/.venv/bin/python -m fhir_lakehouse.views.dictionary --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..readme_sections import README, GeneratedSection, cell
from .compiler import REPEAT_MAX_DEPTH, compile_view
from .definition import ViewDefinition
from .dry import DRY_FUNCTIONS
from .frames import typed_type
from .validation import load_views

VIEWS_DIR = README.parent / "spark-jobs" / "views"
SECTION = GeneratedSection(
    "data-dictionary", "silver data dictionary", "fhir_lakehouse.views.dictionary"
)
START, END, REGENERATE = SECTION.start, SECTION.end, SECTION.regenerate


def _view_section(view: ViewDefinition) -> list[str]:
    compiled = compile_view(view, DRY_FUNCTIONS)
    natural = dict(compiled.fields)
    lines = [f"### `silver.{view.name}` ({view.resource})", ""]
    if view.description:
        lines += [view.description, ""]
    lines += ["| column | type | FHIR type | FHIRPath | description |", "|---|---|---|---|---|"]
    for column in view.columns():
        silver_type = typed_type(column.type, natural[column.name]).simpleString()
        lines.append(
            f"| `{column.name}` | {silver_type} | {column.type or ''} | `{cell(column.path)}` "
            f"| {cell(column.description or '')} |"
        )
    lines.append("")
    return lines


def render(views_dir: Path = VIEWS_DIR) -> str:
    """The markdown between the README markers."""
    views = load_views(views_dir)
    lines = [
        f"_Generated from `spark-jobs/views/*.json` by `{REGENERATE}`; a test fails when this is stale._",
        "",
        "Each table is an Iceberg table `lake.silver.<view>` with one row per resource. Besides the "
        "columns below, the silver job adds `_run_id` (string), `_content_hash` (string, of the "
        "resource the row came from) and `_last_updated` (timestamp, may be null). Types: `dateTime` "
        "and `instant` become UTC timestamps (partial dates such as `2020-05` take the first instant), "
        "`date` a date, `decimal` a double, `integer` an int, `boolean` a boolean; everything else is a string.",
        "",
        "How the views run: each ViewDefinition (SQL-on-FHIR v2) compiles to native Spark expressions "
        "(no Python UDFs); each resource's JSON is parsed once with a schema holding only the elements "
        "the views read. A column without `collection: true` whose path finds several values takes the "
        f"first; `repeat` follows nested elements to depth {REPEAT_MAX_DEPTH} (fewer with several paths). "
        "A resource whose JSON cannot be parsed, or whose objects and arrays do not have the FHIR R4 "
        "shape in an element the views read, goes to `lake.silver.rejects` with the reason.",
        "",
    ]
    for view in views:
        lines += _view_section(view)
    return "\n".join(lines).rstrip() + "\n"


def replace_section(readme_text: str, section: str) -> str:
    """`readme_text` with the text between the markers replaced by `section`."""
    return SECTION.replace(readme_text, section)


def main(argv: list[str] | None = None) -> int:
    """CLI: print, write or check the README's silver data dictionary."""

    def views_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--views", type=Path, default=VIEWS_DIR, help="directory of ViewDefinitions"
        )

    return SECTION.main(lambda args: render(args.views), argv, __doc__, views_argument)


if __name__ == "__main__":
    sys.exit(main())
