"""The Python metrics collector writes the metrics contract that DESIGN.md's pandas query reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from fhir_lakehouse.lake_contract import METRIC_COLUMNS
from fhir_lakehouse.metrics import (
    STEP_RUNTIME,
    STEP_THROUGHPUT,
    CloudWatchEmitter,
    MetricsCollector,
    metrics_dir_uri,
)

REPO = Path(__file__).resolve().parents[2]


def _metrics_dir(lake: Path) -> Path:
    return lake / "metrics" / "performance_metrics"


def test_flush_writes_the_contract_and_designs_query_works(tmp_path: Path) -> None:
    fixed = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    m = MetricsCollector("run-1", "silver", f"file://{tmp_path}", clock=lambda: fixed)
    m.record("merge resources", "RUNTIME", 12.5, "s", {"table": "silver.resources"})
    m.record("view patient", "RUNTIME", 3.0, "s")
    m.count("rows merged", 1000)
    m.record_step(records=1000, bytes_=2048, seconds=20.0)
    uri = m.flush()

    files = list(_metrics_dir(tmp_path).iterdir())
    assert [f.name for f in files] == [uri.rsplit("/", 1)[1]]
    assert files[0].name.startswith("part-run-1-silver-")

    schema = pq.read_schema(files[0])
    assert schema.names == METRIC_COLUMNS
    assert [str(t) for t in schema.types] == [
        "string",
        "string",
        "string",
        "string",
        "double",
        "string",
        "timestamp[us, tz=UTC]",
        "string",
    ]

    # DESIGN.md's query, verbatim, on the directory.
    m = pd.read_parquet(str(_metrics_dir(tmp_path)))
    top = m[m.metric_type == "RUNTIME"].sort_values("value", ascending=False).head(5)
    assert list(top.name) == [STEP_RUNTIME, "merge resources", "view patient"]
    assert str(m.recorded_at.dtype) == "datetime64[us, UTC]"
    assert m.recorded_at.iloc[0] == pd.Timestamp(fixed)
    assert json.loads(m[m.name == "merge resources"].attributes.iloc[0]) == {
        "table": "silver.resources"
    }
    assert m[m.name == STEP_THROUGHPUT].value.iloc[0] == 50.0


def test_timer_records_seconds_and_failure(tmp_path: Path) -> None:
    m = MetricsCollector("r", "gold", str(tmp_path))
    with m.timer("fast"):
        pass
    with pytest.raises(RuntimeError), m.timer("broken", {"table": "t"}):
        raise RuntimeError("boom")
    fast, broken = m.records()
    assert fast.metric_type == "RUNTIME" and fast.unit == "s" and 0 <= fast.value < 60
    assert broken.attributes == {"table": "t", "failed": True}
    with m.step_timer() as step:
        step["records"] = 7
    assert [r.name for r in m.records()][-3:] == [STEP_RUNTIME, "step_records", STEP_THROUGHPUT]


def test_rejects_unknown_types_and_writes_nothing_when_empty(tmp_path: Path) -> None:
    m = MetricsCollector("r", "gold", str(tmp_path))
    with pytest.raises(ValueError, match="unknown metric type LATENCY"):
        m.record("x", "LATENCY", 1.0, "s")
    with pytest.raises(ValueError, match="non-finite"):
        m.record("x", "COUNT", float("nan"), "count")
    assert m.flush() is None
    assert not _metrics_dir(tmp_path).exists()
    assert metrics_dir_uri("s3://b/lake/") == "s3://b/lake/metrics/performance_metrics"


def test_files_of_both_collectors_read_as_one_table(tmp_path: Path) -> None:
    """The TypeScript collector (lib/core/metrics.ts) and this one write one schema."""
    node = shutil.which("node")
    assert node, "node is needed: the TypeScript collector writes half of this lake"
    script = (
        "require('tsx/cjs');"
        "const { MetricsCollector } = require('./lib/core/metrics.ts');"
        "const m = new MetricsCollector({ runId: 'run-1', step: 'extract' });"
        "m.recordStep({ records: 500, bytes: 1e6, seconds: 30 });"
        f"m.flush({json.dumps(str(tmp_path))}).catch((e) => {{ console.error(e); process.exit(1); }});"
    )
    subprocess.run([node, "-e", script], cwd=REPO, check=True, timeout=120)
    py = MetricsCollector("run-1", "silver", f"file://{tmp_path}")
    py.record_step(records=500, seconds=10.0)
    py.flush()

    table = pq.read_table(str(_metrics_dir(tmp_path)))
    assert table.schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")
    m = table.to_pandas()
    runtime = m[m.metric_type == "RUNTIME"].sort_values("value", ascending=False).head(5)
    assert list(zip(runtime.step, runtime.value, strict=True)) == [
        ("extract", 30.0),
        ("silver", 10.0),
    ]


@pytest.fixture
def cloudwatch() -> Iterator[object]:
    """A local CloudWatch API (moto's server on 127.0.0.1): no real AWS is reachable here."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "cloudwatch",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    server.stop()


def test_cloudwatch_emitter_puts_metric_data_with_service_and_step_dimensions(
    tmp_path: Path, cloudwatch: object
) -> None:
    m = MetricsCollector(
        "run-7", "silver", str(tmp_path), emitter=CloudWatchEmitter("FhirTest", client=cloudwatch)
    )
    m.record_step(records=100, seconds=4.0)
    m.error("rejected rows", 2)
    m.flush()
    listed = cloudwatch.list_metrics(Namespace="FhirTest")["Metrics"]  # type: ignore[attr-defined]
    names = sorted(x["MetricName"] for x in listed)
    assert names == sorted([STEP_RUNTIME, "step_records", STEP_THROUGHPUT, "rejected rows"])
    dims = [{"Name": "service", "Value": "fhir-pipeline"}, {"Name": "step", "Value": "silver"}]
    assert all(x["Dimensions"] == dims for x in listed)
    stats = cloudwatch.get_metric_statistics(  # type: ignore[attr-defined]
        Namespace="FhirTest",
        MetricName=STEP_THROUGHPUT,
        Dimensions=dims,
        StartTime=datetime(2000, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert stats[0]["Maximum"] == 25.0
    assert stats[0]["Unit"] == "Count/Second"
