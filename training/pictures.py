"""Pictures of predictions: region boxes and findings over the image, and explanation subgraphs.

Kept apart from the model files (matplotlib and PIL only; Agg backend, nothing shown on screen).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from anatomy_vlm.kg.provenance import ProvenanceRecord

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def draw_prediction(image: torch.Tensor, prediction: ProvenanceRecord, path: str | Path, *, top_findings: int = 3,
                    min_side: int = 512) -> Path:
    """Save ``image`` (``[1, H, W]`` in [0, 1]) with every region box in grey and the top regions of
    the ``top_findings`` most probable findings in colour, with a legend of their probabilities."""
    pixels = (image[0].detach().float().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
    picture = Image.fromarray(pixels).convert("RGB")
    scale = max(1, min_side // max(picture.size))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    for roi in prediction.rois:
        draw.rectangle([v * scale for v in roi.box], outline=(110, 110, 110), width=1)
    legend = []
    for i, finding in enumerate(prediction.ranked()[:top_findings]):
        colour = _COLOURS[i % len(_COLOURS)]
        for region, _weight in finding.evidence[:1]:
            box = prediction.roi(region).box
            draw.rectangle([v * scale for v in box], outline=colour, width=3)
            draw.text((box[0] * scale + 3, box[1] * scale + 2), region, fill=colour)
        legend.append((colour, f"{finding.finding_id} {finding.score:.2f}"))
    for i, (colour, text) in enumerate(legend):
        draw.rectangle([4, 4 + 14 * i, 14, 14 + 14 * i], fill=colour)
        draw.text((18, 3 + 14 * i), text, fill=colour)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def draw_explanation(rows: list[dict], path: str | Path, *, title: str = "") -> Path:
    """Save the explanation subgraph of ``EXPLAIN_PREDICTION`` rows as a layered picture:
    prediction -> evidence ROIs -> anatomy, and ROI -> attended concepts (edge width = weight)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers: dict[str, list[str]] = {"prediction": [], "roi": [], "anatomy": [], "attended": []}
    edges: dict[tuple[str, str], float] = {}

    def add(layer: str, node: str | None) -> None:
        if node is not None and node not in layers[layer]:
            layers[layer].append(node)

    for row in rows:
        prediction = f"{row['finding']} ({row['score']:.2f})"
        add("prediction", prediction)
        if row.get("roi") is None:
            continue
        roi = row["region"] or row["roi"]
        add("roi", roi)
        edges[(prediction, roi)] = float(row.get("evidence_weight") or 0.0)
        if row.get("anatomy"):
            add("anatomy", row["anatomy"])
            edges[(roi, row["anatomy"])] = 1.0
        if row.get("attended"):
            add("attended", row["attended"])
            edges[(roi, row["attended"])] = float(row.get("attention_weight") or 0.0)
    position = {}
    for x, (layer, nodes) in enumerate(layers.items()):
        for y, node in enumerate(nodes):
            position[(layer, node)] = (x, -(y - (len(nodes) - 1) / 2))
    where = {node: xy for (layer, node), xy in position.items()}
    height = max(3.0, 0.45 * max((len(n) for n in layers.values()), default=1))
    fig, ax = plt.subplots(figsize=(11, height))
    top = max(edges.values(), default=1.0) or 1.0
    for (a, b), weight in edges.items():
        (x0, y0), (x1, y1) = where[a], where[b]
        ax.plot([x0, x1], [y0, y1], color="tab:blue", alpha=0.6, linewidth=0.5 + 4.0 * weight / top)
    colours = {"prediction": "tab:red", "roi": "tab:orange", "anatomy": "tab:green", "attended": "tab:purple"}
    for (layer, node), (x, y) in position.items():
        ax.scatter([x], [y], s=80, color=colours[layer], zorder=3)
        ax.annotate(node, (x, y), xytext=(6, 4), textcoords="offset points", fontsize=8)
    ax.set_xticks(range(4), ["prediction", "evidence ROI", "anatomy", "attended node"])
    ax.set_yticks([])
    ax.set_xlim(-0.3, 3.9)
    ax.set_title(title)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["draw_explanation", "draw_prediction"]
