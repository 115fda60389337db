"""ViewDefinition select trees -> Spark column expressions.

A select node yields, per resource, an array of row structs; Spark's `inline` then turns that array
into rows. So a whole view is ONE projection over the parsed resources (no joins, no unions of
DataFrames, no second scan):
  - columns            -> array(struct(columns))           (one row)
  - forEach            -> flatten(transform(items, (item, i) -> rows(item)))
  - forEachOrNull      -> the same over `items`, or over [null] when there are none
  - select (children)  -> cartesian product of the parts' row arrays (nested transforms)
  - unionAll           -> concat of the branches' row arrays
  - repeat             -> forEach over the items reached by applying the paths recursively, in
                          depth-first order, unrolled to REPEAT_MAX_DEPTH levels (Spark types
                          are not recursive; see `repeat_depth`)
A view made only of columns (most silver views) skips the arrays and is a plain select.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import types as T

from . import fhirpath as fp
from .definition import Column as ColumnDef
from .definition import Select, ViewDefinition, ViewDefinitionError
from .expressions import CompileError, ExpressionCompiler, Scope, Val, is_primitive, spark_type
from .fhir_model import FhirModel, load_model
from .schema import SchemaNode, resource_root

ROOT = "_r"  # the column holding the parsed resource struct
# Budget of unrolled levels for one repeat: depth 8 for one path, 6 for two, 3 for four or more.
REPEAT_MAX_NODES = 64
REPEAT_MAX_DEPTH = 8


def repeat_depth(path_count: int) -> int:
    """How many levels a repeat with `path_count` paths is unrolled to.

    Each level multiplies the expression by the number of paths, so the depth shrinks as paths
    are added; deeper items are not visited. QuestionnaireResponse items, the usual recursive
    structure, rarely nest more than 4 levels.
    """
    if path_count <= 1:
        return REPEAT_MAX_DEPTH
    return max(3, min(REPEAT_MAX_DEPTH, int(math.log(REPEAT_MAX_NODES) / math.log(path_count))))


@dataclass
class Rows:
    """A compiled select node: an array-of-structs column and its fields (name, Spark type)."""

    col: Any
    fields: list[tuple[str, T.DataType]]


@dataclass
class CompiledView:
    """A compiled view: a filter on resources, then either plain columns or row arrays."""

    view: ViewDefinition
    where: Any | None  # boolean column or None
    columns: list[tuple[str, Any, T.DataType]] | None  # plain projection (name, expr, type)
    rows: Any | None  # array<struct> column when the view iterates
    fields: list[tuple[str, T.DataType]]
    definitions: dict[str, ColumnDef]


def _is_flat(node: Select) -> bool:
    return node.iteration is None and not node.union_all and all(_is_flat(s) for s in node.selects)


class ViewCompiler:
    """Compiles one view against a resource root whose used fields are recorded in `root_node`."""

    def __init__(
        self, view: ViewDefinition, fx: Any, root_node: SchemaNode, model: FhirModel | None = None
    ) -> None:
        self.view = view
        self.fx = fx
        self.model = model or load_model()
        self.expr = ExpressionCompiler(fx, self.model)
        self.root_node = root_node
        root = Val(fx.col(ROOT), False, view.resource, root_node)
        constants = {c.name: self.expr.lit(c.value, c.type) for c in view.constants}
        self.scope = Scope(this=root, root=root, row_index=fx.lit(0), constants=constants)
        self.definitions: dict[str, ColumnDef] = {}
        self.compiled_columns: list[ColumnDef] = []

    def error(self, json_path: str, problem: str) -> ViewDefinitionError:
        """An error naming the view's file and the place in the view."""
        return ViewDefinitionError(self.view.source, json_path, problem)

    def path(self, text: str, scope: Scope, json_path: str) -> Val:
        """Parses and compiles one FHIRPath expression of the view."""
        try:
            return self.expr.compile(fp.parse(text), scope)
        except (fp.FhirPathSyntaxError, CompileError) as exc:
            raise self.error(json_path, str(exc)) from None

    def compile(self) -> CompiledView:
        """The whole view."""
        where = None
        for text, json_path in self.view.where:
            value = self.path(text, self.scope, json_path)
            try:
                cond = self.expr.boolean(value, "a where path")
            except CompileError as exc:
                raise self.error(json_path, str(exc)) from None
            where = cond if where is None else (where & cond)
        root = self.view.root
        if _is_flat(root):
            columns: list[tuple[str, Any, T.DataType]] = []
            self._flat(root, columns)
            fields = [(name, dtype) for name, _, dtype in columns]
            self._check_unique(fields, root)
            return CompiledView(self.view, where, columns, None, fields, self.definitions)
        rows = self.select(root, self.scope)
        self._check_unique(rows.fields, root)
        return CompiledView(self.view, where, None, rows.col, rows.fields, self.definitions)

    def _flat(self, node: Select, out: list[tuple[str, Any, T.DataType]]) -> None:
        for column in node.columns:
            expr, dtype = self.column(column, self.scope)
            out.append((column.name, expr, dtype))
        for child in node.selects:
            self._flat(child, out)

    def _check_unique(self, fields: list[tuple[str, T.DataType]], root: Select) -> None:
        seen: set[str] = set()
        for name, _ in fields:
            if name in seen:
                same_name = [c for c in self.compiled_columns if c.name == name]
                where = same_name[1].json_path if len(same_name) > 1 else root.json_path
                raise self.error(where, f"column name {name!r} is used more than once in the view")
            seen.add(name)

    def column(self, column: ColumnDef, scope: Scope) -> tuple[Any, T.DataType]:
        """One column value (cast to its natural Spark type) and that type."""
        self.definitions.setdefault(column.name, column)
        self.compiled_columns.append(column)
        json_path = f"{column.json_path}.path"
        value = self.path(column.path, scope, json_path)
        if value.choice is not None:
            raise self.error(
                json_path, f"'{value.choice.name}' is a choice element: select a type with ofType()"
            )
        if not is_primitive(value.type):
            raise self.error(
                json_path,
                f"the path returns {value.type} values; a column needs a primitive element",
            )
        dtype = spark_type(value.type if value.type != "empty" else (column.type or "string"))
        if column.collection:
            array_type = T.ArrayType(dtype)
            return self.expr.as_array(value).cast(array_type), array_type
        if value.many and column.collection is False:
            raise self.error(
                json_path,
                "the path can return several values but 'collection' is false (set collection: true, or use first())",
            )
        # collection not given and several values: the first one (lenient; documented in the README)
        col = self.fx.get(value.col, self.fx.lit(0)) if value.many else value.col
        return col.cast(dtype), dtype

    # ---- row arrays ---------------------------------------------------------------------
    def select(self, node: Select, scope: Scope) -> Rows:
        """Rows of a select node in `scope`."""
        kind = node.iteration
        if kind is None:
            return self.body(node, scope)
        fx = self.fx
        if kind == "repeat":
            found = self.repeat_items(node, scope)
            if found is None:
                return self.no_rows(node)
            items, item_type, item_node = found
        else:
            text = node.for_each if kind == "forEach" else node.for_each_or_null
            assert text is not None
            value = self.path(text, scope, f"{node.json_path}.{kind}")
            if value.choice is not None:
                raise self.error(f"{node.json_path}.{kind}", "a choice element needs ofType() here")
            items, item_type, item_node = self.expr.as_array(value), value.type, value.node
            if kind == "forEachOrNull":
                items = fx.when(self.expr.size(items) > 0, items).otherwise(
                    fx.array(fx.get(items, fx.lit(0)))
                )
        captured: list[Rows] = []

        def per_item(item: Any, index: Any) -> Any:
            inner = replace(scope, this=Val(item, False, item_type, item_node), row_index=index)
            rows = self.body(node, inner)
            captured.append(rows)
            return rows.col

        col = fx.flatten(fx.transform(items, per_item))
        return Rows(col, captured[-1].fields)

    def body(self, node: Select, scope: Scope) -> Rows:
        """Columns x nested selects x unionAll of one node, for one focus."""
        fx = self.fx
        parts: list[Rows] = []
        if node.columns:
            values = [(c.name, *self.column(c, scope)) for c in node.columns]
            struct = fx.struct(*[expr.alias(name) for name, expr, _ in values])
            parts.append(Rows(fx.array(struct), [(name, dtype) for name, _, dtype in values]))
        for child in node.selects:
            parts.append(self.select(child, scope))
        if node.union_all:
            branches = [self.select(b, scope) for b in node.union_all]
            first = branches[0]
            for i, branch in enumerate(branches[1:], start=1):
                if [n for n, _ in branch.fields] != [n for n, _ in first.fields]:
                    raise self.error(
                        f"{node.json_path}.unionAll[{i}]",
                        f"unionAll branches must have the same columns in the same order: "
                        f"{[n for n, _ in first.fields]} vs {[n for n, _ in branch.fields]}",
                    )
                if [t for _, t in branch.fields] != [t for _, t in first.fields]:
                    raise self.error(
                        f"{node.json_path}.unionAll[{i}]",
                        "unionAll branches must have the same column types",
                    )
            col = first.col if len(branches) == 1 else fx.concat(*[b.col for b in branches])
            parts.append(Rows(col, first.fields))
        result = parts[0]
        for part in parts[1:]:
            result = self.product(result, part)
        return result

    def no_rows(self, node: Select) -> Rows:
        """An empty row array for `node`, typed from the columns' type hints."""
        fields: list[tuple[str, T.DataType]] = []

        def walk(n: Select) -> None:
            for c in n.columns:
                self.definitions.setdefault(c.name, c)
                dtype = spark_type(c.type or "string")
                fields.append((c.name, T.ArrayType(dtype) if c.collection else dtype))
            for child in n.selects:
                walk(child)
            if n.union_all:
                walk(n.union_all[0])

        walk(node)
        struct = T.StructType([T.StructField(name, dtype) for name, dtype in fields])
        return Rows(self.fx.array_compact(self.fx.array(self.fx.lit(None).cast(struct))), fields)

    def product(self, left: Rows, right: Rows) -> Rows:
        """Every row of `left` combined with every row of `right`."""
        fx = self.fx

        def combine(a: Any) -> Any:
            return fx.transform(
                right.col,
                lambda b: fx.struct(
                    *[a.getField(n).alias(n) for n, _ in left.fields],
                    *[b.getField(n).alias(n) for n, _ in right.fields],
                ),
            )

        return Rows(fx.flatten(fx.transform(left.col, combine)), left.fields + right.fields)

    # ---- repeat -------------------------------------------------------------------------
    def repeat_items(self, node: Select, scope: Scope) -> tuple[Any, str, SchemaNode] | None:
        """All items reached by the repeat paths, depth first, each projected to the fields the
        node's body reads, so that items from every level share one Spark type. None when no
        path applies to the focus's type (the node then has no rows)."""
        assert node.repeat is not None
        fx = self.fx
        paths = [(text, f"{node.json_path}.repeat[{i}]") for i, text in enumerate(node.repeat)]

        def resolve(item: Val) -> list[tuple[Val, str]]:
            # Like FHIRPath's repeat(), a path naming an element the item's type lacks yields
            # nothing (`answer.item` on the resource itself); syntax and function errors still fail.
            found = []
            for text, json_path in paths:
                try:
                    found.append(
                        (self.expr.compile(fp.parse(text), replace(scope, this=item)), json_path)
                    )
                except fp.FhirPathSyntaxError as exc:
                    raise self.error(json_path, str(exc)) from None
                except CompileError as exc:
                    if not str(exc).startswith("unknown element"):
                        raise self.error(json_path, str(exc)) from None
            return found

        top_level = resolve(scope.this)
        if not top_level:
            return None
        first, first_path = top_level[0]
        item_type = first.type
        if is_primitive(item_type) or first.node is None:
            raise self.error(first_path, f"repeat needs complex elements, not {item_type}")
        # What the body reads from an item: compile it dry against a probe node.
        probe = SchemaNode(item_type)
        dry_compiler = ViewCompiler(
            self.view, _dry_functions(), SchemaNode(self.view.resource), self.model
        )
        probe_scope = replace(
            dry_compiler.scope, this=Val(dry_compiler.fx.col("_probe"), False, item_type, probe)
        )
        dry_compiler.body(node, probe_scope)
        depth_limit = repeat_depth(len(paths))

        def children(item: Val) -> list[Val]:
            found = []
            for value, json_path in resolve(item):
                if value.type != item_type:
                    raise self.error(
                        json_path,
                        f"repeat paths must all return {item_type}, this one returns {value.type}",
                    )
                found.append(value)
            return found

        def subtree(item: Val, depth: int) -> Any:
            assert item.node is not None
            item.node.merge(probe)
            own = fx.array(self.project(item.col, probe))
            if depth >= depth_limit:
                return own
            nested = [descend(child, depth + 1) for child in children(item)]
            return fx.concat(own, *nested)

        def descend(collection: Val, depth: int) -> Any:
            # a one-argument lambda: Spark's transform passes the index to a second parameter
            def visit(c: Any) -> Any:
                return subtree(replace(collection, first=None, col=c, many=False), depth)

            return fx.flatten(fx.transform(self.expr.as_array(collection), visit))

        tops = [descend(top, 1) for top in children(scope.this)]
        items = tops[0] if len(tops) == 1 else fx.concat(*tops)
        return items, item_type, probe

    def project(self, col: Any, node: SchemaNode) -> Any:
        """A struct holding exactly the fields recorded in `node` (same shape at every level)."""
        fx = self.fx
        fields = []
        for name, child, is_array in node.struct_fields():
            value = col.getField(name)
            if child is not None:
                if is_array:
                    value = fx.transform(value, self._projector(child))
                else:
                    value = fx.when(value.isNotNull(), self.project(value, child))
            fields.append(value.alias(name))
        return fx.struct(*fields)

    def _projector(self, node: SchemaNode) -> Any:
        def project_item(x: Any) -> Any:
            return self.project(x, node)

        return project_item


def _dry_functions() -> Any:
    from .dry import DRY_FUNCTIONS

    return DRY_FUNCTIONS


def compile_view(
    view: ViewDefinition, fx: Any, root_node: SchemaNode | None = None
) -> CompiledView:
    """Compiles `view`, recording the elements it reads under `root_node`."""
    return ViewCompiler(view, fx, root_node or resource_root(view.resource)).compile()
