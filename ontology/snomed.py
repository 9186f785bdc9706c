"""SNOMED CT codes for our concepts, taken only from pydicom's DICOM coded-concept tables.

pydicom ships the DICOM standard's coded concepts (``pydicom/sr/_concepts_dict.py``: scheme ->
keyword -> {code: (meaning, [CIDs])}; ``pydicom/sr/_cid_dict.py``: the context groups). The
``"SCT"`` scheme is SNOMED CT. No code is ever typed in here from elsewhere: every code this
module gives a concept is one of pydicom's, found by the rules below, and the build checks it.

How a concept gets its code (:func:`match_snomed`):

1. Its ``name`` is compared with every SCT meaning (case-insensitive, runs of whitespace
   collapsed). A meaning written as a SNOMED fully specified name, ``"Mediastinal emphysema
   (disorder)"``, is compared without its ``(semantic tag)``.
2. Only when the name matches nothing are its synonyms compared, all together: a loose synonym
   ("effusion") is used only when the preferred name found nothing.
3. A candidate is dropped when its semantic tag (from pydicom's fully specified names, or
   "procedure" when every context group it is in is a procedure group) does not suit the
   concept's kind (an Anatomy concept needs a body structure ...), or when :data:`REJECTED`
   names it for the concept (reviewed false friends, each with its reason).
4. Of several candidates left, those whose fully specified name confirms the kind are
   preferred, then those in the chest context groups named in DESIGN.md (:data:`CHEST_CIDS`);
   if still more than one is left the concept is reported ambiguous and gets none.
5. :data:`EXPLICIT` adds the few codes whose pydicom meaning is worded differently from every
   name of the concept, where the two are certainly the same thing (each row says why).
"""

from __future__ import annotations

import importlib
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import ConceptKind, Ontology

SYSTEM = "SNOMED"  # the code system prefix in Concept.codes: "SNOMED:60046008"
SCHEME = "SCT"  # pydicom's coding scheme designator for SNOMED CT

# The DICOM context groups for chest radiography that DESIGN.md names: chest findings, lung,
# bronchovascular, pleura and mediastinum anatomy, locations in the chest and lung, lung segments,
# lobes, zones, and the thoracic segmentation types.
CHEST_CIDS: frozenset[int] = frozenset({6101, 6110, 6111, 6112, 6113, 6124, 6125, 6126, 6127, 6170, 6171, 7155})

# Which SNOMED semantic tags suit each kind; a code with a tag outside its concept's set is dropped.
KIND_TAGS: dict[ConceptKind, frozenset[str]] = {
    ConceptKind.ANATOMY: frozenset({"body structure"}),
    ConceptKind.FINDING: frozenset({"finding", "disorder", "morphologic abnormality"}),
    ConceptKind.DISEASE: frozenset({"finding", "disorder", "morphologic abnormality"}),
    ConceptKind.ATTRIBUTE: frozenset({"qualifier value", "attribute"}),
    ConceptKind.DEVICE: frozenset({"physical object"}),
}

# (concept id, code) -> why this candidate, found by its wording, is not the concept's code.
REJECTED: dict[tuple[str, str], str] = {
    # pydicom's fully specified name for 287272002 is "Enlarged septal foramen of heart
    # (disorder)"; "Cardiomegaly" is its label only in the fetal echo groups (CIDs 12248/12249).
    ("cardiomegaly", "287272002"): "pydicom's fully specified name for it is 'Enlarged septal foramen of heart'",
    # Matched through the synonym "plate-like atelectasis": narrower than linear/patchy atelectasis.
    ("linear_patchy_atelectasis", "40779009"): "plate-like (discoid) atelectasis is only the linear part",
    # Matched through the synonym "nodule": SNOMED's Nodule is a nodule anywhere in the body.
    ("lung_nodule", "27925004"): "'Nodule' is a nodule of any organ, not a lung nodule",
    # Matched through the synonym "feeding tube": enteric tubes also drain.
    ("enteric_tube", "25062003"): "a feeding tube is one kind of enteric tube",
    # Two pydicom codes read "Descending aorta"; this one's keyword is
    # StructureOfDescendingThoracicAorta, the thoracic part only; 281130003 is the whole.
    ("descending_aorta", "32672002"): "pydicom files it as the descending thoracic aorta only",
}

# concept id -> (code, why it is the same thing although pydicom words it differently).
EXPLICIT: dict[str, tuple[str, str]] = {
    # pydicom: 39607008 "Lung" / "Lung structure (body structure)"; a lung structure covers
    # either lung and both together, which is what our "lungs" names.
    "lungs": ("39607008", "'Lung structure' is the lung(s) as a body structure"),
    # pydicom: 272710004 "Bone of thorax" (CID 7155, thoracic segmentation types): the bony thorax.
    "thoracic_skeleton": ("272710004", "'Bone of thorax' is the bony thorax, our thoracic skeleton"),
}

_TAGGED = re.compile(r"^(?P<text>.*\S)\s+\((?P<tag>[a-z][a-z ]*)\)$")


@dataclass(frozen=True)
class SnomedTable:
    """pydicom's SCT codes: each code's meanings, semantic tags and context groups."""

    meanings: dict[str, tuple[str, ...]]  # code -> every meaning pydicom gives it, as written
    tags: dict[str, frozenset[str]]  # code -> semantic tags from its fully specified names
    cids: dict[str, frozenset[int]]  # code -> the context groups (CIDs) it belongs to
    by_meaning: dict[str, frozenset[str]]  # normalised meaning -> codes
    version: str  # pydicom's version, for the build log

    def __contains__(self, code: object) -> bool:
        return code in self.meanings


@dataclass(frozen=True)
class SnomedMatch:
    """One code given to one concept, and why."""

    concept_id: str
    code: str  # the bare SNOMED CT id, e.g. "60046008"
    meaning: str  # the pydicom meaning that matched (or the explicit row's first meaning)
    via: str  # "name", "synonym" or "explicit"
    text: str  # the concept's name or synonym that matched ("" for explicit rows)

    def format(self) -> str:
        how = f"{self.via} {self.text!r}" if self.text else self.via
        return f"{self.concept_id}: {SYSTEM}:{self.code} {self.meaning!r} ({how})"


@dataclass(frozen=True)
class SnomedResult:
    """What :func:`match_snomed` found."""

    matches: tuple[SnomedMatch, ...] = ()
    notes: tuple[str, ...] = ()  # dropped, rejected and ambiguous candidates, one line each
    pydicom_version: str = ""

    def codes_by_concept(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for m in self.matches:
            found[m.concept_id].add(f"{SYSTEM}:{m.code}")
        return found


def normalise(text: str) -> str:
    """Meanings and names compare case-insensitively, ignoring runs of whitespace."""
    return " ".join(text.casefold().split())


@lru_cache(maxsize=1)
def load_table() -> SnomedTable:
    """Read pydicom's SCT tables (imported lazily: ``pydicom.sr`` modules are a few MB)."""
    try:
        concepts_dict = importlib.import_module("pydicom.sr._concepts_dict")
        cid_dict = importlib.import_module("pydicom.sr._cid_dict")
        pydicom = importlib.import_module("pydicom")
    except ImportError as e:
        raise OntologyError(f"SNOMED codes need pydicom's coded-concept tables: {e} (pip install pydicom)") from e
    meanings: dict[str, list[str]] = defaultdict(list)
    cids: dict[str, set[int]] = defaultdict(set)
    for per_code in concepts_dict.concepts.get(SCHEME, {}).values():
        for code, (meaning, code_cids) in per_code.items():
            meanings[code].append(meaning)
            cids[code].update(code_cids)
    procedure_cids = {cid for cid, name in cid_dict.name_for_cid.items() if "Procedure" in name}
    tags: dict[str, frozenset[str]] = {}
    by_meaning: dict[str, set[str]] = defaultdict(set)
    for code, texts in meanings.items():
        found = set()
        for text in texts:
            tagged = _TAGGED.match(text)
            if tagged:
                found.add(tagged.group("tag"))
                text = tagged.group("text")
            by_meaning[normalise(text)].add(code)
        # A code filed only under procedure groups is a procedure even without its FSN here
        # (pydicom's "Aspiration" is the specimen-collection procedure, not the disorder).
        if cids[code] and cids[code] <= procedure_cids:
            found.add("procedure")
        tags[code] = frozenset(found)
    return SnomedTable(
        meanings={code: tuple(sorted(set(texts))) for code, texts in meanings.items()},
        tags=tags,
        cids={code: frozenset(found) for code, found in cids.items()},
        by_meaning={text: frozenset(codes) for text, codes in by_meaning.items()},
        version=str(getattr(pydicom, "__version__", "unknown")),
    )


def known_codes() -> frozenset[str]:
    """Every SNOMED CT code in pydicom's tables, bare (``"60046008"``)."""
    return frozenset(load_table().meanings)


def match_snomed(ontology: Ontology, table: SnomedTable | None = None) -> SnomedResult:
    """The pydicom SNOMED CT code of each concept that has one (see the module docstring)."""
    table = table or load_table()
    matches: list[SnomedMatch] = []
    notes: list[str] = []
    for concept in ontology.concepts:
        if concept.id in EXPLICIT:
            continue  # the explicit row decides for this concept
        for via, texts in (("name", [concept.name]), ("synonym", sorted(concept.synonyms))):
            candidates = {code: text for text in texts for code in sorted(table.by_meaning.get(normalise(text), ()))}
            if candidates:
                break
        kept = {}
        for code, text in sorted(candidates.items()):
            reason = REJECTED.get((concept.id, code))
            wrong_tags = table.tags[code] and not (table.tags[code] & KIND_TAGS[concept.kind])
            what = f"{SYSTEM}:{code} {table.meanings[code]}"
            if reason:
                notes.append(f"{concept.id}: rejected {what}: {reason}")
            elif wrong_tags:
                tags = "/".join(sorted(table.tags[code]))
                notes.append(f"{concept.id}: dropped {what}: a {tags}, not a {concept.kind.value}")
            else:
                kept[code] = text
        if len(kept) > 1:  # prefer a code whose fully specified name confirms the kind
            confirmed = {code: text for code, text in kept.items() if table.tags[code] & KIND_TAGS[concept.kind]}
            kept = confirmed or kept
        if len(kept) > 1:  # then one from the chest context groups
            chest = {code: text for code, text in kept.items() if table.cids[code] & CHEST_CIDS}
            kept = chest or kept
        if len(kept) > 1:
            listed = ", ".join(f"{SYSTEM}:{code} {table.meanings[code]}" for code in sorted(kept))
            notes.append(f"{concept.id}: ambiguous, {via} matches {listed}; no code given")
            continue
        for code, text in kept.items():
            meaning = next(m for m in table.meanings[code] if normalise(_untagged(m)) == normalise(text))
            matches.append(SnomedMatch(concept.id, code, meaning, via, text))
    for concept_id, (code, _why) in sorted(EXPLICIT.items()):
        if code not in table:
            raise OntologyError(f"snomed.EXPLICIT gives {concept_id!r} the code {code}, which pydicom's tables lack")
        if concept_id in ontology:
            matches.append(SnomedMatch(concept_id, code, table.meanings[code][0], "explicit", ""))
    return SnomedResult(tuple(matches), tuple(notes), table.version)


def _untagged(meaning: str) -> str:
    tagged = _TAGGED.match(meaning)
    return tagged.group("text") if tagged else meaning


def add_snomed_codes(ontology: Ontology, table: SnomedTable | None = None) -> tuple[Ontology, SnomedResult]:
    """``ontology`` with each matched code added to its concept's codes, and what was matched.

    Raises ``OntologyError`` naming the concept when a SNOMED code already on a concept (from the
    curated sources) is not in pydicom's tables: every SNOMED code must be one of pydicom's.
    """
    table = table or load_table()
    unknown = [
        f"{c.id!r} has {code}" for c in ontology.concepts for code in c.codes
        if code.startswith(f"{SYSTEM}:") and code[len(SYSTEM) + 1 :] not in table
    ]
    if unknown:
        raise OntologyError(
            f"SNOMED codes not in pydicom {table.version}'s coded-concept tables (never invent codes): "
            + "; ".join(unknown)
        )
    result = match_snomed(ontology, table)
    by_concept = result.codes_by_concept()
    concepts = [
        replace(c, codes=c.codes + tuple(sorted(by_concept[c.id]))) if c.id in by_concept else c
        for c in ontology.concepts
    ]
    return ontology.with_changes(concepts=concepts), result
