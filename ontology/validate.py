"""Validate an ontology: structural rules, curation policy, and HermiT consistency.

``validate_ontology(ontology)`` returns a :class:`ValidationReport` whose errors and warnings are
:class:`Problem` items, each tagged with the rule it breaks and the concept at fault. Three groups
of rules are checked:

* **Structural**, found by :meth:`Ontology.problems` and mapped here onto rule names (dangling
  references, PART_OF/IS_A cycles, relation ends of the wrong kind, duplicate ids, self-loops,
  missing sources ...). The logic stays in the model; only its messages are classified.
* **Curation**, checked here: anatomy without a PART_OF parent (the configured roots excepted),
  missing Chest ImaGenome regions, duplicate names within a kind, names and synonyms colliding
  within a kind, and required codes by a configurable :class:`ValidationRules` policy.
* **Reasoner**: the ontology is written with :func:`save_owl`, read into a fresh owlready2 world,
  and HermiT classifies it after two sets of axioms are added that the OWL form leaves out: the
  five kind classes are pairwise disjoint, and each object property gets the domain and range the
  model's ``RELATION_KINDS`` allows. Domain/range alone would only make HermiT *infer* that a
  Disease which something is LOCATED_IN is also Anatomy; with disjointness that inference is a
  contradiction, so the concept asserting the edge becomes unsatisfiable and is reported.

For each relation problem the concept at fault is the relation's start: it is the class that
carries the edge in OWL, so it is where the edge is fixed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import owlready2

from anatomy_vlm.exceptions import OntologyError, OntologyValidationError
from anatomy_vlm.ontology.model import RELATION_KINDS, ConceptKind, Ontology, Problem, RelationType
from anatomy_vlm.ontology.owl import BASE_IRI, PROPERTY_NAMES, load_owl, save_owl
from anatomy_vlm.ontology.seed import REGION_IDS

# Every rule a Problem can carry, with what it means (for ``--help`` texts and the docs).
RULES: dict[str, str] = {
    # -- structural, from Ontology.problems() --------------------------------------------------
    "duplicate-id": "two concepts share one id",
    "invalid-id": "a concept id is empty or contains whitespace",
    "missing-name": "a concept has no name",
    "duplicate-relation": "the same relation (type, start, end, source) is asserted twice",
    "dangling-reference": "a relation starts or ends at a concept that does not exist",
    "self-loop": "a relation joins a concept to itself",
    "relation-domain": "a relation starts at a concept of a kind its type does not allow",
    "relation-range": "a relation ends at a concept of a kind its type does not allow (e.g. LOCATED_IN a non-anatomy)",
    "is-a-kind-mismatch": "an IS_A edge joins concepts of two different kinds",
    "missing-source": "a relation has no source",
    "non-finite-weight": "a relation's weight is NaN or infinite",
    "part-of-cycle": "PART_OF edges form a cycle",
    "is-a-cycle": "IS_A edges form a cycle",
    # -- curation, checked here ----------------------------------------------------------------
    "anatomy-without-parent": "an Anatomy concept other than the configured roots has no PART_OF parent",
    "region-missing": "a required Chest ImaGenome region is absent, or is not an Anatomy concept",
    "duplicate-name": "two concepts of one kind share a name (case-insensitive)",
    "name-collision": "a name or synonym of one concept is a name or synonym of another of the same kind",
    "missing-code": "a concept lacks a code of a system the policy requires for its kind",
    # -- reasoner ------------------------------------------------------------------------------
    "reasoner-unsatisfiable": "HermiT finds the concept's class unsatisfiable (disjoint kinds, relation domain/range)",
    "reasoner-inconsistent": "HermiT finds the whole ontology inconsistent",
    "reasoner-skipped": "the reasoner could not run because the ontology cannot be written as OWL",
}

# Rules reported as warnings unless a policy says otherwise: a synonym shared by two findings is
# often deliberate ("effusion"), and a skipped reasoner is explained by the errors that caused it.
DEFAULT_WARN_ONLY: frozenset[str] = frozenset({"name-collision", "reasoner-skipped"})

_NOTHING_IRI = "http://www.w3.org/2002/07/owl#Nothing"


@dataclass(frozen=True)
class ValidationRules:
    """The configurable part of validation: roots, required regions, code policy, severities."""

    # Anatomy concepts allowed to have no PART_OF parent: the tops of the part-of tree.
    anatomy_roots: tuple[str, ...] = ("body",)
    # Region ids that must be present as Anatomy concepts; the 29 Chest ImaGenome regions by default.
    required_regions: tuple[str, ...] = REGION_IDS
    # Per kind, the code systems every concept of that kind needs a code of, e.g.
    # {ConceptKind.ANATOMY: ("SNOMED",)}: each Anatomy concept needs a code "SNOMED:...".
    required_codes: Mapping[ConceptKind, tuple[str, ...]] = field(default_factory=dict)
    # Rules reported as warnings rather than errors.
    warn_only: frozenset[str] = DEFAULT_WARN_ONLY

    def __post_init__(self) -> None:
        unknown = sorted(set(self.warn_only) - set(RULES))
        if unknown:
            raise ValueError(f"warn_only names unknown rule(s) {unknown}; known rules: {sorted(RULES)}")
        codes: dict[ConceptKind, tuple[str, ...]] = {}
        for kind, systems in self.required_codes.items():
            systems = (systems,) if isinstance(systems, str) else tuple(systems)
            for system in systems:
                if not system or ":" in system or any(ch.isspace() for ch in system):
                    raise ValueError(f"required_codes[{kind!r}]: {system!r} is not a code system name like 'SNOMED'")
            codes[ConceptKind(kind)] = systems
        object.__setattr__(self, "required_codes", codes)
        object.__setattr__(self, "warn_only", frozenset(self.warn_only))
        object.__setattr__(self, "anatomy_roots", tuple(self.anatomy_roots))
        object.__setattr__(self, "required_regions", tuple(self.required_regions))


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_ontology` found."""

    ontology_name: str  # the ontology's name, for the report's header
    concept_count: int
    relation_count: int
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    reasoner_seconds: float | None = None  # how long HermiT took (write, load, classify); None when it did not run

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.errors + self.warnings

    def rules(self) -> set[str]:
        """The rules broken, errors and warnings together."""
        return {p.rule for p in self.problems}

    def for_concept(self, concept_id: str) -> list[Problem]:
        """Every problem whose concept at fault is ``concept_id``."""
        return [p for p in self.problems if p.concept_id == concept_id]

    def raise_for_errors(self) -> "ValidationReport":
        """Raise ``OntologyValidationError`` listing every error; return ``self`` when there is none."""
        if self.errors:
            raise OntologyValidationError([str(p) for p in self.errors])
        return self

    def format(self) -> str:
        """The report as lines for a terminal: one per problem, then a summary line."""
        lines = [f"error: {p}" for p in self.errors] + [f"warning: {p}" for p in self.warnings]
        if self.reasoner_seconds is None:
            reasoner = "reasoner not run"
        else:
            reasoner = f"HermiT ran in {self.reasoner_seconds:.1f} s"
        lines.append(
            f"{self.ontology_name}: {self.concept_count} concepts, {self.relation_count} relations: "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s); {reasoner}"
        )
        return "\n".join(lines)


# -- entry points --------------------------------------------------------------------------------
def validate_ontology(
    ontology: Ontology, *, reasoner: bool = True, rules: ValidationRules | None = None
) -> ValidationReport:
    """Check every rule on ``ontology``; with ``reasoner`` also classify it with HermiT.

    Raises ``OntologyError`` only when the reasoner cannot run at all (no Java, HermiT crashed);
    every rule breach is reported in the returned report instead.
    """
    rules = rules or ValidationRules()
    found = structural_problems(ontology)
    found += anatomy_without_parent(ontology, rules.anatomy_roots)
    found += missing_regions(ontology, rules.required_regions)
    found += name_problems(ontology)
    found += missing_codes(ontology, rules.required_codes)
    seconds = None
    if reasoner:
        started = time.perf_counter()
        found += reasoner_problems(ontology)
        seconds = time.perf_counter() - started
    return ValidationReport(
        ontology_name=ontology.name,
        concept_count=len(ontology.concepts),
        relation_count=len(ontology.relations),
        errors=tuple(p for p in found if p.rule not in rules.warn_only),
        warnings=tuple(p for p in found if p.rule in rules.warn_only),
        reasoner_seconds=seconds,
    )


def validate_command(
    path: Path, *, reasoner: bool, strict: bool, rules: ValidationRules | None = None
) -> tuple[int, str]:
    """Load the OWL file at ``path`` and validate it: (exit code, text to print).

    Exit codes: 0 valid; 1 errors found, or warnings with ``strict``; 2 the file could not be read
    or the reasoner could not run.
    """
    try:
        ontology = load_owl(path)
        report = validate_ontology(ontology, reasoner=reasoner, rules=rules)
    except OntologyError as e:
        return 2, f"error: {e}"
    failed = bool(report.errors) or (strict and bool(report.warnings))
    text = report.format()
    if strict and report.warnings and not report.errors:
        text += "\nfailing: --strict treats warnings as errors"
    return (1 if failed else 0), text


# -- structural rules (Ontology.problems) ----------------------------------------------------------
def structural_problems(ontology: Ontology) -> list[Problem]:
    """``Ontology.problems()``: the structural rules, already tagged with rule and concept."""
    return ontology.problems()


# -- curation rules --------------------------------------------------------------------------------
def anatomy_without_parent(ontology: Ontology, roots: Iterable[str]) -> list[Problem]:
    """Anatomy concepts, other than ``roots``, that are not PART_OF any existing concept."""
    roots = set(roots)
    # A PART_OF to an unknown concept is already a dangling reference; it gives no parent.
    has_parent = {r.start for r in ontology.relations_of_type(RelationType.PART_OF) if r.end in ontology}
    return [
        Problem(
            "anatomy-without-parent",
            c.id,
            f"anatomy concept {c.id!r} has no PART_OF parent (only the roots {sorted(roots)} may have none)",
        )
        for c in ontology.of_kind(ConceptKind.ANATOMY)
        if c.id not in roots and c.id not in has_parent
    ]


def missing_regions(ontology: Ontology, regions: Iterable[str]) -> list[Problem]:
    """Required region ids that are absent or not Anatomy."""
    found = []
    for region in regions:
        if region not in ontology:
            found.append(Problem("region-missing", region, f"required region {region!r} is missing"))
        elif ontology[region].kind is not ConceptKind.ANATOMY:
            kind = ontology[region].kind.value
            found.append(Problem("region-missing", region, f"required region {region!r} is a {kind}, not Anatomy"))
    return found


def _normal(label: str) -> str:
    """Names compare case-insensitively and ignoring runs of whitespace."""
    return " ".join(label.casefold().split())


def name_problems(ontology: Ontology) -> list[Problem]:
    """Within each kind: shared names (errors) and names/synonyms shared by two concepts (warnings)."""
    # (kind, normalised label) -> {concept id: "name" or "synonym"}; a name wins over a synonym.
    holders: dict[tuple[ConceptKind, str], dict[str, str]] = defaultdict(dict)
    for c in ontology.concepts:
        for synonym in c.synonyms:
            holders[(c.kind, _normal(synonym))].setdefault(c.id, "synonym")
        if c.name.strip():  # an empty name is "missing-name", not a duplicate
            holders[(c.kind, _normal(c.name))][c.id] = "name"
    found = []
    for (kind, label), by_id in sorted(holders.items()):
        if len(by_id) < 2:
            continue
        ids = sorted(by_id)
        named = [i for i in ids if by_id[i] == "name"]
        if len(named) >= 2:
            listed = ", ".join(repr(i) for i in named)
            message = f"{kind.value} concepts {listed} share the name {label!r}"
            found.append(Problem("duplicate-name", named[0], message))
        if len(named) < len(ids):  # some concept holds it only as a synonym
            listed = ", ".join(f"{i!r} ({by_id[i]})" for i in ids)
            found.append(
                Problem("name-collision", ids[0], f"{kind.value} label {label!r} is used by several concepts: {listed}")
            )
    return found


def missing_codes(ontology: Ontology, required: Mapping[ConceptKind, tuple[str, ...]]) -> list[Problem]:
    """Concepts lacking a code of a system the policy requires for their kind."""
    found = []
    for kind, systems in required.items():
        for c in ontology.of_kind(kind):
            for system in systems:
                if not any(code.startswith(f"{system}:") for code in c.codes):
                    found.append(
                        Problem(
                            "missing-code",
                            c.id,
                            f"{kind.value} concept {c.id!r} has no {system} code (the policy requires one)",
                        )
                    )
    return found


# -- reasoner ------------------------------------------------------------------------------------
def reasoner_problems(ontology: Ontology) -> list[Problem]:
    """Classify ``ontology`` with HermiT under kind disjointness and relation domain/range.

    Raises ``OntologyError`` when Java is missing or HermiT fails for a reason other than an
    inconsistent ontology.
    """
    java = owlready2.JAVA_EXE
    if shutil.which(java) is None:
        raise OntologyError(
            f"cannot run the HermiT reasoner: Java executable {java!r} not found "
            "(install a Java runtime, 11 or newer, or set owlready2.JAVA_EXE; or validate without the reasoner)"
        )
    with tempfile.TemporaryDirectory(prefix="anatomy-vlm-validate-") as tmp:
        path = Path(tmp) / "ontology.owl"
        try:
            save_owl(ontology, path)
        except OntologyError as e:
            # The errors that stop writing (duplicate ids, dangling ends, IS_A cycles) are already
            # reported by the structural rules.
            return [Problem("reasoner-skipped", None, f"HermiT not run, the ontology cannot be written as OWL: {e}")]
        world = owlready2.World()
        try:
            onto = world.get_ontology(path.resolve().as_uri()).load()
            _add_kind_axioms(world, onto)
            try:
                owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
            except owlready2.OwlReadyInconsistentOntologyError:
                # Only classes are asserted (no individuals), so this cannot arise from our axioms;
                # HermiT names no culprit when it does.
                message = f"HermiT finds the ontology {ontology.name!r} inconsistent"
                return [Problem("reasoner-inconsistent", None, message)]
            except (owlready2.OwlReadyJavaError, OSError, subprocess.SubprocessError) as e:
                raise OntologyError(f"the HermiT reasoner failed on {ontology.name!r}: {e}") from e
            unsatisfiable = sorted({cls.iri for cls in world.inconsistent_classes()} - {_NOTHING_IRI})
        finally:
            world.close()
    return _unsatisfiable_problems(ontology, unsatisfiable)


def _add_kind_axioms(world: owlready2.World, onto: owlready2.Ontology) -> None:
    """Kind classes pairwise disjoint; each object property's domain/range from RELATION_KINDS."""
    kind_class = {kind: world[BASE_IRI + kind.value] for kind in ConceptKind}
    with onto:
        owlready2.AllDisjoint([kind_class[kind] for kind in ConceptKind])
        for rel_type, name in PROPERTY_NAMES.items():
            prop = world[BASE_IRI + name]
            starts, ends = RELATION_KINDS[rel_type]
            for allowed, axioms in ((starts, prop.domain), (ends, prop.range)):
                if allowed == frozenset(ConceptKind):
                    continue  # any kind: nothing to say
                classes = [kind_class[kind] for kind in ConceptKind if kind in allowed]
                axioms.append(classes[0] if len(classes) == 1 else owlready2.Or(classes))


def _unsatisfiable_problems(ontology: Ontology, iris: list[str]) -> list[Problem]:
    """One problem per unsatisfiable class, pointing consequences at the unsatisfiable class they depend on."""
    ids = {iri[len(BASE_IRI) :] for iri in iris if iri.startswith(BASE_IRI) and iri[len(BASE_IRI) :] in ontology}
    found = []
    for iri in iris:
        local = iri[len(BASE_IRI) :] if iri.startswith(BASE_IRI) else iri
        if local not in ids:  # a schema class (a kind class, Concept): no concept to blame
            message = f"HermiT finds the schema class <{iri}> unsatisfiable"
            found.append(Problem("reasoner-unsatisfiable", None, message))
            continue
        kind = ontology[local].kind.value
        # A concept that IS_A, or relates to, an unsatisfiable concept is unsatisfiable because of
        # it; naming that concept points the curator at the cause rather than every consequence.
        causes = sorted({r.end for r in ontology.relations if r.start == local and r.end in ids and r.end != local})
        because = (
            f"; it depends on the unsatisfiable {', '.join(repr(c) for c in causes)}"
            if causes
            else "; its kind contradicts its IS_A parents or the domain/range of its relations"
        )
        found.append(
            Problem(
                "reasoner-unsatisfiable",
                local,
                f"HermiT finds {kind} concept {local!r} unsatisfiable{because}",
            )
        )
    return found
