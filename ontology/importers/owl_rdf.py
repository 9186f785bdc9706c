"""Import an external OWL ontology (RDF/XML) that does not follow this project's own OWL mapping.

``ontology/owl.py`` reads files in our own shape (kind classes, ``kg:`` properties). A RadLex
release, or any other OWL file, names its classes and annotations its own way; an
:class:`OwlImportMapping` says which annotation properties hold names, synonyms and definitions,
which properties mean "part of", how a class IRI becomes a code, and which classes root each kind.
:data:`RADLEX_MAPPING` is a ready mapping for RadLex's OWL release (``http://www.radlex.org/RID/``).

How a file is read
------------------
* With owlready2 in a fresh ``World`` (closed afterwards), and queried with SPARQL on the triples,
  so annotations that RadLex 4.3 writes in separate ``rdf:Description`` blocks are found too.
* A property in the mapping is either a full IRI (it contains ``://``) or a local name, matched
  against the part of each property IRI after its last ``#`` or ``/`` (``"Preferred_name"`` matches
  ``http://www.radlex.org/RID/Preferred_name`` and ``http://www.radlex.org/RID/#Preferred_name``,
  the IRI forms of different RadLex releases). Kind roots are matched the same way against classes.
* Literals are kept when their language tag is in ``languages`` (``""`` = untagged), ranked in
  that order.

What becomes what
-----------------
* Every named ``owl:Class`` that is not deprecated (``owl:deprecated true``, or a value for one of
  ``obsolete_properties``) and has a kind becomes a concept. Its kind comes from the nearest
  ``kind_roots`` class among itself and its ``rdfs:subClassOf`` ancestors (ties: the root listed
  first). Classes under no kind root are skipped and listed in :attr:`OwlImport.skipped`.
* ``id``: ``id_from_iri(iri)``, by default the IRI's local name made OWL-safe (``RID1301``).
* ``name``: the first value of ``name_properties`` (in that order, best language first), skipping
  a value equal to the local name (some RadLex releases put the RID in ``rdfs:label``); without any,
  the local name. ``synonyms``: the values of ``synonym_properties`` and the other values of
  ``name_properties``. ``definition``: the first value of ``definition_properties``.
* ``codes``: ``code_from_iri`` -- a code system prefix (``"RADLEX"``: ``RID1301`` ->
  ``"RADLEX:RID1301"``), a function ``iri -> code or None``, or ``None`` for no code.
* ``rdfs:subClassOf`` between imported classes -> IS_A; a ``part_of_properties`` triple whose
  value is a class IRI (RadLex's annotation ``Part_Of``), or an existential restriction
  ``subClassOf (p some C)`` on such a property -> PART_OF. Edges whose ends do not fit the relation
  (IS_A across kinds, PART_OF outside anatomy, self-loops) are dropped and listed in
  :attr:`OwlImport.dropped_relations`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import owlready2

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.importers.umls_rrf import relation_misfit
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import open_owl_world

RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SKOS_PREF_LABEL = "http://www.w3.org/2004/02/skos/core#prefLabel"
SKOS_ALT_LABEL = "http://www.w3.org/2004/02/skos/core#altLabel"
SKOS_DEFINITION = "http://www.w3.org/2004/02/skos/core#definition"
OBO_EXACT_SYNONYM = "http://www.geneontology.org/formats/oboInOwl#hasExactSynonym"
IAO_DEFINITION = "http://purl.obolibrary.org/obo/IAO_0000115"
BFO_PART_OF = "http://purl.obolibrary.org/obo/BFO_0000050"
OWL_DEPRECATED = "http://www.w3.org/2002/07/owl#deprecated"

CodeRule = Callable[[str], str | None] | str | None  # see OwlImportMapping.code_from_iri


def local_name(iri: str) -> str:
    """The part of an IRI after its last ``#`` or ``/``: ``http://www.radlex.org/RID/RID1301`` -> ``RID1301``."""
    return re.split(r"[#/]", iri.rstrip("#/"))[-1]


def default_concept_id(iri: str) -> str:
    """The local name with every character an OWL local name cannot hold replaced by ``_``."""
    cid = re.sub(r"[^A-Za-z0-9_.\-]", "_", local_name(iri))
    return cid if re.match(r"[A-Za-z_]", cid) else f"_{cid}"


@dataclass(frozen=True)
class OwlImportMapping:
    """How the classes and annotations of an external OWL file map onto concepts."""

    kind_roots: Mapping[str, ConceptKind]  # class IRI or local name -> the kind of it and its descendants
    name_properties: tuple[str, ...] = ("Preferred_name", RDFS_LABEL, SKOS_PREF_LABEL)  # first value wins
    synonym_properties: tuple[str, ...] = ("Synonym", OBO_EXACT_SYNONYM, SKOS_ALT_LABEL)
    definition_properties: tuple[str, ...] = ("Definition", IAO_DEFINITION, SKOS_DEFINITION)
    part_of_properties: tuple[str, ...] = ("Part_Of", BFO_PART_OF)  # annotation or object properties
    code_from_iri: CodeRule = "RADLEX"  # code system prefix for the local name, a function, or None
    id_from_iri: Callable[[str], str] = default_concept_id  # class IRI -> concept id (an OWL local name)
    obsolete_properties: tuple[str, ...] = ("Preferred_Name_for_Obsolete",)  # any value marks a class obsolete
    languages: tuple[str, ...] = ("en", "")  # literal language tags kept, best first; "" = no tag
    include_roots: bool = True  # whether the kind-root classes themselves become concepts
    source: str = "radlex"  # provenance on every concept and relation
    name: str | None = None  # the ontology's name; None: the file's ontology label, else the file name

    def __post_init__(self) -> None:
        if not self.kind_roots:
            raise ValueError("kind_roots is empty: name at least one root class and its kind")
        object.__setattr__(self, "kind_roots", {k: ConceptKind(v) for k, v in self.kind_roots.items()})
        for attr in ("name_properties", "synonym_properties", "definition_properties", "part_of_properties",
                     "obsolete_properties", "languages"):  # fmt: skip
            value = getattr(self, attr)
            if isinstance(value, str):
                raise ValueError(f"{attr} must be a tuple of strings, not the string {value!r}")
            object.__setattr__(self, attr, tuple(value))

    def code(self, iri: str) -> str | None:
        if self.code_from_iri is None:
            return None
        if isinstance(self.code_from_iri, str):
            return f"{self.code_from_iri}:{local_name(iri)}"
        return self.code_from_iri(iri)


# RadLex: "RID3" is "anatomical entity", "RID34785" "clinical finding"; add roots for the
# other branches you import (e.g. an imaging-observation or a descriptor root as ATTRIBUTE).
RADLEX_MAPPING = OwlImportMapping(
    kind_roots={"RID3": ConceptKind.ANATOMY, "RID34785": ConceptKind.FINDING},
)


@dataclass(frozen=True)
class OwlImport:
    """The imported ontology and what was left out."""

    ontology: Ontology
    skipped: tuple[str, ...]  # IRIs of classes under no kind root (sorted)
    obsolete: tuple[str, ...]  # IRIs of deprecated/obsolete classes left out (sorted)
    dropped_relations: tuple[str, ...] = field(default=())  # one line per edge that did not fit its kinds

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


# -- reading ---------------------------------------------------------------------------------------
def read_owl_rdf(path: str | Path, mapping: OwlImportMapping) -> OwlImport:
    """Import the OWL (RDF/XML) file at ``path`` through ``mapping`` (see the module docstring)."""
    path = Path(path)
    with open_owl_world(path) as world:
        triples = _Triples.read(world)
    return _Importer(triples, mapping, str(path)).run(default_name=path.stem)


def _rows(world: owlready2.World, query: str) -> list[list]:
    return [list(row) for row in world.sparql(query, error_on_undefined_entities=False)]


@dataclass
class _Triples:
    """The few kinds of triples the import needs, as plain strings."""

    classes: set[str]
    literals: list[tuple[str, str, str, str]]  # (subject, property, value, language)
    links: list[tuple[str, str, str]]  # (subject, property, object IRI)
    restrictions: list[tuple[str, str, str]]  # (class, property, filler class) of "subClassOf (p some C)"
    ontology_labels: list[str]

    @classmethod
    def read(cls, world: owlready2.World) -> _Triples:
        classes = {i for (i,) in _rows(world, "SELECT (STR(?c) AS ?i) { ?c a owl:Class . FILTER(isIRI(?c)) }")}
        literals = _rows(
            world,
            "SELECT (STR(?s) AS ?i) (STR(?p) AS ?q) (STR(?o) AS ?v) (LANG(?o) AS ?l) "
            "{ ?s ?p ?o . FILTER(isIRI(?s) && isLiteral(?o)) }",
        )
        links = _rows(
            world,
            "SELECT (STR(?s) AS ?i) (STR(?p) AS ?q) (STR(?o) AS ?j) { ?s ?p ?o . FILTER(isIRI(?s) && isIRI(?o)) }",
        )
        restrictions = _rows(
            world,
            "SELECT (STR(?c) AS ?i) (STR(?p) AS ?q) (STR(?d) AS ?j) { ?c rdfs:subClassOf ?r . "
            "?r owl:onProperty ?p ; owl:someValuesFrom ?d . FILTER(isIRI(?c) && isIRI(?d)) }",
        )
        labels = [str(v) for (v,) in _rows(world, "SELECT ?v { ?o a owl:Ontology ; rdfs:label ?v }")]
        return cls(
            classes=classes,
            literals=[(str(s), str(p), str(v), str(lang or "")) for s, p, v, lang in literals],
            links=[(str(s), str(p), str(o)) for s, p, o in links],
            restrictions=[(str(c), str(p), str(d)) for c, p, d in restrictions],
            ontology_labels=labels,
        )


def _matches(spec: str, iri: str) -> bool:
    """A mapping entry names ``iri`` by its full IRI (contains '://') or by its local name."""
    return spec == iri if "://" in spec else spec == local_name(iri)


class _Importer:
    def __init__(self, triples: _Triples, mapping: OwlImportMapping, where: str):
        self.t, self.m, self.where = triples, mapping, where

    def fail(self, problem: str) -> OntologyError:
        return OntologyError(f"{self.where}: {problem}")

    def run(self, default_name: str) -> OwlImport:
        t, m = self.t, self.m
        # property IRI -> index of the matching entry in each list (for "first property wins")
        literal_props = {p for _, p, _, _ in t.literals}
        self.name_rank = self.rank_properties(m.name_properties, literal_props)
        self.synonym_props = set(self.rank_properties(m.synonym_properties, literal_props))
        self.definition_rank = self.rank_properties(m.definition_properties, literal_props)
        obsolete_props = set(self.rank_properties(m.obsolete_properties, literal_props))
        link_props = {p for _, p, _ in t.links} | {p for _, p, _ in t.restrictions}
        part_of_props = set(self.rank_properties(m.part_of_properties, link_props))
        rdfs_sub = "http://www.w3.org/2000/01/rdf-schema#subClassOf"

        parents: dict[str, list[str]] = defaultdict(list)
        part_of: set[tuple[str, str]] = set()
        for s, p, o in t.links:
            if s in t.classes and o in t.classes:
                if p == rdfs_sub:
                    parents[s].append(o)
                elif p in part_of_props:
                    part_of.add((s, o))
        part_of |= {(c, d) for c, p, d in t.restrictions if p in part_of_props and c in t.classes and d in t.classes}

        obsolete = {
            s for s, p, v, _ in t.literals
            if s in t.classes and (p in obsolete_props or (p == OWL_DEPRECATED and v.strip().lower() in ("true", "1")))
        }  # fmt: skip
        kinds = self.kinds(parents)
        roots = set(self.root_iris())
        keep = [
            c for c in sorted(t.classes)
            if c in kinds and c not in obsolete and (m.include_roots or c not in roots)
        ]  # fmt: skip
        skipped = tuple(sorted(c for c in t.classes if c not in kinds and c not in obsolete))

        ids: dict[str, str] = {}
        owner: dict[str, str] = {}
        for iri in keep:
            cid = m.id_from_iri(iri)
            if cid in owner:
                raise self.fail(f"classes <{owner[cid]}> and <{iri}> both map to concept id {cid!r}")
            owner[cid], ids[iri] = iri, cid
        concepts = {iri: self.concept(iri, ids[iri], kinds[iri]) for iri in keep}

        relations: set[Relation] = set()
        dropped: list[str] = []
        edges = [(RelationType.IS_A, c, p) for c in keep for p in parents.get(c, ())]
        edges += [(RelationType.PART_OF, c, w) for c, w in sorted(part_of)]
        for rel_type, start, end in edges:
            if start not in concepts or end not in concepts:
                continue
            why = relation_misfit(rel_type, concepts[start], concepts[end])
            if why:
                dropped.append(f"{ids[start]} -[{rel_type.value}]-> {ids[end]}: {why}")
            else:
                relations.add(Relation(rel_type, ids[start], ids[end], m.source))
        name = m.name or (sorted(t.ontology_labels)[0] if t.ontology_labels else default_name)
        ontology = Ontology(concepts=tuple(concepts.values()), relations=tuple(relations), name=name)
        return OwlImport(
            ontology=ontology,
            skipped=skipped,
            obsolete=tuple(sorted(obsolete)),
            dropped_relations=tuple(sorted(set(dropped))),
        )

    @staticmethod
    def rank_properties(specs: tuple[str, ...], present: set[str]) -> dict[str, int]:
        """Property IRI found in the file -> the index of the first mapping entry naming it."""
        ranks: dict[str, int] = {}
        for iri in present:
            for i, spec in enumerate(specs):
                if _matches(spec, iri):
                    ranks[iri] = i
                    break
        return ranks

    def root_iris(self) -> dict[str, ConceptKind]:
        """Class IRI -> kind for every kind root; a root that names no class is an error."""
        found: dict[str, ConceptKind] = {}
        for spec, kind in self.m.kind_roots.items():
            hits = [c for c in self.t.classes if _matches(spec, c)]
            if not hits:
                raise self.fail(f"kind root {spec!r} is not a class in the file")
            for iri in hits:
                found.setdefault(iri, kind)
        return found

    def kinds(self, parents: Mapping[str, list[str]]) -> dict[str, ConceptKind]:
        """Each class's kind: the nearest kind root among itself and its ancestors (breadth first)."""
        roots = self.root_iris()
        order = {spec: i for i, spec in enumerate(self.m.kind_roots)}

        def priority(iri: str) -> int:
            return min(i for spec, i in order.items() if _matches(spec, iri))

        kinds: dict[str, ConceptKind] = {}
        for cls in self.t.classes:
            seen, frontier = {cls}, [cls]
            while frontier:
                hits = [c for c in frontier if c in roots]
                if hits:
                    kinds[cls] = roots[min(hits, key=priority)]
                    break
                nxt = []
                for node in frontier:
                    for parent in parents.get(node, ()):
                        if parent not in seen:
                            seen.add(parent)
                            nxt.append(parent)
                frontier = nxt
        return kinds

    def values(self, iri: str, ranks: Mapping[str, int]) -> list[str]:
        """The literal values of ``iri`` for the ranked properties: by property rank, then language, then text."""
        language = {lang: i for i, lang in enumerate(self.m.languages)}
        found = [
            (ranks[p], language[lang], v.strip())
            for s, p, v, lang in self.literals_of(iri)
            if p in ranks and lang in language and v.strip()
        ]
        return [v for _, _, v in sorted(found)]

    def literals_of(self, iri: str) -> list[tuple[str, str, str, str]]:
        if not hasattr(self, "_by_subject"):
            by_subject: dict[str, list] = defaultdict(list)
            for row in self.t.literals:
                by_subject[row[0]].append(row)
            self._by_subject = by_subject
        return self._by_subject.get(iri, [])

    def concept(self, iri: str, cid: str, kind: ConceptKind) -> Concept:
        own = local_name(iri)
        names = [v for v in self.values(iri, self.name_rank) if v != own]
        name = names[0] if names else own
        synonyms: list[str] = []
        seen = {name.casefold()}
        for text in names[1:] + self.values(iri, dict.fromkeys(self.synonym_props, 0)):
            if text.casefold() not in seen:
                seen.add(text.casefold())
                synonyms.append(text)
        definitions = self.values(iri, self.definition_rank)
        code = self.m.code(iri)
        return Concept(
            id=cid,
            kind=kind,
            name=name,
            synonyms=tuple(synonyms),
            definition=definitions[0] if definitions else "",
            codes=(code,) if code else (),
            source=self.m.source,
        )
