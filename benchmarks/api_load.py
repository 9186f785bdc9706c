#!/usr/bin/env python3
"""The API under load: /predict and the explanation endpoint, 8 concurrent clients on loopback.

    .venv/bin/python benchmarks/api_load.py [--backends embedded,neo4j] [--uri bolt://... --user U --password P]
                                            [--checkpoint run/checkpoint.pt] [--clients 8] [--requests 200]
                                            [--duration 120] [--image-size 256] [--no-write]

Per backend (``embedded``: ArcadeDB in a fresh temp folder; ``neo4j``: the server at ``--uri`` or
``NEO4J_URI``):

1. the built ontology is synced into the variant ``--variant`` (default ``api-bench``, so a shared
   server's ``canonical`` is left alone) and an API key file with one curator key is written;
2. the service runs in a subprocess (``python -m anatomy_vlm.cli_service serve`` = uvicorn, one
   worker, 127.0.0.1) with the checkpoint (``--checkpoint``, or a tiny one trained here first);
3. a second process runs ``--clients`` client threads (httpx, one connection each); each loops:
   ``POST /predict?persist=true`` with one of 16 synthetic ``--image-size`` PNGs, then
   ``GET /predictions/{id}/explanation`` for the most probable finding, until ``--requests``
   predictions were sent or ``--duration`` seconds passed (whichever first);
4. measured: requests/s of each endpoint and both together, p50/p95 latency of each, errors, the
   server process's peak RSS (``VmHWM`` from /proc, which counts every page it ever held; with
   psutil as a fallback), and the explanation query itself (``GraphStore.explain``, i.e.
   ``queries.EXPLAIN_PREDICTION`` over Bolt) p50/p95 over up to 200 of the persisted predictions.

The results replace the section "## API under load (benchmarks/api_load.py)" of ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTION = "## API under load (benchmarks/api_load.py)"
sys.path.insert(0, str(REPO / "benchmarks"))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


# ----------------------------------------------------------------------------------------------
# The client process
# ----------------------------------------------------------------------------------------------
def run_clients(url: str, key: str, images: list[Path], clients: int, requests: int, duration: float) -> dict:
    """``clients`` threads hitting /predict then the explanation; returns latencies and counts."""
    import httpx

    lock = threading.Lock()
    sent = {"predict": 0}
    predict_ms: list[float] = []
    explain_ms: list[float] = []
    errors: list[str] = []
    prediction_ids: list[str] = []
    deadline = time.perf_counter() + duration
    payloads = [p.read_bytes() for p in images]

    def take() -> int | None:
        with lock:
            if sent["predict"] >= requests or time.perf_counter() >= deadline:
                return None
            sent["predict"] += 1
            return sent["predict"]

    def client(number: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120.0) as http:
            while (turn := take()) is not None:
                data = payloads[(turn + number) % len(payloads)]
                started = time.perf_counter()
                try:
                    response = http.post("/predict", params={"persist": "true"},
                                         files={"file": (f"bench-{turn}.png", data, "image/png")})
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(f"predict: {type(error).__name__}: {error}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    with lock:
                        errors.append(f"predict {response.status_code}: {response.text[:200]}")
                    continue
                pid = response.json()["findings"][0]["prediction_id"]
                started = time.perf_counter()
                try:
                    explained = http.get(f"/predictions/{pid}/explanation")
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(f"explanation: {type(error).__name__}: {error}")
                    continue
                explain_elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    predict_ms.append(elapsed)  # only successful predictions count towards the latency
                    if explained.status_code == 200:
                        explain_ms.append(explain_elapsed)
                        prediction_ids.append(pid)
                    else:
                        errors.append(f"explanation {explained.status_code}: {explained.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "predict_ms": predict_ms, "explain_ms": explain_ms, "errors": errors,
            "prediction_ids": prediction_ids, "clients": clients}


def client_main(args) -> int:
    images = sorted(Path(args.images).glob("*.png"))
    result = run_clients(args.url, os.environ["API_LOAD_KEY"], images, args.clients, args.requests, args.duration)
    Path(args.result).write_text(json.dumps(result))
    return 0


# ----------------------------------------------------------------------------------------------
# The server side
# ----------------------------------------------------------------------------------------------
@dataclass
class Result:
    backend: str
    clients: int
    predictions: int = 0
    explanations: int = 0
    wall_s: float = 0.0
    predict_p50: float | None = None
    predict_p95: float | None = None
    explain_p50: float | None = None
    explain_p95: float | None = None
    query_p50: float | None = None
    query_p95: float | None = None
    query_calls: int = 0
    peak_rss_mib: float | None = None
    rss_source: str = ""
    errors: list[str] = field(default_factory=list)
    graph: str = ""

    @property
    def throughput(self) -> float:
        return (self.predictions + self.explanations) / self.wall_s if self.wall_s else 0.0


def train_tiny_checkpoint(folder: Path) -> Path:
    """The tests' tiny aligner: 8 phantoms of 64 px, 4 steps (about 30 s on 2 cores)."""
    from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
    from anatomy_vlm.datasets.phantom.generate import generate_phantoms
    from anatomy_vlm.knowledge import KnowledgeConfig, KnowledgeEmbedder, build_knowledge
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.files import load_ontology
    from anatomy_vlm.training.config import load_config
    from anatomy_vlm.training.trainer import train

    generate_phantoms(8, folder / "ph", seed=0, size=64, progress=False)
    cfg = load_config(str(REPO / "training/configs/tiny.yaml"), steps_per_stage=(2, 1, 1),
                      out_dir=str(folder / "run"), progress=False)
    cfg.knowledge = KnowledgeConfig(text_encoder="hashing", pretrain_epochs=5, cache_dir="")
    ontology = load_ontology(BUILT_OWL_PATH)
    embedder = KnowledgeEmbedder.fit(ontology, cfg.knowledge)
    result = train(cfg, build_knowledge(ontology, embedder), PhantomDataset(folder / "ph"),
                   embedder=embedder, ontology=ontology)
    return Path(result.checkpoint)


def write_images(folder: Path, size: int, count: int = 16) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[0:size, 0:size] / size
        base = 0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(4 * yy)  # smooth structure, different per image
        noise = rng.normal(0, 0.05, (size, size))
        Image.fromarray((np.clip(base + noise, 0, 1) * 255).astype("uint8")).save(folder / f"{i:02d}.png")


def peak_rss(pid: int, polled: float) -> tuple[float | None, str]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "VmHWM (/proc)"
    except OSError:
        pass
    return (polled / 2**20 if polled else None), "psutil RSS polled every 0.1 s"


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server at {url} was not ready within {timeout:.0f} s")


def run_backend(name: str, args, checkpoint: Path, work: Path) -> Result:
    from anatomy_vlm.api.auth import KeyStore
    from anatomy_vlm.kg.backends import GraphConfig, GraphConnection
    from anatomy_vlm.kg.embedded import free_port
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.files import load_ontology

    folder = work / name
    folder.mkdir()
    if name == "neo4j":
        config = GraphConfig(uri=args.uri, user=args.user, password=args.password)
        graph_args = ["--uri", args.uri, "--user", args.user, "--password", args.password or ""]
    else:
        config = GraphConfig(embedded_path=folder / "graph")
        graph_args = ["--graph-path", str(folder / "graph")]
    connection = GraphConnection(config).open()  # the embedded engine stays up; the server joins it
    process = None
    try:
        store = connection.store
        if store.variant(args.variant) is not None:
            store.delete_variant(args.variant)
        store.sync(load_ontology(BUILT_OWL_PATH), args.variant)
        keys = folder / "keys.json"
        key, _ = KeyStore(keys).create("api-load", "curator")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "NEO4J_URI": (args.uri or "") if name == "neo4j" else ""}
        command = [sys.executable, "-m", "anatomy_vlm.cli_service", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--checkpoint", str(checkpoint), "--variant", args.variant, "--keys-file", str(keys),
                   "--state-dir", str(folder / "state"), "--log-level", "warning", *graph_args]
        server_log = (folder / "server.log").open("w")  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=server_log, stderr=subprocess.STDOUT, text=True)
        wait_ready(url, process)
        polled = [0.0]
        stop = threading.Event()

        def poll() -> None:
            try:
                import psutil
            except ImportError:
                return
            proc = psutil.Process(process.pid)
            while not stop.is_set():
                try:
                    polled[0] = max(polled[0], proc.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        images = folder / "images"
        write_images(images, args.image_size)
        result_file = folder / "clients.json"
        client = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--client-mode", "--url", url, "--images", str(images),
             "--clients", str(args.clients), "--requests", str(args.requests), "--duration", str(args.duration),
             "--result", str(result_file)],
            cwd=REPO, env={**os.environ, "API_LOAD_KEY": key}, timeout=args.duration + 600,
        )
        stop.set()
        if client.returncode != 0 or not result_file.exists():
            print((folder / "server.log").read_text()[-4000:], file=sys.stderr)
            raise SystemExit(f"the client process failed with {client.returncode}")
        data = json.loads(result_file.read_text())
        rss, source = peak_rss(process.pid, polled[0])
        # The explanation query itself, over Bolt, for the predictions the load persisted.
        query_ms = []
        for pid in data["prediction_ids"][:200]:
            started = time.perf_counter()
            store.explain(pid)
            query_ms.append((time.perf_counter() - started) * 1000)
        agent = store.driver.get_server_info().agent
        return Result(
            backend=name, clients=data["clients"], predictions=len(data["predict_ms"]),
            explanations=len(data["explain_ms"]), wall_s=data["wall_s"],
            predict_p50=percentile(data["predict_ms"], 0.5), predict_p95=percentile(data["predict_ms"], 0.95),
            explain_p50=percentile(data["explain_ms"], 0.5), explain_p95=percentile(data["explain_ms"], 0.95),
            query_p50=percentile(query_ms, 0.5), query_p95=percentile(query_ms, 0.95), query_calls=len(query_ms),
            peak_rss_mib=rss, rss_source=source, errors=data["errors"][:5] + (
                [f"... {len(data['errors']) - 5} more"] if len(data["errors"]) > 5 else []),
            graph=agent,
        )
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            connection.store.delete_variant(args.variant)
        except Exception:
            pass
        connection.close()


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------
HEADERS = ["backend", "clients", "predictions + explanations", "wall s", "requests/s (both)", "/predict p50 / p95 ms",
           "explanation p50 / p95 ms", "EXPLAIN_PREDICTION query p50 / p95 ms", "server peak RSS MiB", "errors"]


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def rows(results: list[Result]) -> list[list[str]]:
    return [[
        r.backend, str(r.clients), f"{r.predictions} + {r.explanations}", _fmt(r.wall_s), _fmt(r.throughput, ".2f"),
        f"{_fmt(r.predict_p50)} / {_fmt(r.predict_p95)}", f"{_fmt(r.explain_p50)} / {_fmt(r.explain_p95)}",
        f"{_fmt(r.query_p50)} / {_fmt(r.query_p95)} ({r.query_calls} calls)", _fmt(r.peak_rss_mib, ".0f"),
        str(len(r.errors)),
    ] for r in results]


def section(results: list[Result], args, command: str, checkpoint_note: str) -> str:
    from report import machine, markdown_table, utc_now  # shared helpers of the benchmark scripts

    lines = [SECTION, "", *markdown_table(HEADERS, rows(results)), ""]
    for r in results:
        lines.append(f"- {r.backend}: {r.predictions / r.wall_s if r.wall_s else 0:.2f} predictions/s; graph {r.graph}; "
                     f"peak RSS from {r.rss_source} of the uvicorn process"
                     + (" (the embedded engine's JVM is a separate process, not counted)" if r.backend == "embedded" else ""))
        for error in r.errors:
            lines.append(f"  - error: `{error}`")
    lines += [
        "",
        "How it was measured:",
        f"- Server: `python -m anatomy_vlm.cli_service serve` (uvicorn, one worker, 127.0.0.1), model {checkpoint_note}, "
        f"the built ontology synced into the variant `{args.variant}`; `predict_workers` 2 (two predictions at a time).",
        f"- Load: a second process with {args.clients} client threads (httpx, one connection each), bounded by "
        f"{args.requests} predictions or {args.duration:g} s; each loop is `POST /predict?persist=true` with one of 16 "
        f"synthetic {args.image_size}x{args.image_size} 8-bit PNGs, then `GET /predictions/{{id}}/explanation` of its "
        "most probable finding. Latency is per request at the client; requests/s counts both endpoints.",
        "- EXPLAIN_PREDICTION query: `GraphStore.explain(id)` over Bolt from the benchmark process, once for each of up "
        "to 200 persisted predictions after the load.",
        "- Client, server and graph share the machine (2 cores here), so the numbers are indicative.",
        "",
        f"- Date: {utc_now()}",
        f"- Machine: {machine()}",
        f"- Python {platform.python_version()}",
        f"- Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=None, help="embedded and/or neo4j (default: embedded, plus neo4j with --uri)")
    parser.add_argument("--uri", default=os.environ.get("NEO4J_URI"), help="Neo4j server (default NEO4J_URI)")
    parser.add_argument("--user", default=os.environ.get("NEO4J_USER", "neo4j"))
    parser.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD"))
    parser.add_argument("--variant", default="api-bench", help="variant the benchmark syncs, serves and deletes after")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model to serve (default: train a tiny one)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="the most /predict requests in all")
    parser.add_argument("--duration", type=float, default=120.0, help="the most seconds of load")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only; leave --out alone")
    # The client process (started by this script).
    parser.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client_mode:
        return client_main(args)
    if args.clients < 1 or args.requests < 1 or args.duration <= 0:
        parser.error("--clients and --requests must be positive, --duration > 0")
    backends = [b.strip() for b in (args.backends or ("embedded,neo4j" if args.uri else "embedded")).split(",") if b.strip()]
    if set(backends) - {"embedded", "neo4j"}:
        parser.error(f"unknown backend(s) in {args.backends!r}")
    if "neo4j" in backends and not args.uri:
        parser.error("the neo4j backend needs --uri (or NEO4J_URI)")
    given = list(sys.argv[1:] if argv is None else argv)
    shown = ["***" if i and given[i - 1] == "--password" else a for i, a in enumerate(given)]  # never the password
    command = shlex.join([".venv/bin/python", "benchmarks/api_load.py", *shown])
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        work = Path(tmp)
        if args.checkpoint is None:
            print("training a tiny checkpoint ...", flush=True)
            checkpoint, note = train_tiny_checkpoint(work / "model"), "the tiny test checkpoint (training/configs/tiny.yaml, 4 steps)"
        else:
            checkpoint, note = args.checkpoint, f"`{args.checkpoint}`"
        results = []
        for name in backends:
            print(f"{name}: serving and loading ...", flush=True)
            results.append(run_backend(name, args, checkpoint, work))
    from inference import resolve_out
    from report import print_table, write_section

    print_table("API under load", HEADERS, rows(results))
    for r in results:
        print(f"{r.backend}: {r.throughput:.2f} requests/s, predict p95 {_fmt(r.predict_p95)} ms, "
              f"explanation p95 {_fmt(r.explain_p95)} ms, query p95 {_fmt(r.query_p95)} ms, "
              f"peak RSS {_fmt(r.peak_rss_mib, '.0f')} MiB, errors {len(r.errors)}")
    if not args.no_write:
        out = resolve_out(args.out)
        write_section(out, SECTION, section(results, args, command, note))
        print(f"wrote the section {SECTION!r} of {out}")
    return 0 if all(not r.errors for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
