"""The Python metrics collector: the Spark jobs' twin of lib/core/metrics.ts.

Both write the metrics contract of DESIGN.md to `{lake}/metrics/performance_metrics/` as Parquet
files with the same Arrow schema (lake_contract.json), so this works on what both wrote:

    m = pd.read_parquet(".../metrics/performance_metrics")
    m[m.metric_type == "RUNTIME"].sort_values("value", ascending=False).head(5)

In the cloud an emitter also sends the records to CloudWatch (`CloudWatchEmitter`, PutMetricData
through boto3, imported only when used: boto3 must be in the job's environment then). Locally the
emitter is None: the Parquet files and the HTML report are the output.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from fhir_lakehouse.lake_contract import CONTRACT, METRIC_COLUMNS, METRIC_TYPES, layer_uri
from fhir_lakehouse.spark_stage_metrics import StageCapture, capture_rows

# The step's canonical metrics, recorded once per process; same names as STEP_METRICS in
# lib/core/metrics.ts. The report's bottleneck and run comparison read them.
STEP_RUNTIME = "step_total"
STEP_RECORDS = "step_records"
STEP_BYTES = "step_bytes"
STEP_THROUGHPUT = "step_throughput"

_ARROW_TYPES = {
    "string": pa.string(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
METRICS_SCHEMA = pa.schema(
    [(c["name"], _ARROW_TYPES[c["type"]]) for c in CONTRACT["metrics"]["columns"]]
)


@dataclass(frozen=True)
class MetricRecord:
    run_id: str
    step: str
    name: str
    metric_type: str
    value: float
    unit: str
    recorded_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)


class MetricsEmitter(Protocol):
    """Somewhere besides the lake that records go on flush (CloudWatch in the cloud)."""

    def emit(self, records: list[MetricRecord]) -> None: ...


_CLOUDWATCH_UNITS = {
    "s": "Seconds",
    "ms": "Milliseconds",
    "bytes": "Bytes",
    "count": "Count",
    "records/s": "Count/Second",
    "bytes/s": "Bytes/Second",
    "percent": "Percent",
    "ratio": "None",
}


class CloudWatchEmitter:
    """PutMetricData with dimensions service and step, as the Lambdas' EMF (lib/core/metrics.ts)
    and the monitoring stack's alarms (lib/core/custom-metrics.ts) use; run ids are no dimension
    (they would explode the metric count)."""

    # PutMetricData takes up to 1,000 values per request; stay well below with batches of 500.
    BATCH = 500

    def __init__(
        self,
        namespace: str = "FhirLakehouse",
        client: Any = None,  # noqa: ANN401
        service: str = "fhir-pipeline",
    ) -> None:
        self.namespace = namespace
        self.service = service
        if client is None:
            import boto3  # only needed in the cloud

            client = boto3.client("cloudwatch")
        self.client = client

    def emit(self, records: list[MetricRecord]) -> None:
        data = [
            {
                "MetricName": r.name,
                "Dimensions": [
                    {"Name": "service", "Value": self.service},
                    {"Name": "step", "Value": r.step},
                ],
                "Timestamp": r.recorded_at,
                "Value": r.value,
                "Unit": _CLOUDWATCH_UNITS.get(r.unit, "None"),
            }
            for r in records
        ]
        for i in range(0, len(data), self.BATCH):
            self.client.put_metric_data(
                Namespace=self.namespace, MetricData=data[i : i + self.BATCH]
            )


def metrics_dir_uri(lake_root: str) -> str:
    """`{lake}/metrics/performance_metrics` for a lake root (file:///…, s3://… or a path)."""
    return f"{layer_uri(lake_root, 'metrics')}/{CONTRACT['metrics']['dir']}"


def records_to_table(records: list[MetricRecord]) -> pa.Table:
    """The contract's Arrow table (same schema the TypeScript collector writes)."""
    return pa.table(
        {
            "run_id": [r.run_id for r in records],
            "step": [r.step for r in records],
            "name": [r.name for r in records],
            "metric_type": [r.metric_type for r in records],
            "value": [float(r.value) for r in records],
            "unit": [r.unit for r in records],
            "recorded_at": [r.recorded_at for r in records],
            "attributes": [json.dumps(r.attributes, default=str) for r in records],
        },
        schema=METRICS_SCHEMA,
    )


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        uri = Path(uri).resolve().as_uri()
    return pafs.FileSystem.from_uri(uri)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]", "_", s)


class MetricsCollector:
    """Collects one step's metrics and writes them to the lake on `flush()`.

    `lake_root` may be file:///…, s3://… or a local path. `emitter` (e.g. CloudWatchEmitter)
    also receives every flushed batch.
    """

    def __init__(
        self,
        run_id: str,
        step: str,
        lake_root: str,
        emitter: MetricsEmitter | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not run_id or not step:
            raise ValueError("MetricsCollector needs a run_id and a step")
        self.run_id = run_id
        self.step = step
        self.lake_root = lake_root
        self.emitter = emitter
        self._clock = clock or (lambda: datetime.now(UTC))
        self._pending: list[MetricRecord] = []
        self._started = time.perf_counter()

    def record(
        self,
        name: str,
        metric_type: str,
        value: float,
        unit: str,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Records one metric; `metric_type` is one of the contract's ten types."""
        if metric_type not in METRIC_TYPES:
            raise ValueError(f"unknown metric type {metric_type}: one of {', '.join(METRIC_TYPES)}")
        if not math.isfinite(value):
            raise ValueError(f"metric {name} has a non-finite value {value}")
        self._pending.append(
            MetricRecord(
                self.run_id,
                self.step,
                name,
                metric_type,
                float(value),
                unit,
                self._clock(),
                dict(attributes or {}),
            )
        )

    @contextmanager
    def timer(self, name: str, attributes: dict[str, Any] | None = None) -> Iterator[None]:
        """Records the block's wall time as RUNTIME in seconds, also when it raises."""
        t0 = time.perf_counter()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            attrs = {**(attributes or {}), **({"failed": True} if failed else {})}
            self.record(name, "RUNTIME", time.perf_counter() - t0, "s", attrs)

    def count(self, name: str, n: float, attributes: dict[str, Any] | None = None) -> None:
        self.record(name, "COUNT", n, "count", attributes)

    def bytes(self, name: str, n: float, attributes: dict[str, Any] | None = None) -> None:
        self.record(name, "BYTES", n, "bytes", attributes)

    def error(self, name: str, n: float = 1, attributes: dict[str, Any] | None = None) -> None:
        self.record(name, "ERROR", n, "count", attributes)

    def throughput(
        self,
        name: str,
        items: float,
        seconds: float,
        unit: str = "records/s",
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Records items/seconds as THROUGHPUT (nothing when seconds is 0)."""
        if seconds > 0:
            attrs = {**(attributes or {}), "items": items, "seconds": seconds}
            self.record(name, "THROUGHPUT", items / seconds, unit, attrs)

    def record_step(
        self,
        records: int | None = None,
        bytes_: int | None = None,
        seconds: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """The step's canonical runtime, records, bytes and records/s (once per process).

        `seconds` defaults to the time since the collector was created.
        """
        secs = time.perf_counter() - self._started if seconds is None else seconds
        self.record(STEP_RUNTIME, "RUNTIME", secs, "s", attributes)
        if records is not None:
            self.count(STEP_RECORDS, records, attributes)
            self.throughput(STEP_THROUGHPUT, records, secs, "records/s", attributes)
        if bytes_ is not None:
            self.bytes(STEP_BYTES, bytes_, attributes)

    @contextmanager
    def step_timer(self, attributes: dict[str, Any] | None = None) -> Iterator[dict[str, int]]:
        """Times the whole step; set `records` / `bytes` in the yielded dict before it ends."""
        t0 = time.perf_counter()
        result: dict[str, int] = {}
        yield result
        self.record_step(
            records=result.get("records"),
            bytes_=result.get("bytes"),
            seconds=time.perf_counter() - t0,
            attributes=attributes,
        )

    @contextmanager
    def spark_stages(self, spark: SparkSession, label: str | None = None) -> Iterator[None]:
        """Records the Spark stages the block ran (duration, I/O, shuffle, spill, GC, memory)
        and the cache hit rate of persisted data, read from Spark's status store."""
        capture = StageCapture(spark)
        capture.start()
        try:
            yield
        finally:
            for name, metric_type, value, unit, attrs in capture_rows(capture.collect(), label):
                self.record(name, metric_type, value, unit, attrs)

    def records(self) -> list[MetricRecord]:
        """Records not flushed yet (a copy)."""
        return list(self._pending)

    def flush(self) -> str | None:
        """Writes pending records as one Parquet file and clears them; returns its URI.

        File: `{lake}/metrics/performance_metrics/part-{run}-{step}-{uuid}.parquet`.
        """
        if not self._pending:
            return None
        records, self._pending = self._pending, []
        table = records_to_table(records)
        assert table.column_names == METRIC_COLUMNS
        directory = metrics_dir_uri(self.lake_root)
        name = f"part-{_safe(self.run_id)}-{_safe(self.step)}-{uuid.uuid4()}.parquet"
        fs, dir_path = _filesystem(directory)
        fs.create_dir(dir_path, recursive=True)
        if isinstance(fs, pafs.LocalFileSystem):
            # Readers skip dot-files, so nobody reads a half-written file; then an atomic rename.
            tmp = f"{dir_path}/.{name}.tmp"
            pq.write_table(table, tmp, filesystem=fs, compression="zstd")
            fs.move(tmp, f"{dir_path}/{name}")
        else:
            pq.write_table(table, f"{dir_path}/{name}", filesystem=fs, compression="zstd")
        if self.emitter is not None:
            self.emitter.emit(records)
        return f"{directory}/{name}"
