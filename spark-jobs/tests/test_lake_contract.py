from fhir_lakehouse.lake_contract import BRONZE_COLUMNS, METRIC_TYPES, layer_uri


def test_bronze_columns_follow_the_design() -> None:
    assert BRONZE_COLUMNS == [
        "resource_type",
        "id",
        "version_id",
        "last_updated",
        "content_hash",
        "patient_ref",
        "run_id",
        "source",
        "ingested_at",
        "resource",
    ]


def test_layer_uri_joins_without_double_slashes() -> None:
    assert layer_uri("file:///tmp/lake/", "silver") == "file:///tmp/lake/silver"
    assert "RUNTIME" in METRIC_TYPES
