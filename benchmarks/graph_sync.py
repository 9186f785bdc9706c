#!/usr/bin/env python3
"""Graph sync throughput and neighbourhood latency on a RadLex-scale ontology, on both backends.

    .venv/bin/python benchmarks/graph_sync.py [--concepts 50000 --edges 150000 --per-row-sample 3000
                                               --backends neo4j,embedded --out docs/benchmarks.md]

What it measures, per backend (``neo4j``: the real server; ``embedded``: ArcadeDB in a temp folder):

- batched: ``GraphStore(batch_size=5000).sync(ontology)`` into an empty variant, wall time, as
  elements/s = (concepts + relations) / s; then a rerun of the same sync (a no-op) in seconds;
- per-row: one auto-commit statement per element (``queries.create_one_concept`` /
  ``create_one_relation`` through ``session.run``) on a *sample*: an ontology made by the same
  generator with ``--per-row-sample`` concepts and the same relations-per-concept ratio (so the
  same kind/type mix and property sizes), written into a variant of its own; elements/s again;
- the ratio of the two rates;
- ``store.neighbourhood([region])`` for each of the 29 Chest ImaGenome regions (1 warm-up round, 5
  timed rounds: p50/p95 ms), and one call with all 29 ids at once (p50 of 5 rounds).

Neo4j comes from NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD (``make benchmark`` sets them); otherwise it
is started with ``services/neo4j/neo4jctl.py start --quiet`` (``--neo4j-workdir`` for a private
server) and stopped at the end only if it was not already running. The database is cleared before
each measurement: only the benchmark's own variants unless ``--wipe-all`` (another process, e.g. a
test run, may share a server started by the same script). The results replace the section
"## Graph sync (benchmarks/graph_sync.py)" in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import neo4j
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from report import machine, package_version, write_section  # noqa: E402 (benchmarks/ is on sys.path)

from anatomy_vlm.kg import queries
from anatomy_vlm.kg.backends import dialect_of_driver
from anatomy_vlm.kg.embedded import EmbeddedConfig, EmbeddedGraphServer
from anatomy_vlm.kg.store import GraphStore
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

REPO = Path(__file__).resolve().parents[1]
NEO4JCTL = REPO / "services" / "neo4j" / "neo4jctl.py"
SECTION = "## Graph sync (benchmarks/graph_sync.py)"
BATCHED_VARIANT = "bench-batched"
PER_ROW_VARIANT = "bench-per-row"
WARMUP_VARIANT = "bench-warmup"
BENCH_VARIANTS = (BATCHED_VARIANT, PER_ROW_VARIANT, WARMUP_VARIANT)
BATCH_SIZE = 5000
SEED = 20_240_531
ROUNDS, WARMUP = 5, 1
TARGET_RATE = 50_000  # elements/s, Neo4j batched
TARGET_RATIO = 20  # batched / per-row

console = Console(stderr=True)

# ----------------------------------------------------------------------------------------------
# The synthetic ontology
# ----------------------------------------------------------------------------------------------

KIND_SHARES = (
    (ConceptKind.ANATOMY, 0.40),
    (ConceptKind.FINDING, 0.35),
    (ConceptKind.DISEASE, 0.15),
    (ConceptKind.ATTRIBUTE, 0.07),
    (ConceptKind.DEVICE, 0.03),
)
# Shares of the relations left after the PART_OF forest and the IS_A trees.
FILL_SHARES = ((RelationType.LOCATED_IN, 0.50), (RelationType.SUGGESTS, 0.30), (RelationType.HAS_ATTRIBUTE, 0.20))
REGION_SHARE = 0.05  # of LOCATED_IN edges that point at one of the 29 regions
SOURCE = "radlex-synthetic"

_WORDS: dict[ConceptKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ConceptKind.ANATOMY: (
        ("left", "right", "upper", "lower", "middle", "anterior", "posterior", "medial", "lateral", "superior",
         "inferior", "apical", "basal", "proximal", "distal", "central", "peripheral", "subpleural",
         "paratracheal", "retrocardiac", "subcarinal", "prevascular"),
        ("lobe", "segment", "bronchus", "artery", "vein", "lymph node", "rib", "vertebra", "muscle", "fissure",
         "recess", "wall", "pleura", "hilum", "apex", "base", "border", "margin", "zone", "duct", "branch",
         "ligament", "cartilage", "sinus", "space", "bronchiole", "costal cartilage", "intercostal space"),
    ),
    ConceptKind.FINDING: (
        ("patchy", "diffuse", "focal", "multifocal", "ill-defined", "well-circumscribed", "linear", "nodular",
         "ground-glass", "streaky", "confluent", "small", "large", "bilateral", "loculated", "spiculated",
         "cavitating", "calcified", "reticular", "perihilar"),
        ("opacity", "nodule", "mass", "consolidation", "effusion", "atelectasis", "thickening", "calcification",
         "lucency", "cavity", "infiltrate", "scarring", "emphysema", "bulla", "pneumothorax", "edema",
         "fibrosis", "granuloma", "reticulation", "haziness", "air bronchogram", "septal line"),
    ),
    ConceptKind.DISEASE: (
        ("acute", "chronic", "primary", "secondary", "recurrent", "post-infectious", "atypical", "idiopathic",
         "drug-induced", "congenital", "community-acquired", "nosocomial", "metastatic", "early", "advanced"),
        ("pneumonia", "tuberculosis", "sarcoidosis", "carcinoma", "lymphoma", "bronchiectasis", "asbestosis",
         "silicosis", "heart failure", "pulmonary embolism", "abscess", "histoplasmosis",
         "obstructive pulmonary disease", "interstitial lung disease", "pulmonary hypertension", "vasculitis"),
    ),
    ConceptKind.ATTRIBUTE: (
        ("mild", "moderate", "severe", "increasing", "decreasing", "stable", "new", "old", "minimal",
         "marked", "partial", "complete"),
        ("size", "density", "margin", "shape", "distribution", "laterality", "severity", "chronicity",
         "texture", "enhancement", "extent", "progression"),
    ),
    ConceptKind.DEVICE: (
        ("central venous", "endotracheal", "nasogastric", "chest", "dual-chamber", "peripherally inserted",
         "implantable", "surgical", "vascular", "tracheostomy"),
        ("catheter", "tube", "pacemaker lead", "stent", "clip", "port", "drain", "wire", "valve", "pump",
         "defibrillator", "sternotomy wire"),
    ),
}
_DEFINITION = {
    ConceptKind.ANATOMY: "An anatomical structure of the {place}, {clause}.",
    ConceptKind.FINDING: "A radiographic appearance seen in the {place}, {clause}.",
    ConceptKind.DISEASE: "A disorder that commonly involves the {place}, {clause}.",
    ConceptKind.ATTRIBUTE: "A descriptor qualifying a finding of the {place}, {clause}.",
    ConceptKind.DEVICE: "A medical device whose tip or body projects over the {place}, {clause}.",
}
_PLACES = ("right lung", "left lung", "mediastinum", "thoracic wall", "pleural space", "hilar region",
           "upper abdomen", "cardiac silhouette", "lung apices", "costophrenic recesses", "airways")
_CLAUSES = ("as described on frontal and lateral chest radiographs",
            "identified by its position relative to the ribs and the diaphragm",
            "usually reported with its laterality and extent",
            "whose appearance depends on projection and patient position",
            "distinguished from neighbouring structures by its density and margins",
            "often compared with prior examinations to judge change")


def _name(rng: random.Random, kind: ConceptKind) -> str:
    modifiers, nouns = _WORDS[kind]
    words = rng.sample(modifiers, rng.choice((1, 1, 2, 2, 3)))
    return " ".join([*words, rng.choice(nouns)])


def _concept(rng: random.Random, kind: ConceptKind, concept_id: str) -> Concept:
    name = _name(rng, kind)
    synonyms = {_name(rng, kind) for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 2, 3, 4)))} - {name}
    codes = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        if rng.random() < 0.6:
            codes.append(f"SNOMED:{rng.randrange(10**8, 10**9)}")
        else:
            codes.append(f"UMLS:C{rng.randrange(10**6, 10**7):07d}")
    definition = _DEFINITION[kind].format(place=rng.choice(_PLACES), clause=rng.choice(_CLAUSES))
    return Concept(id=concept_id, kind=kind, name=name, synonyms=tuple(synonyms),
                   definition=definition[0].upper() + definition[1:], codes=tuple(codes), source=SOURCE)


def generate_ontology(n_concepts: int, n_relations: int, seed: int = SEED, *, validate: bool = True) -> Ontology:
    """A deterministic RadLex-scale ontology: the seed ontology (29 regions and their PART_OF tree)
    plus generated concepts and relations, ``n_concepts`` and ``n_relations`` in all (relations:
    exactly, unless the PART_OF forest and IS_A trees alone need more)."""
    rng = random.Random(seed)
    base = seed_ontology()
    by_kind: dict[ConceptKind, list[str]] = {kind: [] for kind, _ in KIND_SHARES}
    for concept in base.concepts:  # seed concepts come first: they are the lowest indices
        by_kind[concept.kind].append(concept.id)
    generated_by_kind: dict[ConceptKind, list[str]] = {kind: [] for kind, _ in KIND_SHARES}
    concepts: list[Concept] = list(base.concepts)
    remaining = max(0, n_concepts - len(concepts))
    quotas = {kind: int(round(share * n_concepts)) - len(by_kind[kind]) for kind, share in KIND_SHARES}
    quotas = {kind: max(0, q) for kind, q in quotas.items()}
    quotas[ConceptKind.ANATOMY] += remaining - sum(quotas.values())  # rounding goes to anatomy
    next_id = 100_000
    for kind, _ in KIND_SHARES:
        for _ in range(quotas[kind]):
            concept_id = f"RID{next_id}"
            next_id += 1
            concepts.append(_concept(rng, kind, concept_id))
            by_kind[kind].append(concept_id)
            generated_by_kind[kind].append(concept_id)

    relations: list[Relation] = list(base.relations)
    keys = {r.key for r in relations}

    def add(rel_type: RelationType, start: str, end: str, source: str, weight=None, count=None) -> bool:
        key = (rel_type.value, start, end, source)
        if start == end or key in keys:
            return False
        keys.add(key)
        relations.append(Relation(type=rel_type, start=start, end=end, source=source, weight=weight, count=count))
        return True

    # PART_OF forest: every generated anatomy node gets one or two parents of lower index (the seed
    # anatomy, body at its root, has the lowest indices), except a few roots; so it is acyclic.
    anatomy = by_kind[ConceptKind.ANATOMY]
    first_generated = len(anatomy) - len(generated_by_kind[ConceptKind.ANATOMY])
    for index in range(first_generated, len(anatomy)):
        if rng.random() < 0.002:
            continue  # a root of its own tree
        for parent in {anatomy[rng.randrange(index)] for _ in range(1 if rng.random() < 0.7 else 2)}:
            add(RelationType.PART_OF, anatomy[index], parent, SOURCE)
    # IS_A trees within each kind: a parent of lower index in the same kind (~3% are roots).
    for kind, _ in KIND_SHARES:
        members = by_kind[kind]
        first = len(members) - len(generated_by_kind[kind])
        for index in range(max(first, 1), len(members)):
            if rng.random() >= 0.03:
                add(RelationType.IS_A, members[index], members[rng.randrange(index)], SOURCE)

    # The rest: LOCATED_IN (finding/disease -> anatomy, with weight and count), SUGGESTS
    # (finding -> disease), HAS_ATTRIBUTE (finding -> attribute); the first pass gives every start
    # node one edge, later ones pick starts at random.
    budget = max(0, n_relations - len(relations))
    findings = generated_by_kind[ConceptKind.FINDING] or by_kind[ConceptKind.FINDING]
    diseases = by_kind[ConceptKind.DISEASE]
    attributes = by_kind[ConceptKind.ATTRIBUTE]
    located_starts = findings + generated_by_kind[ConceptKind.DISEASE]
    rng.shuffle(located_starts)
    plan = {rel_type: int(budget * share) for rel_type, share in FILL_SHARES}
    plan[RelationType.LOCATED_IN] += budget - sum(plan.values())
    for rel_type, count in plan.items():
        if rel_type is RelationType.LOCATED_IN:
            starts, ends = located_starts, anatomy
        elif rel_type is RelationType.SUGGESTS:
            starts, ends = findings, diseases
        else:
            starts, ends = findings, attributes
        if not starts or not ends:
            continue
        made = attempts = 0
        while made < count and attempts < count * 20:
            start = starts[attempts] if attempts < len(starts) else rng.choice(starts)
            attempts += 1
            if rel_type is RelationType.LOCATED_IN:
                end = rng.choice(REGION_IDS) if rng.random() < REGION_SHARE else rng.choice(ends)
                source = "padchest" if rng.random() < 0.7 else SOURCE
                made += add(rel_type, start, end, source, weight=round(rng.random(), 4),
                            count=rng.randint(1, 5000))
            else:
                made += add(rel_type, start, rng.choice(ends), SOURCE)

    ontology = Ontology(concepts=tuple(concepts), relations=tuple(relations), name="radlex-scale-synthetic")
    if validate:
        ontology.validate()
    return ontology


# ----------------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    driver: neo4j.Driver
    database: str | None
    version: str
    origin: str  # how the server was had
    close_actions: list = field(default_factory=list)

    def close(self) -> None:
        self.driver.close()
        for action in reversed(self.close_actions):
            action()


def _neo4jctl(*args: str, workdir: str | None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(NEO4JCTL), *args]
    if workdir:
        command += ["--workdir", workdir]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def open_neo4j(workdir: str | None) -> Backend:
    close_actions = []
    if os.environ.get("NEO4J_URI") and not workdir:
        uri, user, password = os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"), os.environ["NEO4J_PASSWORD"]
        origin = "the server named by NEO4J_URI"
        console.print(f"neo4j: using {origin} ({uri})")
    else:
        was_running = _neo4jctl("status", workdir=workdir).returncode == 0
        result = _neo4jctl("start", "--quiet", workdir=workdir)
        if result.returncode != 0:
            raise SystemExit(f"could not start Neo4j with {NEO4JCTL}:\n{result.stdout}\n{result.stderr}")
        env = {k: v.strip("'\"") for k, v in re.findall(r"export (\w+)=(\S+)", result.stdout)}
        uri, user, password = env["NEO4J_URI"], env.get("NEO4J_USER", "neo4j"), env["NEO4J_PASSWORD"]
        where = f" --workdir {workdir}" if workdir else ""
        if was_running:
            origin = f"a server already running under `neo4jctl.py{where}`, reused"
            console.print(f"neo4j: reusing the running server at {uri} (left running at the end)")
        else:
            origin = f"started by this script with `neo4jctl.py start --quiet{where}`, stopped after"
            console.print(f"neo4j: started {uri} with neo4jctl (stopped at the end)")
            close_actions.append(lambda: _neo4jctl("stop", workdir=workdir))
    driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
    driver.verify_connectivity()
    with driver.session(database="neo4j") as session:
        components = session.run("CALL dbms.components() YIELD name, versions, edition RETURN *").data()
    version = "; ".join(f"{c['name']} {'/'.join(c['versions'])} {c['edition']}" for c in components)
    return Backend("neo4j", driver, "neo4j", version, origin, close_actions)


def open_embedded(heap: str) -> Backend:
    folder = tempfile.TemporaryDirectory(prefix="graph-sync-bench-")
    server = EmbeddedGraphServer(EmbeddedConfig(path=Path(folder.name), heap=heap))
    uri = server.start()
    driver = neo4j.GraphDatabase.driver(uri, auth=server.credentials())
    driver.verify_connectivity()
    agent = driver.get_server_info().agent
    console.print(f"embedded: ArcadeDB at {uri} ({agent}), data in {folder.name}, heap {heap}")
    origin = f"EmbeddedGraphServer(EmbeddedConfig(path=<temp dir>, heap={heap!r})), a fresh data folder"
    return Backend("embedded", driver, server.config.database, agent, origin, [folder.cleanup, server.stop])


def clear(backend: Backend, wipe_all: bool) -> int:
    """Delete the benchmark's variants (or everything), 10,000 nodes per transaction."""
    deleted = 0
    with backend.driver.session(database=backend.database) as session:
        if wipe_all:
            statements = [("MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted", {})]
        else:
            statements = [
                ("MATCH (n:Concept {variant: $variant}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted",
                 {"variant": variant})
                for variant in BENCH_VARIANTS
            ]
        for statement, params in statements:
            while True:
                batch = session.run(statement, params).single()["deleted"]
                deleted += batch
                if batch == 0:
                    break
        if not wipe_all:
            session.run(
                "MATCH (v:KnowledgeVariant) WHERE v.name IN $names DELETE v",
                names=list(BENCH_VARIANTS),
            ).consume()
    return deleted


def count_variant(backend: Backend, variant: str) -> tuple[int, int]:
    with backend.driver.session(database=backend.database) as session:
        record = session.run(queries.COUNT_VARIANT_ELEMENTS, variant=variant).single()
    return record["concepts"], record["relations"]


def other_nodes(backend: Backend) -> int:
    with backend.driver.session(database=backend.database) as session:
        return session.run(
            "MATCH (n) WHERE NOT coalesce(n.variant, n.name, '') IN $names RETURN count(n) AS n",
            names=list(BENCH_VARIANTS),
        ).single()["n"]


# ----------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    version: str
    origin: str
    concepts: int
    relations: int
    batched_s: float | None = None
    batched_rate: float | None = None
    batched_error: str | None = None
    noop_s: float | None = None
    per_row_elements: int = 0
    per_row_concepts: int = 0
    per_row_relations: int = 0
    per_row_s: float | None = None
    per_row_rate: float | None = None
    per_row_error: str | None = None
    region_p50_ms: float | None = None
    region_p95_ms: float | None = None
    all_regions_p50_ms: float | None = None
    region_findings: float | None = None  # mean findings per region neighbourhood
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.batched_rate and self.per_row_rate:
            return self.batched_rate / self.per_row_rate
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def per_row_sync(backend: Backend, sample: Ontology) -> float:
    """Write ``sample`` one statement per element, each in its own auto-commit transaction."""
    variant = PER_ROW_VARIANT
    started = time.perf_counter()
    with backend.driver.session(database=backend.database) as session:
        for concept in tqdm(sample.concepts, desc=f"{backend.name} per-row concepts", unit="row", leave=False):
            session.run(
                queries.create_one_concept(concept.kind.value),
                variant=variant, id=concept.id, props={**concept.properties(), "variant": variant},
            ).consume()
        for relation in tqdm(sample.relations, desc=f"{backend.name} per-row relations", unit="row", leave=False):
            session.run(
                queries.create_one_relation(relation.type.value),
                variant=variant, start=relation.start, end=relation.end, source=relation.source,
                props=relation.properties(),
            ).consume()
    return time.perf_counter() - started


def neighbourhood_latency(store: GraphStore, result: Result) -> None:
    singles: list[float] = []
    sizes: list[int] = []
    with tqdm(total=(WARMUP + ROUNDS) * (len(REGION_IDS) + 1), desc=f"{result.backend} neighbourhood",
              unit="call", leave=False) as bar:
        alls: list[float] = []
        for round_index in range(WARMUP + ROUNDS):
            for region in REGION_IDS:
                started = time.perf_counter()
                found = store.neighbourhood([region], variant=BATCHED_VARIANT)
                elapsed = time.perf_counter() - started
                if round_index >= WARMUP:
                    singles.append(elapsed)
                    sizes.append(len(found[region].findings))
                bar.update()
            started = time.perf_counter()
            store.neighbourhood(list(REGION_IDS), variant=BATCHED_VARIANT)
            elapsed = time.perf_counter() - started
            if round_index >= WARMUP:
                alls.append(elapsed)
            bar.update()
    result.region_p50_ms = percentile(singles, 0.5) * 1000
    result.region_p95_ms = percentile(singles, 0.95) * 1000
    result.all_regions_p50_ms = statistics.median(alls) * 1000
    result.region_findings = statistics.mean(sizes)


def run_backend(backend: Backend, ontology: Ontology, sample: Ontology, args) -> Result:
    result = Result(backend.name, backend.version, backend.origin, len(ontology.concepts), len(ontology.relations))
    dialect = dialect_of_driver(backend.driver)
    store = GraphStore(backend.driver, database=backend.database, dialect=dialect, batch_size=BATCH_SIZE)
    store.ensure_schema()
    others = other_nodes(backend)
    if others:
        result.notes.append(f"the database also held {others} node(s) not of the benchmark's variants (left as they were)")
    elements = len(ontology.concepts) + len(ontology.relations)

    # Warm-up: the same statements once on the small sample, so that query planning and JIT
    # compilation on a freshly started server are not part of the timed sync.
    clear(backend, args.wipe_all)
    store.sync(sample, WARMUP_VARIANT)

    # a. batched sync, then a no-op rerun
    clear(backend, args.wipe_all)
    console.print(f"{backend.name}: batched sync of {elements:,} elements (batch_size={BATCH_SIZE}) ...")
    started = time.perf_counter()
    try:
        report = store.sync(ontology, BATCHED_VARIANT)
    except Exception as error:  # report the exact failure, keep going with the other measurements
        result.batched_error = f"{type(error).__name__}: {error}"
        console.print(f"[red]{backend.name}: batched sync failed after {time.perf_counter() - started:.1f}s: "
                      f"{result.batched_error}[/red]")
    else:
        result.batched_s = time.perf_counter() - started
        result.batched_rate = elements / result.batched_s
        console.print(f"{backend.name}: batched {result.batched_s:.1f}s = {result.batched_rate:,.0f} elements/s "
                      f"(store's own timer {report.seconds:.1f}s)")
        stored = count_variant(backend, BATCHED_VARIANT)
        if stored != (len(ontology.concepts), len(ontology.relations)):
            result.notes.append(f"after the batched sync the variant held {stored[0]} concepts, {stored[1]} relations")
        started = time.perf_counter()
        rerun = store.sync(ontology, BATCHED_VARIANT)
        result.noop_s = time.perf_counter() - started
        if rerun.changed:
            result.notes.append(f"the rerun of sync was not a no-op: {rerun}")
        console.print(f"{backend.name}: no-op resync {result.noop_s:.2f}s")
        # d. neighbourhood latency on the full graph
        neighbourhood_latency(store, result)
        console.print(f"{backend.name}: neighbourhood p50 {result.region_p50_ms:.1f} ms, p95 "
                      f"{result.region_p95_ms:.1f} ms; 29 regions at once p50 {result.all_regions_p50_ms:.1f} ms")

    # b. per-row path on a sample, into an emptied database
    clear(backend, args.wipe_all)
    result.per_row_concepts, result.per_row_relations = len(sample.concepts), len(sample.relations)
    result.per_row_elements = result.per_row_concepts + result.per_row_relations
    console.print(f"{backend.name}: per-row sync of a sample of {result.per_row_elements:,} elements ...")
    try:
        result.per_row_s = per_row_sync(backend, sample)
    except Exception as error:
        result.per_row_error = f"{type(error).__name__}: {error}"
        console.print(f"[red]{backend.name}: per-row sync failed: {result.per_row_error}[/red]")
    else:
        result.per_row_rate = result.per_row_elements / result.per_row_s
        console.print(f"{backend.name}: per-row {result.per_row_s:.1f}s = {result.per_row_rate:,.0f} elements/s")
        stored = count_variant(backend, PER_ROW_VARIANT)
        if stored != (result.per_row_concepts, result.per_row_relations):
            result.notes.append(f"after the per-row run the sample variant held {stored[0]} concepts, {stored[1]} relations")
    clear(backend, args.wipe_all)
    return result


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------





def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def rows(results: list[Result]) -> list[list[str]]:
    table = []
    for r in results:
        per_row = f"{_fmt(r.per_row_rate)} ({r.per_row_concepts:,} + {r.per_row_relations:,})"
        table.append([
            r.backend, f"{r.concepts:,}", f"{r.relations:,}",
            _fmt(r.batched_rate) if not r.batched_error else "failed", per_row,
            _fmt(r.ratio, ".1f") + ("x" if r.ratio else ""), _fmt(r.noop_s, ".2f"),
            f"{_fmt(r.region_p50_ms, '.1f')} / {_fmt(r.region_p95_ms, '.1f')}", _fmt(r.all_regions_p50_ms, ".1f"),
        ])
    return table


HEADERS = ["backend", "concepts", "relations", "batched elements/s", "per-row elements/s (sample concepts + relations)",
           "batched / per-row", "no-op resync s", "neighbourhood p50 / p95 ms (1 region)", "29-region call p50 ms"]


def section(results: list[Result], args, command: str, started_at: str, generate_s: float) -> str:
    lines = [SECTION, ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join("---" for _ in HEADERS) + "|")
    for row in rows(results):
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    neo = next((r for r in results if r.backend == "neo4j"), None)
    if neo is not None:
        rate_met = neo.batched_rate is not None and neo.batched_rate >= TARGET_RATE
        ratio_met = neo.ratio is not None and neo.ratio >= TARGET_RATIO
        lines.append(
            f"Targets (Neo4j): batched >= {TARGET_RATE:,} elements/s: **{'met' if rate_met else 'NOT met'}** "
            f"({_fmt(neo.batched_rate)} elements/s); batched >= {TARGET_RATIO}x per-row: "
            f"**{'met' if ratio_met else 'NOT met'}** ({_fmt(neo.ratio, '.1f')}x)."
        )
    for r in results:
        if r.batched_error:
            lines.append(f"- {r.backend}: the batched sync failed: `{r.batched_error}`")
        if r.per_row_error:
            lines.append(f"- {r.backend}: the per-row run failed: `{r.per_row_error}`")
        for note in r.notes:
            lines.append(f"- {r.backend}: {note}")
        if r.batched_s is not None:
            lines.append(f"- {r.backend}: batched sync took {r.batched_s:.1f} s; per-row sample took "
                         f"{_fmt(r.per_row_s, '.1f')} s; a region's neighbourhood held "
                         f"{_fmt(r.region_findings, '.0f')} located findings on average.")
    lines += [
        "",
        "How it was measured:",
        f"- Ontology: generated with seed {SEED} in {generate_s:.1f} s: the seed ontology (the 29 Chest ImaGenome "
        "regions under their PART_OF tree) plus synthetic concepts (Anatomy 40%, Finding 35%, Disease 15%, "
        "Attribute 7%, Device 3%; a name, 0-4 synonyms, a one-sentence definition, 0-2 codes, a source) and "
        "relations (a PART_OF forest with 1-2 parents per anatomy node, IS_A trees within each kind, then "
        "LOCATED_IN with weight and count 50% - 5% of them into the 29 regions - SUGGESTS 30%, "
        "HAS_ATTRIBUTE 20%). Passes `Ontology.validate()`.",
        "- Before timing, each backend syncs the per-row sample once (batched) into a warm-up variant, which is "
        "then deleted: query planning and JIT warm-up on a fresh server are not in the numbers.",
        f"- Batched: `GraphStore(batch_size={BATCH_SIZE}).sync()` into an empty variant, wall time including "
        "validation, the diff against the (empty) variant and the one write transaction; elements/s = "
        "(concepts + relations) / s. No-op resync: the same `sync()` again (reads the variant back, diffs, "
        "writes nothing).",
        f"- Per-row: measured on a sample only (the full per-row run would take too long): an ontology made by the "
        f"same generator with {args.per_row_sample:,} concepts and the same relations per concept, written with "
        "`queries.create_one_concept` / `create_one_relation`, one `session.run` (auto-commit transaction) per "
        "element, into its own variant of an emptied database.",
        f"- Neighbourhood: `store.neighbourhood([region])` for each of the 29 regions, {WARMUP} warm-up round then "
        f"{ROUNDS} timed rounds (p50/p95 over {ROUNDS * 29} calls); and one call with all 29 ids, p50 of {ROUNDS}.",
        "- Client and server share the machine; it has 2 cores and other work (test runs, other servers) may have "
        "been running at the same time, so the numbers are indicative and can vary between runs.",
        "",
        f"- Date: {started_at}",
        f"- Machine: {machine()}",
    ]
    for r in results:
        label = "Neo4j" if r.backend == "neo4j" else "ArcadeDB (embedded, Bolt agent)"
        lines.append(f"- {label}: {r.version}; {r.origin}")
    lines += [
        f"- Python {platform.python_version()}, neo4j driver {neo4j.__version__}, "
        f"arcadedb-embedded {package_version('arcadedb-embedded')}",
        f"- Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def print_table(results: list[Result]) -> None:
    table = Table(title="Graph sync benchmark")
    for header in HEADERS:
        table.add_column(header)
    for row in rows(results):
        table.add_row(*row)
    Console().print(table)


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concepts", type=int, default=50_000)
    parser.add_argument("--edges", type=int, default=150_000, help="relations in the generated ontology")
    parser.add_argument("--per-row-sample", type=int, default=3_000, help="concepts in the per-row sample")
    parser.add_argument("--backends", default="neo4j,embedded")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file whose section is replaced ('' for none)")
    parser.add_argument("--neo4j-workdir", default=None,
                        help="start a private Neo4j in this neo4jctl work folder instead of NEO4J_URI / the default one")
    parser.add_argument("--embedded-heap", default=EmbeddedConfig.heap, help="JVM heap of the embedded engine")
    parser.add_argument("--wipe-all", action="store_true",
                        help="delete every node before each measurement, not only the benchmark's variants")
    args = parser.parse_args(argv)
    command = shlex.join([".venv/bin/python", "benchmarks/graph_sync.py", *(sys.argv[1:] if argv is None else argv)])
    started_at = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip() or \
        datetime.now(timezone.utc).isoformat()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"neo4j", "embedded"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    ontology = generate_ontology(args.concepts, args.edges)
    ratio = args.edges / max(args.concepts, 1)
    sample = generate_ontology(args.per_row_sample, int(round(args.per_row_sample * ratio)), seed=SEED + 1)
    generate_s = time.perf_counter() - started
    console.print(f"generated {len(ontology.concepts):,} concepts + {len(ontology.relations):,} relations "
                  f"(per-row sample {len(sample.concepts):,} + {len(sample.relations):,}) in {generate_s:.1f}s")

    results: list[Result] = []
    for name in backends:
        backend = open_neo4j(args.neo4j_workdir) if name == "neo4j" else open_embedded(args.embedded_heap)
        try:
            results.append(run_backend(backend, ontology, sample, args))
        finally:
            backend.close()

    print_table(results)
    text = section(results, args, command, started_at, generate_s)
    if args.out:
        out = Path(args.out)
        if not out.is_absolute():
            out = REPO / out
        write_section(out, SECTION, text)
        console.print(f"wrote the section {SECTION!r} of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
