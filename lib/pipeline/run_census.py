"""Counts per layer after a local run, for the reconciliation (lib/pipeline/reconciliation.ts).

Bronze is counted from the run's own Parquet files (footers only, no data read), the Iceberg
tables through the step server's SparkSession. Counts only: no resource content leaves here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri)


def _dirs(fs: pafs.FileSystem, path: str, prefix: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [
        i.path
        for i in infos
        if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix)
    ]


def _parquet_files(fs: pafs.FileSystem, path: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.base_name.endswith(".parquet")
        and not i.base_name.startswith((".", "_"))
    )


def bronze_counts(bronze_uri: str, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """(rows per resource type, rejected lines per type ('' = type unknown)) of one run."""
    fs, root = _fs(bronze_uri)
    rows: Counter[str] = Counter()
    for type_dir in _dirs(fs, root, "resource_type="):
        rtype = type_dir.rsplit("/", 1)[-1].split("=", 1)[1]
        for date_dir in _dirs(fs, type_dir, "ingest_date="):
            for path in _parquet_files(fs, f"{date_dir}/run_id={run_id}"):
                with fs.open_input_file(path) as f:
                    rows[rtype] += pq.ParquetFile(f).metadata.num_rows
    rejects: Counter[str] = Counter()
    for path in _parquet_files(fs, f"{root}/_rejects/run_id={run_id}"):
        with fs.open_input_file(path) as f:
            column = pq.read_table(f, columns=["resource_type"]).column(0).to_pylist()
        rejects.update("" if t is None else str(t) for t in column)
    return dict(rows), dict(rejects)


def _grouped(spark: Any, sql: str) -> dict[str, int]:  # noqa: ANN401
    return {str(r[0]): int(r[1]) for r in spark.sql(sql).collect()}


def _tables(spark: Any, namespace: str) -> list[str]:  # noqa: ANN401
    from fhir_lakehouse.spark_session import catalog_tables

    return catalog_tables(spark, namespace)


def _row_counts(spark: Any, tables: list[str]) -> dict[str, int]:  # noqa: ANN401
    """Rows of each table, in one Spark query (one round trip instead of one per table)."""
    if not tables:
        return {}
    parts = [f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in tables]
    return {str(r["t"]): int(r["n"]) for r in spark.sql(" UNION ALL ".join(parts)).collect()}


def table_counts(spark: Any, run_id: str) -> dict[str, Any]:  # noqa: ANN401
    """silver.resources rows per type, the run's silver rejects per type, rows of every other
    silver table (the views) and of every gold table."""
    silver_tables = _tables(spark, "silver")
    gold_tables = _tables(spark, "gold")
    out: dict[str, Any] = {
        "silver": {},
        "silverRejected": {},
        "silverTables": {},
        "gold": {},
    }
    if "resources" in silver_tables:
        out["silver"] = _grouped(
            spark,
            "SELECT resource_type, count(*) FROM lake.silver.resources GROUP BY resource_type",
        )
    if "rejects" in silver_tables:
        safe = run_id.replace("'", "''")
        out["silverRejected"] = _grouped(
            spark,
            "SELECT resource_type, count(*) FROM lake.silver.rejects"
            f" WHERE run_id = '{safe}' GROUP BY resource_type",
        )
    counts = _row_counts(
        spark,
        [f"lake.silver.`{t}`" for t in silver_tables] + [f"lake.gold.`{t}`" for t in gold_tables],
    )
    out["silverTables"] = {t: counts[f"lake.silver.`{t}`"] for t in silver_tables}
    out["gold"] = {t: counts[f"lake.gold.`{t}`"] for t in gold_tables}
    return out
