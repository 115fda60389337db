"""Loading and validating ViewDefinitions before any data is touched.

`validate_view` parses the structure (definition.py) and then compiles the view dry (dry.py): the
same code that builds the Spark expressions checks every FHIRPath, element name, function, type,
constant and column name, without a JVM.
"""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .compiler import compile_view
from .definition import ViewDefinition, ViewDefinitionError, parse_view
from .dry import DRY_FUNCTIONS


def validate_view(obj: Any, source: str, default_name: str = "view") -> ViewDefinition:
    """Checks a ViewDefinition (parsed JSON) completely; raises ViewDefinitionError(source, json_path, problem)."""
    view = parse_view(obj, source, default_name)
    compile_view(view, DRY_FUNCTIONS)
    return view


def load_view(path: str | Path | Traversable) -> ViewDefinition:
    """Reads and validates one ViewDefinition file; the view's name defaults to the file's stem.

    `path` may be a package resource (importlib.resources), e.g. a file inside a zipped package.
    """
    file = Path(path) if isinstance(path, str | Path) else path
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ViewDefinitionError(str(file), "$", f"cannot read the file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ViewDefinitionError(
            str(file), "$", f"not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    return validate_view(obj, str(file), default_name=file.name.rsplit(".", 1)[0])


def load_views(directory: str | Path) -> list[ViewDefinition]:
    """Every `*.json` ViewDefinition of a directory, validated, sorted by file name; names must be unique."""
    views = [load_view(p) for p in sorted(Path(directory).glob("*.json"))]
    seen: dict[str, str] = {}
    for view in views:
        if view.name in seen:
            raise ViewDefinitionError(
                view.source, "$.name", f"view name {view.name!r} is also used by {seen[view.name]}"
            )
        seen[view.name] = view.source
    return views
