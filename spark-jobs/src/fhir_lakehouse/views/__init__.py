"""SQL-on-FHIR v2 ViewDefinitions compiled to native Spark column expressions.

Public API (used by the silver job):
    load_view(path) -> ViewDefinition
    load_views(directory) -> list[ViewDefinition]
    validate_view(obj, source) -> ViewDefinition            raises ViewDefinitionError
    derive_schema(views) -> StructType                      one schema per resource type
    compile_views(views, df, typed, passthrough=()) -> CompiledViews(tables, rejects, parsed)
"""

from .definition import ViewDefinition, ViewDefinitionError
from .frames import CompiledViews, compile_views, derive_schema
from .validation import load_view, load_views, validate_view

__all__ = [
    "CompiledViews",
    "ViewDefinition",
    "ViewDefinitionError",
    "compile_views",
    "derive_schema",
    "load_view",
    "load_views",
    "validate_view",
]
