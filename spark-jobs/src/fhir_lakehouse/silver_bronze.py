"""What the silver job reads from bronze: one run's manifest, partitions and reject files.

Only the run's own partitions are read (`resource_type=*/ingest_date=*/run_id=RUN`), never a scan
of all bronze. Files are listed through Hadoop's FileSystem, so the same code reads file:// locally
and s3:// on EMR.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fhir_lakehouse.lake_contract import CONTRACT

_BRONZE = CONTRACT["bronze"]
_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "timestamp": T.TimestampType(),
    "int64": T.LongType(),
}
BRONZE_SCHEMA = T.StructType(
    [T.StructField(c["name"], _SPARK_TYPES[c["type"]], c["nullable"]) for c in _BRONZE["columns"]]
)
# A row's place in bronze: which file (64-bit hash of its path) and which row of it. Lets the job
# pick rows by key columns alone and fetch the JSON of the winners in a single pass.
LOCATOR = ("_file", "_row")

SYSTEM_SCOPE = "*"


@dataclass(frozen=True)
class DeletedEntry:
    """A resource the server says was deleted (bulk `deleted` output)."""

    resource_type: str
    id: str


@dataclass(frozen=True)
class RunManifest:
    """The parts of `_runs/{run}/manifest.json` the silver job uses."""

    run_id: str
    complete: bool
    groups: tuple[str, ...]
    types: tuple[str, ...]
    deleted: tuple[DeletedEntry, ...] = ()
    resources: dict[str, int] = field(default_factory=dict)
    # Bronze-relative paths of the run's part files, when the manifest lists them (the extractor
    # does): read exactly those, no listing at all.
    part_files: tuple[str, ...] = ()
    # Lines bronze rejected, per type ('' = type unknown), when the manifest counts them.
    rejects_by_type: dict[str, int] | None = None

    @property
    def scope(self) -> str:
        """The group scope key: sorted group ids joined with ',' ('*' for a system-level run)."""
        return scope_key(self.groups)


def scope_key(groups: tuple[str, ...] | list[str]) -> str:
    """Canonical key of a set of groups; '*' when the run was not limited to groups."""
    return ",".join(sorted(set(groups))) if groups else SYSTEM_SCOPE


def _deleted_entry(raw: Any) -> DeletedEntry:
    # {"resourceType","id"} as agreed; "Type/id" strings and bulk request.url forms also accepted.
    if isinstance(raw, str):
        rtype, _, rid = raw.strip("/").rpartition("/")
        return DeletedEntry(rtype.rsplit("/", 1)[-1], rid)
    if "resourceType" in raw and "id" in raw:
        return DeletedEntry(str(raw["resourceType"]), str(raw["id"]))
    url = raw.get("url") or raw.get("request", {}).get("url")
    if url:
        return _deleted_entry(str(url))
    raise ValueError(f"deleted entry without resourceType/id: keys {sorted(raw)}")


def parse_manifest(doc: dict[str, Any], run_id: str) -> RunManifest:
    """Reads the fields the silver job needs from a run manifest (pure)."""
    if doc.get("run_id", doc.get("runId", run_id)) != run_id:
        raise ValueError(f"manifest is for run {doc.get('run_id')!r}, not {run_id!r}")
    scope = doc.get("scope") or {}
    complete = doc.get("complete", False)
    if not isinstance(complete, bool):
        raise ValueError("manifest.complete must be a boolean")
    resources = doc.get("resources") or {}
    counts = {
        str(k): int(v["resources"] if isinstance(v, dict) else v) for k, v in resources.items()
    }
    rejects_dir = _BRONZE["rejectsDir"]
    part_files = tuple(
        str(f).lstrip("/")
        for f in doc.get("files") or []
        if isinstance(f, str) and not str(f).lstrip("/").startswith(rejects_dir)
    )
    rejects = doc.get("rejects")
    rejects_by_type = None
    if isinstance(rejects, dict) and isinstance(rejects.get("byType"), dict):
        rejects_by_type = {str(k): int(v) for k, v in rejects["byType"].items() if int(v)}
        if int(rejects.get("untyped") or 0):
            rejects_by_type[""] = int(rejects["untyped"])
    return RunManifest(
        run_id=run_id,
        complete=complete,
        groups=tuple(str(g) for g in scope.get("groups") or []),
        types=tuple(str(t) for t in scope.get("types") or []),
        deleted=tuple(_deleted_entry(d) for d in doc.get("deleted") or []),
        resources=counts,
        part_files=part_files,
        rejects_by_type=rejects_by_type,
    )


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", text)


def run_partition_glob(bronze_uri: str, run_id: str) -> str:
    """Glob of the directories holding one run's bronze files (pure)."""
    return f"{bronze_uri.rstrip('/')}/resource_type=*/ingest_date=*/run_id={_glob_escape(run_id)}"


def _hadoop_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def run_inputs(spark: SparkSession, bronze_uri: str, manifest: RunManifest) -> list[str]:
    """What to read for a run: the manifest's part files, else the run's partition directories."""
    if manifest.part_files:
        return [f"{bronze_uri.rstrip('/')}/{f}" for f in manifest.part_files]
    return list_run_partitions(spark, bronze_uri, manifest.run_id)


def list_run_partitions(spark: SparkSession, bronze_uri: str, run_id: str) -> list[str]:
    """The run's partition directories, found by one glob (a listing, not a read of the data)."""
    fs, pattern = _hadoop_fs(spark, run_partition_glob(bronze_uri, run_id))
    statuses = fs.globStatus(pattern) or []
    return sorted(str(s.getPath().toString()) for s in statuses if s.isDirectory())


def read_text(spark: SparkSession, uri: str) -> str | None:
    """A small text file's content through Hadoop FS (file:// or s3://); None when missing."""
    fs, path = _hadoop_fs(spark, uri)
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def manifest_uri(bronze_uri: str, run_id: str) -> str:
    """`{bronze}/_runs/{run}/manifest.json`."""
    return f"{bronze_uri.rstrip('/')}/{_BRONZE['runsDir']}/{run_id}/{_BRONZE['manifestFile']}"


def read_manifest(spark: SparkSession, bronze_uri: str, run_id: str) -> RunManifest:
    """The run's manifest; a run without one is an error (bronze writes it when the run ends)."""
    text = read_text(spark, manifest_uri(bronze_uri, run_id))
    if text is None:
        raise FileNotFoundError(
            f"no bronze manifest for run {run_id}: {manifest_uri(bronze_uri, run_id)}"
        )
    return parse_manifest(json.loads(text), run_id)


def _as_contract_column(name: str, present: set[str]) -> Column:
    col = F.col(name) if name in present else F.lit(None)
    return col.cast(BRONZE_SCHEMA[name].dataType).alias(name)


def bronze_file_schema(spark: SparkSession, partitions: list[str]) -> T.StructType:
    """The Parquet schema of the run's bronze files (inferred once, by one Spark job)."""
    return spark.read.parquet(*partitions).schema


def read_run(
    spark: SparkSession, partitions: list[str], file_schema: T.StructType | None = None
) -> DataFrame:
    """The run's bronze rows with the contract's columns and a locator (`_file`, `_row`).

    Columns are cast to the contract's types (a writer's timestamp unit or zone flag does not
    matter); the locator comes from Parquet's own file path and row index metadata.
    `file_schema`: the files' schema from `bronze_file_schema`; given, the read infers nothing
    (each inference is a Spark job, and the job reads the run once per type).
    """
    reader = spark.read if file_schema is None else spark.read.schema(file_schema)
    df = reader.parquet(*partitions)
    present = set(df.columns)
    return df.select(
        *[_as_contract_column(c, present) for c in BRONZE_SCHEMA.fieldNames()],
        F.xxhash64(F.col("_metadata.file_path")).alias(LOCATOR[0]),
        F.col("_metadata.row_index").alias(LOCATOR[1]),
    )


def rejects_uri(bronze_uri: str, run_id: str) -> str:
    """`{bronze}/_rejects/run_id={run}`."""
    return f"{bronze_uri.rstrip('/')}/{_BRONZE['rejectsDir']}/run_id={run_id}"


def bronze_reject_counts(
    spark: SparkSession, bronze_uri: str, manifest: RunManifest
) -> dict[str, int]:
    """Lines of the run that bronze could not accept, per resource type ('' when unknown).

    From the manifest's counts when it has them, else from the run's reject files.
    """
    if manifest.rejects_by_type is not None:
        return dict(manifest.rejects_by_type)
    uri = rejects_uri(bronze_uri, manifest.run_id)
    fs, path = _hadoop_fs(spark, uri)
    if not fs.exists(path):
        return {}
    df = spark.read.parquet(uri)
    rows = df.groupBy(F.coalesce(F.col("resource_type"), F.lit(""))).count().collect()
    return {str(r[0]): int(r[1]) for r in rows}
