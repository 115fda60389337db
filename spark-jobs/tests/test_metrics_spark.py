"""Spark stage metrics come from a real local SparkSession's status store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from fhir_lakehouse.metrics import MetricsCollector
from fhir_lakehouse.spark_stage_metrics import StageCapture, last_stage_id


def test_a_shuffle_job_records_its_stages(spark: SparkSession, tmp_path: Path) -> None:
    before = last_stage_id(spark)
    m = MetricsCollector("run-s", "silver", str(tmp_path))
    with m.spark_stages(spark, label="shuffle test"):
        rows = (
            spark.range(0, 200_000, numPartitions=2)
            .withColumn("k", F.col("id") % 97)
            .groupBy("k")
            .agg(F.sum("id").alias("s"))
            .collect()
        )
    assert len(rows) == 97
    m.flush()

    df = pd.read_parquet(str(tmp_path / "metrics" / "performance_metrics"))
    stage = df[df.name.str.startswith("spark.stage.")].copy()
    stage["stage_id"] = [json.loads(a)["stage_id"] for a in stage.attributes]
    assert (stage.stage_id > before).all()  # only the stages this block ran
    assert set(stage.metric_type) == {
        "RUNTIME",
        "BYTES",
        "COUNT",
        "SHUFFLE",
        "SPILL",
        "GC",
        "MEMORY",
    }

    def per_stage(name: str) -> pd.Series:
        return stage[stage.name == name].set_index("stage_id").value

    # A map stage writes the shuffle that the reduce stage reads, both the same bytes.
    written, read = (
        per_stage("spark.stage.shuffle_write_bytes"),
        per_stage("spark.stage.shuffle_read_bytes"),
    )
    assert written.sum() > 0
    assert read.sum() == written.sum()
    assert (per_stage("spark.stage.duration") >= 0).all()
    assert (per_stage("spark.stage.duration") < 600).all()
    assert per_stage("spark.stage.peak_execution_memory").max() > 0  # the hash aggregation
    assert (per_stage("spark.stage.memory_spilled_bytes") >= 0).all()
    assert per_stage("spark.stage.output_records").sum() == 0  # collect() writes no output
    attrs = json.loads(stage[stage.name == "spark.stage.duration"].attributes.iloc[0])
    assert attrs["label"] == "shuffle test" and attrs["status"] == "COMPLETE"
    assert attrs["executor_run_time_s"] >= 0

    totals = df.set_index("name").value
    assert totals["spark.shuffle_write_bytes"] == written.sum()
    assert totals["spark.stages"] == stage.stage_id.nunique()
    assert totals["spark.driver.peak_heap"] > 0
    assert totals["spark.jvm_gc_time"] >= 0


def test_cache_hit_rate_of_a_cached_dataframe(spark: SparkSession) -> None:
    cached = spark.range(0, 50_000, numPartitions=4).withColumn("x", F.col("id") * 2).cache()
    try:
        capture = StageCapture(spark)
        capture.start()
        assert cached.count() == 50_000  # materialises every partition in the cache
        assert cached.filter("x % 3 = 0").count() == 16_667  # served from the cache
        result = capture.collect()
    finally:
        cached.unpersist(blocking=True)
    [cache] = [c for c in result.caches if "Range" in c.name]
    assert cache.num_partitions == 4
    assert cache.num_cached_partitions == 4
    assert cache.hit_rate == 1.0
    assert cache.memory_used + cache.disk_used > 0
    # The second count read the cache: its input bytes are the cached blocks.
    assert sum(s.input_bytes for s in result.stages) > 0


def test_a_spilling_window_records_its_spill(spark: SparkSession, tmp_path: Path) -> None:
    # Tiny window buffers (session-level SQL settings, restored below) make the window operator
    # spill to disk, as a large partition would on real data.
    conf = {
        "spark.sql.windowExec.buffer.in.memory.threshold": "512",
        "spark.sql.windowExec.buffer.spill.threshold": "1024",
    }
    previous = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    m = MetricsCollector("run-spill", "gold", str(tmp_path))
    try:
        with m.spark_stages(spark, label="window"):
            df = spark.range(0, 20_000, numPartitions=2).withColumn("k", F.col("id") % 3)
            [row] = (
                df.withColumn("s", F.sum("id").over(Window.partitionBy("k")))
                .agg(F.max("s"))
                .collect()
            )
    finally:
        for k, v in previous.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
    assert row[0] == max(sum(range(k, 20_000, 3)) for k in range(3))
    by_name: dict[str, float] = {}
    for r in m.records():
        by_name[r.name] = by_name.get(r.name, 0.0) + r.value
    assert by_name["spark.stage.disk_spilled_bytes"] > 0
    assert by_name["spark.stage.memory_spilled_bytes"] > 0
    assert by_name["spark.spill_bytes"] == (
        by_name["spark.stage.disk_spilled_bytes"] + by_name["spark.stage.memory_spilled_bytes"]
    )
