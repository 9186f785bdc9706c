"""The curated sources' CSV format: exact round trips, byte-stable writes, errors that name file and line."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind as K, Ontology, Relation, RelationType as T
from anatomy_vlm.ontology.seed import REGION_IDS
from anatomy_vlm.ontology.sources_io import (
    CONCEPTS_FILE,
    DEFAULT_SOURCES_DIR,
    RELATIONS_FILE,
    SourceFormatError,
    read_sources,
    render_concepts,
    render_relations,
    write_sources,
)

CONCEPT_HEADER = "id,kind,name,synonyms,definition,codes,source\n"
RELATION_HEADER = "type,start,end,source,weight,count\n"


def awkward() -> Ontology:
    """Values that need quoting: commas, quotes, a newline, non-ASCII, floats that must stay exact."""
    return Ontology(
        concepts=(
            Concept("lung", K.ANATOMY, "lung", ("poumon", 'the "lungs"'), "Paired organ, of breathing.",
                    ("SNOMED:39607008",), "curated"),
            Concept("edema", K.FINDING, "pulmonary edema", ("œdème",), "Fluid\nin the lung.", (), "curated"),
            Concept("mild", K.ATTRIBUTE, "mild", (), "", (), ""),
        ),
        relations=(
            Relation(T.LOCATED_IN, "edema", "lung", "curated"),
            Relation(T.LOCATED_IN, "edema", "lung", "padchest", 0.1 + 0.2, 7),
            Relation(T.HAS_ATTRIBUTE, "edema", "mild", "curated", 1e-17, None),
        ),
    )


def write_files(folder, concepts: str, relations: str = RELATION_HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONCEPTS_FILE).write_text(concepts, encoding="utf-8")
    (folder / RELATIONS_FILE).write_text(relations, encoding="utf-8")
    return folder


# -- round trips and stability -------------------------------------------------------------------
def test_committed_sources_read_back_and_rewrite_to_the_same_bytes(tmp_path):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    assert set(REGION_IDS) <= {c.id for c in curated.concepts}
    assert {c.source for c in curated.concepts} == {"curated"} == {r.source for r in curated.relations}
    write_sources(curated, tmp_path)
    for name in (CONCEPTS_FILE, RELATIONS_FILE):  # the committed files are in canonical form
        assert (tmp_path / name).read_bytes() == (DEFAULT_SOURCES_DIR / name).read_bytes()


def test_round_trip_is_exact_for_values_that_need_quoting(tmp_path):
    original = awkward()
    assert write_sources(original, tmp_path) == [tmp_path / CONCEPTS_FILE, tmp_path / RELATIONS_FILE]
    loaded = read_sources(tmp_path)
    assert loaded == original
    weights = {r.source: r.weight for r in loaded.relations if r.type is T.LOCATED_IN}
    assert weights["padchest"] == 0.1 + 0.2  # repr keeps every digit (0.30000000000000004)
    assert loaded["edema"].definition == "Fluid\nin the lung."


def test_rows_are_sorted_and_lists_pipe_separated(tmp_path):
    write_sources(awkward(), tmp_path)
    lines = (tmp_path / CONCEPTS_FILE).read_text(encoding="utf-8").splitlines()
    assert lines[0] == CONCEPT_HEADER.strip()
    ids = [line.split(",")[0] for line in lines[1:] if not line.startswith("in the")]  # a quoted newline
    assert ids == ["edema", "lung", "mild"]
    assert 'lung,Anatomy,lung,"poumon|the ""lungs""","Paired organ, of breathing.",SNOMED:39607008,curated' in lines
    relations = (tmp_path / RELATIONS_FILE).read_text(encoding="utf-8").splitlines()
    assert relations == [
        RELATION_HEADER.strip(),
        "HAS_ATTRIBUTE,edema,mild,curated,1e-17,",
        "LOCATED_IN,edema,lung,curated,,",
        "LOCATED_IN,edema,lung,padchest,0.30000000000000004,7",
    ]


def test_rewriting_unchanged_sources_is_a_no_op(tmp_path):
    write_sources(awkward(), tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    os.utime(tmp_path / CONCEPTS_FILE, ns=(1, 1))  # make any rewrite visible in the mtime
    assert write_sources(read_sources(tmp_path), tmp_path) == []
    assert (tmp_path / CONCEPTS_FILE).stat().st_mtime_ns == 1
    assert (tmp_path / RELATIONS_FILE).stat().st_mtime_ns == stamps[tmp_path / RELATIONS_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONCEPTS_FILE, RELATIONS_FILE]  # no temp files left


def test_a_change_rewrites_only_the_file_it_touches(tmp_path):
    original = awkward()
    write_sources(original, tmp_path)
    renamed = [replace(c, name="moderate") if c.id == "mild" else c for c in original.concepts]
    assert write_sources(original.with_changes(concepts=renamed), tmp_path) == [tmp_path / CONCEPTS_FILE]
    assert read_sources(tmp_path)["mild"].name == "moderate"


def test_write_is_atomic_when_a_value_cannot_be_written(tmp_path):
    write_sources(awkward(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = awkward().with_changes(concepts=[Concept("x", K.FINDING, "x", ("a|b",))])
    with pytest.raises(OntologyError, match=r"concept 'x': synonyms \['a\|b'\]"):
        write_sources(bad, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_written_files_keep_or_get_ordinary_permissions(tmp_path):
    write_sources(awkward(), tmp_path)
    assert {(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {0o644}
    (tmp_path / CONCEPTS_FILE).chmod(0o664)
    renamed = [replace(c, name="moderate") if c.id == "mild" else c for c in awkward().concepts]
    write_sources(awkward().with_changes(concepts=renamed), tmp_path)
    assert (tmp_path / CONCEPTS_FILE).stat().st_mode & 0o777 == 0o664


def test_render_is_the_bytes_written(tmp_path):
    write_sources(awkward(), tmp_path)
    assert (tmp_path / CONCEPTS_FILE).read_bytes() == render_concepts(awkward())
    assert (tmp_path / RELATIONS_FILE).read_bytes() == render_relations(awkward())


def test_a_bom_and_crlf_line_ends_are_read(tmp_path):
    folder = tmp_path / "excel"
    write_files(folder, "")
    text = "\ufeff" + CONCEPT_HEADER + "a,Finding,a,,,,curated\n"
    (folder / CONCEPTS_FILE).write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    assert read_sources(folder)["a"].kind is K.FINDING


# -- errors name the file and the line -----------------------------------------------------------
@pytest.mark.parametrize(
    "concepts, line, message",
    [
        (CONCEPT_HEADER + "a,Finding,a,,,,curated\nb,Finding,b,,,curated\n", 3, "expected 7 fields"),
        (CONCEPT_HEADER + "a,Finding,a,,,,curated\nb,Organ,b,,,,curated\n", 3, "concept 'b': unknown kind 'Organ'"),
        (CONCEPT_HEADER + ",Finding,a,,,,curated\n", 2, "empty concept id"),
        (CONCEPT_HEADER + "a,Finding,a,x||y,,,curated\n", 2, "concept 'a': empty item in synonyms"),
        (CONCEPT_HEADER + "a,Finding,a,,,,curated\na,Disease,a,,,,curated\n", 3,
         "duplicate concept id 'a' (first on line 2)"),
        ("id,kind,name\n", 1, "header must be"),
        # a quoted definition spanning two physical lines: the next row starts on line 4
        (CONCEPT_HEADER + 'a,Finding,a,,"two\nlines",,curated\nb,Finding,b\n', 4, "expected 7 fields"),
        (CONCEPT_HEADER + 'a,Finding,a,,"never closed,,curated\n', 2, "malformed CSV"),
    ],
)
def test_malformed_concept_rows_name_file_and_line(tmp_path, concepts, line, message):
    folder = write_files(tmp_path / "sources", concepts)
    with pytest.raises(SourceFormatError) as caught:
        read_sources(folder)
    assert caught.value.path == folder / CONCEPTS_FILE and caught.value.line == line
    assert str(caught.value).startswith(f"{folder / CONCEPTS_FILE}:{line}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "relations, line, message",
    [
        (RELATION_HEADER + "LOCATED_IN,a,b,curated,,\nSEES,a,b,curated,,\n", 3, "unknown type 'SEES'"),
        (RELATION_HEADER + "LOCATED_IN,a,b,padchest,heavy,3\n", 2, "weight 'heavy' is not a number"),
        (RELATION_HEADER + "LOCATED_IN,a,b,padchest,nan,3\n", 2, "weight 'nan' is not finite"),
        (RELATION_HEADER + "LOCATED_IN,a,b,padchest,0.5,2.5\n", 2, "count '2.5' is not an integer"),
        (RELATION_HEADER + "LOCATED_IN,a,b,,,\n", 2, "empty source"),
        (RELATION_HEADER + "IS_A,a,b,curated,,\n\nIS_A,a,b,curated,,\n", 4, "duplicate relation"),
    ],
)
def test_malformed_relation_rows_name_file_and_line(tmp_path, relations, line, message):
    folder = write_files(tmp_path / "sources", CONCEPT_HEADER + "a,Finding,a,,,,curated\n", relations)
    with pytest.raises(SourceFormatError) as caught:
        read_sources(folder)
    assert (caught.value.path, caught.value.line) == (folder / RELATIONS_FILE, line)
    assert message in str(caught.value)


def test_content_problems_are_left_to_validate(tmp_path):
    # A dangling relation end is well-formed CSV: it reads, and validate() names it.
    folder = write_files(tmp_path / "sources", CONCEPT_HEADER + "a,Finding,a,,,,curated\n",
                         RELATION_HEADER + "LOCATED_IN,a,nowhere,curated,,\n")
    loaded = read_sources(folder)
    assert any(p.rule == "dangling-reference" and "nowhere" in p.message for p in loaded.problems())


def test_a_missing_file_is_named(tmp_path):
    folder = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, folder)
    (folder / RELATIONS_FILE).unlink()
    with pytest.raises(OntologyError, match=f"{RELATIONS_FILE}: no such sources file"):
        read_sources(folder)
