"""The parse schema derived from the paths views use: a trie of the FHIR elements they touch.

The compiler registers every element it navigates; the trie then becomes the `from_json` schema.
Primitive values are read as text (StringType): Spark's JSON reader then never fails on a number
written as a string or the reverse, and the compiler casts each value to its FHIRPath type where it
is used. Only objects and arrays must have the shape FHIR defines.
"""

from __future__ import annotations

from pyspark.sql import types as T

CORRUPT_RECORD = "_corrupt_record"


class SchemaNode:
    """A complex FHIR value (a resource, a datatype or a backbone element) and its used fields."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        # JSON name -> (child node for complex types or None for primitives, is_array)
        self.fields: dict[str, tuple[SchemaNode | None, bool]] = {}

    def child(
        self, name: str, type_name: str, is_array: bool, primitive: bool
    ) -> SchemaNode | None:
        """Registers field `name` and returns its node (None for a primitive field)."""
        existing = self.fields.get(name)
        if existing is not None:
            return existing[0]
        node = None if primitive else SchemaNode(type_name)
        self.fields[name] = (node, is_array)
        return node

    def merge(self, other: SchemaNode) -> None:
        """Adds every field used under `other` (same FHIR type) to this node, recursively."""
        if not other.fields:
            self.child("id", "string", False, True)  # what other.struct_fields() reads
        for name, (node, is_array) in other.fields.items():
            mine = self.child(name, node.type_name if node else "", is_array, node is None)
            if node is not None and mine is not None:
                mine.merge(node)

    def struct_fields(self) -> list[tuple[str, SchemaNode | None, bool]]:
        """Fields in a stable order; an object nothing reads inside keeps `id` so its presence shows."""
        if not self.fields:
            return [("id", None, False)]
        return [(name, node, arr) for name, (node, arr) in sorted(self.fields.items())]

    def spark_type(self) -> T.StructType:
        """The Spark struct type of this node."""
        fields = []
        for name, node, is_array in self.struct_fields():
            inner: T.DataType = T.StringType() if node is None else node.spark_type()
            fields.append(T.StructField(name, T.ArrayType(inner) if is_array else inner))
        return T.StructType(fields)


def resource_root(resource_type: str) -> SchemaNode:
    """The root node of a resource type; `resourceType` and `id` are always read."""
    root = SchemaNode(resource_type)
    root.child("resourceType", "code", False, True)
    root.child("id", "id", False, True)
    return root
