"""A hand-built silver fixture: six patients whose gold rows are worked out by hand in the tests.

The rows carry exactly the cases the gold tests need: ties on effective time (broken by
_last_updated, then by id), unknown _last_updated, missing values (no value, no time, no code, no
patient, no birth date, no encounter start), entered-in-error and refuted records, two displays for
one code, two units for one code, encounters on both sides of a UTC month boundary, and condition
counts on both sides of the suppression threshold (3 in the tests).

`after_p2_change()` is the same silver after a run that changed only patient p2.
Columns are those of /work/helpers/VIEWS.md plus silver's metadata columns.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fhir_lakehouse.gold_incremental import record_changed_patients

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
A1C = "Hemoglobin A1c/Hemoglobin.total in Blood"

META = [("_run_id", "string"), ("_content_hash", "string"), ("_last_updated", "timestamp")]
SILVER_SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "patient": [
        ("id", "string"), ("gender", "string"), ("birth_date", "date"), ("deceased", "boolean"),
        ("family_name", "string"), ("given_names", "string"), ("city", "string"), ("state", "string"),
        ("postal_code", "string"), ("mrn", "string"), ("managing_organization_key", "string"),
    ],
    "encounter": [
        ("id", "string"), ("patient_key", "string"), ("status", "string"), ("class_code", "string"),
        ("type_system", "string"), ("type_code", "string"), ("type_display", "string"),
        ("period_start", "timestamp"), ("period_end", "timestamp"), ("service_provider_key", "string"),
    ],
    "observation": [
        ("id", "string"), ("patient_key", "string"), ("encounter_key", "string"), ("status", "string"),
        ("category", "string"), ("code_system", "string"), ("code", "string"), ("code_display", "string"),
        ("value_quantity", "double"), ("value_unit", "string"), ("value_code", "string"),
        ("value_code_system", "string"), ("value_string", "string"), ("effective_at", "timestamp"),
        ("issued", "timestamp"),
    ],
    "condition": [
        ("id", "string"), ("patient_key", "string"), ("encounter_key", "string"),
        ("clinical_status", "string"), ("verification_status", "string"), ("category", "string"),
        ("code_system", "string"), ("code", "string"), ("code_display", "string"),
        ("snomed_code", "string"), ("icd10_code", "string"), ("onset_at", "timestamp"),
        ("abatement_at", "timestamp"), ("recorded_date", "timestamp"),
    ],
    "medication_request": [
        ("id", "string"), ("patient_key", "string"), ("encounter_key", "string"), ("status", "string"),
        ("intent", "string"), ("rxnorm_code", "string"), ("medication_display", "string"),
        ("authored_on", "timestamp"), ("requester_key", "string"),
    ],
}  # fmt: skip


def ts(text: str) -> datetime:
    """A UTC timestamp from 'YYYY-MM-DDTHH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


def _patient(
    pid: str, gender: str | None, birth: str | None, deceased: bool | None
) -> dict[str, Any]:
    return {
        "id": pid,
        "gender": gender,
        "birth_date": d(birth) if birth else None,
        "deceased": deceased,
    }


def _enc(
    eid: str,
    pid: str,
    status: str,
    cls: str,
    type_code: str | None,
    display: str | None,
    start: str | None,
) -> dict[str, Any]:
    return {
        "id": eid, "patient_key": pid, "status": status, "class_code": cls,
        "type_system": SNOMED if type_code else None, "type_code": type_code, "type_display": display,
        "period_start": ts(start) if start else None,
    }  # fmt: skip


def _obs(oid: str, pid: str | None, status: str, category: str, code: str | None, display: str | None,
         value: float | None, unit: str | None, effective: str | None, last_updated: str | None,
         value_code: str | None = None, value_string: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": oid, "patient_key": pid, "status": status, "category": category,
        "code_system": LOINC if code else None, "code": code, "code_display": display,
        "value_quantity": value, "value_unit": unit,
        "value_code": value_code, "value_code_system": SNOMED if value_code else None,
        "value_string": value_string, "effective_at": ts(effective) if effective else None,
        "_last_updated": ts(last_updated) if last_updated else None,
    }  # fmt: skip


def _cond(cid: str, pid: str, clinical: str, verification: str | None, system: str | None,
          code: str | None, display: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": cid, "patient_key": pid, "clinical_status": clinical, "verification_status": verification,
        "code_system": system, "code": code, "code_display": display,
        "snomed_code": code if system == SNOMED else None, "icd10_code": code if system == ICD10 else None,
    }  # fmt: skip


def _med(mid: str, pid: str, status: str, intent: str, rxnorm: str | None, display: str | None,
         authored: str | None, encounter: str | None, requester: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": mid, "patient_key": pid, "status": status, "intent": intent, "rxnorm_code": rxnorm,
        "medication_display": display, "authored_on": ts(authored) if authored else None,
        "encounter_key": encounter, "requester_key": requester,
    }  # fmt: skip


SBP, HR, TEMP, SMOKING = "8480-6", "8867-4", "8310-5", "72166-2"

FIXTURE: dict[str, list[dict[str, Any]]] = {
    "patient": [
        _patient("p1", "female", "1980-06-30", False),  # birthday on the reference date
        _patient("p2", "male", "1990-07-01", None),  # birthday the day after it
        _patient("p3", "female", None, None),  # unknown birth date
        _patient("p4", "male", "2000-02-29", False),
        _patient("p5", None, "1950-01-15", True),
        _patient("p6", "other", "2010-12-31", None),
    ],
    "encounter": [
        _enc("e1", "p1", "finished", "AMB", "185349003", "Encounter for check up", "2024-05-10T09:00"),
        _enc("e2", "p1", "finished", "IMP", "32485007", "Hospital admission", "2024-06-02T22:30"),
        _enc("e3", "p2", "finished", "AMB", "185349003", "Encounter for check up (procedure)", "2024-05-20T14:00"),
        _enc("e4", "p2", "finished", "IMP", "32485007", "Hospital admission", "2024-06-15T08:00"),
        _enc("e5", "p3", "entered-in-error", "AMB", "185349003", "Encounter for check up", "2024-06-01T10:00"),
        _enc("e6", "p4", "finished", "EMER", "50849002", "Emergency room admission", "2024-04-30T23:59:59"),
        _enc("e7", "p4", "finished", "IMP", "32485007", "Hospital admission", "2024-05-01T00:00"),
        _enc("e8", "p5", "planned", "AMB", "185349003", "Encounter for check up", None),
        _enc("e9", "p1", "finished", "AMB", None, None, "2024-05-25T10:00"),
    ],
    "observation": [
        _obs("obs-01", "p1", "final", "laboratory", "4548-4", A1C, 7.2, "%", "2024-05-10T09:00", "2024-05-10T10:00"),
        _obs("obs-02", "p1", "final", "laboratory", "4548-4", A1C, 6.8, "%", "2024-06-20T09:00", "2024-06-20T10:00"),
        _obs("obs-03", "p2", "final", "laboratory", "4548-4", A1C, 8.1, "%", "2024-06-15T08:30", "2024-06-15T09:00"),
        _obs("obs-04", "p2", "amended", "laboratory", "4548-4", A1C, 8.4, "%", "2024-06-15T08:30", "2024-06-16T09:00"),
        _obs("obs-05", "p4", "final", "laboratory", "4548-4", A1C, 6.1, "%", "2024-05-01T00:30", None),
        _obs("obs-06", "p4", "final", "laboratory", "4548-4", A1C, 6.3, "%", "2024-05-01T00:30", None),
        _obs("obs-07", "p3", "entered-in-error", "laboratory", "4548-4", A1C, 9.9, "%", "2024-06-25T10:00", "2024-06-25T11:00"),
        _obs("obs-08", "p5", "final", "laboratory", "4548-4", A1C, 5.9, "%", "2024-06-01T12:00", None),
        _obs("obs-09", "p5", "final", "laboratory", "4548-4", A1C, 6.0, "%", "2024-06-01T12:00", "2024-06-01T13:00"),
        _obs("obs-10", "p1", "final", "vital-signs", SBP, "Systolic blood pressure", 150.0, "mm[Hg]", "2024-06-20T09:05", "2024-06-20T10:00"),
        _obs("obs-11", "p2", "final", "vital-signs", SBP, "Systolic blood pressure", 120.0, "mm[Hg]", "2024-06-15T08:35", "2024-06-15T09:00"),
        _obs("obs-12", "p4", "final", "vital-signs", SBP, "Systolic blood pressure", 165.0, "mm[Hg]", "2024-05-01T00:35", None),
        _obs("obs-13", "p2", "final", "vital-signs", HR, "Heart rate", 110.0, "/min", "2024-06-28T10:00", "2024-06-28T10:05"),
        _obs("obs-14", "p1", "final", "vital-signs", HR, "Heart rate", 72.0, "/min", "2024-06-20T09:06", "2024-06-20T10:00"),
        _obs("obs-15", "p5", "final", "vital-signs", TEMP, "Body temperature", 38.4, "Cel", "2024-06-29T23:30", "2024-06-29T23:45"),
        _obs("obs-16", "p6", "final", "vital-signs", SBP, "Systolic blood pressure", None, None, "2024-06-10T10:00", None, value_string="refused"),
        _obs("obs-17", "p6", "final", "vital-signs", SBP, "Systolic blood pressure", 118.0, "mm[Hg]", None, None),
        _obs("obs-18", "p1", "final", "social-history", SMOKING, "Tobacco smoking status", None, None, "2024-05-10T09:10", None, value_code="8517006"),
        _obs("obs-19", "p2", "final", "laboratory", None, None, 5.0, "mg/dL", "2024-06-01T10:00", None),
        _obs("obs-20", None, "final", "vital-signs", HR, "Heart rate", 80.0, "/min", "2024-06-28T11:00", None),
        _obs("obs-21", "p6", "final", "laboratory", "4548-4", A1C, 48.0, "mmol/mol", "2024-06-15T07:00", None),
        _obs("obs-22", "p5", "final", "vital-signs", HR, "Heart rate", 95.0, "/min", "2024-06-28T12:00", None),
        _obs("obs-23", "p6", "final", "vital-signs", HR, "Heart rate", 60.0, "/min", "2024-06-28T18:00", None),
    ],
    "condition": [
        _cond("c1", "p1", "active", "confirmed", SNOMED, "44054006", "Diabetes mellitus type 2"),
        _cond("c2", "p2", "active", "confirmed", SNOMED, "44054006", "Type 2 diabetes mellitus"),
        _cond("c3", "p4", "resolved", "confirmed", SNOMED, "44054006", "Diabetes mellitus type 2"),
        _cond("c4", "p1", "active", None, SNOMED, "38341003", "Hypertension"),
        _cond("c5", "p1", "inactive", "confirmed", SNOMED, "38341003", "Hypertension"),
        _cond("c6", "p5", "active", "confirmed", SNOMED, "38341003", "Hypertension"),
        _cond("c7", "p6", "active", "refuted", SNOMED, "38341003", "Hypertension"),
        _cond("c8", "p3", "active", "confirmed", ICD10, "E11.9", "Type 2 diabetes mellitus without complications"),
        _cond("c9", "p2", "active", "entered-in-error", SNOMED, "195967001", "Asthma"),
        _cond("c10", "p5", "active", "confirmed", None, None, None),
    ],
    "medication_request": [
        _med("m1", "p1", "active", "order", "860975", "metformin 500 MG", "2024-05-10T09:30", "e1", "pr1"),
        _med("m2", "p1", "active", "order", "197361", "amlodipine 5 MG", "2024-05-10T09:31", "e1", "pr1"),
        _med("m3", "p1", "stopped", "order", "310798", "hydrochlorothiazide 25 MG", "2023-01-01T08:00", None, "pr1"),
        _med("m4", "p2", "active", "plan", None, "Custom compound", None, None, None),
        _med("m5", "p3", "completed", "order", "860975", "metformin 500 MG", "2024-01-01T08:00", None, "pr2"),
        _med("m6", "p5", "active", "order", "860975", "metformin 500 MG", "2024-06-01T12:00", "e8", "pr2"),
    ],
}  # fmt: skip


def after_p2_change() -> dict[str, list[dict[str, Any]]]:
    """Silver after a run that changed patient p2 only.

    p2 has a new HbA1c (obs-24, the latest), its heart rate obs-13 and check-up e3 were deleted,
    its diabetes c2 resolved, a new hypertension diagnosis c11 appeared (which lifts the
    hypertension count to the threshold), and its medication m4 was stopped.
    """
    rows = copy.deepcopy(FIXTURE)
    rows["observation"] = [r for r in rows["observation"] if r["id"] != "obs-13"]
    rows["observation"].append(
        _obs("obs-24", "p2", "final", "laboratory", "4548-4", A1C, 7.5, "%", "2024-06-29T09:00", "2024-06-29T10:00")
    )  # fmt: skip
    rows["encounter"] = [r for r in rows["encounter"] if r["id"] != "e3"]
    for r in rows["condition"]:
        if r["id"] == "c2":
            r["clinical_status"] = "resolved"
    rows["condition"].append(
        _cond("c11", "p2", "active", "confirmed", SNOMED, "38341003", "Hypertension")
    )
    for r in rows["medication_request"]:
        if r["id"] == "m4":
            r["status"] = "stopped"
    return rows


def write_silver(
    spark: SparkSession,
    rows_by_view: dict[str, list[dict[str, Any]]],
    run_id: str,
    changed_patients: list[str] | None = None,
) -> None:
    """Writes the views as lake.silver.<view> (replacing their rows, one snapshot each) and
    records `changed_patients` for the run in lake.silver.changed_patients."""
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.silver")
    for view, rows in rows_by_view.items():
        columns = SILVER_SCHEMAS[view] + META
        schema = ", ".join(f"{c} {t}" for c, t in columns)
        data = [
            tuple(
                run_id
                if c == "_run_id"
                else (f"hash-{r['id']}" if c == "_content_hash" else r.get(c))
                for c, _ in columns
            )
            for r in rows
        ]
        df = spark.createDataFrame(data, schema)
        name = f"lake.silver.{view}"
        if not spark.catalog.tableExists(name):
            spark.sql(
                f"CREATE TABLE {name} ({schema}) USING iceberg TBLPROPERTIES ('format-version'='2')"
            )
        df.writeTo(name).overwrite(F.lit(True))
    if changed_patients is not None:
        keys = spark.createDataFrame([(k,) for k in changed_patients], "patient_key string")
        record_changed_patients(spark, run_id, keys)


def drop_lake_tables(spark: SparkSession) -> None:
    """Drops every silver and gold table (tests share one catalog per session)."""
    for ns in ("silver", "gold"):
        if not spark.catalog.databaseExists(f"lake.{ns}"):
            continue
        for row in spark.sql(f"SHOW TABLES IN lake.{ns}").collect():
            spark.sql(f"DROP TABLE IF EXISTS lake.{ns}.{row['tableName']} PURGE")


def isolated_lake_session(spark: SparkSession, lake_root: str) -> SparkSession:
    """A new session of the running SparkContext whose `lake` catalog lives under `lake_root`.

    Catalogs are per session, so the gold tests get a lake of their own without a second JVM and
    without touching the tables other test modules write to the shared session's lake.
    """
    from fhir_lakehouse.spark_session import iceberg_local_conf

    session = spark.newSession()
    for key, value in iceberg_local_conf(lake_root).items():
        if key.startswith("spark.sql.catalog.") or key == "spark.sql.defaultCatalog":
            session.conf.set(key, value)
    return session
