from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog
from pyspark.sql import SparkSession

from fhir_lakehouse.spark_session import catalog_tables


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


def test_catalog_tables_lists_a_namespace_like_show_tables(spark: SparkSession) -> None:
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.listing")
    for name in ("b_table", "a_table"):
        spark.sql(f"CREATE TABLE IF NOT EXISTS lake.listing.{name} (id string) USING iceberg")
    shown = sorted(r["tableName"] for r in spark.sql("SHOW TABLES IN lake.listing").collect())
    assert catalog_tables(spark, "listing") == shown == ["a_table", "b_table"]
    assert catalog_tables(spark, "no_such_namespace") == []
    for name in ("a_table", "b_table"):
        spark.sql(f"DROP TABLE lake.listing.{name} PURGE")
