"""alignment.Predictor: images of any size in, one ProvenanceRecord each out, boxes in the image's pixels."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.alignment import AlignerConfig, ModelConfig, Predictor, build
from anatomy_vlm.encoder import PreprocessConfig, ViTConfig
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig
from anatomy_vlm.knowledge import FixedEmbeddings, build_knowledge
from anatomy_vlm.ontology.seed import seed_ontology


def _predictor(keep_aspect: bool) -> Predictor:
    ontology = seed_ontology()
    node_ids = sorted(c.id for c in ontology.concepts)
    knowledge = build_knowledge(ontology, FixedEmbeddings(node_ids, torch.randn(len(node_ids), 16,
                                                                                generator=torch.Generator().manual_seed(0))))
    config = AlignerConfig(model=ModelConfig(vit=ViTConfig.preset("tiny", depth=1, patch_size=16),
                                             decoder=AnatomyDecoderConfig.preset("tiny", depth=1)),
                           preprocess=PreprocessConfig(image_size=32, keep_aspect=keep_aspect))
    torch.manual_seed(0)
    parts = build(config, knowledge)
    return Predictor(model=parts.model.eval(), knowledge=knowledge, embedder=None, preprocess=parts.preprocess,
                     postprocess=parts.postprocess, device=torch.device("cpu"), name="test")


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_boxes_come_back_on_the_same_anatomy_of_a_non_square_image(keep_aspect: bool) -> None:
    """Each ROI's box in the uploaded image's pixels, mapped forward by the preprocessing, is the box
    the model predicted on its square input (the inverse transform's round trip)."""
    predictor = _predictor(keep_aspect)
    image = torch.rand(1, 48, 96, generator=torch.Generator().manual_seed(1))
    record = predictor.predict([image])[0]
    out, geometries = predictor.outputs([image])
    model_boxes = out["boxes_xyxy"][0].clamp(0, 1) * 32  # [R, 4] pixels of the model input
    pixel_boxes = torch.tensor([record.roi(r).box for r in predictor.knowledge.region_ids])  # [R, 4] image pixels
    assert (record.width, record.height) == (96, 48)
    assert float(pixel_boxes[:, [0, 2]].min()) >= 0 and float(pixel_boxes[:, [0, 2]].max()) <= 96
    assert float(pixel_boxes[:, [1, 3]].min()) >= 0 and float(pixel_boxes[:, [1, 3]].max()) <= 48
    forward = predictor.preprocess.boxes_to_input(pixel_boxes, geometries[0])
    if keep_aspect:  # boxes reaching into the padding were clipped to the image: compare inside it
        top, bottom = geometries[0].offset_xy[1], 32 - geometries[0].offset_xy[1]
        model_boxes[:, [1, 3]] = model_boxes[:, [1, 3]].clamp(top, bottom)
    assert torch.allclose(forward, model_boxes, atol=1e-3)


def test_same_pixels_same_id_whatever_the_size_of_the_batch() -> None:
    predictor = _predictor(False)
    a = torch.rand(1, 40, 60, generator=torch.Generator().manual_seed(2))
    b = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(3))
    alone = predictor.predict([a])[0]
    together = predictor.predict([b, a])
    assert together[1].image_id == alone.image_id and together[0].image_id != alone.image_id
    assert alone.image_id.startswith("img-") and len(alone.image_sha256) == 64
    assert [p.finding_id for p in alone.ranked()] == [p.finding_id for p in together[1].ranked()]
    assert alone.run_id == "test@canonical"


def test_bad_images_are_refused() -> None:
    predictor = _predictor(False)
    with pytest.raises(ValueError, match="no images"):
        predictor.predict([])
    with pytest.raises(ValueError, match=r"\[1, H, W\]"):
        predictor.predict([torch.rand(3, 8, 8)])
