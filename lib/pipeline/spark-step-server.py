"""The local run's Spark: one long-lived local SparkSession that runs the pipeline's Spark Tasks.

On AWS each Spark Task (SilverJob, GoldJob, Maintenance) is an EMR Serverless job started with
`spark-entrypoint.py <job> --run-id ... --catalog glue`. A local run sends the very same
EntryPointArguments here instead, over stdin, so the three Tasks of a run share one JVM (a JVM and
SparkSession start costs more than a small incremental job) and the session starts while the
extraction is still running.

    python spark-step-server.py --lake file:///DIR/lake --entrypoint lib/constructs/spark-entrypoint.py
        [--settings-json JSON]       (config.processing.localSpark: the same keys EMR gets)

Requests, one JSON object per line on stdin:
    {"id": 1, "op": "job", "argv": ["silver", "--run-id", "R", "--bronze", ...]}
    {"id": 2, "op": "census", "runId": "R", "bronze": "file:///DIR/lake/bronze"}
    {"id": 3, "op": "shutdown"}
Replies, one JSON object per line on file descriptor 3 (stdout and stderr stay free for the JVM's
and the jobs' own output, which the caller keeps for error messages):
    {"type": "ready", "seconds": 9.1}
    {"type": "progress", "id": 1, "completedTasks": 40, "totalTasks": 64, "stage": "...", ...}
    {"type": "result", "id": 1, "ok": true, "exitCode": 0, "seconds": 12.3, "output": {...}}
    {"type": "result", "id": 1, "ok": false, "error": "ExceptionName: first line"}
Replies carry ids, counts and timings only, never resource content.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
from types import ModuleType
from typing import IO, Any

PROGRESS_INTERVAL_S = 0.5


class Channel:
    """The reply channel (fd 3): one JSON object per line, written by several threads."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def load_entrypoint(path: str) -> ModuleType:
    """The EMR entry point module (lib/constructs/spark-entrypoint.py), loaded from its file."""
    spec = importlib.util.spec_from_file_location("spark_entrypoint", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Spark entry point {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json_object(text: str) -> Any:  # noqa: ANN401
    """The JSON a job printed on stdout: the whole text, else its last line that parses."""
    text = text.strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return json.loads(text)
    # A job may print log lines before its JSON: take the last top-level object.
    start = text.rfind("\n{")
    while start >= 0:
        with contextlib.suppress(ValueError):
            return json.loads(text[start + 1 :])
        start = text.rfind("\n{", 0, start)
    return None


class ProgressWatcher(threading.Thread):
    """Reports the task progress of one request's Spark jobs (its job group) twice a second."""

    def __init__(self, spark: Any, group: str, request_id: int, channel: Channel) -> None:  # noqa: ANN401
        super().__init__(daemon=True)
        self.spark = spark
        self.group = group
        self.request_id = request_id
        self.channel = channel
        self.stopped = threading.Event()

    def snapshot(self) -> dict[str, Any] | None:
        tracker = self.spark.sparkContext.statusTracker()
        job_ids = list(tracker.getJobIdsForGroup(self.group) or [])
        if not job_ids:
            return None
        total = done = stages_done = 0
        active: list[str] = []
        for job_id in job_ids:
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                stage = tracker.getStageInfo(stage_id)
                if stage is None:  # skipped (already computed) or evicted from the status store
                    continue
                total += stage.numTasks
                done += stage.numCompletedTasks
                if stage.numCompletedTasks >= stage.numTasks:
                    stages_done += 1
                elif stage.numActiveTasks > 0:
                    active.append(stage.name.split(" at ")[0])
        return {
            "type": "progress",
            "id": self.request_id,
            "jobs": len(job_ids),
            "stagesDone": stages_done,
            "completedTasks": done,
            "totalTasks": total,
            "stage": active[-1] if active else None,
        }

    def run(self) -> None:
        last: dict[str, Any] | None = None
        while not self.stopped.wait(PROGRESS_INTERVAL_S):
            try:
                snap = self.snapshot()
            except Exception:  # noqa: BLE001 - progress must never break a job
                continue
            if snap is not None and snap != last:
                self.channel.send(snap)
                last = snap


class StepServer:
    def __init__(self, lake: str, settings: dict[str, Any] | None, entrypoint: str) -> None:
        from fhir_lakehouse.spark_session import local_session

        self.lake = lake
        self.spark = local_session(lake, settings, app_name="fhir-lakehouse-local-run")
        self.entrypoint = load_entrypoint(entrypoint)

    def run_job(self, request_id: int, argv: list[str], channel: Channel) -> dict[str, Any]:
        group = f"request-{request_id}"
        self.spark.sparkContext.setJobGroup(group, " ".join(argv[:1]), interruptOnCancel=True)
        watcher = ProgressWatcher(self.spark, group, request_id, channel)
        watcher.start()
        captured = io.StringIO()
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(captured):
                try:
                    code = int(self.entrypoint.main(argv) or 0)
                except SystemExit as exit_:  # argparse errors, sys.exit inside a job
                    code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            watcher.stopped.set()
            watcher.join()
            with contextlib.suppress(Exception):
                final = watcher.snapshot()
                if final is not None:
                    channel.send(final)
            self.spark.catalog.clearCache()
        seconds = round(time.perf_counter() - t0, 3)
        return {
            "ok": code == 0,
            "exitCode": code,
            "seconds": seconds,
            "output": last_json_object(captured.getvalue()),
            **({} if code == 0 else {"error": f"{argv[0]} job exited with code {code}"}),
        }

    def census(self, run_id: str, bronze: str) -> dict[str, Any]:
        """Counts per layer for reconciliation: bronze rows and rejects of one run (from the
        Parquet footers), silver.resources rows per type, the run's silver rejects, gold rows."""
        from run_census import bronze_counts, table_counts

        rows, rejects = bronze_counts(bronze, run_id)
        return {"bronze": rows, "bronzeRejected": rejects, **table_counts(self.spark, run_id)}


def watch_parent() -> None:
    """Exits at once when the run that started this process is gone (killed): a job left running
    would otherwise keep writing to the catalog while a resumed run starts its own."""
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=loop, daemon=True).start()


def serve(args: argparse.Namespace, channel: Channel) -> int:
    watch_parent()
    t0 = time.perf_counter()
    settings = json.loads(args.settings_json) if args.settings_json else None
    server = StepServer(args.lake, settings, args.entrypoint)
    channel.send({"type": "ready", "seconds": round(time.perf_counter() - t0, 3)})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = int(request.get("id", 0))
        op = request.get("op")
        if op == "shutdown":
            break
        try:
            if op == "job":
                reply = server.run_job(request_id, [str(a) for a in request["argv"]], channel)
            elif op == "census":
                output = server.census(str(request["runId"]), str(request["bronze"]))
                reply = {"ok": True, "output": output}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as err:  # noqa: BLE001 - reported to the caller, who fails the Task
            traceback.print_exc(file=sys.stderr)
            first = str(err).strip().splitlines()[0][:500] if str(err).strip() else ""
            reply = {"ok": False, "error": f"{type(err).__name__}: {first}"}
        channel.send({"type": "result", "id": request_id, **reply})
    server.spark.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spark-step-server.py",
        description="Runs the local pipeline's Spark Tasks (silver, gold, maintenance) in one"
        " long-lived local SparkSession; requests on stdin, replies on fd 3.",
    )
    parser.add_argument("--lake", required=True, help="lake root URI (file:///DIR/lake)")
    parser.add_argument("--entrypoint", required=True, help="path of spark-entrypoint.py")
    parser.add_argument("--settings-json", help="config.processing.localSpark as JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    channel = Channel(os.fdopen(3, "w", buffering=1, encoding="utf-8"))
    try:
        return serve(args, channel)
    except Exception as err:  # noqa: BLE001 - start-up failure: tell the caller why, then exit
        traceback.print_exc(file=sys.stderr)
        channel.send({"type": "fatal", "error": f"{type(err).__name__}: {str(err)[:500]}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
