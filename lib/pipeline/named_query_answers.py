"""The answers of a few named gold queries for the demo, in one process (no JVM: DuckDB over the
Iceberg tables through the gold engineer's local query runner).

    python named_query_answers.py --lake DIR/lake --max-rows 8 NAME [NAME ...]

Prints one JSON array: [{"name", "description", "seconds", "rows", "table"} | {"name", "error"}].
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from fhir_lakehouse.local_query import QueryError, format_table, lake_root_of, run_sql
from fhir_lakehouse.named_queries import load_named_queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="named_query_answers.py", description=__doc__)
    parser.add_argument("--lake", required=True, help="lake root (file:// URI or path)")
    parser.add_argument("--max-rows", type=int, default=8, help="rows shown per answer")
    parser.add_argument("names", nargs="+", help="named queries (analytics/queries/NAME.sql)")
    args = parser.parse_args(argv)
    queries = load_named_queries()
    root = lake_root_of(args.lake)
    answers: list[dict[str, object]] = []
    for name in args.names:
        query = queries.get(name)
        if query is None:
            answers.append({"name": name, "error": f"no named query {name}"})
            continue
        t0 = time.perf_counter()
        try:
            result = run_sql(root, query.sql)
        except (QueryError, ValueError) as err:
            answers.append({"name": name, "description": query.description, "error": str(err)})
            continue
        answers.append(
            {
                "name": name,
                "description": query.description,
                "seconds": round(time.perf_counter() - t0, 3),
                "rows": result.num_rows,
                "table": format_table(result, args.max_rows),
            }
        )
    sys.stdout.write(json.dumps(answers) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
