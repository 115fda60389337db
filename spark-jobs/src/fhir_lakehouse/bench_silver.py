"""Silver benchmark (the Python side of bench/silver.bench.ts): three ways to build the default
views from the same bronze run, timed side by side in one process.

1. the silver job (run_silver: resources MERGE + compiled views into Iceberg), JVM already up;
2. the naive way: spark.read.json with schema inference, then a Python UDF per view column
   (evaluating the column's FHIRPath over the row as a Python dict), written to Parquet. It is
   ~10x slower per resource than the others, so at full size it runs on a deterministic sample of
   the same run (every Nth resource of each view type by a hash of its id, >= 100,000 resources)
   and is compared by resources per second; --quick sizes run it on everything;
3. DuckDB: read_ndjson_objects over the same resources (exported to NDJSON beforehand, untimed)
   and one SQL query per view with JSON extraction and unnest, written to Parquet (zstd).

Prints one JSON BenchResult (bench/types.ts) on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir_lakehouse.silver_bronze import read_manifest, read_run, run_inputs
from fhir_lakehouse.silver_views import DEFAULT_VIEWS_DIR, load_silver_views
from fhir_lakehouse.views import fhirpath as fp

CONFIG = Path(__file__).resolve().parents[3] / "config" / "local.json"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the naive way: a tiny FHIRPath interpreter over Python dicts, one UDF per column ------------

Collection = list[Any]


def _children(items: Collection, name: str) -> Collection:
    out: Collection = []
    for item in items:
        if isinstance(item, dict):
            value = item.get(name)
            if value is None:
                # choice types: value -> valueQuantity, valueString, ...
                value = [
                    v
                    for k, v in item.items()
                    if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
                ]
                value = value or None
            if isinstance(value, list):
                out.extend(value)
            elif value is not None:
                out.append(value)
    return out


_TYPE_KEYS = {
    "Quantity": "value",
    "CodeableConcept": "coding",
    "Period": "start",
    "Reference": "reference",
}


def _of_type(items: Collection, type_name: str) -> Collection:
    def is_type(v: Any) -> bool:  # noqa: ANN401
        if type_name == "string" or type_name == "dateTime":
            return isinstance(v, str)
        if type_name == "boolean":
            return isinstance(v, bool)
        key = _TYPE_KEYS.get(type_name)
        return isinstance(v, dict) and (
            key is None or key in v or type_name == "CodeableConcept" and "text" in v
        )

    return [v for v in items if is_type(v)]


def evaluate(node: fp.Node, focus: Collection, root: dict[str, Any]) -> Collection:
    """The subset of FHIRPath the default views use, over JSON-like Python values."""
    if isinstance(node, fp.This):
        return focus
    if isinstance(node, fp.Literal):
        return [] if node.value is None else [node.value]
    if isinstance(node, fp.Member):
        return _children(evaluate(node.target, focus, root), node.name)
    if isinstance(node, fp.Binary):
        left, right = evaluate(node.left, focus, root), evaluate(node.right, focus, root)
        if node.op == "|":
            return left + [r for r in right if r not in left]
        if node.op == "=":
            return [] if not left or not right else [left == right]
        if node.op == "or":
            return [bool(left and left[0]) or bool(right and right[0])]
        raise NotImplementedError(node.op)
    if isinstance(node, fp.Call):
        items = evaluate(node.target, focus, root)
        name, args = node.name, node.args
        if name == "first":
            return items[:1]
        if name == "exists":
            return [bool(items)]
        if name == "count":
            return [len(items)]
        if name == "where":
            return [i for i in items if evaluate(args[0], [i], root) == [True]]
        if name == "ofType":
            arg = args[0]
            type_name = arg.name if isinstance(arg, fp.Member) else str(getattr(arg, "value", arg))
            return _of_type(items, type_name)
        if name == "join":
            sep = evaluate(args[0], focus, root)[0] if args else ""
            return [sep.join(str(i) for i in items)] if items else []
        if name == "getResourceKey":
            return [root.get("id")]
        if name == "getReferenceKey":
            refs = [i.get("reference") for i in items if isinstance(i, dict) and i.get("reference")]
            return [r.rsplit("/", 1)[-1] for r in refs]
        if name == "upper":
            return [str(i).upper() for i in items]
        raise NotImplementedError(name)
    raise NotImplementedError(type(node).__name__)


def _column_udf(path: str) -> Callable[[Any], Any]:
    ast = fp.parse(path)

    def column(row: Any) -> Any:  # noqa: ANN401
        resource = row.asDict(recursive=True)
        values = evaluate(ast, [resource], resource)
        return None if not values else str(values[0])

    return column


# The naive way's sample: at least this many resources (all of them when the run is smaller).
NAIVE_SAMPLE_MIN = 100_000


def sample_every(view_resources: int, minimum: int = NAIVE_SAMPLE_MIN) -> int:
    """N of "every Nth resource": the largest N whose sample still holds >= `minimum` resources
    (with a 5% margin for the hash's spread); 1 = everything (pure)."""
    return max(1, int(view_resources / (minimum * 1.05)))


def naive_sample(bronze_rows: Any, every: int) -> Any:  # noqa: ANN401
    """Every Nth resource of each type, chosen by a hash of its id: deterministic, type-stratified."""
    from pyspark.sql import functions as F

    if every <= 1:
        return bronze_rows
    return bronze_rows.where(F.pmod(F.xxhash64("resource_type", "id"), F.lit(every)) == 0)


def run_naive(spark: Any, bronze_rows: Any, views: list[Any], out_dir: Path) -> None:  # noqa: ANN401
    """spark.read.json (schema inference) per type, then a Python UDF per view column."""
    from pyspark.sql import functions as F

    for view in views:
        text = bronze_rows.where(F.col("resource_type") == view.resource_type).select("resource")
        df = spark.read.json(text.rdd.map(lambda r: r[0]))  # infers the schema: a full pass
        whole = F.struct(*[F.col(f"`{c}`") for c in df.columns])
        cols = []
        for column in view.definition.columns():
            fn = F.udf(_column_udf(column.path), "string")
            cols.append(fn(whole).alias(column.name))
        df.select(*cols).write.mode("overwrite").parquet(str(out_dir / view.name))


# --- DuckDB: read_ndjson_objects + JSON extraction / unnest, one query per view -----------------


def _s(path: str) -> str:
    return f"json_extract_string(json, '$.{path}')"


def _ts(path: str) -> str:
    return f"TRY_CAST({_s(path)} AS TIMESTAMPTZ)"


def _first_of(*paths: str, ts: bool = True) -> str:
    parts = [(_ts(p) if ts else _s(p)) for p in paths]
    return f"coalesce({', '.join(parts)})"


def _ref(path: str, type_name: str | None = None) -> str:
    pattern = f"{type_name}/([^/]+)$" if type_name else "([^/]+)$"
    return f"nullif(regexp_extract({_s(path + '.reference')}, '{pattern}', 1), '')"


def _coding_where(path: str, system: str) -> str:
    return f"list_filter(json_extract(json, '$.{path}[*]'), lambda c: c->>'system' = '{system}')[1]->>'code'"


def _code(
    prefix: str = "code", names: tuple[str, str, str] = ("code_system", "code", "code_display")
) -> list[str]:
    return [
        f"{_s(prefix + '.coding[0].system')} AS {names[0]}",
        f"{_s(prefix + '.coding[0].code')} AS {names[1]}",
        f"{_s(prefix + '.coding[0].display')} AS {names[2]}",
    ]


DUCKDB_VIEWS: dict[str, tuple[str, list[str]]] = {
    "patient": (
        "Patient",
        [
            "json->>'id' AS id",
            f"{_s('gender')} AS gender",
            f"TRY_CAST({_s('birthDate')} AS DATE) AS birth_date",
            f"coalesce(TRY_CAST({_s('deceasedBoolean')} AS BOOLEAN), {_s('deceasedDateTime')} IS NOT NULL) AS deceased",
            f"{_s('name[0].family')} AS family_name",
            "array_to_string(CAST(json_extract_string(json, '$.name[0].given[*]') AS VARCHAR[]), ' ') AS given_names",
            f"{_s('address[0].city')} AS city",
            f"{_s('address[0].state')} AS state",
            f"{_s('address[0].postalCode')} AS postal_code",
            "list_filter(json_extract(json, '$.identifier[*]'), lambda i: list_contains(CAST(json_extract_string(i, '$.type.coding[*].code') AS VARCHAR[]), 'MR'))[1]->>'value' AS mrn",
            f"{_ref('managingOrganization', 'Organization')} AS managing_organization_key",
        ],
    ),
    "encounter": (
        "Encounter",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_s('status')} AS status",
            f"{_s('class.code')} AS class_code",
            f"{_s('type[0].coding[0].system')} AS type_system",
            f"{_s('type[0].coding[0].code')} AS type_code",
            f"{_s('type[0].coding[0].display')} AS type_display",
            f"{_ts('period.start')} AS period_start",
            f"{_ts('period.end')} AS period_end",
            f"{_ref('serviceProvider', 'Organization')} AS service_provider_key",
        ],
    ),
    "observation": (
        "Observation",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_ref('encounter', 'Encounter')} AS encounter_key",
            f"{_s('status')} AS status",
            f"{_s('category[0].coding[0].code')} AS category",
            *_code(),
            f"TRY_CAST({_s('valueQuantity.value')} AS DOUBLE) AS value_quantity",
            f"{_s('valueQuantity.unit')} AS value_unit",
            f"{_s('valueCodeableConcept.coding[0].code')} AS value_code",
            f"{_s('valueCodeableConcept.coding[0].system')} AS value_code_system",
            f"{_s('valueString')} AS value_string",
            f"{_first_of('effectiveDateTime', 'effectivePeriod.start')} AS effective_at",
            f"{_ts('issued')} AS issued",
        ],
    ),
    "condition": (
        "Condition",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_ref('encounter', 'Encounter')} AS encounter_key",
            f"{_s('clinicalStatus.coding[0].code')} AS clinical_status",
            f"{_s('verificationStatus.coding[0].code')} AS verification_status",
            f"{_s('category[0].coding[0].code')} AS category",
            *_code(),
            f"{_coding_where('code.coding', 'http://snomed.info/sct')} AS snomed_code",
            f"{_coding_where('code.coding', 'http://hl7.org/fhir/sid/icd-10-cm')} AS icd10_code",
            f"{_first_of('onsetDateTime', 'onsetPeriod.start')} AS onset_at",
            f"{_first_of('abatementDateTime', 'abatementPeriod.start')} AS abatement_at",
            f"{_ts('recordedDate')} AS recorded_date",
        ],
    ),
    "medication_request": (
        "MedicationRequest",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_ref('encounter', 'Encounter')} AS encounter_key",
            f"{_s('status')} AS status",
            f"{_s('intent')} AS intent",
            f"{_coding_where('medicationCodeableConcept.coding', 'http://www.nlm.nih.gov/research/umls/rxnorm')} AS rxnorm_code",
            f"coalesce({_s('medicationCodeableConcept.text')}, {_s('medicationCodeableConcept.coding[0].display')}, {_s('medicationReference.display')}) AS medication_display",
            f"{_ts('authoredOn')} AS authored_on",
            f"{_ref('requester')} AS requester_key",
        ],
    ),
    "allergy_intolerance": (
        "AllergyIntolerance",
        [
            "json->>'id' AS id",
            f"{_ref('patient', 'Patient')} AS patient_key",
            f"{_s('clinicalStatus.coding[0].code')} AS clinical_status",
            f"{_s('verificationStatus.coding[0].code')} AS verification_status",
            f"{_s('criticality')} AS criticality",
            *_code(),
            f"{_ts('recordedDate')} AS recorded_date",
        ],
    ),
    "procedure": (
        "Procedure",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_ref('encounter', 'Encounter')} AS encounter_key",
            f"{_s('status')} AS status",
            *_code(),
            f"{_first_of('performedDateTime', 'performedPeriod.start')} AS performed_at",
        ],
    ),
    "immunization": (
        "Immunization",
        [
            "json->>'id' AS id",
            f"{_ref('patient', 'Patient')} AS patient_key",
            f"{_s('status')} AS status",
            *_code("vaccineCode", ("vaccine_code_system", "vaccine_code", "vaccine_display")),
            f"{_ts('occurrenceDateTime')} AS occurrence_at",
        ],
    ),
    "diagnostic_report": (
        "DiagnosticReport",
        [
            "json->>'id' AS id",
            f"{_ref('subject', 'Patient')} AS patient_key",
            f"{_ref('encounter', 'Encounter')} AS encounter_key",
            f"{_s('status')} AS status",
            f"{_s('category[0].coding[0].code')} AS category",
            *_code(),
            f"{_first_of('effectiveDateTime', 'effectivePeriod.start')} AS effective_at",
            f"{_ts('issued')} AS issued",
            "coalesce(json_array_length(json, '$.result'), 0) AS result_count",
        ],
    ),
}


def export_ndjson(bronze_rows: Any, types: set[str], ndjson_dir: Path) -> None:  # noqa: ANN401
    """The run's resource text per type as NDJSON (DuckDB's input; not timed)."""
    for rtype in sorted(types):
        rows = bronze_rows.where(bronze_rows.resource_type == rtype).select("resource")
        out = ndjson_dir / rtype
        out.mkdir(parents=True, exist_ok=True)
        # Spark's text writer: one line per resource (the JSON text as bronze has it).
        rows.write.mode("overwrite").text(str(out))


def run_duckdb(ndjson_dir: Path, out_dir: Path, threads: int) -> int:
    """Every default view as one DuckDB query over read_ndjson_objects, written to Parquet."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    rows = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (rtype, exprs) in DUCKDB_VIEWS.items():
        files = str(ndjson_dir / rtype / "*.txt")
        if not list((ndjson_dir / rtype).glob("*.txt")):
            continue
        sql = f"SELECT {', '.join(exprs)} FROM read_ndjson_objects('{files}')"
        con.execute(
            f"COPY ({sql}) TO '{out_dir / name}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
        rows += int(con.execute(f"SELECT count(*) FROM '{out_dir / name}.parquet'").fetchone()[0])
    con.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """python -m fhir_lakehouse.bench_silver --bronze URI --run-id RUN --workdir DIR."""
    parser = argparse.ArgumentParser(
        prog="python -m fhir_lakehouse.bench_silver", description=__doc__
    )
    parser.add_argument("--bronze", required=True, help="bronze URI holding the run (file:///...)")
    parser.add_argument("--run-id", required=True, help="the bronze run to build views from")
    parser.add_argument(
        "--workdir", required=True, help="scratch directory (lakes, NDJSON, outputs)"
    )
    parser.add_argument("--views", default=str(DEFAULT_VIEWS_DIR), help="ViewDefinitions directory")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the (slow) naive way")
    args = parser.parse_args(argv)

    from fhir_lakehouse.silver_job import run_silver, settings_from_json
    from fhir_lakehouse.spark_session import local_session

    # The naive way's Python UDFs run in worker processes: the same interpreter as this one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = Path(args.workdir)
    lake = work / "silver-lake"
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)
    settings = settings_from_json(str(CONFIG))
    t0 = time.perf_counter()
    spark = local_session(f"file://{lake}", settings, app_name="bench-silver")
    jvm_start = time.perf_counter() - t0
    views = load_silver_views(args.views)
    manifest = read_manifest(spark, args.bronze, args.run_id)
    bronze_rows = read_run(spark, run_inputs(spark, args.bronze, manifest))
    view_types = {v.resource_type for v in views}

    _log("silver job ...")
    t0 = time.perf_counter()
    result = run_silver(spark, f"file://{lake}", args.run_id, args.views, bronze_uri=args.bronze)
    silver_s = time.perf_counter() - t0
    resources = result.total("read")
    view_resources = sum(c.read for t, c in result.types.items() if t in view_types)
    view_rows = sum(v.rows_written for v in result.views.values())
    _log(f"silver: {resources} resources in {silver_s:.1f}s ({result.timings})")

    _log("NDJSON for DuckDB (not timed) ...")
    ndjson = work / "ndjson"
    shutil.rmtree(ndjson, ignore_errors=True)
    export_ndjson(bronze_rows, view_types, ndjson)
    threads = int(spark.sparkContext.defaultParallelism)
    _log("duckdb ...")
    t0 = time.perf_counter()
    duck_rows = run_duckdb(ndjson, work / "duckdb-out", threads)
    duck_s = time.perf_counter() - t0
    _log(f"duckdb: {duck_rows} rows in {duck_s:.1f}s")

    naive_s = None
    every = sample_every(view_resources)
    naive_resources = view_resources
    if not args.skip_naive:
        sample = naive_sample(bronze_rows, every)
        if every > 1:  # the sample's own size (counted, not timed)
            naive_resources = sample.where(
                bronze_rows.resource_type.isin(sorted(view_types))
            ).count()
        _log(
            f"naive (read.json + a Python UDF per column) on {naive_resources} resources"
            f" (every {every}th) ..."
        )
        spark.conf.set("spark.sql.execution.pythonUDF.arrow.enabled", "false")
        t0 = time.perf_counter()
        run_naive(spark, sample, views, work / "naive-out")
        naive_s = time.perf_counter() - t0
        _log(f"naive: {naive_s:.1f}s")
    spark.stop()

    silver_rps = resources / silver_s
    # The views' share of the job: the one JSON parse (which also feeds the reject check) and
    # the view table writes.
    views_s = result.timings.get("parse", 0.0) + result.timings.get("refresh_views", 0.0)
    info: dict[str, Any] = {
        "resources": resources,
        "view_resources": view_resources,
        "view_rows": view_rows,
        "duckdb_rows": duck_rows,
        "jvm_start_s": round(jvm_start, 2),
        "silver_s": round(silver_s, 2),
        "silver_views_step_s": round(views_s, 2),
        "silver_resources_per_s": round(silver_rps),
        "duckdb_s": round(duck_s, 2),
        "duckdb_resources_per_s": round(view_resources / duck_s),
        "spark_cores": threads,
        "silver_steps": json.dumps(result.timings),
    }
    ratios: list[dict[str, Any]] = []
    if naive_s is not None:
        info["naive_s"] = round(naive_s, 2)
        info["naive_resources"] = naive_resources
        info["naive_sample_every"] = every
        info["naive_resources_per_s"] = round(naive_resources / naive_s)
        sampled = (
            f" (naive on a deterministic sample of the same run: every {every}th resource of"
            f" each view type by id hash, {naive_resources} resources)"
            if every > 1
            else " (both on every resource of the run)"
        )
        ratios.append(
            {
                "name": "silver.vs_naive",
                "value": round((resources / silver_s) / (naive_resources / naive_s), 3),
                "higherIsBetter": True,
                "target": {"op": ">=", "value": 5},
                "detail": "resources/s: silver job (MERGE + compiled views into Iceberg) vs"
                " spark.read.json with inference + a Python UDF per column" + sampled,
            }
        )
    ratios.append(
        {
            "name": "silver.vs_duckdb",
            "value": round((resources / silver_s) / (view_resources / duck_s), 3),
            "higherIsBetter": True,
            "target": {"op": ">=", "value": 0.5},
            "detail": "resources/s: whole silver job (JVM up) vs DuckDB read_ndjson_objects + JSON/unnest views to Parquet (>= 0.5 = within 2x)",
        }
    )
    if views_s > 0:
        ratios.append(
            {
                "name": "silver.views_step_vs_duckdb",
                "value": round((view_resources / views_s) / (view_resources / duck_s), 3),
                "higherIsBetter": True,
                "detail": "resources/s: the silver job's JSON parse + view table writes (steps parse and refresh_views) vs the same DuckDB views",
            }
        )
    print(json.dumps({"name": "silver", "ratios": ratios, "info": info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
