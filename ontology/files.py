"""Read an ontology from whichever form a user hands over: OWL, JSON, or a folder of curated sources."""

from __future__ import annotations

from pathlib import Path

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import Ontology

OWL_SUFFIXES: tuple[str, ...] = (".owl", ".rdf", ".xml")  # RDF/XML
JSON_SUFFIXES: tuple[str, ...] = (".json",)


def load_ontology(path: str | Path) -> Ontology:
    """OWL (``.owl``, ``.rdf``, ``.xml``), JSON (``.json``), or a folder holding concepts.csv/relations.csv."""
    from anatomy_vlm.ontology.json_io import load_json
    from anatomy_vlm.ontology.owl import load_owl
    from anatomy_vlm.ontology.sources_io import read_sources

    path = Path(path)
    if path.is_dir():
        return read_sources(path)
    suffix = path.suffix.lower()
    if suffix not in OWL_SUFFIXES + JSON_SUFFIXES:
        raise OntologyError(
            f"{path}: cannot read {suffix or 'a file without a suffix'}; "
            f"readable: {', '.join(OWL_SUFFIXES + JSON_SUFFIXES)} or a folder of curated sources"
        )
    if not path.is_file():
        raise OntologyError(f"{path}: no such file")
    return load_owl(path) if suffix in OWL_SUFFIXES else load_json(path)
