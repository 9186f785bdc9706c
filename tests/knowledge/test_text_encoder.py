"""Text encoders: the hashing encoder's invariants, concept text, the cache, and the real MiniLM."""

from __future__ import annotations


import pytest
import torch

from anatomy_vlm.knowledge.cache import EmbeddingCache, EmbeddingCacheError
from anatomy_vlm.kg.export import to_hetero_data
from anatomy_vlm.knowledge.text_encoder import (
    HashingTextEncoder,
    MiniLMTextEncoder,
    TextEncoder,
    TextEncoderUnavailableError,
    concept_text,
    encode_concepts,
)
from anatomy_vlm.ontology import Concept
from anatomy_vlm.ontology.seed import seed_ontology


def test_hashing_encoder_is_deterministic_normalised_and_batch_independent():
    encoder = HashingTextEncoder(dim=64)
    assert isinstance(encoder, TextEncoder)
    texts = ["pleural effusion", "pleural effusions", "clavicle fracture"]
    batch = encoder.encode(texts)
    assert batch.shape == (3, 64) and batch.dtype == torch.float32
    assert torch.allclose(batch.norm(dim=-1), torch.ones(3))
    single = torch.cat([encoder.encode([t]) for t in texts])
    assert torch.equal(batch, single)
    assert torch.equal(batch, HashingTextEncoder(dim=64).encode(texts))  # no per-process salt
    sims = batch @ batch.T
    assert sims[0, 1] > sims[0, 2]  # shared spelling -> closer


def test_hashing_encoder_edge_cases():
    encoder = HashingTextEncoder(dim=8)
    assert encoder.encode([]).shape == (0, 8)
    assert torch.equal(encoder.encode([""]), torch.zeros(1, 8))
    with pytest.raises(ValueError):
        HashingTextEncoder(dim=0)
    with pytest.raises(ValueError):
        HashingTextEncoder(dim=8, ngram_range=(4, 2))
    with pytest.raises(ValueError):
        encoder.encode("not a list")
    with pytest.raises(ValueError):
        encoder.encode(["ok", 3])


def test_concept_text_format():
    concept = Concept("effusion", "Finding", "pleural effusion", synonyms=("effusion", "fluid in the pleural space"),
                      definition="Fluid in the pleural space.")
    assert concept_text(concept) == "pleural effusion; synonyms: effusion, fluid in the pleural space; Fluid in the pleural space."
    assert concept_text(Concept("lung", "Anatomy", "lung")) == "lung"


def test_encode_concepts_follows_graph_index():
    onto = seed_ontology()
    data, index = to_hetero_data(onto)
    encoder = HashingTextEncoder(dim=32)
    features = encode_concepts(encoder, onto, index)
    assert set(features) == set(index.node_ids)
    for node_type, ids in index.node_ids.items():
        assert features[node_type].shape == (len(ids), 32)
        assert torch.equal(features[node_type][0], encoder.encode([concept_text(onto[ids[0]])])[0])


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TextEncoderUnavailableError, match="no config.json"):
        MiniLMTextEncoder(path=tmp_path)
    with pytest.raises(TextEncoderUnavailableError):
        MiniLMTextEncoder(path="microsoft/BiomedVLP-CXR-BERT-general")  # a hub name is never downloaded
    with pytest.raises(ValueError):
        MiniLMTextEncoder(pooling="max")


def test_cache_round_trip_and_version_separation(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    assert cache.get("v1", "all-MiniLM-L6-v2") is None
    value = torch.randn(5, 4)
    cache.put("v1", "all-MiniLM-L6-v2", value)
    assert torch.equal(cache.get("v1", "all-MiniLM-L6-v2"), value)
    assert cache.get("v2", "all-MiniLM-L6-v2") is None
    assert cache.get("v1", "hashing-64-3-5") is None
    cache.put("v2", "all-MiniLM-L6-v2", value + 1)
    assert torch.equal(cache.get("v1", "all-MiniLM-L6-v2"), value)
    assert cache.versions() == ["v1", "v2"]
    assert not list((tmp_path / "cache").glob("*.tmp"))  # temp files replaced, none left behind
    calls = []
    got = cache.get_or_compute("v3", "k/with:odd chars", lambda: calls.append(1) or torch.ones(2))
    again = cache.get_or_compute("v3", "k/with:odd chars", lambda: calls.append(1) or torch.zeros(2))
    assert torch.equal(got, again) and calls == [1]


def test_cache_corrupt_file_is_an_error_and_bad_arguments(tmp_path):
    cache = EmbeddingCache(tmp_path)
    path = cache.put("v1", "enc", torch.ones(3))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(EmbeddingCacheError, match=path.name):
        cache.get("v1", "enc")
    assert cache.discard("v1", "enc") and cache.get("v1", "enc") is None
    with pytest.raises(ValueError):
        cache.put("../escape", "enc", torch.ones(1))
    with pytest.raises(ValueError):
        cache.put("v1", "", torch.ones(1))
    with pytest.raises(ValueError):
        cache.put("v1", "enc", [1.0])


def test_minilm_puts_paraphrases_closer_than_unrelated_findings():
    encoder = MiniLMTextEncoder()
    assert encoder.dim == 384 and encoder.name == "all-MiniLM-L6-v2"
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training  # frozen: stays in eval mode
    emb = encoder.encode(["pleural effusion", "fluid in the pleural space", "clavicle fracture"])
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    single = encoder.encode(["fluid in the pleural space"])  # padding does not change the result
    assert torch.allclose(single[0], emb[1], atol=1e-5)
