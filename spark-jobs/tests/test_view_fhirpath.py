"""FHIRPath parsing and the FHIR element model the compiler relies on (pure Python, no Spark)."""

from __future__ import annotations

import pytest

from fhir_lakehouse.views.fhir_model import load_model
from fhir_lakehouse.views.fhirpath import (
    Binary,
    Call,
    Constant,
    FhirPathSyntaxError,
    Indexer,
    Literal,
    Member,
    This,
    TypeOp,
    Unary,
    parse,
)


def test_paths_functions_and_indexers() -> None:
    assert parse("name[%i].family") == Member(
        Indexer(Member(This(), "name"), Constant("i")), "family"
    )
    assert parse("name.where(use = 'official').given.first()") == Call(
        Member(
            Call(
                Member(This(), "name"),
                "where",
                (Binary("=", Member(This(), "use"), Literal("official", "string")),),
            ),
            "given",
        ),
        "first",
    )
    assert parse("$this") == This()
    assert parse("`div`.x") == Member(Member(This(), "div"), "x")


def test_operator_precedence() -> None:
    # and binds tighter than or; comparison tighter than and; * tighter than +
    assert parse("a or b and c = 1 + 2 * 3") == Binary(
        "or",
        Member(This(), "a"),
        Binary(
            "and",
            Member(This(), "b"),
            Binary(
                "=",
                Member(This(), "c"),
                Binary(
                    "+",
                    Literal(1, "integer"),
                    Binary("*", Literal(2, "integer"), Literal(3, "integer")),
                ),
            ),
        ),
    )
    assert parse("a | b = c") == Binary(
        "=", Binary("|", Member(This(), "a"), Member(This(), "b")), Member(This(), "c")
    )
    assert parse("-x.y") == Unary("-", Member(Member(This(), "x"), "y"))
    assert parse("value is FHIR.string") == TypeOp("is", Member(This(), "value"), "FHIR.string")


def test_literals() -> None:
    assert parse("'it\\'s'") == Literal("it's", "string")
    assert parse("'\\u00e9'") == Literal("é", "string")
    assert parse("1.50") == Literal(1.5, "decimal")
    assert parse("@2020-01-02T10:00:00Z") == Literal("2020-01-02T10:00:00Z", "dateTime")
    assert parse("@2020-01") == Literal("2020-01", "date")
    assert parse("@T10:30") == Literal("10:30", "time")
    assert parse("{}") == Literal(None, "empty")
    assert parse("true") == Literal(True, "boolean")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("@@", "unexpected character '@' at 0"),
        ("name.", "expected an identifier at position 5"),
        ("name.where(use = 'x'", "expected ')'"),
        ("a b", "unexpected token at position 2"),
        ("'open", "unexpected character"),
    ],
)
def test_syntax_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(FhirPathSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_model_has_r4_shapes() -> None:
    model = load_model()
    assert (
        model.element("Patient", "name") is not None and model.element("Patient", "name").is_array
    )  # type: ignore[union-attr]
    encounter_class = model.element("Encounter", "class")
    assert encounter_class is not None and (encounter_class.type, encounter_class.is_array) == (
        "Coding",
        False,
    )
    choices = model.choice("Observation", "value")
    assert (
        choices is not None
        and choices["Quantity"] == "valueQuantity"
        and choices["string"] == "valueString"
    )
    assert model.choice("Patient", "deceased") == {
        "boolean": "deceasedBoolean",
        "dateTime": "deceasedDateTime",
    }
    assert model.element("Observation", "id") is not None  # inherited from Resource
    assert model.element("HumanName", "extension") is not None  # inherited from Element
    assert model.is_resource("MedicationRequest") and not model.is_resource("HumanName")
    assert "Patient" in model.resource_types() and "Resource" not in model.resource_types()
