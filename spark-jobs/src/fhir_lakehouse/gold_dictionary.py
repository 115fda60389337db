"""The README's gold tables and named queries, generated from gold_tables.py and
analytics/queries/ (never written twice).

spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary          # print the section
spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary --write  # update README.md
spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary --check  # exit 1 when stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from fhir_lakehouse.gold_tables import GOLD_TABLES, GoldTable
from fhir_lakehouse.named_queries import QUERIES_DIR, load_named_queries
from fhir_lakehouse.readme_sections import GeneratedSection, cell

SECTION = GeneratedSection(
    "gold-dictionary", "gold tables section", "fhir_lakehouse.gold_dictionary"
)
START, END, REGENERATE = SECTION.start, SECTION.end, SECTION.regenerate

_STRATEGY = {
    "per_patient": "incremental: the changed patients' rows are recomputed and MERGEd",
    "affected_groups": "incremental: only the groups whose silver rows changed are recomputed and MERGEd",
    "full": "recomputed in full whenever its silver input changed",
}


def _table_section(table: GoldTable) -> list[str]:
    grain = ", ".join(f"`{k}`" for k in table.row_key)
    layout = []
    if table.partition_by:
        layout.append(f"partitioned by `{', '.join(table.partition_by)}`")
    if table.sort_by:
        layout.append(f"sorted by `{', '.join(table.sort_by)}`")
    if any(k.startswith("write.parquet.bloom-filter-enabled") for k in table.properties):
        layout.append("Parquet bloom filter on `patient_key`")
    sources = ", ".join(f"`silver.{v}`" for v in table.sources)
    lines = [
        f"### `gold.{table.name}`",
        "",
        table.comment,
        "",
        f"- grain: one row per {grain}",
        f"- reads: {sources}",
        f"- refresh: {_STRATEGY[table.strategy]}",
    ]
    if layout:
        lines.append(f"- layout: {'; '.join(layout)}")
    lines += ["", "| column | type | description |", "|---|---|---|"]
    for column in table.columns:
        lines.append(f"| `{column.name}` | {column.type} | {cell(column.comment)} |")
    lines.append("")
    return lines


def render(queries_dir: Path = QUERIES_DIR) -> str:
    """The markdown between the README markers: every gold table, then every named query."""
    lines = [
        f"_Generated from `spark-jobs/src/fhir_lakehouse/gold_tables.py` and `analytics/queries/` "
        f"by `{REGENERATE}`; a test fails when this is stale._",
        "",
    ]
    for table in GOLD_TABLES:
        lines += _table_section(table)
    lines += ["### Named queries", "", "| name | question it answers |", "|---|---|"]
    for name, query in sorted(load_named_queries(queries_dir).items()):
        lines.append(f"| `{name}` | {cell(query.description)} |")
    return "\n".join(lines).rstrip() + "\n"


def replace_section(readme_text: str, section: str) -> str:
    """`readme_text` with the text between the gold markers replaced by `section`."""
    return SECTION.replace(readme_text, section)


def main(argv: list[str] | None = None) -> int:
    """CLI: print, write or check the README's gold tables and named queries."""
    return SECTION.main(lambda _args: render(), argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
