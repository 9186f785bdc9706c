"""Read and write an :class:`~anatomy_vlm.ontology.model.Ontology` as OWL 2 (RDF/XML), with owlready2.

Every call works in its own fresh ``owlready2.World()`` (never the default world), so nothing
leaks between calls.

Modelling
---------
Everything of ours lives under ``BASE_IRI = "http://anatomy-vlm.org/kg#"``.

* The top class ``kg:Concept`` has one subclass per :class:`ConceptKind`: ``kg:Anatomy``,
  ``kg:Finding``, ``kg:Disease``, ``kg:Attribute``, ``kg:Device``.
* Each concept is an OWL class ``kg:<id>``; its id must be a valid local name
  (``[A-Za-z_][A-Za-z0-9_.-]*``) and not one of the names above, the object properties, or
  ``assertion``/``code``. Every concept is written with a direct ``subClassOf`` its kind class, so
  the kind is explicit. On reading, a class without a direct kind takes the kind it inherits
  through its IS_A parents; a class with no kind, or with two, is an error.
* Concept fields are annotations on the class: ``name`` -> ``rdfs:label`` (absent when empty),
  ``synonyms`` -> ``oboInOwl:hasExactSynonym``, ``definition`` -> ``obo:IAO_0000115`` (absent
  when empty), ``codes`` -> ``kg:code`` (``"SNOMED:..."``), ``source`` -> ``dcterms:source``
  (absent when empty).
* ``IS_A`` is ``rdfs:subClassOf`` between concept classes. ``PART_OF``, ``LOCATED_IN``,
  ``SUGGESTS`` and ``HAS_ATTRIBUTE`` are the object properties ``kg:part_of``, ``kg:located_in``,
  ``kg:suggests`` and ``kg:has_attribute``, each edge asserted as an existential restriction
  ``Start subClassOf (prop some End)``.
* Edge metadata: each :class:`Relation` is one value of the annotation property ``kg:assertion``
  on its ``subClassOf`` axiom (an OWL axiom annotation, visible in Protégé on the axiom), a JSON
  object ``{"source": "padchest", "weight": 0.3, "count": 12}`` with ``weight``/``count`` left out
  when ``None``. One axiom carries one value per source, so two sources asserting the same edge
  with different weights stay two exact relations; JSON keeps ``int``/``float`` and every float
  digit. An edge axiom without any ``kg:assertion`` (hand-edited in Protégé) reads as one relation
  with ``source=""``, which ``Ontology.problems()`` then reports.
* The ontology's ``name`` is the ``rdfs:label`` of the ``owl:Ontology`` (IRI ``BASE_IRI`` without
  ``#``); without one, the model's default name is used.

Order: owlready2 does not keep the order of multi-valued annotations; ``Concept`` keeps its
``synonyms`` and ``codes`` sorted and de-duplicated, they are written in that order and read back
sorted, so ``load_owl(save_owl(o)) == o`` for every ontology ``save_owl`` accepts.

What OWL (through owlready2) cannot hold is refused by ``save_owl`` with :class:`OntologyError`:
duplicate concept ids, duplicate relation keys, relations to unknown concepts, invalid or reserved
ids, and IS_A cycles (owlready2 classes cannot form a subclass cycle). Every other rule breach
(PART_OF cycles, wrong kinds, self-loops, missing sources ...) is written and read back as is:
``load_owl`` does not validate, callers call ``validate()`` when they need to.
"""

from __future__ import annotations

import contextlib

import io
import json
import re
import types
import xml.parsers.expat
from collections import defaultdict
from itertools import groupby
from pathlib import Path
from typing import Iterable, Iterator

import owlready2

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType

BASE_IRI = "http://anatomy-vlm.org/kg#"
ONTOLOGY_IRI = BASE_IRI.rstrip("#")
TOP_CLASS = "Concept"

RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SYNONYM_IRI = "http://www.geneontology.org/formats/oboInOwl#hasExactSynonym"
DEFINITION_IRI = "http://purl.obolibrary.org/obo/IAO_0000115"
SOURCE_IRI = "http://purl.org/dc/terms/source"
CODE_IRI = BASE_IRI + "code"
ASSERTION_IRI = BASE_IRI + "assertion"

# Object property local name for each relation type written as an existential restriction.
PROPERTY_NAMES: dict[RelationType, str] = {
    RelationType.PART_OF: "part_of",
    RelationType.LOCATED_IN: "located_in",
    RelationType.SUGGESTS: "suggests",
    RelationType.HAS_ATTRIBUTE: "has_attribute",
}
_TYPE_OF_PROPERTY = {BASE_IRI + name: rel_type for rel_type, name in PROPERTY_NAMES.items()}
_KIND_OF_CLASS = {BASE_IRI + kind.value: kind for kind in ConceptKind}

RESERVED_NAMES = frozenset(
    [TOP_CLASS, "assertion", "code", *(k.value for k in ConceptKind), *PROPERTY_NAMES.values()]
)
_LOCAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_OWL_THING = "http://www.w3.org/2002/07/owl#Thing"


# -- public API ----------------------------------------------------------------------------------
def save_owl(ontology: Ontology, path: str | Path) -> None:
    """Write ``ontology`` to ``path`` as OWL 2 RDF/XML (see the module docstring for the mapping)."""
    path = Path(path)
    _check_writable(ontology, path)
    world = owlready2.World()
    try:
        onto = _build(world, ontology, path)
        buffer = io.BytesIO()
        onto.save(file=buffer, format="rdfxml")
    finally:
        world.close()
    try:
        path.write_bytes(buffer.getvalue())
    except OSError as e:
        raise OntologyError(f"{path}: cannot write the OWL file: {e}") from e


def load_owl(path: str | Path) -> Ontology:
    """Read an OWL file written by :func:`save_owl` (or hand-edited in the same shape)."""
    with open_owl_world(path) as world:
        return ontology_from_world(world, where=str(path))


@contextlib.contextmanager
def open_owl_world(path: str | Path) -> Iterator[owlready2.World]:
    """The OWL (RDF/XML) file at ``path`` loaded into a fresh owlready2 world, closed afterwards."""
    path = Path(path)
    if not path.is_file():
        raise OntologyError(f"{path}: no such OWL file")
    # Check the XML first: expat names the line, and owlready2 would print its parser's traceback.
    try:
        with path.open("rb") as f:
            xml.parsers.expat.ParserCreate().ParseFile(f)
    except (OSError, xml.parsers.expat.ExpatError) as e:
        raise OntologyError(f"{path}: not well-formed RDF/XML: {e}") from e
    world = owlready2.World()
    try:
        try:
            world.get_ontology(path.resolve().as_uri()).load()
        except Exception as e:  # owlready2 raises parser errors, OSError, ...
            raise OntologyError(f"{path}: not a readable OWL RDF/XML file: {e}") from e
        yield world
    finally:
        world.close()


def ontology_from_world(world: owlready2.World, *, where: str = "<world>") -> Ontology:
    """Build the :class:`Ontology` from the triples loaded in ``world``; ``where`` prefixes errors."""
    return _Reader(world, where).ontology()


# -- reading -------------------------------------------------------------------------------------
class _Reader:
    """Reads the triples of one world with SPARQL (not owlready2's Python classes, which silently
    drop subclass cycles); every IRI is compared as a string and turned into a concept id early."""

    def __init__(self, world: owlready2.World, where: str):
        self.world, self.where = world, where
        self.ids: dict[str, str] = {}  # concept class IRI -> concept id

    def fail(self, problem: str) -> OntologyError:
        return OntologyError(f"{self.where}: {problem}")

    def rows(self, query: str) -> list[list]:
        # Hand-edited files may lack some of our properties: unknown IRIs then just match nothing.
        return [list(row) for row in self.world.sparql(query, error_on_undefined_entities=False)]

    def concept(self, iri: str, context: str) -> str:
        if iri not in self.ids:
            raise self.fail(f"{context}: <{iri}> is not a concept class")
        return self.ids[iri]

    def ontology(self) -> Ontology:
        classes = {i for (i,) in self.rows("SELECT (STR(?c) AS ?i) { ?c a owl:Class . FILTER(isIRI(?c)) }")}
        if BASE_IRI + TOP_CLASS not in classes:
            raise self.fail(f"no class <{BASE_IRI}{TOP_CLASS}>: not an anatomy-vlm ontology")
        for iri in sorted(classes):
            local = iri[len(BASE_IRI) :]
            if not iri.startswith(BASE_IRI) or local in RESERVED_NAMES:
                continue
            if not _LOCAL_NAME.fullmatch(local):
                raise self.fail(f"class <{iri}>: {local!r} is not a valid concept id")
            self.ids[iri] = local
        kinds, is_a = self.named_parents()
        relations = self.relations(is_a)
        annotations = self.annotations()
        concepts = [self.concept_of(cid, annotations, kinds, is_a) for cid in self.ids.values()]
        names = [str(n) for (n,) in self.rows(f"SELECT ?n {{ <{ONTOLOGY_IRI}> rdfs:label ?n }}")]
        if len(names) > 1:
            raise self.fail(f"the ontology has {len(names)} rdfs:labels: {sorted(names)}")
        name = {"name": names[0]} if names else {}  # else the model's default
        return Ontology(concepts=tuple(concepts), relations=tuple(relations), **name)

    def named_parents(self) -> tuple[dict[str, set[ConceptKind]], set[tuple[str, str]]]:
        """Each concept's direct kind classes, and the IS_A (child id, parent id) pairs."""
        kinds: dict[str, set[ConceptKind]] = defaultdict(set)
        is_a: set[tuple[str, str]] = set()
        query = "SELECT (STR(?c) AS ?i) (STR(?p) AS ?j) { ?c rdfs:subClassOf ?p . FILTER(isIRI(?c) && isIRI(?p)) }"
        for child, parent in self.rows(query):
            if child not in self.ids or parent in (_OWL_THING, BASE_IRI + TOP_CLASS):
                continue
            start = self.ids[child]
            if parent in _KIND_OF_CLASS:
                kinds[start].add(_KIND_OF_CLASS[parent])
            else:
                is_a.add((start, self.concept(parent, f"concept {start!r} is a subclass of a non-concept")))
        return kinds, is_a

    def relations(self, is_a: set[tuple[str, str]]) -> list[Relation]:
        """IS_A edges and existential restrictions, one Relation per ``kg:assertion`` on the axiom."""
        edges = {(RelationType.IS_A, start, end) for start, end in is_a}
        query = (
            "SELECT (STR(?c) AS ?i) (STR(?p) AS ?q) (STR(?d) AS ?j) (isIRI(?d) AS ?named) { "
            "?c rdfs:subClassOf ?r . ?r owl:onProperty ?p ; owl:someValuesFrom ?d . FILTER(isIRI(?c)) }"
        )
        for child, prop, filler, named in self.rows(query):
            if child not in self.ids or prop not in _TYPE_OF_PROPERTY:
                continue
            rel_type = _TYPE_OF_PROPERTY[prop]
            context = f"concept {self.ids[child]!r}: {rel_type.value} restriction"
            if not named:
                raise self.fail(f"{context} points to a class expression, not a concept class")
            edges.add((rel_type, self.ids[child], self.concept(filler, context)))

        assertions: dict[tuple[RelationType, str, str], list[str]] = defaultdict(list)
        axiom = (
            "?ax owl:annotatedSource ?c ; owl:annotatedProperty rdfs:subClassOf ; "
            f"owl:annotatedTarget ?t ; <{ASSERTION_IRI}> ?v . "
        )
        query = f"SELECT (STR(?c) AS ?i) (STR(?t) AS ?j) ?v {{ {axiom} FILTER(isIRI(?c) && isIRI(?t)) }}"
        for child, parent, value in self.rows(query):
            if child in self.ids and parent in self.ids:
                assertions[(RelationType.IS_A, self.ids[child], self.ids[parent])].append(str(value))
        query = (
            f"SELECT (STR(?c) AS ?i) (STR(?p) AS ?q) (STR(?d) AS ?j) ?v {{ {axiom} "
            "?t owl:onProperty ?p ; owl:someValuesFrom ?d . FILTER(isIRI(?c) && isIRI(?d)) }"
        )
        for child, prop, filler, value in self.rows(query):
            if child in self.ids and filler in self.ids and prop in _TYPE_OF_PROPERTY:
                assertions[(_TYPE_OF_PROPERTY[prop], self.ids[child], self.ids[filler])].append(str(value))

        # An axiom without any assertion (hand-edited) reads as one relation with no source.
        return [
            self.relation_from_json(edge, text)
            for edge in edges
            for text in assertions.get(edge) or ['{"source": ""}']
        ]

    def relation_from_json(self, edge: tuple[RelationType, str, str], text: str) -> Relation:
        rel_type, start, end = edge
        where = f"relation {start!r} -[{rel_type.value}]-> {end!r}: assertion {text!r}"
        try:
            payload = json.loads(text)
        except ValueError as e:
            raise self.fail(f"{where} is not JSON") from e
        if not isinstance(payload, dict) or not isinstance(payload.get("source"), str):
            raise self.fail(f"{where} is not an object with a string 'source'")
        if set(payload) - {"source", "weight", "count"}:
            raise self.fail(f"{where} has unknown keys {sorted(set(payload) - {'source', 'weight', 'count'})}")
        weight, count = payload.get("weight"), payload.get("count")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
            raise self.fail(f"{where} has a non-numeric weight")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise self.fail(f"{where} has a non-integer count")
        return Relation(rel_type, start, end, payload["source"], weight, count)

    def annotations(self) -> dict[tuple[str, str], list[str]]:
        """(concept id, annotation property IRI) -> the sorted values."""
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for prop in (RDFS_LABEL, SYNONYM_IRI, DEFINITION_IRI, CODE_IRI, SOURCE_IRI):
            for iri, value in self.rows(f"SELECT (STR(?c) AS ?i) ?v {{ ?c <{prop}> ?v . FILTER(isIRI(?c)) }}"):
                if iri in self.ids:
                    found[(self.ids[iri], prop)].append(str(value))
        return {key: sorted(values) for key, values in found.items()}

    def concept_of(self, cid: str, annotations, kinds, is_a) -> Concept:
        def single(prop: str, what: str) -> str:
            found = annotations.get((cid, prop), [])
            if len(found) > 1:
                raise self.fail(f"concept {cid!r} has {len(found)} values for its {what}: {found}")
            return found[0] if found else ""

        return Concept(
            id=cid,
            kind=self.kind_of(cid, kinds, is_a),
            name=single(RDFS_LABEL, "rdfs:label"),
            synonyms=tuple(annotations.get((cid, SYNONYM_IRI), ())),
            definition=single(DEFINITION_IRI, "definition (IAO_0000115)"),
            codes=tuple(annotations.get((cid, CODE_IRI), ())),
            source=single(SOURCE_IRI, "dcterms:source"),
        )

    def kind_of(self, cid: str, kinds: dict[str, set[ConceptKind]], is_a: set[tuple[str, str]]) -> ConceptKind:
        """The concept's direct kind class, else the one kind its IS_A ancestors give."""
        found = set(kinds.get(cid, ()))
        if not found:
            todo, seen = [cid], set()
            while todo:
                node = todo.pop()
                if node not in seen:
                    seen.add(node)
                    found |= kinds.get(node, set())
                    todo.extend(parent for child, parent in is_a if child == node)
        if len(found) != 1:
            names = ", ".join(sorted(k.value for k in found)) or "none"
            raise self.fail(f"class {cid!r} must descend from exactly one kind class ({names} found)")
        return next(iter(found))


# -- writing -------------------------------------------------------------------------------------
def _check_writable(ontology: Ontology, path: Path) -> None:
    """Refuse what the OWL form cannot hold, naming the concept or relation at fault."""
    problems: list[str] = []
    seen: set[str] = set()
    for c in ontology.concepts:
        if c.id in seen:
            problems.append(f"duplicate concept id {c.id!r}")
        seen.add(c.id)
        if not _LOCAL_NAME.fullmatch(c.id):
            problems.append(f"concept id {c.id!r} is not a valid OWL local name")
        elif c.id in RESERVED_NAMES:
            problems.append(f"concept id {c.id!r} is reserved for the OWL schema")
    keys: set[tuple[str, str, str, str]] = set()
    for r in ontology.relations:
        label = f"relation {r.start!r} -[{r.type.value}]-> {r.end!r}"
        if r.key in keys:
            problems.append(f"{label} from {r.source!r} is asserted twice")
        keys.add(r.key)
        for end in (r.start, r.end):
            if end not in seen:
                problems.append(f"{label} refers to unknown concept {end!r}")
    if problems:
        raise OntologyError(f"{path}: cannot write as OWL: " + "; ".join(problems))


def _build(world: owlready2.World, ontology: Ontology, path: Path) -> owlready2.Ontology:
    onto = world.get_ontology(ONTOLOGY_IRI)
    onto.metadata.label = [ontology.name]
    annotation = owlready2.AnnotationProperty
    top = _declare(onto, BASE_IRI + TOP_CLASS, owlready2.Thing)
    kind_class = {kind: _declare(onto, BASE_IRI + kind.value, top) for kind in ConceptKind}
    props = {t: _declare(onto, BASE_IRI + name, owlready2.ObjectProperty) for t, name in PROPERTY_NAMES.items()}
    synonym = _declare(onto, SYNONYM_IRI, annotation)
    definition = _declare(onto, DEFINITION_IRI, annotation)
    source = _declare(onto, SOURCE_IRI, annotation)
    code = _declare(onto, CODE_IRI, annotation)
    assertion = _declare(onto, ASSERTION_IRI, annotation)
    definition.label = ["definition"]
    assertion.comment = ['One relation asserting this axiom, as JSON: {"source": ..., "weight": ..., "count": ...}']

    classes: dict[str, owlready2.ThingClass] = {}
    for c in ontology.concepts:
        cls = classes[c.id] = _declare(onto, BASE_IRI + c.id, kind_class[c.kind])
        _add(cls.label, [c.name] if c.name else [])
        _add(synonym[cls], c.synonyms)
        _add(code[cls], c.codes)
        _add(definition[cls], [c.definition] if c.definition else [])
        _add(source[cls], [c.source] if c.source else [])

    for (rel_type, start, end), group in groupby(ontology.relations, key=lambda r: (r.type, r.start, r.end)):
        start_cls, end_cls = classes[start], classes[end]
        if rel_type is RelationType.IS_A:
            try:
                start_cls.is_a.append(end_cls)
            except TypeError as e:  # Python refuses the inheritance cycle owlready2 would need
                raise OntologyError(
                    f"{path}: cannot write as OWL: IS_A {start!r} -> {end!r} closes a subclass cycle"
                ) from e
            target = end_cls
        else:
            target = props[rel_type].some(end_cls)
            start_cls.is_a.append(target)
        _add(assertion[start_cls, owlready2.rdfs_subclassof, target], [_relation_json(r) for r in group])
    return onto


def _declare(onto: owlready2.Ontology, iri: str, base: type):
    """Create, in ``onto``, the class or property ``iri`` as a subclass of ``base``."""
    cut = max(iri.rfind("#"), iri.rfind("/")) + 1  # namespace | local name
    with onto.get_namespace(iri[:cut]):
        return types.new_class(iri[cut:], (base,))


def _add(values: list, new: Iterable[str]) -> None:
    """Append sorted, distinct values one at a time: owlready2 turns a bulk assignment into a set,
    whose hash order would make the written file differ from run to run."""
    for value in sorted(set(new)):
        values.append(value)


# -- edge metadata -------------------------------------------------------------------------------
def _relation_json(r: Relation) -> str:
    payload: dict[str, object] = {"source": r.source}
    if r.weight is not None:
        payload["weight"] = r.weight
    if r.count is not None:
        payload["count"] = r.count
    return json.dumps(payload, ensure_ascii=False)
