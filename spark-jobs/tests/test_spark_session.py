from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog
from pyspark.sql import SparkSession


def test_iceberg_table_written_by_spark_is_readable_by_pyiceberg(
    spark: SparkSession, lake_root: Path
) -> None:
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.smoke")
    spark.sql("CREATE TABLE lake.smoke.t (id string, n int) USING iceberg")
    spark.sql("INSERT INTO lake.smoke.t VALUES ('a', 1), ('b', 2)")
    assert spark.table("lake.smoke.t").count() == 2
    catalog = SqlCatalog(
        "lake",
        uri=f"sqlite:///{lake_root / 'catalog' / 'iceberg.db'}",
        warehouse=f"file://{lake_root / 'warehouse'}",
    )
    rows = catalog.load_table("smoke.t").scan().to_arrow().to_pylist()
    assert sorted(r["id"] for r in rows) == ["a", "b"]
    spark.sql("DROP TABLE lake.smoke.t PURGE")
