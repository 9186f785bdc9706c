"""``anatomy-vlm train | evaluate | predict | explain | study``: the model's commands.

Registered on the main app by ``anatomy_vlm.cli`` (``register``). Graph options come from
``cli_common.graph_command``, so ``--uri`` or the embedded engine work the same way here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from anatomy_vlm.cli_common import VariantOption, console, graph_command, open_store


def build_run_config(path: Path, data_root: Optional[Path], out_dir: Optional[Path], steps: Optional[str],
                     device: Optional[str], progress: bool):
    """The one place the training options become a ``RunConfig`` (DETR's ``build_*(args)``)."""
    from anatomy_vlm.training.config import load_config

    overrides: dict = {"progress": progress}
    if data_root is not None:
        overrides["data_root"] = str(data_root)
    if out_dir is not None:
        overrides["out_dir"] = str(out_dir)
    if device is not None:
        overrides["device"] = device
    if steps is not None:
        try:
            overrides["steps_per_stage"] = tuple(int(s) for s in steps.split(","))
        except ValueError:
            raise typer.BadParameter(f"--steps {steps!r} is not three comma-separated integers") from None
    try:
        return load_config(path, **overrides)
    except (OSError, ValueError, TypeError) as e:
        raise typer.BadParameter(f"{path}: {e}") from None


def _print_summary(summary: dict[str, float], title: str) -> None:
    table = Table("metric", "value", title=title)
    for key, value in summary.items():
        table.add_row(key, "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4g}")
    console.print(table)


ConfigArgument = typer.Argument(..., exists=True, dir_okay=False, help="A YAML config (training/configs/*.yaml).")
DataRootOption = typer.Option(None, "--data-root", help="Folder of the phantom splits (overrides train.data_root).")
OutDirOption = typer.Option(None, "--out-dir", help="Where the run writes (overrides train.out_dir).")
StepsOption = typer.Option(None, "--steps", help="Steps of stages 1,2,3, e.g. 300,100,200 (overrides the config).")
DeviceOption = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 ... (overrides train.device).")
ProgressOption = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def train_command(
    config_path: Path = ConfigArgument, data_root: Optional[Path] = DataRootOption, out_dir: Optional[Path] = OutDirOption,
    steps: Optional[str] = StepsOption, device: Optional[str] = DeviceOption, progress: bool = ProgressOption,
) -> None:
    """Generate missing phantom splits, fit the knowledge GNN, train the three stages, evaluate on test.

    Writes metrics.csv, curve.png, checkpoint.pt, evaluation.json and eval_*.csv under train.out_dir.
    Launch with torchrun for DDP on GPUs.
    """
    from anatomy_vlm.training.run import run

    config = build_run_config(config_path, data_root, out_dir, steps, device, progress)
    result = run(config)
    console.print(f"checkpoint: {result.train.checkpoint}\ncurve: {result.train.curve_png}\n"
                  f"metrics: {result.train.metrics_csv}")
    if result.evaluation is not None:
        _print_summary(result.evaluation.summary(), f"test split ({result.evaluation.n_images} images)")
        console.print(f"evaluation: {Path(config.train.out_dir) / 'evaluation.json'}")


def evaluate_command(
    checkpoint: Path = typer.Argument(..., exists=True, dir_okay=False, help="A checkpoint.pt from train."),
    data: Path = typer.Argument(..., exists=True, file_okay=False, help="A phantom folder (manifest.jsonl)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Write evaluation.json and eval_*.csv here."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Region mAP@0.5 / IoU, image AUC / BMAC / F1 / ECE, region-wise and zero-shot AUC of a checkpoint."""
    from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
    from anatomy_vlm.training.evaluation import evaluate_checkpoint

    report = evaluate_checkpoint(checkpoint, PhantomDataset(data), device=device)
    _print_summary(report.summary(), f"{data} ({report.n_images} images)")
    if out_dir is not None:
        console.print(f"evaluation: {report.write(out_dir)}")


def print_record(record, title: str, show: int) -> None:
    """One prediction record as a table: its most probable findings, their evidence regions and the
    nodes the top region attended."""
    table = Table("finding", "probability", "evidence regions", "most attended nodes",
                  title=f"{title} (image {record.image_id}, graph {record.graph_version[:12]}, variant {record.variant})")
    for prediction in record.ranked()[:show]:
        regions = ", ".join(f"{region} {weight:.2f}" for region, weight in prediction.evidence)
        nodes = ", ".join(n for n, _ in record.roi(prediction.evidence[0][0]).attention[:3]) if prediction.evidence else ""
        table.add_row(prediction.finding_id, f"{prediction.score:.3f}", regions, nodes)
    console.print(table)


@graph_command
def predict_command(
    checkpoint: Path = typer.Argument(..., exists=True, dir_okay=False, help="A checkpoint.pt from train."),
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="DICOM, PNG or JPEG files."),
    top_k: int = typer.Option(3, "--top-k", help="Evidence regions per finding."),
    show: int = typer.Option(5, "--show", help="Findings printed per image."),
    from_graph: bool = typer.Option(False, "--from-graph", help="Score against the graph's variant (new nodes included) instead of the checkpoint's ontology."),
    persist: bool = typer.Option(False, "--persist", help="Write the provenance (image, ROIs, predictions, evidence, attention) to the graph; implies --from-graph."),
    explain_top: bool = typer.Option(False, "--explain", help="After persisting, print the Cypher explaining each image's top finding and its rows; implies --persist."),
    explanation_dir: Optional[Path] = typer.Option(None, "--explanation-dir", help="With --explain, save each explanation subgraph as PNG here."),
    variant: str = VariantOption,
    overlay_dir: Optional[Path] = typer.Option(None, "--overlay-dir", help="Save each image with its boxes and top findings as PNG here."),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction records as JSON."),
    graph=None,
) -> None:
    """Predict findings with their evidence ROIs and attended graph nodes; optionally persist them."""
    import dataclasses

    from anatomy_vlm.alignment import Predictor
    from anatomy_vlm.encoder.io import read_image
    from anatomy_vlm.training.pictures import draw_prediction

    persist = persist or explain_top

    def report(predictor: Predictor, store=None) -> None:
        records = predictor.predict_files(images, top_k=top_k)
        for path, record in zip(images, records):
            if store is not None:
                store.write_provenance(record)
            if overlay_dir is not None:  # the picture is read again only for this optional drawing
                overlay = draw_prediction(read_image(path).image, record, overlay_dir / f"{record.image_id}.png")
                console.print(f"overlay: {overlay}")
            if as_json:
                console.print_json(json.dumps(dataclasses.asdict(record)))
                continue
            print_record(record, path.name, show)
            if store is not None:
                top = record.prediction_id(record.ranked()[0].finding_id)
                console.print(f"persisted; explain the top finding with:\n  anatomy-vlm explain '{top}'",
                              soft_wrap=True, markup=False, highlight=False)  # one copyable line
                if explain_top:
                    png = explanation_dir / f"{record.image_id}_explanation.png" if explanation_dir else None
                    print_explanation(store, top, png=png)

    if persist or from_graph:
        with open_store(graph) as store:
            report(Predictor.from_checkpoint(checkpoint, source=store, variant=variant), store if persist else None)
    else:
        report(Predictor.from_checkpoint(checkpoint))


@graph_command
def explain_command(
    prediction_id: str = typer.Argument(..., help="A persisted prediction id (<image>/<model>@<variant>/prediction/<finding>)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Save the explanation subgraph as a picture."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    graph=None,
) -> None:
    """Print the Cypher that explains a prediction, its parameters, and its rows."""
    with open_store(graph) as store:
        print_explanation(store, prediction_id, png=png, as_json=as_json)


def print_explanation(store, prediction_id: str, *, png: Optional[Path] = None, as_json: bool = False) -> None:
    """Run the named explanation query for ``prediction_id`` and print it, its parameters and rows."""
    from anatomy_vlm.kg import queries
    from anatomy_vlm.training.pictures import draw_explanation

    result = store.explain(prediction_id)
    console.print("[bold]Cypher[/] (kg.queries.EXPLAIN_PREDICTION):")
    console.print(queries.EXPLAIN_PREDICTION.strip(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold]parameters[/]: {json.dumps({'prediction_id': prediction_id})}", soft_wrap=True)
    if as_json:
        console.print_json(json.dumps(result.rows, default=str))
    else:
        first = result.rows[0]
        # prediction, score, finding and image are the same on every row: printed once, so the
        # table keeps what varies (evidence ROI -> anatomy, attended node) readable at 80 columns
        console.print(f"{len(result.rows)} rows; prediction score {first['score']:.3f} for "
                      f"{first['finding']} on image {first['image']}", soft_wrap=True)
        table = Table("ROI region", "evidence", "anatomy", "attended node", "attention")
        for row in result.rows:
            weight = row.get("evidence_weight")
            attention = row.get("attention_weight")
            table.add_row(str(row.get("region") or ""), "" if weight is None else f"{weight:.3f}",
                          str(row.get("anatomy") or ""), str(row.get("attended") or ""),
                          "" if attention is None else f"{attention:.3f}")
        console.print(table)
    if png is not None:
        console.print(f"subgraph picture: {draw_explanation(result.rows, png, title=prediction_id)}")


def study_command(
    config_path: Path = ConfigArgument, data_root: Optional[Path] = DataRootOption, out_dir: Optional[Path] = OutDirOption,
    steps: Optional[str] = StepsOption, device: Optional[str] = DeviceOption, progress: bool = ProgressOption,
    arm: list[str] = typer.Option([], "--arm", help="Arms to run (default all: canonical, enrichment-off, shuffled)."),
) -> None:
    """Knowledge-variant study: the same training and evaluation per knowledge arm; a table out."""
    from anatomy_vlm.training.study import STUDY_ARMS, study_table, variant_study

    config = build_run_config(config_path, data_root, out_dir, steps, device, progress)
    unknown = [a for a in arm if a not in STUDY_ARMS]
    if unknown:
        raise typer.BadParameter(f"unknown arm(s) {unknown}; known: {', '.join(STUDY_ARMS)}")
    rows = variant_study(config, arm or tuple(STUDY_ARMS))
    console.print(study_table(rows), markup=False, highlight=False)
    console.print(f"table: {Path(config.train.out_dir) / 'study.md'}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)
    app.command("explain")(explain_command)
    app.command("study")(study_command)


__all__ = ["build_run_config", "print_explanation", "print_record", "register"]
