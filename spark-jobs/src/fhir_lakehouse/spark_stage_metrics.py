"""Per-stage Spark metrics read from Spark's own status store (the data behind the Spark UI).

PySpark has no Python SparkListener, but the driver's `AppStatusStore` (fed by Spark's
`AppStatusListener`, present even with `spark.ui.enabled=false`) is reachable through py4j. A
`StageCapture` remembers the last stage id when a step starts and, when it ends, reads every stage
completed since: duration, input/output bytes, shuffle read/write, spill, GC and executor run
time, and peak execution memory (largest single task, from the task summary). It also reads the
cached RDDs (cache residency = hit rate, see `CacheMetrics`) and the driver JVM's peak heap, which
in local mode is the executors' heap too.

`stage_metric_rows` / `cache_metric_rows` turn these into metrics-contract rows (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

Row = tuple[str, str, float, str, dict[str, Any]]  # name, metric_type, value, unit, attributes


@dataclass(frozen=True)
class StageMetrics:
    """One completed (or failed) stage attempt. Times in seconds, sizes in bytes."""

    stage_id: int
    attempt_id: int
    name: str
    status: str
    num_tasks: int
    duration_s: float
    executor_run_time_s: float
    executor_cpu_time_s: float
    jvm_gc_time_s: float
    input_bytes: int
    input_records: int
    output_bytes: int
    output_records: int
    shuffle_read_bytes: int
    shuffle_read_records: int
    shuffle_write_bytes: int
    shuffle_write_records: int
    memory_spilled_bytes: int
    disk_spilled_bytes: int
    peak_execution_memory_max_task: int
    peak_execution_memory_sum: int


@dataclass(frozen=True)
class CacheMetrics:
    """A persisted RDD (or cached DataFrame) as the block manager holds it now."""

    rdd_id: int
    name: str
    storage_level: str
    num_partitions: int
    num_cached_partitions: int
    memory_used: int
    disk_used: int

    @property
    def hit_rate(self) -> float:
        """Share of partitions served from the cache on a full read.

        Spark keeps no per-read hit counter; a partition that is not in the block manager is
        recomputed from its lineage on every access (a miss), one that is is read from it (a
        hit). So on a full scan, hits / accesses = cached partitions / partitions.
        """
        return self.num_cached_partitions / self.num_partitions if self.num_partitions else 0.0


@dataclass(frozen=True)
class CaptureResult:
    stages: list[StageMetrics]
    caches: list[CacheMetrics]
    driver_peak_heap_bytes: int
    executor_peak_heap_bytes: int


def _status_store(spark: SparkSession) -> Any:  # noqa: ANN401 (a py4j JavaObject)
    return spark.sparkContext._jsc.sc().statusStore()  # type: ignore[union-attr]


def _scala_seq(seq: Any) -> list[Any]:  # noqa: ANN401
    return [seq.apply(i) for i in range(seq.size())]


def _stage_list(spark: SparkSession) -> list[Any]:
    store = _status_store(spark)
    # Scala default arguments are not visible through py4j: call their generated getters.
    defaults = [getattr(store, f"stageList$default${i}")() for i in range(2, 6)]
    return _scala_seq(store.stageList(None, *defaults))


def last_stage_id(spark: SparkSession) -> int:
    """The highest stage id the status store knows (-1 before the first stage)."""
    return max((s.stageId() for s in _stage_list(spark)), default=-1)


def _max_task_peak_memory(spark: SparkSession, stage_id: int, attempt_id: int) -> int:
    sc = spark.sparkContext
    quantiles = sc._gateway.new_array(sc._jvm.double, 1)  # type: ignore[union-attr]
    quantiles[0] = 1.0
    summary = _status_store(spark).taskSummary(stage_id, attempt_id, quantiles)
    if not summary.isDefined():
        return 0
    return int(summary.get().peakExecutionMemory().apply(0))


def read_stages(spark: SparkSession, after_stage_id: int = -1) -> list[StageMetrics]:
    """Completed and failed stage attempts with an id above `after_stage_id`, oldest first."""
    out: list[StageMetrics] = []
    for s in _stage_list(spark):
        status = s.status().toString()
        if s.stageId() <= after_stage_id or status not in ("COMPLETE", "FAILED"):
            continue
        submitted, completed = s.submissionTime(), s.completionTime()
        duration_ms = (
            completed.get().getTime() - submitted.get().getTime()
            if submitted.isDefined() and completed.isDefined()
            else 0
        )
        out.append(
            StageMetrics(
                stage_id=s.stageId(),
                attempt_id=s.attemptId(),
                name=s.name(),
                status=status,
                num_tasks=s.numTasks(),
                duration_s=duration_ms / 1000.0,
                executor_run_time_s=s.executorRunTime() / 1000.0,
                executor_cpu_time_s=s.executorCpuTime() / 1e9,
                jvm_gc_time_s=s.jvmGcTime() / 1000.0,
                input_bytes=s.inputBytes(),
                input_records=s.inputRecords(),
                output_bytes=s.outputBytes(),
                output_records=s.outputRecords(),
                shuffle_read_bytes=s.shuffleReadBytes(),
                shuffle_read_records=s.shuffleReadRecords(),
                shuffle_write_bytes=s.shuffleWriteBytes(),
                shuffle_write_records=s.shuffleWriteRecords(),
                memory_spilled_bytes=s.memoryBytesSpilled(),
                disk_spilled_bytes=s.diskBytesSpilled(),
                peak_execution_memory_max_task=_max_task_peak_memory(
                    spark, s.stageId(), s.attemptId()
                ),
                peak_execution_memory_sum=s.peakExecutionMemory(),
            )
        )
    return sorted(out, key=lambda m: (m.stage_id, m.attempt_id))


def read_caches(spark: SparkSession) -> list[CacheMetrics]:
    """Every RDD with a storage level (cached DataFrames included), cached or evicted."""
    out = []
    for r in _scala_seq(_status_store(spark).rddList(False)):
        out.append(
            CacheMetrics(
                rdd_id=r.id(),
                # A cached DataFrame's RDD is named after its physical plan: keep a short, one-line head.
                name=" ".join(r.name().split())[:300] if r.name() else f"rdd {r.id()}",
                storage_level=r.storageLevel(),
                num_partitions=r.numPartitions(),
                num_cached_partitions=r.numCachedPartitions(),
                memory_used=r.memoryUsed(),
                disk_used=r.diskUsed(),
            )
        )
    return out


def _heap_pools(spark: SparkSession) -> list[Any]:
    mf = spark.sparkContext._jvm.java.lang.management.ManagementFactory  # type: ignore[union-attr]
    return [p for p in mf.getMemoryPoolMXBeans() if p.getType().toString() == "Heap memory"]


def _executor_peak_heap(spark: SparkSession) -> int:
    """Largest executor JVM heap peak reported by heartbeats (0 until one arrives)."""
    peak = 0
    for e in _scala_seq(_status_store(spark).executorList(True)):
        metrics = e.peakMemoryMetrics()
        if metrics.isDefined():
            peak = max(peak, int(metrics.get().getMetricValue("JVMHeapMemory")))
    return peak


class StageCapture:
    """Captures the stages a step runs: `start()` before, `collect()` after."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.after_stage_id = -1

    def start(self) -> None:
        self.after_stage_id = last_stage_id(self.spark)
        # Per-step peak: reset the driver heap pools' high-water marks.
        for pool in _heap_pools(self.spark):
            pool.resetPeakUsage()

    def collect(self) -> CaptureResult:
        return CaptureResult(
            stages=read_stages(self.spark, self.after_stage_id),
            caches=read_caches(self.spark),
            # Sum of per-pool peaks (eden, survivor, old): an upper bound of the heap's peak.
            driver_peak_heap_bytes=sum(p.getPeakUsage().getUsed() for p in _heap_pools(self.spark)),
            executor_peak_heap_bytes=_executor_peak_heap(self.spark),
        )


def stage_metric_rows(stage: StageMetrics, label: str | None = None) -> list[Row]:
    """Metrics-contract rows for one stage (pure). `label` names the step part, e.g. a view."""
    attrs: dict[str, Any] = {
        "stage_id": stage.stage_id,
        "attempt_id": stage.attempt_id,
        "stage_name": stage.name,
        "status": stage.status,
        "num_tasks": stage.num_tasks,
    }
    if label:
        attrs["label"] = label
    gc_share = stage.jvm_gc_time_s / stage.executor_run_time_s if stage.executor_run_time_s else 0.0
    # Executor run/CPU time are sums over parallel tasks, not wall time: attributes, not RUNTIME
    # rows, so the report's "slowest operations" stays a list of wall-clock times.
    timing = {
        **attrs,
        "executor_run_time_s": stage.executor_run_time_s,
        "executor_cpu_time_s": stage.executor_cpu_time_s,
    }
    return [
        ("spark.stage.duration", "RUNTIME", stage.duration_s, "s", timing),
        ("spark.stage.input_bytes", "BYTES", float(stage.input_bytes), "bytes", attrs),
        ("spark.stage.output_bytes", "BYTES", float(stage.output_bytes), "bytes", attrs),
        ("spark.stage.input_records", "COUNT", float(stage.input_records), "count", attrs),
        ("spark.stage.output_records", "COUNT", float(stage.output_records), "count", attrs),
        (
            "spark.stage.shuffle_read_bytes",
            "SHUFFLE",
            float(stage.shuffle_read_bytes),
            "bytes",
            attrs,
        ),
        (
            "spark.stage.shuffle_write_bytes",
            "SHUFFLE",
            float(stage.shuffle_write_bytes),
            "bytes",
            attrs,
        ),
        (
            "spark.stage.memory_spilled_bytes",
            "SPILL",
            float(stage.memory_spilled_bytes),
            "bytes",
            attrs,
        ),
        (
            "spark.stage.disk_spilled_bytes",
            "SPILL",
            float(stage.disk_spilled_bytes),
            "bytes",
            attrs,
        ),
        ("spark.stage.jvm_gc_time", "GC", stage.jvm_gc_time_s, "s", timing),
        ("spark.stage.gc_share", "GC", gc_share, "ratio", attrs),
        (
            "spark.stage.peak_execution_memory",
            "MEMORY",
            float(stage.peak_execution_memory_max_task),
            "bytes",
            {**attrs, "sum_over_tasks": stage.peak_execution_memory_sum},
        ),
    ]


def cache_metric_rows(cache: CacheMetrics, label: str | None = None) -> list[Row]:
    """Metrics-contract rows for one persisted RDD as a step part ends (pure)."""
    attrs: dict[str, Any] = {
        **({"label": label} if label else {}),
        "rdd_id": cache.rdd_id,
        "rdd_name": cache.name,
        "storage_level": cache.storage_level,
        "partitions": cache.num_partitions,
        "cached_partitions": cache.num_cached_partitions,
    }
    return [
        ("spark.cache.hit_rate", "CACHE", cache.hit_rate, "ratio", attrs),
        ("spark.cache.memory_used", "CACHE", float(cache.memory_used), "bytes", attrs),
        ("spark.cache.disk_used", "CACHE", float(cache.disk_used), "bytes", attrs),
    ]


def capture_rows(result: CaptureResult, label: str | None = None) -> list[Row]:
    """Every row of one capture: per stage, per cached RDD, and the step's heap peaks (pure)."""
    rows: list[Row] = []
    for stage in result.stages:
        rows.extend(stage_metric_rows(stage, label))
    for cache in result.caches:
        rows.extend(cache_metric_rows(cache, label))
    extra: dict[str, Any] = {"label": label} if label else {}
    rows.append(
        (
            "spark.driver.peak_heap",
            "MEMORY",
            float(result.driver_peak_heap_bytes),
            "bytes",
            {**extra, "definition": "sum of the heap pools' peaks since the step started"},
        )
    )
    if result.executor_peak_heap_bytes > 0:
        rows.append(
            (
                "spark.executor.peak_heap",
                "MEMORY",
                float(result.executor_peak_heap_bytes),
                "bytes",
                extra,
            )
        )
    totals = {
        "spark.stages": ("COUNT", float(len(result.stages)), "count"),
        "spark.shuffle_read_bytes": (
            "SHUFFLE",
            float(sum(s.shuffle_read_bytes for s in result.stages)),
            "bytes",
        ),
        "spark.shuffle_write_bytes": (
            "SHUFFLE",
            float(sum(s.shuffle_write_bytes for s in result.stages)),
            "bytes",
        ),
        "spark.spill_bytes": (
            "SPILL",
            float(sum(s.memory_spilled_bytes + s.disk_spilled_bytes for s in result.stages)),
            "bytes",
        ),
        "spark.jvm_gc_time": ("GC", sum(s.jvm_gc_time_s for s in result.stages), "s"),
    }
    for name, (metric_type, value, unit) in totals.items():
        rows.append((name, metric_type, value, unit, extra))
    return rows
