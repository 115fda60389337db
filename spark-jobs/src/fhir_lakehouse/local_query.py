"""Local SQL over the lake's Iceberg tables: PyIceberg for the metadata, DuckDB for the query.

    python -m fhir_lakehouse.local_query --workdir DIR "SELECT * FROM gold.patient_summary"
    python -m fhir_lakehouse.local_query --lake file:///.../lake --named monthly_admissions --json
    python -m fhir_lakehouse.local_query --list

No JVM: the table list comes from the catalog's SQLite file (read with the standard library), each
table's current snapshot from its Iceberg metadata (PyIceberg), and DuckDB reads the snapshot's
Parquet files directly, so it prunes row groups by statistics and bloom filters. A table whose
snapshot needs Iceberg to read it (delete files, or an evolved schema) is read through PyIceberg
into Arrow instead. Only the tables a query names are loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from fhir_lakehouse.named_queries import QUERIES_DIR, load_named_queries, referenced_tables


class QueryError(Exception):
    """A query that cannot run: unknown table or named query, SQL error, missing lake."""


def lake_root_of(lake: str | None = None, workdir: str | None = None) -> Path:
    """The lake directory: --lake as given, or the work dir's `lake/` (or the work dir itself)."""
    if lake:
        root = Path(lake.removeprefix("file://"))
    elif workdir:
        base = Path(workdir)
        root = base / "lake" if (base / "lake" / "catalog").exists() else base
    else:
        raise QueryError("give --workdir DIR or --lake URI")
    if not (root / "catalog" / "iceberg.db").exists():
        raise QueryError(
            f"no Iceberg catalog at {root / 'catalog' / 'iceberg.db'}: has the pipeline run?"
        )
    return root


def catalog_tables(lake_root: Path) -> dict[tuple[str, str], str]:
    """(namespace, table) -> current metadata file, from the Iceberg JDBC catalog's SQLite file."""
    uri = f"file:{lake_root / 'catalog' / 'iceberg.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as con:
        rows = con.execute(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
            "WHERE catalog_name = 'lake'"
        ).fetchall()
    return {(ns, name): loc for ns, name, loc in rows}


def _local_path(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("file:"):
        return uri[len("file:") :]
    return uri


@dataclass(frozen=True)
class LoadedTable:
    namespace: str
    name: str
    mode: str  # "parquet" (DuckDB reads the files) or "arrow" (read through PyIceberg)
    files: int


def register_table(
    con: duckdb.DuckDBPyConnection, namespace: str, name: str, metadata: str
) -> LoadedTable:
    """Makes `namespace.name` queryable in DuckDB at the table's current snapshot."""
    from pyiceberg.table import StaticTable  # imported here: ~0.3 s, only when a table is needed

    table = StaticTable.from_metadata(metadata)
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
    qualified = f'"{namespace}"."{name}"'
    if table.metadata.current_snapshot_id is None:
        empty = pa.Table.from_batches([], schema=table.schema().as_arrow())
        con.register(f"_empty_{namespace}_{name}", empty)
        con.execute(f'CREATE VIEW {qualified} AS SELECT * FROM "_empty_{namespace}_{name}"')
        return LoadedTable(namespace, name, "arrow", 0)
    tasks = list(table.scan().plan_files())
    direct = len(table.metadata.schemas) == 1 and not any(t.delete_files for t in tasks)
    if direct and tasks:
        files = ", ".join(
            "'" + _local_path(t.file.file_path).replace("'", "''") + "'" for t in tasks
        )
        columns = ", ".join(f'"{f.name}"' for f in table.schema().fields)
        con.execute(f"CREATE VIEW {qualified} AS SELECT {columns} FROM read_parquet([{files}])")
        return LoadedTable(namespace, name, "parquet", len(tasks))
    arrow = table.scan().to_arrow()
    con.register(f"_arrow_{namespace}_{name}", arrow)
    con.execute(f'CREATE VIEW {qualified} AS SELECT * FROM "_arrow_{namespace}_{name}"')
    return LoadedTable(namespace, name, "arrow", len(tasks))


def connect(lake_root: Path, tables: set[tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (UTC) with the given lake tables registered as namespace.table."""
    available = catalog_tables(lake_root)
    missing = sorted(f"{ns}.{t}" for ns, t in tables if (ns, t) not in available)
    if missing:
        known = ", ".join(sorted(f"{ns}.{t}" for ns, t in available)) or "none"
        raise QueryError(f"unknown table(s) {', '.join(missing)}; the lake has: {known}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for ns, name in sorted(tables):
        register_table(con, ns, name, available[(ns, name)])
    return con


def run_sql(lake_root: Path, sql: str) -> pa.Table:
    """Runs one query over the lake's tables and returns the result as Arrow."""
    con = connect(lake_root, referenced_tables(sql))
    try:
        relation = con.sql(sql)
        # duckdb >= 1.4 names it to_arrow_table; older releases arrow().
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()
    except duckdb.Error as err:
        raise QueryError(f"query failed: {err}") from err
    finally:
        con.close()


def resolve_sql(sql: str | None, named: str | None, queries_dir: Path = QUERIES_DIR) -> str:
    if named:
        queries = load_named_queries(queries_dir)
        if named not in queries:
            raise QueryError(f"no named query {named!r}; there are: {', '.join(sorted(queries))}")
        return queries[named].sql
    if not sql:
        raise QueryError("give a SQL query or --named NAME")
    return sql


# ---------------------------------------------------------------------------------------------
# Output


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


def rows_as_json(result: pa.Table) -> list[dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()} for row in result.to_pylist()]


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    value = _json_value(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def format_table(result: pa.Table, max_rows: int | None = None) -> str:
    """A plain aligned text table with a row count footer."""
    names = result.column_names
    rows = [[_cell(v) for v in row.values()] for row in result.to_pylist()]
    shown = rows if max_rows is None else rows[:max_rows]
    widths = [max([len(n)] + [len(r[i]) for r in shown]) for i, n in enumerate(names)]
    lines = [
        " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in shown]
    more = f", {len(rows) - len(shown)} not shown" if len(shown) < len(rows) else ""
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.local_query",
        description="Run SQL (or a named query from analytics/queries) over the lake's gold and "
        "silver Iceberg tables with DuckDB. Tables are named gold.<table> and silver.<table>.",
    )
    p.add_argument("sql", nargs="?", help="the SQL to run (one SELECT)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workdir", help="the pipeline's work dir (its lake/ holds the catalog)")
    where.add_argument("--lake", help="lake root URI or path (holds catalog/iceberg.db)")
    p.add_argument("--named", help="run the named query NAME from the queries folder")
    p.add_argument("--list", action="store_true", help="list the named queries and exit")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array of objects")
    p.add_argument("--max-rows", type=int, help="print at most N rows in table output")
    p.add_argument("--queries-dir", type=Path, default=QUERIES_DIR, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list:
            for q in load_named_queries(args.queries_dir).values():
                sys.stdout.write(f"{q.name}\n    {q.description}\n")
            return 0
        if args.sql and args.named:
            raise QueryError("give either SQL or --named NAME, not both")
        sql = resolve_sql(args.sql, args.named, args.queries_dir)
        result = run_sql(lake_root_of(args.lake, args.workdir), sql)
    except (QueryError, ValueError) as err:
        sys.stderr.write(f"query: {err}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(rows_as_json(result), indent=2) + "\n")
    else:
        sys.stdout.write(format_table(result, args.max_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
