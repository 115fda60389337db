"""Generates `fhir_r4_model.json`: the FHIR element model (types, cardinality, choice types) that
the ViewDefinition compiler needs to derive a `from_json` schema from FHIRPath expressions.

Why a generated file: the compiler must know, for every element a view touches, whether it repeats
(array) and what its type is, without parsing data. The model is read from the source of the
`fhir.resources` package (R4B, which equals R4 for the clinical resources Epic serves) with `ast`,
so nothing is imported or executed from it. It is a build-time tool, not a runtime dependency:

    pip install fhir.resources==8.3.0   # into any Python, once
    spark-jobs/.venv/bin/python -m fhir_lakehouse.views.fhir_model_gen [--source DIR]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("fhir_r4_model.json")

# fhir_core.types names -> FHIR primitive type names
PRIMITIVES = {
    "Base64BinaryType": "base64Binary",
    "BooleanType": "boolean",
    "CanonicalType": "canonical",
    "CodeType": "code",
    "DateTimeType": "dateTime",
    "DateType": "date",
    "DecimalType": "decimal",
    "IdType": "id",
    "InstantType": "instant",
    "Integer64Type": "integer64",
    "IntegerType": "integer",
    "MarkdownType": "markdown",
    "OidType": "oid",
    "PositiveIntType": "positiveInt",
    "StringType": "string",
    "TimeType": "time",
    "UnsignedIntType": "unsignedInt",
    "UriType": "uri",
    "UrlType": "url",
    "UuidType": "uuid",
    "XhtmlType": "xhtml",
}


def _source_dir() -> Path:
    spec = importlib.util.find_spec("fhir")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("fhir.resources is not installed: pip install fhir.resources==8.3.0")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "resources" / "R4B"
        if candidate.is_dir():
            return candidate
    raise SystemExit("fhir.resources R4B sources not found")


def _type_aliases(fhirtypes_py: Path) -> dict[str, str]:
    """`XType = module.Class` assignments of the TYPE_CHECKING block: alias -> class name."""
    tree = ast.parse(fhirtypes_py.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Attribute):
                    aliases[stmt.targets[0].id] = stmt.value.attr  # type: ignore[attr-defined]
    return aliases


def _field_info(stmt: ast.AnnAssign, aliases: dict[str, str]) -> tuple[str, str, bool, str | None]:
    attr = stmt.target.id  # type: ignore[attr-defined]
    annotation = ast.unparse(stmt.annotation)
    is_array = "List[" in annotation
    if annotation.startswith("bool") or "[bool]" in annotation:
        type_name = "boolean"
    else:
        if "fhirtypes." not in annotation:
            raise ValueError(f"unexpected annotation {annotation}")
        alias = annotation.split("fhirtypes.", 1)[1].split("]")[0].split(" ")[0]
        if alias in PRIMITIVES:
            type_name = PRIMITIVES[alias]
        elif alias in aliases:
            type_name = aliases[alias]
        else:
            raise ValueError(f"unknown type alias {alias}")
    name = attr
    choice = None
    call = stmt.value
    if isinstance(call, ast.Call):
        for kw in call.keywords:
            if kw.arg == "alias" and isinstance(kw.value, ast.Constant):
                name = kw.value.value
            if kw.arg == "json_schema_extra" and isinstance(kw.value, ast.Dict):
                for key, value in zip(kw.value.keys, kw.value.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "one_of_many":
                        choice = value.value  # type: ignore[attr-defined]
    return name, type_name, is_array, choice


def build_model(source: Path) -> dict[str, Any]:
    """Reads every model class of the R4B sources into {type: {base, kind, elements, choices}}."""
    aliases = _type_aliases(source / "fhirtypes.py")
    types: dict[str, Any] = {}
    for module in sorted(source.glob("*.py")):
        # fhirresourcemodel.py is the pydantic plumbing base, not a FHIR type
        if module.name in {"__init__.py", "fhirtypes.py", "fhirresourcemodel.py"}:
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for cls in tree.body:
            if not isinstance(cls, ast.ClassDef) or not cls.bases:
                continue
            base = ast.unparse(cls.bases[0]).split(".")[-1]
            elements: dict[str, list[Any]] = {}
            choices: dict[str, dict[str, str]] = {}
            for stmt in cls.body:
                if not isinstance(stmt, ast.AnnAssign) or stmt.target.id.endswith("__ext"):  # type: ignore[attr-defined]
                    continue
                name, type_name, is_array, choice = _field_info(stmt, aliases)
                elements[name] = [type_name, is_array]
                if choice:
                    choices.setdefault(choice, {})[type_name] = name
            entry: dict[str, Any] = {"base": base, "elements": elements}
            if choices:
                entry["choices"] = choices
            types[cls.name] = entry
    return {
        "_source": "fhir.resources 8.3.0, FHIR R4B (4.3.0); generated by fhir_model_gen.py",
        "primitives": sorted(set(PRIMITIVES.values())),
        "types": types,
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: regenerate fhir_r4_model.json from the fhir.resources sources."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", type=Path, help="fhir/resources/R4B directory (default: installed package)"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the model JSON")
    args = parser.parse_args(argv)
    model = build_model(args.source or _source_dir())
    args.output.write_text(
        json.dumps(model, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(model['types'])} types to {args.output}")


if __name__ == "__main__":
    main()
