"""ViewDefinition structure: JSON -> typed dataclasses, with structural checks that name the file,
the JSON path inside the view and the problem. Semantic checks (FHIRPath, element names, types,
column collisions) happen when the view is compiled dry, in validation.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .fhir_model import load_model

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# valueX of a ViewDefinition constant -> FHIRPath literal type
CONSTANT_TYPES = {
    "valueBase64Binary": "string",
    "valueBoolean": "boolean",
    "valueCanonical": "string",
    "valueCode": "string",
    "valueDate": "date",
    "valueDateTime": "dateTime",
    "valueDecimal": "decimal",
    "valueId": "string",
    "valueInstant": "dateTime",
    "valueInteger": "integer",
    "valueInteger64": "integer",
    "valueOid": "string",
    "valueString": "string",
    "valuePositiveInt": "integer",
    "valueTime": "time",
    "valueUnsignedInt": "integer",
    "valueUri": "string",
    "valueUrl": "string",
    "valueUuid": "string",
}

SELECT_KEYS = {"column", "select", "unionAll", "forEach", "forEachOrNull", "repeat"}


class ViewDefinitionError(ValueError):
    """An invalid ViewDefinition: which file, where in the view (a JSON path), and what is wrong."""

    def __init__(self, source_file: str, json_path: str, problem: str) -> None:
        self.source_file = source_file
        self.json_path = json_path
        self.problem = problem
        super().__init__(f"{source_file}: {json_path}: {problem}")


@dataclass(frozen=True)
class Column:
    """A column of a view: `path` is FHIRPath relative to the select's focus."""

    name: str
    path: str
    type: str | None
    collection: bool | None
    description: str | None
    json_path: str


@dataclass(frozen=True)
class Select:
    """A select node: columns, nested selects and unionAll branches, optionally iterated."""

    columns: tuple[Column, ...]
    selects: tuple[Select, ...]
    union_all: tuple[Select, ...]
    for_each: str | None
    for_each_or_null: str | None
    repeat: tuple[str, ...] | None
    json_path: str

    @property
    def iteration(self) -> str | None:
        """The key of the iteration this node does, if any."""
        if self.for_each is not None:
            return "forEach"
        if self.for_each_or_null is not None:
            return "forEachOrNull"
        if self.repeat is not None:
            return "repeat"
        return None


@dataclass(frozen=True)
class Constant:
    """A named constant (`%name` in paths) with its FHIRPath literal type."""

    name: str
    type: str
    value: Any
    json_path: str


@dataclass(frozen=True)
class ViewDefinition:
    """A parsed, validated SQL-on-FHIR v2 ViewDefinition."""

    name: str
    resource: str
    select: tuple[Select, ...]
    where: tuple[tuple[str, str], ...]  # (path, json path)
    constants: tuple[Constant, ...]
    source: str
    title: str | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Select:
        """The view's top-level selects as one node (their rows are combined as a product)."""
        return Select((), self.select, (), None, None, None, "$")

    def columns(self) -> list[Column]:
        """Output columns in order (for unionAll, the first branch's definitions)."""
        out: list[Column] = []

        def walk(node: Select) -> None:
            out.extend(node.columns)
            for child in node.selects:
                walk(child)
            if node.union_all:
                walk(node.union_all[0])

        walk(self.root)
        return out


def _fail(source: str, path: str, problem: str) -> ViewDefinitionError:
    return ViewDefinitionError(source, path, problem)


def _string(obj: dict[str, Any], key: str, source: str, path: str, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(source, f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, f"{path}.{key}", f"must be a non-empty string, not {value!r}")
    return value


def _column(obj: Any, source: str, path: str) -> Column:
    if not isinstance(obj, dict):
        raise _fail(source, path, "a column must be an object")
    name = _string(obj, "name", source, path, True)
    assert name is not None
    if not NAME_RE.match(name):
        raise _fail(
            source, f"{path}.name", f"{name!r} is not a valid column name (letters, digits, _)"
        )
    col_path = _string(obj, "path", source, path, True)
    assert col_path is not None
    type_hint = _string(obj, "type", source, path, False)
    if type_hint is not None and not load_model().has_type(type_hint):
        raise _fail(source, f"{path}.type", f"unknown FHIR type {type_hint!r}")
    collection = obj.get("collection")
    if collection is not None and not isinstance(collection, bool):
        raise _fail(source, f"{path}.collection", "must be true or false")
    description = obj.get("description")
    return Column(
        name,
        col_path,
        type_hint,
        collection,
        description if isinstance(description, str) else None,
        path,
    )


def _select(obj: Any, source: str, path: str) -> Select:
    if not isinstance(obj, dict):
        raise _fail(source, path, "a select must be an object")
    if not SELECT_KEYS & obj.keys():
        raise _fail(source, path, "a select needs column, select or unionAll")
    for key in ("forEach", "forEachOrNull"):
        if key in obj and (not isinstance(obj[key], str) or not obj[key].strip()):
            raise _fail(source, f"{path}.{key}", f"must be a FHIRPath string, not {obj[key]!r}")
    repeat = obj.get("repeat")
    if repeat is not None and (
        not isinstance(repeat, list)
        or not repeat
        or not all(isinstance(p, str) and p.strip() for p in repeat)
    ):
        raise _fail(source, f"{path}.repeat", "must be a non-empty list of FHIRPath strings")
    if sum(key in obj for key in ("forEach", "forEachOrNull", "repeat")) > 1:
        raise _fail(source, path, "only one of forEach, forEachOrNull and repeat may be given")
    lists: dict[str, list[Any]] = {}
    for key in ("column", "select", "unionAll"):
        value = obj.get(key, [])
        if not isinstance(value, list):
            raise _fail(source, f"{path}.{key}", "must be a list")
        lists[key] = value
    if not (lists["column"] or lists["select"] or lists["unionAll"]):
        raise _fail(source, path, "a select needs at least one column, select or unionAll entry")
    return Select(
        columns=tuple(
            _column(c, source, f"{path}.column[{i}]") for i, c in enumerate(lists["column"])
        ),
        selects=tuple(
            _select(s, source, f"{path}.select[{i}]") for i, s in enumerate(lists["select"])
        ),
        union_all=tuple(
            _select(s, source, f"{path}.unionAll[{i}]") for i, s in enumerate(lists["unionAll"])
        ),
        for_each=obj.get("forEach"),
        for_each_or_null=obj.get("forEachOrNull"),
        repeat=tuple(repeat) if repeat is not None else None,
        json_path=path,
    )


def _constant(obj: Any, source: str, path: str) -> Constant:
    if not isinstance(obj, dict):
        raise _fail(source, path, "a constant must be an object")
    name = _string(obj, "name", source, path, True)
    assert name is not None
    if not NAME_RE.match(name):
        raise _fail(source, f"{path}.name", f"{name!r} is not a valid constant name")
    values = [k for k in obj if k.startswith("value")]
    if len(values) != 1:
        raise _fail(
            source, path, f"constant {name!r} needs exactly one value[x], found {len(values)}"
        )
    key = values[0]
    if key not in CONSTANT_TYPES:
        raise _fail(source, f"{path}.{key}", f"unsupported constant type {key}")
    value = obj[key]
    literal_type = CONSTANT_TYPES[key]
    ok = {
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "decimal": isinstance(value, (int, float)) and not isinstance(value, bool),
    }.get(literal_type, isinstance(value, str))
    if not ok:
        raise _fail(source, f"{path}.{key}", f"{value!r} is not a valid {key[5:]}")
    return Constant(name, literal_type, value, path)


def parse_view(obj: Any, source: str, default_name: str = "view") -> ViewDefinition:
    """Structural parse of a ViewDefinition object (no FHIRPath semantics yet)."""
    if not isinstance(obj, dict):
        raise _fail(source, "$", "a ViewDefinition must be a JSON object")
    resource_type = obj.get("resourceType")
    if resource_type is not None and resource_type != "ViewDefinition":
        raise _fail(source, "$.resourceType", f"must be 'ViewDefinition', not {resource_type!r}")
    resource = _string(obj, "resource", source, "$", True)
    assert resource is not None
    if not load_model().is_resource(resource):
        raise _fail(source, "$.resource", f"{resource!r} is not a FHIR R4 resource type")
    name = _string(obj, "name", source, "$", False) or default_name
    if not NAME_RE.match(name):
        raise _fail(source, "$.name", f"{name!r} is not a valid view name (letters, digits, _)")
    select = obj.get("select")
    if not isinstance(select, list) or not select:
        raise _fail(source, "$.select", "is required: a non-empty list of selects")
    constants_raw = obj.get("constant", [])
    if not isinstance(constants_raw, list):
        raise _fail(source, "$.constant", "must be a list")
    constants = tuple(_constant(c, source, f"$.constant[{i}]") for i, c in enumerate(constants_raw))
    seen: set[str] = set()
    for c in constants:
        if c.name in seen:
            raise _fail(source, c.json_path, f"constant {c.name!r} is defined twice")
        seen.add(c.name)
    where_raw = obj.get("where", [])
    if not isinstance(where_raw, list):
        raise _fail(source, "$.where", "must be a list")
    where: list[tuple[str, str]] = []
    for i, w in enumerate(where_raw):
        if not isinstance(w, dict):
            raise _fail(source, f"$.where[{i}]", "must be an object with a path")
        path = _string(w, "path", source, f"$.where[{i}]", True)
        assert path is not None
        where.append((path, f"$.where[{i}].path"))
    return ViewDefinition(
        name=name,
        resource=resource,
        select=tuple(_select(s, source, f"$.select[{i}]") for i, s in enumerate(select)),
        where=tuple(where),
        constants=constants,
        source=source,
        title=obj.get("title") if isinstance(obj.get("title"), str) else None,
        description=obj.get("description") if isinstance(obj.get("description"), str) else None,
        raw=obj,
    )
