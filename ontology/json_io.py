"""Save and load an :class:`~anatomy_vlm.ontology.model.Ontology` as JSON, exactly.

JSON is the plain interchange form next to OWL: easy to diff, to read from any language, and to
ship over the API. ``load_json(save_json(o)) == o``, with the same ``name`` and ``content_hash``,
for every ontology whose weights are finite (JSON has no NaN or infinity).

Schema, version 1
-----------------
One UTF-8 JSON object::

    {
      "format": "anatomy-vlm-ontology",      # fixed; tells this file from other JSON
      "version": 1,                          # this schema's version; a reader refuses newer ones
      "name": "anatomy-vlm-seed",            # Ontology.name
      "content_hash": "<64 hex digits>",     # Ontology.content_hash() of what follows
      "concepts": [                          # in Ontology order (sorted by id)
        {"id": "pleural_effusion", "kind": "Finding", "name": "pleural effusion",
         "synonyms": ["effusion", ...], "definition": "...", "codes": ["SNOMED:60046008"],
         "source": "seed"}
      ],
      "relations": [                         # in Ontology order (sorted by key)
        {"type": "LOCATED_IN", "start": "pleural_effusion", "end": "right_costophrenic_angle",
         "source": "seed", "weight": null, "count": null}
      ]
    }

Every key shown is required and no other key is allowed; ``kind`` is a
:class:`~anatomy_vlm.ontology.model.ConceptKind` value, ``type`` a
:class:`~anatomy_vlm.ontology.model.RelationType` value, ``weight`` a number or null, ``count`` an
integer or null. :func:`load_json` checks all of this and the ``content_hash``, and raises
:class:`~anatomy_vlm.exceptions.OntologyError` naming the file and the offending entry. It does not
run ``Ontology.validate()``: the file holds what was saved, valid or not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from anatomy_vlm.atomic import write_atomically
from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType

FORMAT = "anatomy-vlm-ontology"
VERSION = 1

_TOP_KEYS = ("format", "version", "name", "content_hash", "concepts", "relations")
_CONCEPT_KEYS = ("id", "kind", "name", "synonyms", "definition", "codes", "source")
_RELATION_KEYS = ("type", "start", "end", "source", "weight", "count")


# -- writing ---------------------------------------------------------------------------------------
def ontology_to_dict(ontology: Ontology) -> dict[str, Any]:
    """The version-1 JSON object of ``ontology``; refuses non-finite weights (JSON cannot hold them)."""
    for r in ontology.relations:
        if r.weight is not None and not math.isfinite(r.weight):
            raise OntologyError(
                f"relation {r.start!r} -[{r.type.value}]-> {r.end!r} from {r.source!r} has weight {r.weight}, "
                "which JSON cannot hold"
            )
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": ontology.name,
        "content_hash": ontology.content_hash(),
        "concepts": [
            {
                "id": c.id,
                "kind": c.kind.value,
                "name": c.name,
                "synonyms": list(c.synonyms),
                "definition": c.definition,
                "codes": list(c.codes),
                "source": c.source,
            }
            for c in ontology.concepts
        ],
        "relations": [
            {
                "type": r.type.value,
                "start": r.start,
                "end": r.end,
                "source": r.source,
                "weight": r.weight,
                "count": r.count,
            }
            for r in ontology.relations
        ],
    }


def save_json(ontology: Ontology, path: str | Path) -> None:
    """Write ``ontology`` to ``path`` (schema above); the file is replaced whole or not at all."""
    path = Path(path)
    text = json.dumps(ontology_to_dict(ontology), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text.encode("utf-8"))
    except OSError as e:
        raise OntologyError(f"{path}: cannot write the JSON file: {e}") from e


# -- reading ---------------------------------------------------------------------------------------
def load_json(path: str | Path) -> Ontology:
    """Read a file written by :func:`save_json`, checking its schema and its content hash."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OntologyError(f"{path}: cannot read the JSON file: {e}") from e
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:
        raise OntologyError(f"{path}: not valid JSON: {e}") from e
    return ontology_from_dict(data, where=str(path))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def ontology_from_dict(data: Any, *, where: str = "<json>") -> Ontology:
    """Build the ontology from a version-1 JSON object; ``where`` (a file name) starts every error."""

    def fail(problem: str) -> OntologyError:
        return OntologyError(f"{where}: {problem}")

    if not isinstance(data, dict):
        raise fail(f"expected a JSON object at the top, found {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise fail(f"'format' is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise fail(f"'version' must be an integer, found {version!r}")
    if version != VERSION:
        raise fail(f"schema version {version} is not supported (this reader knows version {VERSION})")
    _check_keys(data, _TOP_KEYS, "the top-level object", fail)
    name, expected_hash = data["name"], data["content_hash"]
    if not isinstance(name, str):
        raise fail(f"'name' must be a string, found {type(name).__name__}")
    if not isinstance(expected_hash, str):
        raise fail(f"'content_hash' must be a string, found {type(expected_hash).__name__}")
    for key in ("concepts", "relations"):
        if not isinstance(data[key], list):
            raise fail(f"{key!r} must be a list, found {type(data[key]).__name__}")

    concepts = [_concept(i, item, fail) for i, item in enumerate(data["concepts"])]
    relations = [_relation(i, item, fail) for i, item in enumerate(data["relations"])]
    ontology = Ontology(concepts=tuple(concepts), relations=tuple(relations), name=name)
    actual = ontology.content_hash()
    if actual != expected_hash:
        raise fail(f"content_hash mismatch: the file says {expected_hash}, its content hashes to {actual}")
    return ontology


def _check_keys(item: dict, keys: tuple[str, ...], what: str, fail) -> None:
    missing = [k for k in keys if k not in item]
    if missing:
        raise fail(f"{what} lacks {', '.join(repr(k) for k in missing)}")
    extra = sorted(set(item) - set(keys))
    if extra:
        raise fail(f"{what} has unknown key(s) {', '.join(repr(k) for k in extra)}")


def _concept(index: int, item: Any, fail) -> Concept:
    label = f"concepts[{index}]"
    if not isinstance(item, dict):
        raise fail(f"{label} must be an object, found {type(item).__name__}")
    if isinstance(item.get("id"), str):
        label += f" ({item['id']!r})"
    _check_keys(item, _CONCEPT_KEYS, label, fail)
    for key in ("id", "kind", "name", "definition", "source"):
        if not isinstance(item[key], str):
            raise fail(f"{label}: {key!r} must be a string, found {type(item[key]).__name__}")
    for key in ("synonyms", "codes"):
        if not isinstance(item[key], list) or not all(isinstance(v, str) for v in item[key]):
            raise fail(f"{label}: {key!r} must be a list of strings")
    try:
        kind = ConceptKind(item["kind"])
    except ValueError as e:
        raise fail(f"{label}: unknown kind {item['kind']!r} (one of {[k.value for k in ConceptKind]})") from e
    return Concept(
        id=item["id"],
        kind=kind,
        name=item["name"],
        synonyms=tuple(item["synonyms"]),
        definition=item["definition"],
        codes=tuple(item["codes"]),
        source=item["source"],
    )


def _relation(index: int, item: Any, fail) -> Relation:
    label = f"relations[{index}]"
    if not isinstance(item, dict):
        raise fail(f"{label} must be an object, found {type(item).__name__}")
    if all(isinstance(item.get(k), str) for k in ("type", "start", "end")):
        label += f" ({item['start']!r} -[{item['type']}]-> {item['end']!r})"
    _check_keys(item, _RELATION_KEYS, label, fail)
    for key in ("type", "start", "end", "source"):
        if not isinstance(item[key], str):
            raise fail(f"{label}: {key!r} must be a string, found {type(item[key]).__name__}")
    weight, count = item["weight"], item["count"]
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
        raise fail(f"{label}: 'weight' must be a number or null, found {weight!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise fail(f"{label}: 'count' must be an integer or null, found {count!r}")
    try:
        rel_type = RelationType(item["type"])
    except ValueError as e:
        raise fail(f"{label}: unknown relation type {item['type']!r} (one of {[t.value for t in RelationType]})") from e
    return Relation(rel_type, item["start"], item["end"], item["source"], weight, count)
