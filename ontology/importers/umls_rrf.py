"""Read a subset of a UMLS Metathesaurus release (Rich Release Format files) into an ontology.

A user with a UMLS licence points :func:`read_umls_rrf` at the ``META`` folder of a release (or of
a MetamorphoSys subset): ``MRCONSO.RRF`` (names and source codes), ``MRSTY.RRF`` (semantic types,
which decide each concept's kind), ``MRREL.RRF`` (relations) and, when present, ``MRDEF.RRF``
(definitions). Every file is read as a stream, one row at a time, so a full release works too
(restrict it with ``cuis``/``sabs`` to keep memory small).

Row formats (UMLS Reference Manual, section 3.3; every row ends with a '|', so a row of *n* fields
splits into *n* + 1 pieces, the last empty)::

    MRCONSO  CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
    MRREL    CUI1|AUI1|STYPE1|REL|CUI2|AUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|
    MRSTY    CUI|TUI|STN|STY|ATUI|CVF|
    MRDEF    CUI|AUI|ATUI|SATUI|SAB|DEF|SUPPRESS|CVF|

A row with another number of fields raises :class:`RrfFormatError` naming the file and line.

Mapping
-------
* One concept per CUI that has a semantic type in ``tui_kinds`` and at least one atom left after
  the filters; id ``"umls_<CUI>"`` (a valid OWL local name), ``source`` from the config.
* Atoms (MRCONSO rows) are kept when ``LAT`` is in ``languages``, ``SAB`` is in ``sabs`` (all
  sources when ``None``) and ``SUPPRESS`` is not O, E or Y (obsolete, editor-suppressed,
  suppressible). The filters apply to every row, as in a MetamorphoSys subset.
* ``name``: the string of the best atom, ranked by language (the order of ``languages``), then
  ``TS=P`` (preferred term status), ``STT=PF`` (preferred form), ``ISPREF=Y`` (preferred atom of
  its string), then file order; with the default filters this is the UMLS preferred English name.
* ``synonyms``: the other strings of the kept atoms, each once ignoring case, none equal to the
  name ignoring case.
* ``codes``: ``"UMLS:<CUI>"`` plus ``"<SYSTEM>:<CODE>"`` for each kept atom whose SAB is in
  ``sab_code_systems`` (``SNOMEDCT_US`` -> ``SNOMED``, ``RADLEX`` -> ``RADLEX`` ...).
* ``definition``: the first MRDEF row of the concept whose SAB passes the filter (MRDEF has no
  language column; its sources are English except for a few, which ``sabs`` can leave out).
* ``kind``: from the semantic types (:data:`TUI_KINDS`); a CUI with types of several kinds takes
  the first in :data:`KIND_PRIORITY`; a CUI with none of the table's types is skipped and listed in
  :attr:`UmlsImport.skipped_concepts`.

Relations and the direction of MRREL
------------------------------------
The Reference Manual defines REL as the "relationship of the second concept or atom to the first":
a row ``CUI1|...|REL|CUI2|...|RELA|...`` reads **"CUI2 is REL (and RELA) of CUI1"**. So
``C0225706|..|PAR|C0024109|..|inverse_isa`` says that lung (CUI2) is the parent of right lung
(CUI1) and that lung ``inverse_isa`` right lung, i.e. right lung IS_A lung. Hence, with ``a =
CUI1`` and ``b = CUI2``:

=====================================================  ==============================
RELA (what b is to a)                                  relation asserted
=====================================================  ==============================
``isa``                                                ``b IS_A a``
``inverse_isa``                                        ``a IS_A b``
``part_of`` (and FMA's ``regional_/constitutional_``   ``b PART_OF a``
``/systemic_part_of``)
``has_part`` (and the ``has_*_part`` inverses)         ``a PART_OF b``
``location_of``, ``finding_site_of``                   ``a LOCATED_IN b``
``has_location``, ``has_finding_site``                 ``b LOCATED_IN a``
no RELA and REL ``PAR`` (b is a parent of a)           ``a IS_A b``
no RELA and REL ``CHD`` (b is a child of a)            ``b IS_A a``
=====================================================  ==============================

Rows with other RELAs (or other RELs without RELA) are not read. An edge is kept only when both
ends are imported concepts, the two differ, and their kinds fit the relation type
(``model.RELATION_KINDS``; IS_A only within one kind); the others are listed in
:attr:`UmlsImport.skipped_relations` with the reason. Repeated assertions (one per source, or the
row and its inverse) become one relation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from anatomy_vlm.exceptions import FileFormatError, OntologyError
from anatomy_vlm.ontology.model import RELATION_KINDS, Concept, ConceptKind, Ontology, Relation, RelationType

MRCONSO_FIELDS = (
    "CUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "AUI", "SAUI",
    "SCUI", "SDUI", "SAB", "TTY", "CODE", "STR", "SRL", "SUPPRESS", "CVF",
)  # fmt: skip
MRREL_FIELDS = (
    "CUI1", "AUI1", "STYPE1", "REL", "CUI2", "AUI2", "STYPE2", "RELA",
    "RUI", "SRUI", "SAB", "SL", "RG", "DIR", "SUPPRESS", "CVF",
)  # fmt: skip
MRSTY_FIELDS = ("CUI", "TUI", "STN", "STY", "ATUI", "CVF")
MRDEF_FIELDS = ("CUI", "AUI", "ATUI", "SATUI", "SAB", "DEF", "SUPPRESS", "CVF")

# SUPPRESS values that take a row out: O = obsolete, E = suppressed by the editors,
# Y = suppressible by the source (N = not suppressed is kept).
SUPPRESSED = frozenset({"O", "E", "Y"})

_A, _D, _F, _DV, _AT = (
    ConceptKind.ANATOMY, ConceptKind.DISEASE, ConceptKind.FINDING, ConceptKind.DEVICE, ConceptKind.ATTRIBUTE,
)  # fmt: skip
# Semantic type (TUI) -> kind. Only the types a chest-radiograph ontology needs; extend as needed.
TUI_KINDS: dict[str, ConceptKind] = {
    # anatomy
    "T017": _A,  # Anatomical Structure
    "T021": _A,  # Fully Formed Anatomical Structure
    "T022": _A,  # Body System
    "T023": _A,  # Body Part, Organ, or Organ Component
    "T024": _A,  # Tissue
    "T029": _A,  # Body Location or Region
    "T030": _A,  # Body Space or Junction
    # findings: what is seen or observed
    "T033": _F,  # Finding
    "T034": _F,  # Laboratory or Test Result
    "T037": _F,  # Injury or Poisoning (fractures)
    "T184": _F,  # Sign or Symptom
    "T190": _F,  # Anatomical Abnormality
    "T020": _F,  # Acquired Abnormality
    # diseases
    "T019": _D,  # Congenital Abnormality
    "T046": _D,  # Pathologic Function
    "T047": _D,  # Disease or Syndrome
    "T048": _D,  # Mental or Behavioral Dysfunction
    "T191": _D,  # Neoplastic Process
    # devices
    "T073": _DV,  # Manufactured Object
    "T074": _DV,  # Medical Device
    "T203": _DV,  # Drug Delivery Device
    # attributes
    "T079": _AT,  # Temporal Concept
    "T080": _AT,  # Qualitative Concept
    "T081": _AT,  # Quantitative Concept
    "T082": _AT,  # Spatial Concept
}
# A CUI whose types map to several kinds takes the first of these (a "Disease or Syndrome" that is
# also a "Finding" is the disease; anatomy and devices are never mixed up with the others).
KIND_PRIORITY = (_A, _DV, _D, _F, _AT)

# UMLS source abbreviation (SAB) -> the code system name of this project's codes ("SYSTEM:CODE").
SAB_CODE_SYSTEMS: dict[str, str] = {
    "SNOMEDCT_US": "SNOMED",
    "RADLEX": "RADLEX",
    "MSH": "MESH",
    "NCI": "NCIT",
    "ICD10CM": "ICD10CM",
    "LNC": "LOINC",
    "HPO": "HP",
    "FMA": "FMA",
}

_PART_OF = frozenset({"part_of", "regional_part_of", "constitutional_part_of", "systemic_part_of"})
_HAS_PART = frozenset({"has_part", "has_regional_part", "has_constitutional_part", "has_systemic_part"})
# RELA -> (relation type, True when the edge runs CUI2 -> CUI1, i.e. "b REL a")
_RELA_EDGES: dict[str, tuple[RelationType, bool]] = {
    "isa": (RelationType.IS_A, True),
    "inverse_isa": (RelationType.IS_A, False),
    **{rela: (RelationType.PART_OF, True) for rela in _PART_OF},
    **{rela: (RelationType.PART_OF, False) for rela in _HAS_PART},
    "location_of": (RelationType.LOCATED_IN, False),
    "finding_site_of": (RelationType.LOCATED_IN, False),
    "has_location": (RelationType.LOCATED_IN, True),
    "has_finding_site": (RelationType.LOCATED_IN, True),
}
_REL_EDGES: dict[str, tuple[RelationType, bool]] = {
    "PAR": (RelationType.IS_A, False),  # b is a parent of a: a IS_A b
    "CHD": (RelationType.IS_A, True),  # b is a child of a: b IS_A a
}


class RrfFormatError(FileFormatError):
    """A row of an RRF file breaks the format."""


@dataclass(frozen=True)
class UmlsImportConfig:
    """What to take from a UMLS release."""

    sabs: frozenset[str] | None = None  # source abbreviations to keep, e.g. {"SNOMEDCT_US", "RADLEX"}; None = all
    languages: tuple[str, ...] = ("ENG",)  # LAT values to keep, best first (the name comes from the first)
    cuis: frozenset[str] | None = None  # only these CUIs (e.g. a chest subset); None = every CUI with a kind
    tui_kinds: Mapping[str, ConceptKind] = field(default_factory=lambda: dict(TUI_KINDS))  # semantic type -> kind
    sab_code_systems: Mapping[str, str] = field(default_factory=lambda: dict(SAB_CODE_SYSTEMS))  # SAB -> code system
    source: str = "umls"  # provenance written on every concept and relation
    name: str = "umls"  # the ontology's name

    def __post_init__(self) -> None:
        # Accept any iterable of strings; a bare string would be read as a set of letters.
        for attr in ("sabs", "cuis"):
            value = getattr(self, attr)
            if isinstance(value, str):
                raise ValueError(f"{attr} must be a collection of strings, not the string {value!r}")
            if value is not None:
                object.__setattr__(self, attr, frozenset(value))
        if isinstance(self.languages, str) or not self.languages:
            raise ValueError(f"languages must be a non-empty sequence such as ('ENG',), got {self.languages!r}")
        object.__setattr__(self, "languages", tuple(self.languages))


@dataclass(frozen=True)
class UmlsImport:
    """The imported ontology and what was left out, so a curator can see the import's reach."""

    ontology: Ontology
    skipped_concepts: dict[str, str]  # CUI -> why it was not imported (no mapped semantic type, no atoms)
    skipped_relations: list[str]  # one line per MRREL edge dropped for a kind mismatch or self-loop


# -- reading rows ---------------------------------------------------------------------------------
def iter_rrf(path: Path, fields: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, {field: value})`` for each row of an RRF file; checks the field count."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as e:
        raise OntologyError(f"{path}: cannot read the RRF file: {e}") from e
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line:
                    continue  # a trailing empty line is not a row
                pieces = line.split("|")
                if len(pieces) != len(fields) + 1 or pieces[-1] != "":
                    found = len(pieces) - 1 if pieces[-1] == "" else f"{len(pieces)} (no trailing '|')"
                    layout = "|".join(fields) + "|"
                    problem = f"expected {len(fields)} '|'-terminated fields ({layout}), found {found}"
                    raise RrfFormatError(str(path), number, problem)
                yield number, dict(zip(fields, pieces[:-1], strict=True))
        except UnicodeDecodeError as e:
            raise OntologyError(f"{path}: not UTF-8 text: {e}") from e


def _required(meta_dir: Path, name: str) -> Path:
    path = meta_dir / name
    if not path.is_file():
        raise OntologyError(f"{meta_dir}: no {name} (expected a UMLS META folder)")
    return path


# -- the import -----------------------------------------------------------------------------------
def read_umls_rrf(meta_dir: str | Path, config: UmlsImportConfig | None = None) -> UmlsImport:
    """Import the concepts and relations of the RRF files in ``meta_dir`` (see the module docstring)."""
    config = config or UmlsImportConfig()
    meta_dir = Path(meta_dir)
    if not meta_dir.is_dir():
        raise OntologyError(f"{meta_dir}: no such UMLS META folder")
    mrconso, mrsty = _required(meta_dir, "MRCONSO.RRF"), _required(meta_dir, "MRSTY.RRF")
    mrrel, mrdef = meta_dir / "MRREL.RRF", meta_dir / "MRDEF.RRF"

    # Semantic types first, so MRCONSO rows of concepts that cannot get a kind are never held.
    tuis: dict[str, set[str]] = defaultdict(set)
    for _, row in iter_rrf(mrsty, MRSTY_FIELDS):
        if config.cuis is None or row["CUI"] in config.cuis:
            tuis[row["CUI"]].add(row["TUI"])
    skipped: dict[str, str] = {}
    kinds: dict[str, ConceptKind] = {}
    for cui, types in tuis.items():
        found = {config.tui_kinds[t] for t in types if t in config.tui_kinds}
        if found:
            kinds[cui] = next(k for k in KIND_PRIORITY if k in found)
        else:
            skipped[cui] = f"no semantic type with a kind ({', '.join(sorted(types))})"

    atoms = _read_atoms(mrconso, kinds, config)
    for cui in kinds:
        if cui not in atoms:
            skipped[cui] = "no atom left after the language/source/suppression filters"
    definitions = _read_definitions(mrdef, atoms, config) if mrdef.is_file() else {}

    concepts = {cui: _concept(cui, kinds[cui], atoms[cui], definitions.get(cui, ""), config) for cui in atoms}
    relations, dropped = _read_relations(mrrel, concepts, config) if mrrel.is_file() else ([], [])
    ontology = Ontology(concepts=tuple(concepts.values()), relations=tuple(relations), name=config.name)
    return UmlsImport(ontology=ontology, skipped_concepts=dict(sorted(skipped.items())), skipped_relations=dropped)


def concept_id(cui: str) -> str:
    """The concept id of a CUI: ``"C0032227"`` -> ``"umls_C0032227"``."""
    return f"umls_{cui}"


@dataclass(frozen=True)
class _Atom:
    rank: tuple[int, int, int, int, int]  # lower is better: language, TS, STT, ISPREF, file order
    text: str
    code: str | None  # "SNOMED:60046008", or None when the SAB has no code system here
    aui: str


def _keep(row: dict[str, str], config: UmlsImportConfig) -> bool:
    return row["SUPPRESS"] not in SUPPRESSED and (config.sabs is None or row["SAB"] in config.sabs)


def _read_atoms(path: Path, kinds: Mapping[str, ConceptKind], config: UmlsImportConfig) -> dict[str, list[_Atom]]:
    language_rank = {lat: i for i, lat in enumerate(config.languages)}
    atoms: dict[str, list[_Atom]] = defaultdict(list)
    for number, row in iter_rrf(path, MRCONSO_FIELDS):
        if row["CUI"] not in kinds or row["LAT"] not in language_rank or not _keep(row, config):
            continue
        system = config.sab_code_systems.get(row["SAB"])
        rank = (
            language_rank[row["LAT"]],
            row["TS"] != "P",
            row["STT"] != "PF",
            row["ISPREF"] != "Y",
            number,
        )
        code = f"{system}:{row['CODE']}" if system and row["CODE"] and row["CODE"] != "NOCODE" else None
        atoms[row["CUI"]].append(_Atom(rank=rank, text=row["STR"], code=code, aui=row["AUI"]))
    return atoms


def _read_definitions(path: Path, atoms: Mapping[str, list[_Atom]], config: UmlsImportConfig) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, row in iter_rrf(path, MRDEF_FIELDS):
        if row["CUI"] in atoms and row["CUI"] not in found and _keep(row, config) and row["DEF"].strip():
            found[row["CUI"]] = row["DEF"].strip()
    return found


def _concept(cui: str, kind: ConceptKind, atoms: list[_Atom], definition: str, config: UmlsImportConfig) -> Concept:
    ordered = sorted(atoms, key=lambda a: a.rank)
    name = ordered[0].text
    seen = {name.casefold()}
    synonyms = []
    for atom in ordered[1:]:
        if atom.text.casefold() not in seen:
            seen.add(atom.text.casefold())
            synonyms.append(atom.text)
    codes = {f"UMLS:{cui}"} | {a.code for a in atoms if a.code}
    return Concept(
        id=concept_id(cui),
        kind=kind,
        name=name,
        synonyms=tuple(synonyms),
        definition=definition,
        codes=tuple(codes),
        source=config.source,
    )


def _read_relations(
    path: Path, concepts: Mapping[str, Concept], config: UmlsImportConfig
) -> tuple[list[Relation], list[str]]:
    edges: set[tuple[RelationType, str, str]] = set()
    dropped: dict[tuple[RelationType, str, str], str] = {}
    for number, row in iter_rrf(path, MRREL_FIELDS):
        if not _keep(row, config):
            continue
        rule = _RELA_EDGES.get(row["RELA"]) if row["RELA"] else _REL_EDGES.get(row["REL"])
        a, b = row["CUI1"], row["CUI2"]
        if rule is None or a not in concepts or b not in concepts:
            continue
        rel_type, b_to_a = rule
        start, end = (b, a) if b_to_a else (a, b)
        edge = (rel_type, start, end)
        if edge in edges or edge in dropped:
            continue
        why = relation_misfit(rel_type, concepts[start], concepts[end])
        if why:
            what = f"RELA={row['RELA']}" if row["RELA"] else f"REL={row['REL']}"
            dropped[edge] = f"{path.name}:{number}: {start} -[{rel_type.value}]-> {end} ({what}): {why}"
        else:
            edges.add(edge)
    relations = [Relation(t, concept_id(s), concept_id(e), config.source) for t, s, e in edges]
    return relations, sorted(dropped.values())


def relation_misfit(rel_type: RelationType, start: Concept, end: Concept) -> str:
    """Why the edge cannot join these two concepts (model.RELATION_KINDS), or "" when it can."""
    if start.id == end.id:
        return "self-loop"
    allowed_start, allowed_end = RELATION_KINDS[rel_type]
    if start.kind not in allowed_start or end.kind not in allowed_end:
        return f"{start.kind.value} -> {end.kind.value} does not fit {rel_type.value}"
    if rel_type is RelationType.IS_A and start.kind is not end.kind:
        return f"IS_A joins a {start.kind.value} to a {end.kind.value}"
    return ""
