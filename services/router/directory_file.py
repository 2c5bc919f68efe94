"""The directory file's shape and how it is read: strict YAML, validated against the schema.

`DirectoryDocument` is the whole file (its JSON Schema is ``data/directory.schema.json``);
`read_document` returns it or raises `DirectoryError` naming the entry, e.g.
``directory.yaml: unit '652701': jurisdiction_codes.0: String should match pattern ...``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fengqiao.contracts.envelope import UnitId

__all__ = [
    "DirectoryDocument",
    "DirectoryError",
    "Kind",
    "NameStatus",
    "Tier",
    "UnitEntry",
    "UnitStatus",
    "directory_json_schema",
    "read_document",
]

Tier = Literal["region", "prefecture", "county"]
Kind = Literal["region", "prefecture", "branch", "county", "railway", "xpcc"]
PartnerKind = Literal[
    "police",
    "court",
    "labour_inspection",
    "human_resources",
    "culture_tourism",
    "health",
    "housing",
    "civil_affairs",
    "market_regulation",
]
NameStatus = Literal["confirmed", "inferred", "unconfirmed"]
UnitStatus = Literal["active", "unconfirmed"]

Code = Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 code.")]
SourceCode = Annotated[str, Field(pattern=r"^S\d+[a-z]?$", description="Key of system.sources.")]
Handle = Annotated[str, Field(pattern=r"^@\S+$", max_length=64)]
Text = Annotated[str, Field(min_length=1)]


class DirectoryError(ValueError):
    """The directory file is unreadable or breaks a rule; the message names the entry."""


class _Entry(BaseModel):
    # Strict: a code written without quotes becomes an int in YAML and must be refused, not
    # silently turned back into a string with its leading zeros lost.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WeiboEntry(_Entry):
    """The unit's Weibo account."""

    handle: Handle | None = Field(description="e.g. @博乐检察; null when no pattern applies.")
    verified: bool = Field(description="True only for handles confirmed by a source.")
    source: Text = Field(
        description="An S-code, 'article' (named in S9), 'pattern' (guessed) or 'none'."
    )


class NamesEntry(_Entry):
    """Place names that identify the unit's division (never the procuratorate's name)."""

    full: list[Text] = Field(default_factory=list, description="Official names.")
    short: list[Text] = Field(default_factory=list, description="Unambiguous short names.")
    aliases: list[Text] = Field(default_factory=list, description="Informal names.")
    former: list[Text] = Field(default_factory=list, description="Names before a renaming.")
    ambiguous: list[Text] = Field(
        default_factory=list,
        description="Names that may also mean another unit: never resolved by lookup alone.",
    )


class DepartmentEntry(_Entry):
    """An internal department of a procuratorate."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: Text


class PartnerEntry(_Entry):
    """An external agency of the same jurisdiction (横协调)."""

    name: Text
    inferred: bool = Field(description="True when the name is generated from a pattern.")


class UnitEntry(_Entry):
    """One procuratorate of the matrix."""

    id: UnitId
    name: Text = Field(description="The procuratorate's name, e.g. 博乐市人民检察院.")
    name_status: NameStatus
    division: Text | None = Field(description="The division's name; null for railway units.")
    tier: Tier
    kind: Kind
    parent: UnitId | None
    status: UnitStatus = "active"
    jurisdiction_codes: list[Code]
    weibo: WeiboEntry
    names: NamesEntry
    departments: list[DepartmentEntry] | None = Field(
        default=None, description="Overrides default_departments when given."
    )
    partners: dict[PartnerKind, PartnerEntry] = Field(default_factory=dict)
    notes: list[Text] = Field(default_factory=list)
    source: list[SourceCode] = Field(min_length=1)


class SourceEntry(_Entry):
    """Where a fact comes from."""

    what: Text
    url: str | None


class SystemEntry(_Entry):
    """What the directory is, where it comes from and what in it is inferred."""

    name: Text
    description: Text
    generator: Text
    generated_from: Text
    as_of: Text
    matrix_accounts_reported: int
    tree: list[Text]
    inferred: list[Text]
    sources: dict[SourceCode, SourceEntry]


class DirectoryDocument(_Entry):
    """The whole directory file."""

    schema_version: Literal[1]
    system: SystemEntry
    default_departments: list[DepartmentEntry] = Field(min_length=1)
    units: list[UnitEntry] = Field(min_length=1)


def directory_json_schema() -> dict[str, Any]:
    """The JSON Schema of the directory file (what ``data/directory.schema.json`` holds)."""
    schema = DirectoryDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def read_document(text: str, origin: str) -> DirectoryDocument:
    """The validated document of directory YAML text; ``origin`` names it in error messages."""
    raw = _read_yaml(text, origin)
    document = _validate_document(raw, origin)
    _check_sources(document, origin)
    return document


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _read_yaml(text: str, origin: str) -> Any:
    try:
        # A SafeLoader subclass: no arbitrary objects, only duplicate keys refused on top.
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{origin}: not valid YAML: {exc}") from exc


def _validate_document(raw: Any, origin: str) -> DirectoryDocument:
    try:
        return DirectoryDocument.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryError(_describe(exc, raw, origin)) from None


def _describe(exc: ValidationError, raw: Any, origin: str) -> str:
    """One line per problem, naming the unit by id when the problem is inside one."""
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        if len(loc) >= 2 and loc[0] == "units" and isinstance(loc[1], int):
            where, rest = f"unit {_unit_label(raw, loc[1])}", loc[2:]
        else:
            where, rest = "document", loc
        path = ".".join(str(part) for part in rest) or "(entry)"
        lines.append(f"{origin}: {where}: {path}: {error['msg']}")
    return "\n".join(lines)


def _unit_label(raw: Any, index: int) -> str:
    try:
        unit_id = raw["units"][index]["id"]
    except (KeyError, IndexError, TypeError):
        unit_id = None
    return repr(unit_id) if isinstance(unit_id, str) else f"#{index + 1} (no valid id)"


def _check_sources(document: DirectoryDocument, origin: str) -> None:
    known = document.system.sources
    for entry in document.units:
        for code in entry.source:
            if code not in known:
                raise DirectoryError(
                    f"{origin}: unit '{entry.id}': source '{code}' is not listed in system.sources"
                )
