"""diff_ontologies: added, removed and changed concepts and relations, and nothing else."""

from __future__ import annotations

import dataclasses

from anatomy_vlm.ontology import Concept, ConceptKind, Relation, RelationType
from anatomy_vlm.ontology.diff import diff_ontologies
from anatomy_vlm.ontology.seed import seed_ontology


def test_identical_ontologies_have_an_empty_diff():
    seed = seed_ontology()
    diff = diff_ontologies(seed, seed)
    assert diff.is_empty and diff.lines() == []
    assert diff.before_version == diff.after_version == seed.content_hash()


def test_diff_names_every_change():
    seed = seed_ontology()
    located = seed.relations_of_type(RelationType.LOCATED_IN)
    after = seed.with_changes(
        concepts=[
            *[dataclasses.replace(c, definition="the windpipe") if c.id == "trachea" else c
              for c in seed.concepts if c.id != "rib_fracture"],
            Concept("pleural_plaque", ConceptKind.FINDING, "pleural plaque", source="curated"),
        ],
        relations=[
            *[dataclasses.replace(r, weight=0.5) if r.key == located[0].key else r
              for r in seed.relations if "rib_fracture" not in (r.start, r.end)],
            Relation(RelationType.LOCATED_IN, "pleural_plaque", "right_lung", "curated"),
        ],
    )
    diff = diff_ontologies(seed, after)
    assert [c.id for c in diff.concepts_added] == ["pleural_plaque"]
    assert [c.id for c in diff.concepts_removed] == ["rib_fracture"]
    assert [(b.definition, a.definition) for b, a in diff.concepts_changed] == [(seed["trachea"].definition, "the windpipe")]
    assert [r.start for r in diff.relations_added] == ["pleural_plaque"]
    assert all("rib_fracture" in (r.start, r.end) for r in diff.relations_removed) and diff.relations_removed
    assert [(b.weight, a.weight) for b, a in diff.relations_changed] == [(located[0].weight, 0.5)]
    text = "\n".join(diff.lines())
    assert "+ concept pleural_plaque" in text and "- concept rib_fracture" in text
    assert "~ concept trachea: definition" in text
    assert diff.to_dict()["counts"]["concepts_added"] == 1
