"""Views over DataFrames: parse each resource's JSON once, then build every view of the type from
that one parsed frame.

Input: a DataFrame with a `resource` column (the resource's JSON text, as bronze stores it) plus
any pass-through columns. `from_json` parses it with the schema derived from all the views of the
type; a row whose JSON cannot be parsed, is not of the views' resource type, or whose objects and
arrays do not have the FHIR shape in a field the views read, goes to `rejects` with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .compiler import ROOT, CompiledView, compile_view
from .definition import ViewDefinition
from .dry import DRY_FUNCTIONS
from .schema import CORRUPT_RECORD, SchemaNode, resource_root

RESOURCE_COLUMN = "resource"

# Column `type` hints -> Spark types of typed (silver) tables; anything else is a string.
TYPED_HINTS: dict[str, T.DataType] = {
    "dateTime": T.TimestampType(),
    "instant": T.TimestampType(),
    "date": T.DateType(),
    "decimal": T.DoubleType(),
    "integer": T.IntegerType(),
    "positiveInt": T.IntegerType(),
    "unsignedInt": T.IntegerType(),
    "integer64": T.LongType(),
    "boolean": T.BooleanType(),
}


@dataclass
class CompiledViews:
    """The views of one resource type over one input: a DataFrame per view, and the rejects.

    `parsed` is the one parsed frame every table is built from: persist it when writing several
    tables, so the JSON is parsed once per run rather than once per table.
    """

    tables: dict[str, DataFrame]
    rejects: DataFrame
    parsed: DataFrame


def _resource_type(views: Sequence[ViewDefinition]) -> str:
    if not views:
        raise ValueError("no views given")
    types = {v.resource for v in views}
    if len(types) != 1:
        raise ValueError(f"views of one resource type expected, got {sorted(types)}")
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError(f"view names must be unique, got {names}")
    return types.pop()


def derive_schema(views: Sequence[ViewDefinition]) -> T.StructType:
    """The `from_json` schema covering every element the views (all of one resource type) read."""
    root = resource_root(_resource_type(views))
    for view in views:
        compile_view(view, DRY_FUNCTIONS, root)
    return root.spark_type()


def typed_type(hint: str | None, natural: T.DataType) -> T.DataType:
    """The silver table type of a column: by its `type` hint (VIEWS.md), else its natural type."""
    if isinstance(natural, T.ArrayType):
        return T.ArrayType(typed_type(hint, natural.elementType))
    if hint in TYPED_HINTS:
        return TYPED_HINTS[hint]
    return natural if hint is None else T.StringType()


def _view_frame(
    parsed: DataFrame, compiled: CompiledView, typed: bool, passthrough: Sequence[str]
) -> DataFrame:
    frame = parsed if compiled.where is None else parsed.where(compiled.where)
    keep = [F.col(c) for c in passthrough]
    if compiled.columns is not None:
        frame = frame.select(*[expr.alias(name) for name, expr, _ in compiled.columns], *keep)
    else:
        frame = frame.select(F.inline(compiled.rows), *keep)
    if typed:
        out: list[Column] = []
        for name, natural in compiled.fields:
            definition = compiled.definitions.get(name)
            target = typed_type(definition.type if definition else None, natural)
            out.append(F.col(name) if target == natural else F.col(name).cast(target).alias(name))
        frame = frame.select(*out, *keep)
    return frame


def _reject_reason(resource_type: str, has_text: bool) -> Column:
    parsed_type = F.col(ROOT).getField("resourceType")
    null_text = F.col(RESOURCE_COLUMN).isNull() if has_text else F.lit(False)
    return (
        F.when(null_text, F.lit("resource JSON is null"))
        .when(
            parsed_type.isNull(),
            F.lit("not valid JSON, or not a FHIR resource object (no resourceType)"),
        )
        .when(
            parsed_type != resource_type,
            F.concat(F.lit("resourceType "), parsed_type, F.lit(f" is not {resource_type}")),
        )
        .otherwise(
            F.lit(
                "JSON objects or arrays do not have the FHIR R4 shape in an element the views read"
            )
        )
    )


@dataclass
class ParsedResources:
    """Resources of one type parsed once (`from_json` with the schema all its views need).

    `frame` holds the input's columns (pass-through and any others) and ROOT, the parsed struct;
    `compiled` are the views compiled against that schema. A caller may add columns to `frame`,
    filter it or persist it, then build the view tables from it with `build_views`.
    """

    resource_type: str
    compiled: list[CompiledView]
    frame: DataFrame


def parse_resources(
    views: Sequence[ViewDefinition],
    df: DataFrame,
    resource_type: str | None = None,
) -> ParsedResources:
    """Parses `df`'s `resource` JSON once with the schema the views (all of one type) read.

    With no views, `resource_type` names the type and only `resourceType`/`id` are read (the
    parse then still tells valid JSON from invalid). The struct's `_corrupt_record` field is set
    when the text is not JSON or an element the schema reads does not have the FHIR shape.
    """
    if views:
        resource_type = _resource_type(views)
    elif resource_type is None:
        raise ValueError("no views given and no resource type")
    root: SchemaNode = resource_root(resource_type)
    compiled = [compile_view(view, F, root) for view in views]
    schema = root.spark_type().add(T.StructField(CORRUPT_RECORD, T.StringType()))
    # explode(array(x)) is a generator: Spark's optimizer pushes filters and inlines projections
    # through a plain Project, which would copy from_json into every predicate (a parse each);
    # it cannot move them below a Generate, so the JSON is parsed exactly once per row.
    parsed_struct = F.from_json(
        F.col(RESOURCE_COLUMN), schema, {"columnNameOfCorruptRecord": CORRUPT_RECORD}
    )
    frame = df.select("*", F.explode(F.array(parsed_struct)).alias(ROOT))
    return ParsedResources(resource_type, compiled, frame)


def build_views(
    parsed: ParsedResources,
    typed: bool,
    passthrough: Sequence[str] = (),
    frame: DataFrame | None = None,
) -> CompiledViews:
    """The view tables and the rejects from parsed resources (`frame` overrides parsed.frame,
    e.g. with the same frame filtered or persisted). Rejects keep `resource` when present."""
    source = parsed.frame if frame is None else frame
    for name in passthrough:
        if name not in source.columns:
            raise ValueError(f"pass-through column {name!r} is not in the input")
    for c in parsed.compiled:
        clash = {n for n, _ in c.fields} & set(passthrough)
        if clash:
            raise ValueError(
                f"view {c.view.name}: pass-through columns {sorted(clash)} clash with view columns"
            )
    ok = view_readable(parsed.resource_type)
    good = source.where(ok)
    text = [F.col(RESOURCE_COLUMN)] if RESOURCE_COLUMN in source.columns else []
    rejects = source.where(~F.coalesce(ok, F.lit(False))).select(
        *[F.col(c) for c in passthrough],
        *text,
        _reject_reason(parsed.resource_type, bool(text)).alias("reason"),
    )
    tables = {c.view.name: _view_frame(good, c, typed, passthrough) for c in parsed.compiled}
    return CompiledViews(tables=tables, rejects=rejects, parsed=source)


def view_readable(resource_type: str) -> Column:
    """True when a parsed row can feed the views: parsed, no shape problem, the right type."""
    return (
        F.col(ROOT).isNotNull()
        & F.col(ROOT).getField(CORRUPT_RECORD).isNull()
        & (F.col(ROOT).getField("resourceType") == resource_type)
    )


def compile_views(
    views: Sequence[ViewDefinition],
    df: DataFrame,
    typed: bool,
    passthrough: Sequence[str] = (),
) -> CompiledViews:
    """Builds every view (all of one resource type) from `df`'s `resource` JSON, parsed once.

    typed=True casts columns by their `type` hint (dateTime/instant -> timestamp UTC, date -> date,
    decimal -> double, integer -> int, boolean -> boolean); typed=False keeps FHIRPath's types
    (dates as text). `passthrough` columns of `df` are carried to every table and to the rejects.
    """
    for name in passthrough:
        if name not in df.columns:
            raise ValueError(f"pass-through column {name!r} is not in the input")
    source = df.select(*[F.col(c) for c in passthrough], F.col(RESOURCE_COLUMN))
    return build_views(parse_resources(views, source), typed, passthrough)
