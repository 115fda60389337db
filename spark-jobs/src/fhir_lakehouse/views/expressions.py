"""FHIRPath AST -> native Spark column expressions (no UDFs).

A FHIRPath collection is a Spark value: a scalar column when the path can hold at most one item
(null = empty), an array column when it can hold many (null or [] = empty, never null items).
Navigating through arrays uses Spark's struct-field extraction on arrays, `flatten`, `filter` and
`transform`, which are native higher-order functions. Cardinality and types come from the FHIR
model, so they are known when compiling: that is what makes static validation possible.

Every element the compiler navigates is recorded in a SchemaNode trie: that trie is the schema
`from_json` parses each resource with (schema.py). `fx` is `pyspark.sql.functions`, or the dry
stand-in (dry.py) when only validating or deriving the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import types as T

from . import fhirpath as fp
from .fhir_model import PRIMITIVE_SYSTEM_TYPES, FhirModel
from .schema import SchemaNode

# FHIRPath literal/system types; FHIR primitive types map onto these (fhir_model.py)
SYSTEM_TYPES = {"boolean", "integer", "decimal", "string", "date", "dateTime", "time", "empty"}
_SYSTEM_NAMES = {
    "System.Boolean": "boolean",
    "System.Integer": "integer",
    "System.Decimal": "decimal",
    "System.String": "string",
    "System.Date": "date",
    "System.DateTime": "dateTime",
    "System.Time": "time",
}


class CompileError(Exception):
    """A FHIRPath expression that cannot be compiled (unknown element or function, bad type)."""


def system_type(type_name: str) -> str:
    """The FHIRPath system type a FHIR type behaves as (complex types map to themselves)."""
    return PRIMITIVE_SYSTEM_TYPES.get(type_name, type_name)


def spark_type(type_name: str) -> T.DataType:
    """Spark type of a primitive value of FHIR/system type `type_name`, as the compiler produces it."""
    if type_name == "integer64":
        return T.LongType()
    return {
        "boolean": T.BooleanType(),
        "integer": T.IntegerType(),
        "decimal": T.DoubleType(),
    }.get(system_type(type_name), T.StringType())


def is_primitive(type_name: str) -> bool:
    """True for FHIR primitive and FHIRPath system types."""
    return type_name in PRIMITIVE_SYSTEM_TYPES or type_name in SYSTEM_TYPES


@dataclass(frozen=True, eq=False)
class Choice:
    """An unresolved choice element (`value` of value[x]): resolved by ofType()."""

    parent: Val
    name: str
    options: dict[str, str]  # FHIR type -> JSON element name


@dataclass(frozen=True, eq=False)
class Val:
    """A compiled FHIRPath collection."""

    col: Any  # Column (or DryColumn); array column when `many`
    many: bool
    type: str  # FHIR type name or FHIRPath system type
    node: SchemaNode | None = None  # for complex values: where their used fields are recorded
    choice: Choice | None = None
    raw: Any = None  # a primitive's JSON text column before casting (boundaries need precision)
    literal: object = None  # the Python value of a literal (join() needs its separator as text)
    first: Any = None  # a cheaper equivalent of first() when the compiler knows one


@dataclass(frozen=True, eq=False)
class Scope:
    """What an expression is evaluated against."""

    this: Val
    root: Val
    row_index: Any
    constants: dict[str, Val]


def _type_specifier(node: fp.Node) -> str:
    if isinstance(node, fp.Member):
        prefix = _type_specifier(node.target)
        return f"{prefix}.{node.name}" if prefix else node.name
    if isinstance(node, fp.This):
        return ""
    if isinstance(node, fp.Literal) and isinstance(node.value, str):
        return node.value
    raise CompileError("expected a type name")


def _normalize_type(name: str) -> str:
    if name in _SYSTEM_NAMES:
        return _SYSTEM_NAMES[name]
    return name.removeprefix("FHIR.")


class ExpressionCompiler:
    """Compiles FHIRPath ASTs to column expressions with the functions namespace `fx`."""

    def __init__(self, fx: Any, model: FhirModel) -> None:
        self.fx = fx
        self.model = model

    # ---- collection helpers -------------------------------------------------------------
    def lit(self, value: object, type_name: str) -> Val:
        """A literal value of FHIRPath type `type_name`."""
        if value is None:
            return Val(self.fx.lit(None).cast(T.StringType()), False, "empty")
        return Val(self.fx.lit(value).cast(spark_type(type_name)), False, type_name, literal=value)

    def size(self, col: Any) -> Any:
        """Number of items of an array column, 0 for null."""
        return self.fx.coalesce(self.fx.size(col), self.fx.lit(0))

    def as_array(self, v: Val) -> Any:
        """The collection as a non-null array column."""
        if v.many:
            return self.fx.coalesce(
                v.col, self.fx.array_compact(self.fx.array(self.fx.get(v.col, self.fx.lit(0))))
            )
        return self.fx.array_compact(self.fx.array(v.col))

    def singleton(self, v: Val) -> Any:
        """The single item of the collection, null when empty (or, leniently, when it has several)."""
        if v.choice is not None:
            raise CompileError(
                f"'{v.choice.name}' is a choice element: select a type with ofType()"
            )
        if v.many:
            return self.fx.when(self.size(v.col) == 1, self.fx.get(v.col, self.fx.lit(0)))
        return v.col

    def boolean(self, v: Val, what: str) -> Any:
        """The collection as one boolean (three-valued: null = empty)."""
        if system_type(v.type) not in ("boolean", "empty"):
            raise CompileError(f"{what} must be boolean, but is {v.type}")
        return self.singleton(v)

    def map_items(self, v: Val, fn: Callable[[Any], Any], type_name: str) -> Val:
        """Applies `fn` to every item (a scalar expression), keeping cardinality; drops nulls."""
        if v.many:
            mapped = self.fx.filter(self.fx.transform(v.col, fn), lambda x: x.isNotNull())
            return Val(mapped, True, type_name)
        return Val(fn(v.col), False, type_name)

    def cast_primitive(self, col: Any, fhir_type: str, many: bool) -> Any:
        """JSON text of a primitive -> its FHIRPath value type (strings stay strings)."""
        target = spark_type(fhir_type)
        if isinstance(target, T.StringType):
            return col
        return col.cast(T.ArrayType(target) if many else target)

    # ---- navigation ---------------------------------------------------------------------
    def navigate(self, v: Val, name: str) -> Val:
        """`v.name`: the child element `name` of every item of `v`."""
        if v.choice is not None:
            raise CompileError(
                f"'{v.choice.name}' is a choice element: select a type with ofType() before '.{name}'"
            )
        if is_primitive(v.type):
            raise CompileError(f"cannot navigate to '{name}' inside a {v.type} value")
        if v.node is None:
            raise CompileError(f"cannot navigate to '{name}' inside a computed {v.type} value")
        if self.model.is_resource(v.type) and name == v.type:
            return v  # `Patient.name` written with its type prefix
        element = self.model.element(v.type, name)
        if element is None:
            options = self.model.choice(v.type, name)
            if options is not None:
                return Val(None, v.many, "choice", choice=Choice(v, name, options))
            raise CompileError(f"unknown element '{name}' on {v.type}")
        primitive = self.model.is_primitive(element.type)
        child = v.node.child(element.name, element.type, element.is_array, primitive)
        col = v.col.getField(element.name)
        many = v.many or element.is_array
        if v.many and element.is_array:
            col = self.fx.flatten(self.fx.filter(col, lambda x: x.isNotNull()))
        # Items absent in some parents, and primitives whose array holds nulls as placeholders for
        # `_element` extensions, are dropped. An array of objects read straight from the JSON has
        # no nulls in valid FHIR, so it is used as is (no per-row copy).
        if many and (v.many or primitive):
            col = self.fx.filter(col, lambda x: x.isNotNull())
        raw = col if primitive else None
        if primitive:
            col = self.cast_primitive(col, element.type, many)
        return Val(col, many, element.type, child, raw=raw)

    def of_type(self, v: Val, type_name: str) -> Val:
        """`ofType(T)`: the items of type T (for a choice element, its T variant)."""
        wanted = _normalize_type(type_name)
        if v.choice is not None:
            element = v.choice.options.get(wanted)
            if element is None:
                if not self.model.has_type(wanted):
                    raise CompileError(f"unknown type {type_name!r}")
                return replace(self.lit(None, "empty"), type=wanted)
            return self.navigate(v.choice.parent, element)
        if not self.model.has_type(wanted) and wanted not in SYSTEM_TYPES:
            raise CompileError(f"unknown type {type_name!r}")
        if (
            v.type == wanted
            or system_type(v.type) == wanted
            or (wanted == "Resource" and self.model.is_resource(v.type))
        ):
            return v
        return replace(self.lit(None, "empty"), type=wanted)

    def where(self, v: Val, predicate: Callable[[Val], Any]) -> Val:
        """Items of `v` for which `predicate(item)` is true."""
        if v.choice is not None:
            raise CompileError(
                f"'{v.choice.name}' is a choice element: select a type with ofType()"
            )

        def keep(x: Any) -> Any:
            return self.fx.coalesce(
                predicate(replace(v, first=None, col=x, many=False)), self.fx.lit(False)
            )

        if v.many:
            return replace(v, first=None, col=self.fx.filter(v.col, keep), raw=None)
        return replace(v, first=None, col=self.fx.when(keep(v.col), v.col), raw=None)

    def exists(self, v: Val) -> Any:
        """True when the collection has at least one item."""
        if v.choice is not None:
            parent = v.choice.parent
            if parent.node is not None:
                for element in v.choice.options.values():
                    etype = self.model.element(parent.type, element)
                    assert etype is not None
                    parent.node.child(
                        element, etype.type, etype.is_array, self.model.is_primitive(etype.type)
                    )

            def any_set(p: Any) -> Any:
                result = None
                for element in v.choice.options.values():  # type: ignore[union-attr]
                    test = p.getField(element).isNotNull()
                    result = test if result is None else (result | test)
                return result

            if parent.many:
                return self.fx.exists(self.fx.coalesce(parent.col, self.fx.array()), any_set)
            return self.fx.coalesce(any_set(parent.col), self.fx.lit(False))
        if v.many:
            return self.size(v.col) > 0
        return v.col.isNotNull()

    # ---- expressions --------------------------------------------------------------------
    def compile(self, node: fp.Node, scope: Scope) -> Val:
        """Compiles one AST node against `scope`."""
        if isinstance(node, fp.This):
            return scope.this
        if isinstance(node, fp.Literal):
            return self.lit(node.value, node.type)
        if isinstance(node, fp.Constant):
            if node.name == "rowIndex":
                return Val(scope.row_index, False, "integer")
            if node.name in ("resource", "rootResource"):
                return scope.root
            if node.name in scope.constants:
                return scope.constants[node.name]
            raise CompileError(f"undefined constant %{node.name}")
        if isinstance(node, fp.Member):
            return self.navigate(self.compile(node.target, scope), node.name)
        if isinstance(node, fp.Indexer):
            target = self.compile(node.target, scope)
            index = self.singleton(self.compile(node.index, scope))
            if target.many:
                return replace(
                    target, first=None, col=self.fx.get(target.col, index), many=False, raw=None
                )
            return replace(target, first=None, col=self.fx.when(index == 0, target.col), raw=None)
        if isinstance(node, fp.Call):
            return self.call(node, scope)
        if isinstance(node, fp.Binary):
            return self.binary(node, scope)
        if isinstance(node, fp.Unary):
            operand = self.compile(node.operand, scope)
            if system_type(operand.type) not in ("integer", "decimal"):
                raise CompileError(f"unary {node.op} needs a number, not {operand.type}")
            col = self.singleton(operand)
            return Val(-col if node.op == "-" else col, False, operand.type)
        if isinstance(node, fp.TypeOp):
            target = self.compile(node.target, scope)
            if node.op == "as":
                return self.of_type(target, node.type_name)
            typed = self.of_type(target, node.type_name)
            return Val(self.exists(typed), False, "boolean")
        if isinstance(node, fp.Index):
            raise CompileError("$index is not supported")
        raise CompileError(f"unsupported expression {node!r}")

    def binary(self, node: fp.Binary, scope: Scope) -> Val:
        """Operators: logic, comparison, arithmetic, union."""
        fx = self.fx
        left = self.compile(node.left, scope)
        right = self.compile(node.right, scope)
        op = node.op
        if op in ("and", "or", "xor", "implies"):
            a = self.boolean(left, f"the left operand of '{op}'")
            b = self.boolean(right, f"the right operand of '{op}'")
            result = {
                "and": lambda: a & b,
                "or": lambda: a | b,
                "xor": lambda: fx.when(a.isNotNull() & b.isNotNull(), a != b),
                "implies": lambda: (~a) | b,
            }[op]()
            return Val(result, False, "boolean")
        if op == "|":
            if left.type != right.type and "empty" not in (left.type, right.type):
                if not (
                    is_primitive(left.type) and spark_type(left.type) == spark_type(right.type)
                ):
                    raise CompileError(f"cannot union {left.type} with {right.type}")
            kept = right if left.type == "empty" else left
            union = Val(
                fx.array_distinct(fx.concat(self.as_array(left), self.as_array(right))),
                True,
                kept.type,
                kept.node if left.node is right.node else None,
            )
            if not left.many and not right.many:
                # (a | b).first() of two single values is coalesce(a, b): no arrays per row
                return replace(union, first=fx.coalesce(left.col, right.col))
            return union
        a = self.singleton(left)
        b = self.singleton(right)
        for v in (left, right):
            if not is_primitive(v.type):
                raise CompileError(f"operator '{op}' needs primitive operands, not {v.type}")
        if op in ("=", "!=", "<", ">", "<=", ">="):
            result = {
                "=": lambda: a == b,
                "!=": lambda: a != b,
                "<": lambda: a < b,
                ">": lambda: a > b,
                "<=": lambda: a <= b,
                ">=": lambda: a >= b,
            }[op]()
            return Val(result, False, "boolean")
        if op in ("~", "!~"):
            same = fx.lower(fx.trim(a.cast(T.StringType()))).eqNullSafe(
                fx.lower(fx.trim(b.cast(T.StringType())))
            )
            return Val(same if op == "~" else ~same, False, "boolean")
        if op == "&":
            return Val(
                fx.concat(fx.coalesce(a, fx.lit("")), fx.coalesce(b, fx.lit(""))), False, "string"
            )
        kinds = {system_type(left.type), system_type(right.type)} - {"empty"}
        if op == "+" and kinds <= {"string"}:
            return Val(fx.concat(a, b), False, "string")
        if not kinds <= {"integer", "decimal"}:
            raise CompileError(f"operator '{op}' needs numbers, not {left.type} and {right.type}")
        result_type = "integer" if kinds == {"integer"} and op not in ("/",) else "decimal"
        result = {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: fx.when(b != 0, a.cast(T.DoubleType()) / b),
            "div": lambda: fx.when(b != 0, fx.floor(a / b)),
            "mod": lambda: fx.when(b != 0, a % b),
        }.get(op)
        if result is None:
            raise CompileError(f"unsupported operator '{op}'")
        return Val(result().cast(spark_type(result_type)), False, result_type)

    def call(self, node: fp.Call, scope: Scope) -> Val:
        """Function invocations."""
        handler = getattr(self, f"fn_{node.name}", None)
        if handler is None:
            raise CompileError(f"unknown or unsupported FHIRPath function {node.name}()")
        target = self.compile(node.target, scope)
        return handler(target, node.args, scope)

    def _args(self, args: tuple[fp.Node, ...], low: int, high: int, name: str) -> None:
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise CompileError(f"{name}() takes {expected} argument(s), got {len(args)}")

    def _item_scope(self, scope: Scope, item: Val) -> Scope:
        return replace(scope, this=item)

    # ---- functions ----------------------------------------------------------------------
    def fn_where(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """where(criteria)."""
        self._args(args, 1, 1, "where")
        return self.where(
            v,
            lambda item: self.boolean(
                self.compile(args[0], self._item_scope(scope, item)), "where() criteria"
            ),
        )

    def fn_exists(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """exists([criteria])."""
        self._args(args, 0, 1, "exists")
        if args:
            v = self.fn_where(v, args, scope)
        return Val(self.exists(v), False, "boolean")

    def fn_empty(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """empty()."""
        self._args(args, 0, 0, "empty")
        return Val(~self.exists(v), False, "boolean")

    def fn_hasValue(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """hasValue()."""
        return self.fn_exists(v, args, scope)

    def fn_count(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """count()."""
        self._args(args, 0, 0, "count")
        if v.choice is not None:
            return Val(self.fx.when(self.exists(v), 1).otherwise(0), False, "integer")
        if v.many:
            return Val(self.size(v.col), False, "integer")
        return Val(self.fx.when(v.col.isNull(), 0).otherwise(1), False, "integer")

    def fn_first(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """first()."""
        self._args(args, 0, 0, "first")
        if v.choice is not None:
            raise CompileError(
                f"'{v.choice.name}' is a choice element: select a type with ofType()"
            )
        if not v.many:
            return v
        if v.first is not None:
            return replace(v, col=v.first, many=False, raw=None, first=None)
        raw = self.fx.get(v.raw, self.fx.lit(0)) if v.raw is not None else None
        return replace(v, first=None, col=self.fx.get(v.col, self.fx.lit(0)), many=False, raw=raw)

    def fn_last(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """last()."""
        self._args(args, 0, 0, "last")
        if not v.many:
            return v
        return replace(
            v, first=None, col=self.fx.get(v.col, self.size(v.col) - 1), many=False, raw=None
        )

    def fn_single(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """single()."""
        self._args(args, 0, 0, "single")
        return replace(v, first=None, col=self.singleton(v), many=False, raw=None)

    def fn_distinct(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """distinct()."""
        self._args(args, 0, 0, "distinct")
        return replace(v, first=None, col=self.fx.array_distinct(v.col), raw=None) if v.many else v

    def fn_not(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """not()."""
        self._args(args, 0, 0, "not")
        return Val(~self.boolean(v, "the input of not()"), False, "boolean")

    def fn_all(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """all(criteria)."""
        self._args(args, 1, 1, "all")

        def test(x: Any) -> Any:
            item = replace(v, first=None, col=x, many=False)
            return self.fx.coalesce(
                self.boolean(
                    self.compile(args[0], self._item_scope(scope, item)), "all() criteria"
                ),
                self.fx.lit(False),
            )

        if v.many:
            return Val(self.fx.forall(self.as_array(v), test), False, "boolean")
        return Val(v.col.isNull() | test(v.col), False, "boolean")

    def fn_iif(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """iif(criterion, true-result[, otherwise-result])."""
        self._args(args, 2, 3, "iif")
        cond = self.boolean(self.compile(args[0], scope), "iif() criterion")
        yes = self.compile(args[1], scope)
        no = self.compile(args[2], scope) if len(args) == 3 else self.lit(None, "empty")
        if yes.many or no.many:
            return Val(
                self.fx.when(cond, self.as_array(yes)).otherwise(self.as_array(no)), True, yes.type
            )
        return Val(
            self.fx.when(cond, yes.col).otherwise(no.col),
            False,
            yes.type if yes.type != "empty" else no.type,
        )

    def fn_ofType(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """ofType(Type)."""
        self._args(args, 1, 1, "ofType")
        return self.of_type(v, _type_specifier(args[0]))

    def fn_as(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """as(Type)."""
        return self.fn_ofType(v, args, scope)

    def fn_is(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """is(Type)."""
        return Val(self.exists(self.fn_ofType(v, args, scope)), False, "boolean")

    def fn_extension(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """extension(url): the extensions of each item with that url."""
        self._args(args, 1, 1, "extension")
        url = self.singleton(self.compile(args[0], scope))
        extensions = self.navigate(v, "extension")
        return self.where(extensions, lambda item: self.navigate(item, "url").col == url)

    def fn_join(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """join([separator]): items as text joined; '' for an empty collection."""
        self._args(args, 0, 1, "join")
        sep = ""
        if args:
            separator = args[0]
            if isinstance(separator, fp.Constant) and separator.name in scope.constants:
                separator = fp.Literal(scope.constants[separator.name].literal, "string")
            if not (isinstance(separator, fp.Literal) and isinstance(separator.value, str)):
                raise CompileError("join() needs a string literal or string constant as separator")
            sep = separator.value
        if v.many:
            text = self.fx.array_join(v.col.cast(T.ArrayType(T.StringType())), sep)
        else:
            text = v.col.cast(T.StringType())
        return Val(self.fx.coalesce(text, self.fx.lit("")), False, "string")

    def fn_getResourceKey(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """getResourceKey(): the resource's id."""
        self._args(args, 0, 0, "getResourceKey")
        if not self.model.is_resource(v.type):
            raise CompileError(f"getResourceKey() needs a resource, not {v.type}")
        return replace(self.navigate(v, "id"), type="string", raw=None)

    def fn_getReferenceKey(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """getReferenceKey([Type]): the id a Reference points at (null when of another type)."""
        self._args(args, 0, 1, "getReferenceKey")
        if v.type != "Reference":
            raise CompileError(f"getReferenceKey() needs a Reference, not {v.type}")
        wanted = _type_specifier(args[0]) if args else None
        if wanted is not None and not self.model.is_resource(_normalize_type(wanted)):
            raise CompileError(f"getReferenceKey(): {wanted!r} is not a resource type")
        fx = self.fx
        reference = self.navigate(v, "reference")
        resource_types = self.model.resource_types()

        def key(ref: Any) -> Any:
            # string functions, not a regex: this runs for every reference of every resource.
            # Handles "Type/id", absolute URLs ".../Type/id" and ".../Type/id/_history/n".
            versionless = fx.when(
                fx.instr(ref, "/_history/") > 0, fx.substring_index(ref, "/_history/", 1)
            ).otherwise(ref)
            ref_id = fx.substring_index(versionless, "/", -1)
            ref_type = fx.substring_index(fx.substring_index(versionless, "/", -2), "/", 1)
            ok = (fx.instr(versionless, "/") > 0) & (ref_id != "")
            if wanted is not None:
                ok = ok & (ref_type == _normalize_type(wanted))
            else:
                ok = ok & ref_type.isin(resource_types)
            return fx.when(ok, ref_id)

        return self.map_items(reference, key, "string")

    def _string_fn(self, v: Val, fn: Callable[[Any], Any], result_type: str = "string") -> Val:
        if system_type(v.type) not in ("string", "empty", "date", "dateTime", "time"):
            raise CompileError(f"expected a string, not {v.type}")
        return self.map_items(v, fn, result_type)

    def fn_lower(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """lower()."""
        self._args(args, 0, 0, "lower")
        return self._string_fn(v, self.fx.lower)

    def fn_upper(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """upper()."""
        self._args(args, 0, 0, "upper")
        return self._string_fn(v, self.fx.upper)

    def fn_trim(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """trim()."""
        self._args(args, 0, 0, "trim")
        return self._string_fn(v, self.fx.trim)

    def fn_length(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """length()."""
        self._args(args, 0, 0, "length")
        return self._string_fn(v, self.fx.length, "integer")

    def fn_startsWith(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """startsWith(prefix)."""
        self._args(args, 1, 1, "startsWith")
        prefix = self.singleton(self.compile(args[0], scope))
        return self._string_fn(v, lambda s: s.startswith(prefix), "boolean")

    def fn_endsWith(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """endsWith(suffix)."""
        self._args(args, 1, 1, "endsWith")
        suffix = self.singleton(self.compile(args[0], scope))
        return self._string_fn(v, lambda s: s.endswith(suffix), "boolean")

    def fn_contains(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:
        """contains(substring) (the string function)."""
        self._args(args, 1, 1, "contains")
        part = self.singleton(self.compile(args[0], scope))
        return self._string_fn(v, lambda s: s.contains(part), "boolean")

    def fn_toString(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """toString()."""
        self._args(args, 0, 0, "toString")
        if not is_primitive(v.type):
            raise CompileError(f"toString() needs a primitive, not {v.type}")
        return self.map_items(v, lambda x: x.cast(T.StringType()), "string")

    def fn_toInteger(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """toInteger()."""
        self._args(args, 0, 0, "toInteger")
        return self.map_items(v, lambda x: x.cast(T.IntegerType()), "integer")

    def fn_toDecimal(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """toDecimal()."""
        self._args(args, 0, 0, "toDecimal")
        return self.map_items(v, lambda x: x.cast(T.DoubleType()), "decimal")

    # ---- boundaries ---------------------------------------------------------------------
    def fn_lowBoundary(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """lowBoundary(): the least value the item's precision allows."""
        self._args(args, 0, 0, "lowBoundary")
        return self._boundary(v, low=True)

    def fn_highBoundary(self, v: Val, args: tuple[fp.Node, ...], scope: Scope) -> Val:  # noqa: N802
        """highBoundary(): the greatest value the item's precision allows."""
        self._args(args, 0, 0, "highBoundary")
        return self._boundary(v, low=False)

    def _boundary(self, v: Val, low: bool) -> Val:
        fx = self.fx
        kind = system_type(v.type)
        if v.many:
            v = replace(
                v,
                col=self.singleton(v),
                many=False,
                raw=self.singleton(replace(v, first=None, col=v.raw))
                if v.raw is not None
                else None,
            )
        text = v.raw if v.raw is not None else v.col.cast(T.StringType())
        if kind == "decimal":
            # precision = digits after the point in the JSON text: 1.0 -> [0.95, 1.05]
            dot = fx.instr(text, ".")
            digits = fx.when(dot > 0, fx.length(text) - dot).otherwise(0)
            half = fx.lit(0.5) * fx.pow(fx.lit(10.0), -digits)
            value = text.cast(T.DoubleType())
            return Val(value - half if low else value + half, False, v.type)
        if kind == "date":
            return Val(self._date_bound(text, low), False, v.type)
        if kind == "dateTime":
            return Val(self._datetime_bound(text, low), False, v.type)
        if kind == "time":
            return Val(self._time_bound(text, low), False, v.type)
        raise CompileError(f"{'low' if low else 'high'}Boundary() is not supported for {v.type}")

    def _date_bound(self, text: Any, low: bool) -> Any:
        fx = self.fx
        length = fx.length(text)
        if low:
            return (
                fx.when(length == 4, fx.concat(text, fx.lit("-01-01")))
                .when(length == 7, fx.concat(text, fx.lit("-01")))
                .otherwise(text)
            )
        month_end = fx.date_format(
            fx.last_day(fx.to_date(fx.concat(text, fx.lit("-01")))), "yyyy-MM-dd"
        )
        return (
            fx.when(length == 4, fx.concat(text, fx.lit("-12-31")))
            .when(length == 7, month_end)
            .otherwise(text)
        )

    def _time_parts(self, text: Any, pattern: str, groups: list[int], low: bool) -> list[Any]:
        fx = self.fx
        defaults = ["00", "00", ".000"] if low else ["59", "59", ".999"]
        parts = []
        for group, default in zip(groups, defaults, strict=True):
            found = fx.regexp_extract(text, pattern, group)
            parts.append(fx.when(found != "", found).otherwise(fx.lit(default)))
        return parts

    def _time_bound(self, text: Any, low: bool) -> Any:
        fx = self.fx
        pattern = r"^(\d{2})(?::(\d{2}))?(?::(\d{2}))?(\.\d+)?$"
        minutes, seconds, fraction = self._time_parts(text, pattern, [2, 3, 4], low)
        hours = fx.regexp_extract(text, pattern, 1)
        return fx.when(
            hours != "", fx.concat(hours, fx.lit(":"), minutes, fx.lit(":"), seconds, fraction)
        )

    def _datetime_bound(self, text: Any, low: bool) -> Any:
        fx = self.fx
        zone_default = "+14:00" if low else "-12:00"  # the earliest / latest offset in use
        date_part = fx.regexp_extract(text, r"^([0-9-]+)", 1)
        date_only = fx.concat(
            self._date_bound(date_part, low),
            fx.lit("T00:00:00.000" if low else "T23:59:59.999"),
            fx.lit(zone_default),
        )
        pattern = r"^[0-9-]+T(\d{2})(?::(\d{2}))?(?::(\d{2}))?(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
        minutes, seconds, fraction = self._time_parts(text, pattern, [2, 3, 4], low)
        zone = fx.regexp_extract(text, pattern, 5)
        zone = fx.when(zone != "", zone).otherwise(fx.lit(zone_default))
        hours = fx.regexp_extract(text, pattern, 1)
        with_time = fx.concat(
            date_part,
            fx.lit("T"),
            hours,
            fx.lit(":"),
            minutes,
            fx.lit(":"),
            seconds,
            fraction,
            zone,
        )
        return fx.when(fx.instr(text, "T") == 0, date_only).when(hours != "", with_time)
