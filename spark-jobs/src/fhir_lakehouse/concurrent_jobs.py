"""Independent Spark actions run at once from one driver.

A small incremental run is a chain of short jobs and metadata commits whose latency (planning,
catalog round trips, Iceberg commits) leaves the executors idle. Actions that write different
tables from inputs already computed can overlap those gaps. Each thread inherits the caller's
local properties (job group, description), so progress and metrics still follow the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from pyspark import inheritable_thread_target
from pyspark.sql import SparkSession

R = TypeVar("R")


def run_concurrently(tasks: Sequence[Callable[[], R]], workers: int) -> list[R]:
    """Runs `tasks`, up to `workers` at a time, and returns their results in order.

    Every task runs to its end even when another fails; the first failure (in task order) is
    then raised. With one worker or one task, they run in this thread, in order.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(inheritable_thread_target(task)) for task in tasks]
    return [f.result() for f in futures]


@contextmanager
def job_description(spark: SparkSession, text: str) -> Iterator[None]:
    """Labels the Spark jobs this thread starts inside the block (Spark UI, status store), then
    restores the label it had."""
    sc = spark.sparkContext
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(text)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", previous)  # type: ignore[arg-type]
