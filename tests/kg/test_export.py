"""Exports without a database: networkx, HeteroData with stable indices, and the file formats."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch

from anatomy_vlm.kg.export import save_export, to_hetero_data, to_networkx
from anatomy_vlm.ontology import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import load_owl


def test_hetero_indices_do_not_depend_on_input_order(seed):
    shuffled = Ontology(concepts=tuple(reversed(seed.concepts)), relations=tuple(reversed(seed.relations)))
    first, first_index = to_hetero_data(seed)
    second, second_index = to_hetero_data(shuffled)
    assert first_index.node_ids == second_index.node_ids
    for edge_type in first.edge_types:
        assert torch.equal(first[edge_type].edge_index, second[edge_type].edge_index)


def test_hetero_edges_carry_weight_and_count():
    onto = Ontology(
        concepts=(Concept("lung", "Anatomy", "lung"), Concept("effusion", "Finding", "effusion"),
                  Concept("opacity", "Finding", "opacity")),
        relations=(Relation("LOCATED_IN", "effusion", "lung", "padchest", weight=0.25, count=40),
                   Relation("LOCATED_IN", "opacity", "lung", "curated")),
    )
    data, index = to_hetero_data(onto)
    located = data["Finding", "LOCATED_IN", "Anatomy"]
    assert located.edge_index.tolist() == [[0, 1], [0, 0]]  # effusion, opacity -> lung
    assert located.edge_weight.tolist() == [0.25, 1.0]
    assert located.edge_count.tolist() == [40, 0]
    assert index.locate("opacity") == ("Finding", 1)
    with pytest.raises(KeyError, match="spleen"):
        index.locate("spleen")


def test_networkx_keeps_two_sources_of_one_edge():
    onto = Ontology(
        concepts=(Concept("lung", "Anatomy", "lung"), Concept("effusion", "Finding", "effusion")),
        relations=(Relation("LOCATED_IN", "effusion", "lung", "padchest", weight=0.2, count=3),
                   Relation("LOCATED_IN", "effusion", "lung", "curated")),
    )
    graph = to_networkx(onto)
    assert graph.number_of_edges("effusion", "lung") == 2
    assert graph.edges["effusion", "lung", "LOCATED_IN|padchest"]["count"] == 3


@pytest.mark.parametrize("suffix", [".owl", ".graphml", ".json", ".pt"])
def test_every_export_format_reads_back(seed, tmp_path, suffix):
    path = save_export(seed, tmp_path / f"variant{suffix}")
    if suffix == ".owl":
        assert load_owl(path) == seed
    elif suffix == ".graphml":
        graph = nx.read_graphml(path)
        assert graph.number_of_nodes() == len(seed.concepts)
        assert graph.nodes["svc"]["synonyms"] == "|".join(seed["svc"].synonyms)
    elif suffix == ".json":
        data = json.loads(path.read_text())
        assert len(data["nodes"]) == len(seed.concepts) and len(data["edges"]) == len(seed.relations)
        assert {"start", "end", "source"} <= set(data["edges"][0])
    else:
        saved = torch.load(path, weights_only=False)
        assert saved["version"] == seed.content_hash()
        assert saved["data"]["Anatomy"].num_nodes == len(seed.of_kind(ConceptKind.ANATOMY))


def test_unknown_export_format_is_refused(seed, tmp_path):
    with pytest.raises(ValueError, match="variant.csv"):
        save_export(seed, tmp_path / "variant.csv")
