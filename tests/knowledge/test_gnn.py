"""KnowledgeGraphEncoder over the exported seed ontology: shapes, invariances, gradients, pretraining."""

from __future__ import annotations

import math

import pytest
import torch

from anatomy_vlm.kg.export import to_hetero_data
from anatomy_vlm.knowledge.gnn import (
    CONVS,
    DistMultLinkPredictor,
    GNNConfig,
    KnowledgeGraphEncoder,
    pretrain_link_prediction,
    with_reverse_edges,
)
from anatomy_vlm.knowledge.text_encoder import HashingTextEncoder, encode_concepts
from anatomy_vlm.ontology import Ontology
from anatomy_vlm.ontology.seed import seed_ontology

TEXT_DIM = 32
TINY = dict(hidden=16, out_dim=8, layers=2, dropout=0.1)


@pytest.fixture(scope="module")
def graph():
    onto = seed_ontology()
    data, index = to_hetero_data(onto)
    features = encode_concepts(HashingTextEncoder(dim=TEXT_DIM), onto, index)
    return onto, data, index, features


def build(data, conv="sage", seed=0, **overrides):
    torch.manual_seed(seed)
    return KnowledgeGraphEncoder(GNNConfig(conv=conv, **{**TINY, **overrides}), TEXT_DIM, data.metadata())


@pytest.mark.parametrize("conv", CONVS)
def test_output_shapes_per_node_type(graph, conv):
    _, data, index, features = graph
    out = build(data, conv).eval()(features, data.edge_index_dict, data.collect("edge_weight"))
    for node_type, ids in index.node_ids.items():
        assert out["embeddings"][node_type].shape == (len(ids), 8)
    assert out["flat"].shape == (len(index), 8)
    node_type, row = index.locate("cardiomegaly")
    offset = sum(len(index.node_ids[t]) for t in sorted(index.node_ids) if t < node_type)
    assert torch.equal(out["flat"][offset + row], out["embeddings"][node_type][row])  # GraphIndex order


@pytest.mark.parametrize("conv", CONVS)
def test_gradients_are_finite(graph, conv):
    _, data, _, features = graph
    model = build(data, conv).train()
    out = model(features, data.edge_index_dict, data.collect("edge_weight"))
    out["flat"].pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("conv", CONVS)
def test_per_id_embeddings_do_not_depend_on_input_order(graph, conv):
    onto, data, index, features = graph
    model = build(data, conv).eval()
    expected = model(features, data.edge_index_dict)["embeddings"]
    shuffled = Ontology(concepts=tuple(reversed(onto.concepts)), relations=tuple(reversed(onto.relations)))
    data2, index2 = to_hetero_data(shuffled)
    got = model(encode_concepts(HashingTextEncoder(dim=TEXT_DIM), shuffled, index2), data2.edge_index_dict)["embeddings"]
    for node_type, ids in index.node_ids.items():
        for row, node_id in enumerate(ids):
            t2, r2 = index2.locate(node_id)
            assert torch.allclose(got[t2][r2], expected[node_type][row], atol=1e-6)


def test_permuting_rows_permutes_embeddings(graph):
    """Equivariance: relabel the Anatomy rows (features and edges); each node keeps its embedding."""
    _, data, _, features = graph
    model = build(data).eval()
    expected = model(features, data.edge_index_dict)["embeddings"]
    n = features["Anatomy"].size(0)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))  # new row i holds old row perm[i]
    new_row = torch.empty_like(perm)
    new_row[perm] = torch.arange(n)
    x2 = {**features, "Anatomy": features["Anatomy"][perm]}
    edges2 = {}
    for (src, rel, dst), ei in data.edge_index_dict.items():
        ei = ei.clone()
        if src == "Anatomy":
            ei[0] = new_row[ei[0]]
        if dst == "Anatomy":
            ei[1] = new_row[ei[1]]
        edges2[(src, rel, dst)] = ei
    got = model(x2, edges2)["embeddings"]
    assert torch.allclose(got["Anatomy"], expected["Anatomy"][perm], atol=1e-5)
    assert torch.allclose(got["Finding"], expected["Finding"], atol=1e-5)


def test_messages_flow_both_ways(graph):
    """A Disease only ever ends edges; with reverse edges, changing a disease's text changes its findings."""
    _, data, _, features = graph
    for reverse, expect_change in ((True, True), (False, False)):
        model = build(data, reverse_edges=reverse).eval()
        before = model(features, data.edge_index_dict)["embeddings"]["Finding"]
        changed = {**features, "Disease": features["Disease"] + 1.0}
        after = model(changed, data.edge_index_dict)["embeddings"]["Finding"]
        assert (not torch.allclose(before, after)) is expect_change
    edges, _ = with_reverse_edges(data.edge_index_dict)
    assert torch.equal(edges[("Anatomy", "rev_LOCATED_IN", "Finding")], data["Finding", "LOCATED_IN", "Anatomy"].edge_index.flip(0))


def test_graph_conv_uses_edge_weights_and_sage_does_not(graph):
    _, data, _, features = graph
    weights = data.collect("edge_weight")
    halved = {et: w * 0.5 for et, w in weights.items()}
    for conv, expect_change in (("graph", True), ("sage", False)):
        model = build(data, conv).eval()
        a = model(features, data.edge_index_dict, weights)["flat"]
        b = model(features, data.edge_index_dict, halved)["flat"]
        assert (not torch.allclose(a, b)) is expect_change


def test_missing_edge_type_is_skipped(graph):
    """A variant that dropped a relation still runs through the same model."""
    _, data, index, features = graph
    model = build(data).eval()
    edges = {et: ei for et, ei in data.edge_index_dict.items() if et[1] != "SUGGESTS"}
    assert model(features, edges)["flat"].shape == (len(index), 8)


def test_link_prediction_loss_decreases_and_mrr_beats_random(graph):
    _, data, _, features = graph
    model = build(data, dropout=0.0)
    history = pretrain_link_prediction(model, data, features, epochs=30, seed=0)
    losses = history["link_loss"]
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0]
    # expected MRR of a uniformly random ranking of each edge's tail among its type's nodes
    random_rr = []
    for (_, _, dst), ei in data.edge_index_dict.items():
        n = data[dst].num_nodes
        random_rr += [sum(1 / r for r in range(1, n + 1)) / n] * ei.size(1)
    assert history["mrr"][-1] > 1.5 * sum(random_rr) / len(random_rr)


def test_link_predictor_test_metrics(graph):
    _, data, _, features = graph
    predictor = DistMultLinkPredictor(build(data)).eval()
    emb = predictor(features, data.edge_index_dict)["embeddings"]
    mean_rank, mrr, hits = predictor.test(emb, data.edge_index_dict, k=3)
    assert mean_rank >= 1 and 0 < mrr <= 1 and 0 <= hits <= 1
    with pytest.raises(ValueError):
        predictor.test(emb, data.edge_index_dict, k=0)


@pytest.mark.parametrize("bad", [
    dict(hidden=0), dict(out_dim=-1), dict(layers=0), dict(dropout=1.0), dict(dropout=-0.1),
    dict(conv="gat"), dict(conv="hgt", hidden=10, heads=4), dict(aggr="median"),
])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        GNNConfig(**bad)


def test_bad_inputs_raise(graph):
    _, data, _, features = graph
    with pytest.raises(ValueError):
        KnowledgeGraphEncoder(GNNConfig(), 0, data.metadata())
    with pytest.raises(ValueError):
        KnowledgeGraphEncoder(GNNConfig(), TEXT_DIM, (["Anatomy"], [("Finding", "LOCATED_IN", "Anatomy")]))
    model = build(data)
    with pytest.raises(ValueError, match="Disease"):
        model({k: v for k, v in features.items() if k != "Disease"}, data.edge_index_dict)
    with pytest.raises(ValueError, match="Anatomy"):
        model({**features, "Anatomy": features["Anatomy"][:, :5]}, data.edge_index_dict)
    with pytest.raises(ValueError, match="metadata"):
        model(features, {**data.edge_index_dict, ("Finding", "CAUSES", "Disease"): torch.zeros(2, 1, dtype=torch.long)})
    with pytest.raises(ValueError):
        pretrain_link_prediction(model, data, features, epochs=0)
