"""The analysts' named queries (analytics/queries/*.sql): header parsing and a portability check.

Each file holds one read-only query with a header:

    -- name: monthly_admissions
    -- description: Inpatient admissions per month ...
    --   (continuation lines start with "--" and more indentation)

The same text runs on Athena (Trino) and locally (DuckDB), so it must stay inside the SQL both
engines read the same way; `portability_problems` rejects the constructs known to differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

QUERIES_DIR = Path(__file__).resolve().parents[3] / "analytics" / "queries"
_HEADER = re.compile(r"^--\s*(name|description)\s*:\s*(.*)$")
_TABLE_REF = re.compile(r"\b(gold|silver)\.([A-Za-z_][A-Za-z0-9_]*)\b")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str
    path: Path | None = None


def parse_named_query(text: str, path: Path | None = None) -> NamedQuery:
    """Reads the header (`-- name:`, `-- description:`) of a query file."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            if stripped:
                break
            continue
        match = _HEADER.match(stripped)
        if match:
            last = match.group(1)
            fields[last] = match.group(2).strip()
        elif last == "description" and stripped[2:].strip():
            fields[last] += " " + stripped[2:].strip()
    where = f" in {path}" if path else ""
    if not fields.get("name"):
        raise ValueError(f"named query{where} has no '-- name:' header")
    if not fields.get("description"):
        raise ValueError(f"named query {fields['name']}{where} has no '-- description:' header")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", fields["name"]):
        raise ValueError(f"named query name {fields['name']!r}{where}: use lower_snake_case")
    return NamedQuery(fields["name"], fields["description"], text.strip().rstrip(";").strip(), path)


def load_named_queries(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    """Every *.sql query of the folder by name (names must be unique and match the file name)."""
    queries: dict[str, NamedQuery] = {}
    for path in sorted(directory.glob("*.sql")):
        query = parse_named_query(path.read_text(encoding="utf-8"), path)
        if query.name != path.stem:
            raise ValueError(f"{path}: header name {query.name!r} differs from the file name")
        queries[query.name] = query
    return queries


def referenced_tables(sql: str) -> set[tuple[str, str]]:
    """(namespace, table) pairs a query reads: every `gold.x` and `silver.x` outside comments
    and string literals."""
    return {(m.group(1), m.group(2)) for m in _TABLE_REF.finditer(_code_only(sql))}


def _code_only(sql: str) -> str:
    """The SQL without comments and string literals (so their contents are not checked)."""
    out = re.sub(r"--[^\n]*", " ", sql)
    out = re.sub(r"/\*.*?\*/", " ", out, flags=re.S)
    return re.sub(r"'(?:[^']|'')*'", "''", out)


# (pattern, why) pairs. Patterns are matched case-insensitively against the SQL without
# comments and string literals, except where noted.
_NON_PORTABLE: list[tuple[str, str]] = [
    (r"::", "'::' casts are DuckDB/PostgreSQL only: use CAST(x AS type)"),
    (
        r"\bdate_add\s*\(",
        "date_add differs (Trino: date_add('day', n, x)): use x + INTERVAL 'n' DAY",
    ),
    (r"\bdate_sub\s*\(", "date_sub is not in Trino: use x - INTERVAL 'n' DAY"),
    (r"\bdate_?diff\s*\(", "date_diff counts boundaries in DuckDB but whole units in Trino"),
    (r"\bdateadd\s*\(", "dateadd is in neither engine"),
    (r"\bilike\b", "ILIKE is DuckDB only: use lower(x) LIKE '...'"),
    (r"\bqualify\b", "QUALIFY is DuckDB only: filter a window in an outer query"),
    (r"\b(group|order)\s+by\s+all\b", "GROUP/ORDER BY ALL is DuckDB only"),
    (r"\bexclude\s*\(", "SELECT * EXCLUDE is DuckDB only"),
    (r"\b(ifnull|nvl)\s*\(", "IFNULL/NVL are not in Trino: use COALESCE"),
    (r"\bapprox_(percentile|distinct)\s*\(", "approx_percentile/approx_distinct are Trino only"),
    (
        r"\b(percentile_cont|percentile_disc|quantile\w*|median)\s*\(",
        "DuckDB-only percentile functions",
    ),
    (r"\b(strftime|strptime|epoch_ms|epoch)\s*\(", "DuckDB-only date functions"),
    (
        r"\b(date_format|date_parse|format_datetime|parse_datetime)\s*\(",
        "Trino-only date functions",
    ),
    (r"\bregexp_(like|matches|extract)\s*\(", "regular-expression functions differ: use LIKE"),
    (r"`", "backtick identifiers are not SQL: use double quotes"),
    (r"\binterval\s+\d", "INTERVAL needs a quoted number in Trino: INTERVAL '30' DAY"),
    (r"\bcurrent_date\s*\(", "current_date takes no parentheses in Trino"),
    (r"\blimit\s+\d+\s*,", "LIMIT a, b is MySQL syntax"),
    (
        r"\b(list_\w+|struct_pack|array_agg|unnest|string_agg|group_concat|listagg)\s*\(",
        "list/array functions differ",
    ),
    (
        r"\b(create|insert|update|delete|merge|drop|alter|copy|attach|install|load|pragma|set)\b",
        "named queries are read-only SELECTs",
    ),
    (r";", "one statement per file (no ';' inside)"),
]
# Checked on the raw text: DuckDB's 'n days' interval strings live inside a literal.
_NON_PORTABLE_RAW: list[tuple[str, str]] = [
    (r"\binterval\s+'\s*\d+\s+[a-z]+\s*'", "INTERVAL '30 days' is DuckDB only: INTERVAL '30' DAY"),
]


def portability_problems(sql: str, known_tables: set[tuple[str, str]] | None = None) -> list[str]:
    """Why a query might not run the same on Athena (Trino) and DuckDB; empty when it is fine.

    `known_tables`: (namespace, table) pairs that exist; a reference to another table is reported.
    """
    code = _code_only(sql).rstrip().rstrip(";")
    problems = [why for pat, why in _NON_PORTABLE if re.search(pat, code, flags=re.I)]
    problems += [why for pat, why in _NON_PORTABLE_RAW if re.search(pat, sql, flags=re.I)]
    if not re.match(r"\s*(with|select)\b", code, flags=re.I):
        problems.append("a named query is a SELECT (or WITH ... SELECT)")
    if known_tables is not None:
        for ns, table in sorted(referenced_tables(sql) - known_tables):
            problems.append(f"unknown table {ns}.{table}")
    return problems
