"""SparkSession factory for local runs and tests: Iceberg over a SQLite JDBC catalog in the work dir.

On EMR Serverless the session's settings come from `sparkSubmitParameters` built by the processing
stack (lib/core/spark-conf.ts) from the same config keys, with the Glue catalog instead; the jobs
then call `get_or_create_session` which just returns the active session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

CATALOG = "lake"
SPARK_LOG_LEVEL_ENV = "FHIR_PIPELINE_SPARK_LOG_LEVEL"
_SPARK_JOBS_DIR = Path(__file__).resolve().parents[2]


def _runtime() -> dict[str, Any]:
    """spark-jobs/runtime.json, read only for local runs: on EMR the package arrives as a zip
    without it (the release label provides Spark and Iceberg there)."""
    return json.loads((_SPARK_JOBS_DIR / "runtime.json").read_text(encoding="utf-8"))


def local_jars() -> list[str]:
    """Paths of the jars fetched by scripts/setup.js (Iceberg runtime, SQLite JDBC)."""
    jars_dir = _SPARK_JOBS_DIR / ".jars"
    paths = []
    for coord in _runtime()["jars"]:
        _group, artifact, version = coord.split(":")
        jar = jars_dir / f"{artifact}-{version}.jar"
        if not jar.exists():
            raise FileNotFoundError(f"{jar} is missing: run `node scripts/setup.js --python` first")
        paths.append(str(jar))
    return paths


def spark_conf_from_settings(settings: dict[str, Any]) -> dict[str, str]:
    """Maps the config's Spark settings (config/*.json processing.localSpark/spark) to Spark conf keys.

    Mirrors lib/core/spark-conf.ts, which builds the same keys for EMR Serverless.
    """
    conf = {
        "spark.driver.memory": settings["driverMemory"],
        "spark.sql.adaptive.enabled": str(settings["adaptiveEnabled"]).lower(),
        "spark.sql.shuffle.partitions": str(settings["shufflePartitions"]),
        "spark.sql.autoBroadcastJoinThreshold": str(settings["autoBroadcastJoinThresholdBytes"]),
        "spark.memory.fraction": str(settings["memoryFraction"]),
        "spark.memory.storageFraction": str(settings["storageFraction"]),
    }
    if settings.get("kryo"):
        conf["spark.serializer"] = "org.apache.spark.serializer.KryoSerializer"
    return conf


def iceberg_local_conf(lake_root: str) -> dict[str, str]:
    """Iceberg SQL (JDBC/SQLite) catalog named `lake` with its warehouse under the lake root.

    The same SQLite file is readable by PyIceberg's SqlCatalog (used for fast local queries).
    """
    root = lake_root.removeprefix("file://")
    catalog_dir = Path(root) / "catalog"
    catalog_dir.mkdir(parents=True, exist_ok=True)
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        f"spark.sql.catalog.{CATALOG}": "org.apache.iceberg.spark.SparkCatalog",
        f"spark.sql.catalog.{CATALOG}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        # WAL + a busy timeout: commits from one JVM otherwise fail at random with SQLITE_BUSY
        # (seen on a loaded machine: "database is locked" on the catalog's UPDATE).
        f"spark.sql.catalog.{CATALOG}.uri": (
            f"jdbc:sqlite:{catalog_dir / 'iceberg.db'}?journal_mode=WAL&busy_timeout=60000"
        ),
        f"spark.sql.catalog.{CATALOG}.jdbc.schema-version": "V1",
        # WAL: a reader's open transaction (e.g. a persisted DataFrame read from Iceberg) must not
        # block the catalog commit of a later write (SQLITE_BUSY "database is locked" otherwise).
        f"spark.sql.catalog.{CATALOG}.jdbc.journal_mode": "WAL",
        # One catalog connection: SQLite has one writer, and two pooled connections committing
        # from parallel threads (gold refreshes tables concurrently) fail with
        # SQLITE_BUSY_SNAPSHOT, which Iceberg reports as a commit in an unknown state.
        f"spark.sql.catalog.{CATALOG}.clients": "1",
        f"spark.sql.catalog.{CATALOG}.warehouse": f"file://{Path(root) / 'warehouse'}",
        "spark.sql.defaultCatalog": CATALOG,
    }


def local_session(
    lake_root: str,
    settings: dict[str, Any] | None = None,
    app_name: str = "fhir-lakehouse",
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """A local-mode SparkSession with Iceberg and the work dir's catalog."""
    builder = SparkSession.builder.appName(app_name).master(
        os.environ.get("SPARK_MASTER", "local[2]")
    )
    conf: dict[str, str] = {
        "spark.jars": ",".join(local_jars()),
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.iceberg.vectorization.enabled": "true",
    }
    if settings:
        conf.update(spark_conf_from_settings(settings))
    else:
        conf["spark.sql.shuffle.partitions"] = "4"
    conf.update(iceberg_local_conf(lake_root))
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # FHIR_PIPELINE_SPARK_LOG_LEVEL (INFO, DEBUG, ...) makes a local run's Spark log verbose for a
    # diagnosis; the reliability tests run with it and check that no PHI reaches the log.
    spark.sparkContext.setLogLevel(os.environ.get(SPARK_LOG_LEVEL_ENV, "WARN").upper())
    return spark


def catalog_tables(spark: SparkSession, namespace: str, catalog: str = CATALOG) -> list[str]:
    """Names of the tables in `catalog.namespace` (sorted; [] when the namespace does not exist).

    Asks the catalog plugin directly: the first `SHOW TABLES` of a session costs seconds (measured
    6-9 s on a busy 2-core machine, 0.1 s for this call), which every local run paid twice.
    """
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    gateway = spark.sparkContext._gateway  # type: ignore[attr-defined]
    plugin = spark._jsparkSession.sessionState().catalogManager().catalog(catalog)
    path = gateway.new_array(jvm.java.lang.String, 1)
    path[0] = namespace
    if not plugin.namespaceExists(path):
        return []
    identifiers = plugin.listTables(path)
    return sorted(str(identifiers[i].name()) for i in range(len(identifiers)))


def get_or_create_session(lake_root: str, settings: dict[str, Any] | None = None) -> SparkSession:
    """The active session (EMR Serverless, configured by spark-submit) or a new local one."""
    active = SparkSession.getActiveSession()
    return active if active is not None else local_session(lake_root, settings)
