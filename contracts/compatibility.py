"""Whether a message's new JSON schema breaks the readers of its old one.

Readers ignore fields they do not know, so a new optional field breaks nobody. A field that is
removed, retyped (its type, format, constraints or allowed values changed) or newly required
breaks a reader on one side of a rolling deploy: such a change must raise the message's
`schema_version` (see the package's docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Schema = dict[str, Any]
ChangeKind = Literal["removed", "retyped", "required", "added"]

# What only describes a field: changing it changes no message a reader accepts.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
# Lists of schemas, compared member by member.
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
# Single schemas, compared as schemas.
_SCHEMA_VALUES = frozenset({"items", "additionalProperties"})


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a schema, at a dotted field path."""

    kind: ChangeKind
    path: str
    detail: str = ""

    @property
    def breaking(self) -> bool:
        """Whether a reader of one version may refuse messages of the other."""
        return self.kind != "added"

    def __str__(self) -> str:
        what = {
            "removed": "removed",
            "retyped": "retyped",
            "required": "newly required",
            "added": "added (optional)",
        }[self.kind]
        return f"{self.path}: {what}" + (f" ({self.detail})" if self.detail else "")


def changes(old: Schema, new: Schema) -> list[Change]:
    """The field-level changes from schema `old` to schema `new` (pydantic's JSON schemas of a
    model, with their `$defs`), nested models included, in field order."""
    return _Comparison(old, new).fields(old, new, "")


def breaking_changes(old: Schema, new: Schema) -> list[Change]:
    """Only the changes that break readers (see `Change.breaking`)."""
    return [c for c in changes(old, new) if c.breaking]


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self._defs = (old_root.get("$defs", {}), new_root.get("$defs", {}))
        self._seen: set[tuple[str, str]] = set()  # pairs of models compared (cycles)

    def fields(self, old: Schema, new: Schema, path: str) -> list[Change]:
        """Changes of an object's fields: removed, retyped, newly required, added."""
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        found: list[Change] = []
        for name, schema in old_fields.items():
            where = f"{path}.{name}" if path else name
            if name not in new_fields:
                found.append(Change("removed", where))
                continue
            found += self.value(schema, new_fields[name], where)
            if name in new_required and name not in old_required:
                found.append(Change("required", where, "had a default"))
        for name in new_fields.keys() - old_fields.keys():
            where = f"{path}.{name}" if path else name
            found.append(Change("required" if name in new_required else "added", where))
        return found

    def value(self, old: Schema, new: Schema, path: str) -> list[Change]:
        """Changes of one field's schema: none, a retyping, or changes inside a nested model."""
        old, old_ref = self._resolve(old, 0)
        new, new_ref = self._resolve(new, 1)
        if "properties" in old or "properties" in new:
            if "properties" not in old or "properties" not in new:
                return [Change("retyped", path, "a model is now a plain value or back")]
            if (old_ref, new_ref) in self._seen:
                return []
            self._seen.add((old_ref, new_ref))
            return self.fields(old, new, path)
        keys = old.keys() - _ANNOTATIONS
        if keys != new.keys() - _ANNOTATIONS:
            return [Change("retyped", path, _shape(old, new))]
        found: list[Change] = []
        for key in sorted(keys):
            before, after = old[key], new[key]
            if key in _SCHEMA_LISTS and len(before) == len(after):
                for one, other in zip(before, after, strict=True):
                    found += self.value(one, other, path)
            elif key in _SCHEMA_VALUES and isinstance(before, dict) and isinstance(after, dict):
                found += self.value(before, after, f"{path}[]")
            elif before != after:
                return [Change("retyped", path, f"{key}: {before!r} → {after!r}")]
        return found

    def _resolve(self, schema: Schema, side: int) -> tuple[Schema, str]:
        """The schema a `$ref` points to (with the referring schema's own keys), and its name."""
        ref = ""
        while "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[-1]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self._defs[side][ref], **rest}
        return schema, ref


def _shape(old: Schema, new: Schema) -> str:
    """E.g. `string (maxLength) → integer`: each side's type, with the other keys it has."""

    def shape(schema: Schema) -> str:
        others = sorted(schema.keys() - _ANNOTATIONS - {"type"})
        return str(schema.get("type", "any")) + (f" ({', '.join(others)})" if others else "")

    return f"{shape(old)} → {shape(new)}"
