"""What one curated value may hold: the field rules shared by the Curator, the CLI and the API.

Every way into the curated sources (``ontology.curation.Curator``, which the CLI drives, and the
API's request schemas in ``api/schemas.py``) checks values against the rules here, so a value is
refused before anything is written, with a :class:`FieldError` naming the field:

* ids (concepts, relation ends): ``ID_PATTERN``, at most ``MAX_ID`` characters;
* texts: ``name`` (required) at most ``MAX_NAME``, ``definition`` ``MAX_DEFINITION``, ``source``
  ``MAX_SOURCE``, a curator's reason ``why`` ``MAX_WHY`` characters;
* lists: at most ``MAX_SYNONYMS`` synonyms of ``MAX_SYNONYM`` characters and ``MAX_CODES`` codes
  matching ``CODE_PATTERN`` (``SYSTEM:CODE``); no item empty, none holding ``LIST_SEPARATOR``
  (the sources join items with it, so such an item would come back as two);
* no text holds a control character (C0 including tab and line ends, DEL, C1), a surrogate, the
  non-characters U+FFFE/U+FFFF or a line/paragraph separator: the CSV sources would split a row
  at ``\\r``, and XML 1.0 (the OWL export) cannot hold NUL, ``\\x01``, ``\\x0b`` ... at all;
* ``weight`` a finite number in [0, 1]; ``count`` a whole number in [0, ``MAX_COUNT``].

The caps keep every field far below the CSV reader's 131,072-character field limit, so sources
that the Curator writes always read back. They apply to the values a change brings in: an
ontology built from other data (PadChest, variants) is not held to them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from anatomy_vlm.exceptions import CurationError

__all__ = [
    "CODE_PATTERN",
    "FieldError",
    "ID_PATTERN",
    "LIST_SEPARATOR",
    "MAX_CODE",
    "MAX_CODES",
    "MAX_COUNT",
    "MAX_DEFINITION",
    "MAX_ID",
    "MAX_NAME",
    "MAX_SOURCE",
    "MAX_SYNONYM",
    "MAX_SYNONYMS",
    "MAX_WHY",
    "TEXT_LIMITS",
    "check_code",
    "check_codes",
    "check_concept",
    "check_concept_field",
    "check_count",
    "check_id",
    "check_relation",
    "check_synonyms",
    "check_text",
    "check_weight",
    "forbidden_character",
]

LIST_SEPARATOR = "|"  # joins synonyms and codes in the CSV sources (ontology.sources_io)

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"  # also a valid OWL local name and Cypher-safe
MAX_ID = 200
MAX_NAME = 200
MAX_DEFINITION = 4_000
MAX_SOURCE = 200
MAX_WHY = 2_000
MAX_SYNONYM = 200
MAX_SYNONYMS = 50
# "SNOMED:45653009", "UMLS:C0225730", "RadLex:RID1301", "ICD-10:J18.9"
CODE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*:[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_CODE = 100
MAX_CODES = 50
MAX_COUNT = 2**53 - 1  # an evidence count; the largest integer a JSON reader keeps exactly
WEIGHT_RANGE = (0.0, 1.0)  # a normalised strength, e.g. a PadChest co-occurrence frequency

# The most characters each free-text field may hold.
TEXT_LIMITS: dict[str, int] = {"name": MAX_NAME, "definition": MAX_DEFINITION, "source": MAX_SOURCE, "why": MAX_WHY}

_ID = re.compile(ID_PATTERN)
_CODE = re.compile(CODE_PATTERN)
# Besides the Cc category: not characters (XML 1.0 excludes them), or line breaks in disguise.
_FORBIDDEN_EXTRA = frozenset({"\ufffe", "\uffff", "\u2028", "\u2029"})


class FieldError(CurationError, ValueError):
    """A value breaks a field rule; ``field`` names the field (``synonyms[3]``, ``weight`` ...).

    A ``CurationError`` for the curation tools, and a ``ValueError`` so that pydantic reports it
    as invalid input (422) naming the field.
    """

    def __init__(self, field: str, problem: str, *, owner: str | None = None):
        self.field, self.problem, self.owner = field, problem, owner
        super().__init__(f"{owner}: {field}: {problem}" if owner else f"{field}: {problem}")


def forbidden_character(text: str) -> tuple[int, str] | None:
    """The first character of ``text`` no curated text may hold, as (position, character), or None."""
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _FORBIDDEN_EXTRA:
            return position, char
    return None


def check_text(field: str, value: object, *, max_length: int | None = None, required: bool = False,
               owner: str | None = None) -> str:
    """``value`` when it is a string within ``max_length`` (default ``TEXT_LIMITS[field]``) with no
    forbidden character (and not blank when ``required``); else :class:`FieldError`."""
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}", owner=owner)
    limit = TEXT_LIMITS[field] if max_length is None else max_length
    if len(value) > limit:
        raise FieldError(field, f"{len(value):,} characters, at most {limit:,} allowed", owner=owner)
    if required and not value.strip():
        raise FieldError(field, "must not be empty", owner=owner)
    found = forbidden_character(value)
    if found is not None:
        position, char = found
        raise FieldError(field, f"control character U+{ord(char):04X} at position {position} is not allowed",
                         owner=owner)
    return value


def check_id(field: str, value: object, *, owner: str | None = None) -> str:
    """A concept id: ``ID_PATTERN``, at most ``MAX_ID`` characters."""
    text = check_text(field, value, max_length=MAX_ID, required=True, owner=owner)
    if not _ID.fullmatch(text):
        raise FieldError(field, f"{_short(text)} is not an id (letters, digits and '_', not starting with a digit)",
                         owner=owner)
    return text


def _check_items(field: str, items: object, *, max_items: int, max_length: int,
                 owner: str | None) -> tuple[str, ...]:
    if isinstance(items, str) or not isinstance(items, Sequence | set | frozenset):
        raise FieldError(field, f"expected a list of text, got {type(items).__name__}", owner=owner)
    items = tuple(items)
    if len(items) > max_items:
        raise FieldError(field, f"{len(items):,} items, at most {max_items} allowed", owner=owner)
    for index, item in enumerate(items):
        check_text(f"{field}[{index}]", item, max_length=max_length, required=True, owner=owner)
        if LIST_SEPARATOR in item:
            raise FieldError(f"{field}[{index}]", f"{_short(item)} holds {LIST_SEPARATOR!r}, which separates items",
                             owner=owner)
    return items


def check_synonyms(items: object, *, field: str = "synonyms", owner: str | None = None) -> tuple[str, ...]:
    """At most ``MAX_SYNONYMS`` synonyms, each non-empty text of at most ``MAX_SYNONYM`` characters."""
    return _check_items(field, items, max_items=MAX_SYNONYMS, max_length=MAX_SYNONYM, owner=owner)


def check_code(field: str, value: object, *, owner: str | None = None) -> str:
    """One ``SYSTEM:CODE`` code (``CODE_PATTERN``), at most ``MAX_CODE`` characters."""
    text = check_text(field, value, max_length=MAX_CODE, required=True, owner=owner)
    if not _CODE.fullmatch(text):
        raise FieldError(field, f"{_short(text)} is not a code like 'SNOMED:45653009' (SYSTEM:CODE)", owner=owner)
    return text


def check_codes(items: object, *, field: str = "codes", owner: str | None = None) -> tuple[str, ...]:
    """At most ``MAX_CODES`` codes, each ``SYSTEM:CODE``."""
    items = _check_items(field, items, max_items=MAX_CODES, max_length=MAX_CODE, owner=owner)
    for index, item in enumerate(items):
        check_code(f"{field}[{index}]", item, owner=owner)
    return items


def check_weight(value: object, *, field: str = "weight", owner: str | None = None) -> float | None:
    """``None``, or a finite number in ``WEIGHT_RANGE``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(field, f"expected a number, got {_short(value)}", owner=owner)
    low, high = WEIGHT_RANGE
    if not math.isfinite(value) or not low <= value <= high:
        raise FieldError(field, f"{value!r} is not a finite number in [{low:g}, {high:g}]", owner=owner)
    return float(value)


def check_count(value: object, *, field: str = "count", owner: str | None = None) -> int | None:
    """``None``, or a whole number in [0, ``MAX_COUNT``]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"expected a whole number, got {_short(value)}", owner=owner)
    if not 0 <= value <= MAX_COUNT:
        raise FieldError(field, f"{value!r} is not a whole number in [0, {MAX_COUNT}]", owner=owner)
    return value


def check_concept_field(field: str, value: object, *, owner: str | None = None) -> object:
    """One concept field's value, checked by its rule (``kind`` is an enum, checked where it is parsed)."""
    if field == "id":
        return check_id(field, value, owner=owner)
    if field == "name":
        return check_text(field, value, required=True, owner=owner)
    if field in ("definition", "source"):
        return check_text(field, value, owner=owner)
    if field == "synonyms":
        return check_synonyms(value, owner=owner)
    if field == "codes":
        return check_codes(value, owner=owner)
    if field == "kind":
        return value
    raise ValueError(f"no field rule for concept field {field!r}")


def check_concept(concept) -> None:
    """Every field of a new ``Concept``; :class:`FieldError` names the first one at fault."""
    owner = f"concept {_short(concept.id)}"
    for field in ("id", "name", "synonyms", "definition", "codes", "source"):
        check_concept_field(field, getattr(concept, field), owner=owner)


def check_relation(relation) -> None:
    """Every field of a new ``Relation``: its ends are ids, its source text, weight and count in range."""
    owner = f"relation {_short(relation.start)} -[{relation.type.value}]-> {_short(relation.end)}"
    check_id("start", relation.start, owner=owner)
    check_id("end", relation.end, owner=owner)
    check_text("source", relation.source, required=True, owner=owner)
    check_weight(relation.weight, owner=owner)
    check_count(relation.count, owner=owner)


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a refused megabyte is not echoed back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} characters)"
