"""The default silver views (spark-jobs/views/*.json) on realistic, Epic-like FHIR R4 resources."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fhir_lakehouse.views import ViewDefinition, compile_views, load_views

VIEWS_DIR = Path(__file__).resolve().parents[1] / "views"
UTC = dt.UTC

# The agreed columns (helpers' VIEWS.md): names, order and silver types.
EXPECTED_COLUMNS: dict[str, list[tuple[str, T.DataType]]] = {
    "patient": [
        ("id", T.StringType()),
        ("gender", T.StringType()),
        ("birth_date", T.DateType()),
        ("deceased", T.BooleanType()),
        ("family_name", T.StringType()),
        ("given_names", T.StringType()),
        ("city", T.StringType()),
        ("state", T.StringType()),
        ("postal_code", T.StringType()),
        ("mrn", T.StringType()),
        ("managing_organization_key", T.StringType()),
    ],
    "encounter": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("status", T.StringType()),
        ("class_code", T.StringType()),
        ("type_system", T.StringType()),
        ("type_code", T.StringType()),
        ("type_display", T.StringType()),
        ("period_start", T.TimestampType()),
        ("period_end", T.TimestampType()),
        ("service_provider_key", T.StringType()),
    ],
    "observation": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("encounter_key", T.StringType()),
        ("status", T.StringType()),
        ("category", T.StringType()),
        ("code_system", T.StringType()),
        ("code", T.StringType()),
        ("code_display", T.StringType()),
        ("value_quantity", T.DoubleType()),
        ("value_unit", T.StringType()),
        ("value_code", T.StringType()),
        ("value_code_system", T.StringType()),
        ("value_string", T.StringType()),
        ("effective_at", T.TimestampType()),
        ("issued", T.TimestampType()),
    ],
    "condition": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("encounter_key", T.StringType()),
        ("clinical_status", T.StringType()),
        ("verification_status", T.StringType()),
        ("category", T.StringType()),
        ("code_system", T.StringType()),
        ("code", T.StringType()),
        ("code_display", T.StringType()),
        ("snomed_code", T.StringType()),
        ("icd10_code", T.StringType()),
        ("onset_at", T.TimestampType()),
        ("abatement_at", T.TimestampType()),
        ("recorded_date", T.TimestampType()),
    ],
    "medication_request": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("encounter_key", T.StringType()),
        ("status", T.StringType()),
        ("intent", T.StringType()),
        ("rxnorm_code", T.StringType()),
        ("medication_display", T.StringType()),
        ("authored_on", T.TimestampType()),
        ("requester_key", T.StringType()),
    ],
    "allergy_intolerance": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("clinical_status", T.StringType()),
        ("verification_status", T.StringType()),
        ("criticality", T.StringType()),
        ("code_system", T.StringType()),
        ("code", T.StringType()),
        ("code_display", T.StringType()),
        ("recorded_date", T.TimestampType()),
    ],
    "procedure": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("encounter_key", T.StringType()),
        ("status", T.StringType()),
        ("code_system", T.StringType()),
        ("code", T.StringType()),
        ("code_display", T.StringType()),
        ("performed_at", T.TimestampType()),
    ],
    "immunization": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("status", T.StringType()),
        ("vaccine_code_system", T.StringType()),
        ("vaccine_code", T.StringType()),
        ("vaccine_display", T.StringType()),
        ("occurrence_at", T.TimestampType()),
    ],
    "diagnostic_report": [
        ("id", T.StringType()),
        ("patient_key", T.StringType()),
        ("encounter_key", T.StringType()),
        ("status", T.StringType()),
        ("category", T.StringType()),
        ("code_system", T.StringType()),
        ("code", T.StringType()),
        ("code_display", T.StringType()),
        ("effective_at", T.TimestampType()),
        ("issued", T.TimestampType()),
        ("result_count", T.IntegerType()),
    ],
}

# Epic-like ids are long opaque strings; references are relative ("Patient/<id>").
PT = "eq081-VQEgP8drUUqCWzHfw3"
ENC = "eWZ4yLmOqu0pLQHSn4lk5TA3"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

PATIENT = {
    "resourceType": "Patient",
    "id": PT,
    "identifier": [
        {
            "use": "usual",
            "type": {"text": "EPI"},
            "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0",
            "value": "E4007",
        },
        {
            "use": "usual",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ],
                "text": "MRN",
            },
            "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
            "value": "203713",
        },
    ],
    "active": True,
    "name": [
        {
            "use": "official",
            "text": "Camila Maria Lopez",
            "family": "Lopez",
            "given": ["Camila", "Maria"],
        },
        {"use": "usual", "family": "Lopez", "given": ["Cami"]},
    ],
    "telecom": [{"system": "phone", "value": "469-555-5555", "use": "home"}],
    "gender": "female",
    "birthDate": "1987-09-12",
    "deceasedBoolean": False,
    "address": [
        {
            "use": "home",
            "line": ["3268 West Johnson St.", "Apt 117"],
            "city": "GARLAND",
            "state": "TX",
            "postalCode": "75043",
        }
    ],
    "managingOrganization": {
        "reference": "Organization/enRyWnSP963FYDpoks4NHOA3",
        "display": "Epic Hospital System",
    },
}
PATIENT_DECEASED = {
    "resourceType": "Patient",
    "id": "pt-deceased",
    "gender": "male",
    "birthDate": "1931",
    "deceasedDateTime": "2019-02-01T10:00:00Z",
}

ENCOUNTER = {
    "resourceType": "Encounter",
    "id": ENC,
    "status": "finished",
    "class": {
        "system": "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260",
        "code": "AMB",
        "display": "Ambulatory",
    },
    "type": [
        {
            "coding": [
                {
                    "system": "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.30",
                    "code": "101",
                    "display": "Office Visit",
                }
            ],
            "text": "Office Visit",
        }
    ],
    "subject": {"reference": f"Patient/{PT}", "display": "Lopez, Camila Maria"},
    "period": {"start": "2023-06-02T14:00:00Z", "end": "2023-06-02T14:30:00-05:00"},
    "serviceProvider": {"reference": "Organization/enRyWnSP963FYDpoks4NHOA3"},
}

OBS_QUANTITY = {
    "resourceType": "Observation",
    "id": "obs-hgb",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ],
            "text": "Laboratory",
        }
    ],
    "code": {
        "coding": [
            {"system": LOINC, "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}
        ],
        "text": "Hemoglobin",
    },
    "subject": {"reference": f"Patient/{PT}"},
    "encounter": {"reference": f"Encounter/{ENC}"},
    "effectiveDateTime": "2023-06-02T14:10:00Z",
    "issued": "2023-06-02T15:00:12.123Z",
    "valueQuantity": {
        "value": 13.2,
        "unit": "g/dL",
        "system": "http://unitsofmeasure.org",
        "code": "g/dL",
    },
}
OBS_CODED = {
    "resourceType": "Observation",
    "id": "obs-smoking",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "social-history",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]},
    "subject": {"reference": f"Patient/{PT}"},
    "effectivePeriod": {"start": "2023-06-02", "end": "2023-06-03"},
    "valueCodeableConcept": {
        "coding": [{"system": SNOMED, "code": "8517006", "display": "Ex-smoker"}]
    },
}
OBS_STRING = {
    "resourceType": "Observation",
    "id": "obs-comment",
    "status": "preliminary",
    "code": {"text": "Lab comment"},
    "subject": {"reference": f"Patient/{PT}"},
    "valueString": "Specimen slightly hemolyzed",
    # an element no view reads, shaped unlike anything: must not matter
    "_valueString": {"extension": [{"url": "http://example.org/x", "valueBoolean": True}]},
}

CONDITION = {
    "resourceType": "Condition",
    "id": "cond-dm",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed",
            }
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {
                "system": "urn:oid:2.16.840.1.113883.6.96",
                "code": "44054006",
                "display": "Diabetes (local)",
            },
            {"system": SNOMED, "code": "44054006", "display": "Diabetes mellitus type 2"},
            {
                "system": ICD10,
                "code": "E11.9",
                "display": "Type 2 diabetes mellitus without complications",
            },
        ],
        "text": "Type 2 diabetes",
    },
    "subject": {"reference": f"Patient/{PT}"},
    "encounter": {"reference": f"Encounter/{ENC}"},
    "onsetPeriod": {"start": "2015-03-01T00:00:00Z"},
    "recordedDate": "2015-03-04T09:00:00-06:00",
}

MED_CODED = {
    "resourceType": "MedicationRequest",
    "id": "mr-1",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [
            {"system": RXNORM, "code": "860975", "display": "metformin 500 MG 24HR ER tablet"}
        ],
        "text": "metFORMIN (GLUCOPHAGE XR) 500 mg tablet",
    },
    "subject": {"reference": f"Patient/{PT}"},
    "encounter": {"reference": f"Encounter/{ENC}"},
    "authoredOn": "2023-06-02T14:25:00Z",
    "requester": {"reference": "Practitioner/eM5CWtq15N0WJeuCet5bJlQ3", "type": "Practitioner"},
}
MED_REFERENCE = {
    "resourceType": "MedicationRequest",
    "id": "mr-2",
    "status": "completed",
    "intent": "order",
    "medicationReference": {"reference": "Medication/eTsY1", "display": "lisinopril 10 MG tablet"},
    "subject": {"reference": f"Patient/{PT}"},
    "authoredOn": "2022-01-10",
}

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "al-1",
    "clinicalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active",
            }
        ]
    },
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "criticality": "high",
    "code": {"coding": [{"system": RXNORM, "code": "7980", "display": "Penicillin G"}]},
    "patient": {"reference": f"Patient/{PT}"},
    "recordedDate": "2019-05-01T12:00:00Z",
}

PROCEDURE = {
    "resourceType": "Procedure",
    "id": "proc-1",
    "status": "completed",
    "code": {
        "coding": [
            {"system": "http://www.ama-assn.org/go/cpt", "code": "45378", "display": "Colonoscopy"}
        ]
    },
    "subject": {"reference": f"Patient/{PT}"},
    "encounter": {"reference": f"Encounter/{ENC}"},
    "performedPeriod": {"start": "2021-09-14T08:00:00Z", "end": "2021-09-14T09:00:00Z"},
}

IMMUNIZATION = {
    "resourceType": "Immunization",
    "id": "imm-1",
    "status": "completed",
    "vaccineCode": {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/cvx", "code": "208", "display": "COVID-19, mRNA"}
        ]
    },
    "patient": {"reference": f"Patient/{PT}"},
    "occurrenceDateTime": "2021-04-01T10:00:00Z",
}

REPORT = {
    "resourceType": "DiagnosticReport",
    "id": "dr-1",
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
    ],
    "code": {"coding": [{"system": LOINC, "code": "58410-2", "display": "CBC panel"}]},
    "subject": {"reference": f"Patient/{PT}"},
    "encounter": {"reference": f"Encounter/{ENC}"},
    "effectiveDateTime": "2023-06-02T14:10:00Z",
    "issued": "2023-06-02T16:00:00Z",
    "result": [
        {"reference": "Observation/obs-hgb"},
        {"reference": "Observation/obs-wbc"},
        {"reference": "Observation/obs-plt"},
    ],
}

PASSTHROUGH = ["_content_hash", "_run_id", "_last_updated"]


@pytest.fixture(scope="module")
def views() -> dict[str, ViewDefinition]:
    return {v.name: v for v in load_views(VIEWS_DIR)}


def bronze(spark: SparkSession, resources: list[dict[str, Any]]) -> DataFrame:
    rows = [(json.dumps(r), f"hash-{r['id']}", "run-1", None) for r in resources]
    return spark.createDataFrame(
        rows, "resource string, _content_hash string, _run_id string, _last_updated timestamp"
    )


def run_view(
    spark: SparkSession, view: ViewDefinition, resources: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    compiled = compile_views([view], bronze(spark, resources), typed=True, passthrough=PASSTHROUGH)
    table = compiled.tables[view.name]
    expected = EXPECTED_COLUMNS[view.name]
    assert [(f.name, f.dataType) for f in table.schema.fields] == [
        *expected,
        ("_content_hash", T.StringType()),
        ("_run_id", T.StringType()),
        ("_last_updated", T.TimestampType()),
    ]
    rows = {row["id"]: row.asDict() for row in table.collect()}
    assert len(rows) == len(resources), "one row per resource"
    for row in rows.values():
        assert row["_content_hash"] == f"hash-{row['id']}" and row["_run_id"] == "run-1"
    return rows


def ts(text: str) -> dt.datetime:
    """Spark returns timestamps as naive datetimes in the session time zone (UTC here)."""
    return dt.datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def test_every_agreed_view_exists_with_its_columns(views: dict[str, ViewDefinition]) -> None:
    assert sorted(views) == sorted(EXPECTED_COLUMNS)
    for name, view in views.items():
        assert [c.name for c in view.columns()] == [n for n, _ in EXPECTED_COLUMNS[name]]
        assert all(c.description for c in view.columns()), (
            f"{name}: every column needs a description"
        )


def test_patient(spark: SparkSession, views: dict[str, ViewDefinition]) -> None:
    rows = run_view(spark, views["patient"], [PATIENT, PATIENT_DECEASED])
    p = rows[PT]
    assert (p["gender"], p["birth_date"], p["deceased"]) == ("female", dt.date(1987, 9, 12), False)
    assert (p["family_name"], p["given_names"]) == ("Lopez", "Camila Maria")
    assert (p["city"], p["state"], p["postal_code"]) == ("GARLAND", "TX", "75043")
    assert p["mrn"] == "203713"
    assert p["managing_organization_key"] == "enRyWnSP963FYDpoks4NHOA3"
    d = rows["pt-deceased"]
    assert (d["deceased"], d["birth_date"], d["family_name"], d["given_names"]) == (
        True,
        dt.date(1931, 1, 1),
        None,
        "",
    )
    assert d["mrn"] is None


def test_encounter(spark: SparkSession, views: dict[str, ViewDefinition]) -> None:
    e = run_view(spark, views["encounter"], [ENCOUNTER])[ENC]
    assert (e["patient_key"], e["status"], e["class_code"]) == (PT, "finished", "AMB")
    assert (e["type_code"], e["type_display"]) == ("101", "Office Visit")
    assert e["period_start"] == ts("2023-06-02T14:00:00+00:00")
    assert e["period_end"] == ts("2023-06-02T14:30:00-05:00")  # converted to UTC: 19:30
    assert e["service_provider_key"] == "enRyWnSP963FYDpoks4NHOA3"


def test_observation_values_by_type(spark: SparkSession, views: dict[str, ViewDefinition]) -> None:
    rows = run_view(spark, views["observation"], [OBS_QUANTITY, OBS_CODED, OBS_STRING])
    q = rows["obs-hgb"]
    assert (q["patient_key"], q["encounter_key"], q["category"]) == (PT, ENC, "laboratory")
    assert (q["code_system"], q["code"], q["code_display"]) == (
        LOINC,
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
    )
    assert (q["value_quantity"], q["value_unit"], q["value_code"], q["value_string"]) == (
        13.2,
        "g/dL",
        None,
        None,
    )
    assert q["effective_at"] == ts("2023-06-02T14:10:00+00:00")
    assert q["issued"] == ts("2023-06-02T15:00:12.123+00:00")
    c = rows["obs-smoking"]
    assert (c["value_code"], c["value_code_system"], c["value_quantity"]) == (
        "8517006",
        SNOMED,
        None,
    )
    assert c["effective_at"] == ts("2023-06-02T00:00:00+00:00")  # effectivePeriod.start
    assert c["encounter_key"] is None
    s = rows["obs-comment"]
    assert (s["value_string"], s["value_quantity"], s["code"], s["category"]) == (
        "Specimen slightly hemolyzed",
        None,
        None,
        None,
    )


def test_condition_codings(spark: SparkSession, views: dict[str, ViewDefinition]) -> None:
    c = run_view(spark, views["condition"], [CONDITION])["cond-dm"]
    assert (c["clinical_status"], c["verification_status"], c["category"]) == (
        "active",
        "confirmed",
        "problem-list-item",
    )
    assert (c["code_system"], c["code"]) == ("urn:oid:2.16.840.1.113883.6.96", "44054006")
    assert (c["snomed_code"], c["icd10_code"]) == ("44054006", "E11.9")
    assert c["onset_at"] == ts("2015-03-01T00:00:00+00:00")
    assert c["abatement_at"] is None
    assert c["recorded_date"] == ts("2015-03-04T09:00:00-06:00")


def test_medication_request(spark: SparkSession, views: dict[str, ViewDefinition]) -> None:
    rows = run_view(spark, views["medication_request"], [MED_CODED, MED_REFERENCE])
    m = rows["mr-1"]
    assert (m["rxnorm_code"], m["medication_display"]) == (
        "860975",
        "metFORMIN (GLUCOPHAGE XR) 500 mg tablet",
    )
    assert (m["status"], m["intent"], m["requester_key"]) == (
        "active",
        "order",
        "eM5CWtq15N0WJeuCet5bJlQ3",
    )
    assert m["authored_on"] == ts("2023-06-02T14:25:00+00:00")
    r = rows["mr-2"]
    assert (r["rxnorm_code"], r["medication_display"]) == (None, "lisinopril 10 MG tablet")
    assert r["authored_on"] == ts("2022-01-10T00:00:00+00:00")


def test_allergy_procedure_immunization_report(
    spark: SparkSession, views: dict[str, ViewDefinition]
) -> None:
    a = run_view(spark, views["allergy_intolerance"], [ALLERGY])["al-1"]
    assert (a["patient_key"], a["clinical_status"], a["criticality"], a["code"]) == (
        PT,
        "active",
        "high",
        "7980",
    )
    p = run_view(spark, views["procedure"], [PROCEDURE])["proc-1"]
    assert (p["code"], p["performed_at"]) == ("45378", ts("2021-09-14T08:00:00+00:00"))
    i = run_view(spark, views["immunization"], [IMMUNIZATION])["imm-1"]
    assert (i["vaccine_code_system"], i["vaccine_code"], i["occurrence_at"]) == (
        "http://hl7.org/fhir/sid/cvx",
        "208",
        ts("2021-04-01T10:00:00+00:00"),
    )
    d = run_view(spark, views["diagnostic_report"], [REPORT])["dr-1"]
    assert (d["category"], d["code"], d["result_count"]) == ("LAB", "58410-2", 3)
    assert (d["effective_at"], d["issued"]) == (
        ts("2023-06-02T14:10:00+00:00"),
        ts("2023-06-02T16:00:00+00:00"),
    )
