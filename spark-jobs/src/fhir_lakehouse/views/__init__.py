"""SQL-on-FHIR v2 ViewDefinitions compiled to native Spark column expressions.

Public API (used by the silver job):
    load_view(path) -> ViewDefinition
    load_views(directory) -> list[ViewDefinition]
    validate_view(obj, source) -> ViewDefinition            raises ViewDefinitionError
    derive_schema(views) -> StructType                      one schema per resource type
    compile_views(views, df, typed, passthrough=()) -> CompiledViews(tables, rejects, parsed)
    parse_resources(views, df, resource_type=None) -> ParsedResources   the one from_json of a type
    build_views(parsed, typed, passthrough=(), frame=None) -> CompiledViews
"""

from .definition import ViewDefinition, ViewDefinitionError
from .frames import (
    CompiledViews,
    ParsedResources,
    build_views,
    compile_views,
    derive_schema,
    parse_resources,
    view_readable,
)
from .validation import load_view, load_views, validate_view

__all__ = [
    "CompiledViews",
    "ViewDefinition",
    "ParsedResources",
    "ViewDefinitionError",
    "build_views",
    "compile_views",
    "derive_schema",
    "load_view",
    "load_views",
    "parse_resources",
    "validate_view",
    "view_readable",
]
