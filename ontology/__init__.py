"""The anatomy/pathology ontology: its in-memory model, OWL reading and writing, and the seed."""

from anatomy_vlm.ontology.model import (
    ACYCLIC_RELATIONS,
    RELATION_KINDS,
    Concept,
    ConceptKind,
    Ontology,
    Problem,
    Relation,
    RelationType,
)

__all__ = [
    "ACYCLIC_RELATIONS",
    "RELATION_KINDS",
    "Concept",
    "ConceptKind",
    "Ontology",
    "Problem",
    "Relation",
    "RelationType",
]
