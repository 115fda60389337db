"""The README's gold tables and named queries, generated from gold_tables.py and
analytics/queries/ (never written twice).

spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary          # print the section
spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary --write  # update README.md
spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_lakehouse.gold_tables import GOLD_TABLES, GoldTable
from fhir_lakehouse.named_queries import QUERIES_DIR, load_named_queries

README = Path(__file__).resolve().parents[3] / "README.md"
START = "<!-- gold-dictionary:start -->"
END = "<!-- gold-dictionary:end -->"
REGENERATE = "spark-jobs/.venv/bin/python -m fhir_lakehouse.gold_dictionary --write"

_STRATEGY = {
    "per_patient": "incremental: the changed patients' rows are recomputed and MERGEd",
    "affected_groups": "incremental: only the groups whose silver rows changed are recomputed and MERGEd",
    "full": "recomputed in full whenever its silver input changed",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
        lines.append(f"| `{column.name}` | {column.type} | {_cell(column.comment)} |")
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
        lines.append(f"| `{name}` | {_cell(query.description)} |")
    return "\n".join(lines).rstrip() + "\n"


def replace_section(readme_text: str, section: str) -> str:
    """`readme_text` with the text between the gold markers replaced by `section`."""
    if START not in readme_text or END not in readme_text:
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    head, rest = readme_text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """CLI: print, write or check the README's gold tables and named queries."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md between the markers")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md is stale")
    parser.add_argument("--readme", type=Path, default=README, help="README to update or check")
    args = parser.parse_args(argv)
    section = render()
    if not (args.write or args.check):
        sys.stdout.write(section)
        return 0
    current = args.readme.read_text(encoding="utf-8")
    updated = replace_section(current, section)
    if args.check:
        if updated != current:
            print(f"{args.readme}: gold tables section is stale; run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: gold tables section up to date ({len(section.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
