"""Read and write the curated ontology sources: ``concepts.csv`` and ``relations.csv``.

The two CSV files under ``ontology/sources/`` are the reviewable source of the curated ontology;
``ontology/build.py`` adds codes and data-driven edges to them and writes the OWL file.

Format (fixed; the curation tools code against it):

* UTF-8 (a leading BOM is accepted on reading, never written), RFC 4180 quoting as the ``csv``
  module does it (``QUOTE_MINIMAL``), ``\\n`` line ends so that git diffs stay clean.
* ``concepts.csv``: header ``id,kind,name,synonyms,definition,codes,source``; ``kind`` is a
  :class:`ConceptKind` value (``Anatomy``, ``Finding`` ...); ``synonyms`` and ``codes`` are
  ``|``-separated (sorted, as :class:`Concept` keeps them); rows sorted by ``id``.
* ``relations.csv``: header ``type,start,end,source,weight,count``; ``type`` is a
  :class:`RelationType` value; ``weight`` (a float, written with ``repr`` so it reads back
  exactly) and ``count`` (an integer) are empty when ``None``; rows sorted by
  ``(type, start, end, source)``.

:func:`read_sources` checks the format only (header, field count, kinds, types, numbers, empty
list items, duplicate keys) and names the file and line of the first bad row; whether the content
makes a valid ontology (dangling ends, cycles, kinds of relation ends) is ``Ontology.validate()``'s
business, so that a curator can load a broken state to repair it.

:func:`write_sources` never leaves sources it cannot read back: it renders both files, writes
them to temporary files beside the targets, reads those back with :func:`read_sources`' own
reader and compares the result with the ontology given, and only then moves them into place
(``os.replace``); a file whose bytes would not change is left untouched. :func:`stage_sources`
is the same in two steps, for a caller (the Curator) that checks more before installing.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator
from pathlib import Path

from anatomy_vlm.atomic import write_temp_beside
from anatomy_vlm.exceptions import FileFormatError, OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType

CONCEPTS_FILE = "concepts.csv"
RELATIONS_FILE = "relations.csv"
DEFAULT_SOURCES_DIR = Path(__file__).parent / "sources"

CONCEPT_COLUMNS = ("id", "kind", "name", "synonyms", "definition", "codes", "source")
RELATION_COLUMNS = ("type", "start", "end", "source", "weight", "count")
LIST_SEPARATOR = "|"
SOURCES_NAME = "anatomy-vlm-sources"  # the Ontology.name of what read_sources returns


class SourceFormatError(FileFormatError):
    """A row of a sources CSV breaks the format; ``path`` and ``line`` say where."""

    def __init__(self, path: Path, line: int, problem: str):
        super().__init__(Path(path), line, problem)


class UnwritableSourcesError(OntologyError):
    """An ontology cannot be written as sources: a value the format cannot hold, or files that
    would not read back as the ontology written. The message names the concept or the row."""


# -- reading -------------------------------------------------------------------------------------
def read_sources(folder: str | Path = DEFAULT_SOURCES_DIR) -> Ontology:
    """The curated ontology held by ``folder``'s ``concepts.csv`` and ``relations.csv``.

    Raises :class:`SourceFormatError` (an ``OntologyError``) naming the file and line of a
    malformed row, and ``OntologyError`` when a file is missing or unreadable.
    """
    folder = Path(folder)
    return read_source_files(folder / CONCEPTS_FILE, folder / RELATIONS_FILE)


def read_source_files(concepts_path: Path, relations_path: Path) -> Ontology:
    """:func:`read_sources` of two files named as given (e.g. staged copies of a folder's files)."""
    concepts = [_concept_from_row(*row) for row in _rows(concepts_path, CONCEPT_COLUMNS)]
    relations = [_relation_from_row(*row) for row in _rows(relations_path, RELATION_COLUMNS)]
    _refuse_duplicates(concepts_path, [(line, c.id) for line, c in concepts], "concept id")
    _refuse_duplicates(relations_path, [(line, r.key) for line, r in relations], "relation")
    return Ontology(
        concepts=tuple(c for _, c in concepts), relations=tuple(r for _, r in relations), name=SOURCES_NAME
    )


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """Yield ``(path, line, row)`` per data row; ``line`` is where the row starts (1-based)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise OntologyError(f"{path}: no such sources file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise OntologyError(f"{path}: cannot read the sources file: {e}") from e
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise SourceFormatError(path, 1, f"malformed CSV: {e}") from e
    if header is None or tuple(header) != columns:
        raise SourceFormatError(path, 1, f"header must be {','.join(columns)!r}, found {','.join(header or [])!r}")
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise SourceFormatError(path, start, f"malformed CSV: {e}") from e
        if row:  # csv yields [] for a blank line; a blank line is not a row
            if len(row) != len(columns):
                problem = f"expected {len(columns)} fields ({','.join(columns)}), found {len(row)}"
                raise SourceFormatError(path, start, problem)
            yield path, start, dict(zip(columns, row))
        start = reader.line_num + 1


def _concept_from_row(path: Path, line: int, row: dict[str, str]) -> tuple[int, Concept]:
    if not row["id"]:
        raise SourceFormatError(path, line, "empty concept id")
    try:
        kind = ConceptKind(row["kind"])
    except ValueError as e:
        kinds = ", ".join(k.value for k in ConceptKind)
        problem = f"concept {row['id']!r}: unknown kind {row['kind']!r} (one of {kinds})"
        raise SourceFormatError(path, line, problem) from e
    concept = Concept(
        id=row["id"],
        kind=kind,
        name=row["name"],
        synonyms=_split(path, line, row, "synonyms"),
        definition=row["definition"],
        codes=_split(path, line, row, "codes"),
        source=row["source"],
    )
    return line, concept


def _split(path: Path, line: int, row: dict[str, str], column: str) -> tuple[str, ...]:
    if not row[column]:
        return ()
    items = row[column].split(LIST_SEPARATOR)
    if any(not item for item in items):
        raise SourceFormatError(path, line, f"concept {row['id']!r}: empty item in {column} {row[column]!r}")
    return tuple(items)


def _relation_from_row(path: Path, line: int, row: dict[str, str]) -> tuple[int, Relation]:
    label = f"relation {row['start']!r} -[{row['type']}]-> {row['end']!r}"
    try:
        rel_type = RelationType(row["type"])
    except ValueError as e:
        types = ", ".join(t.value for t in RelationType)
        raise SourceFormatError(path, line, f"{label}: unknown type {row['type']!r} (one of {types})") from e
    for column in ("start", "end", "source"):
        if not row[column]:
            raise SourceFormatError(path, line, f"{label}: empty {column}")
    weight = count = None
    if row["weight"]:
        try:
            weight = float(row["weight"])
        except ValueError as e:
            raise SourceFormatError(path, line, f"{label}: weight {row['weight']!r} is not a number") from e
        if not math.isfinite(weight):
            raise SourceFormatError(path, line, f"{label}: weight {row['weight']!r} is not finite")
    if row["count"]:
        try:
            count = int(row["count"])
        except ValueError as e:
            raise SourceFormatError(path, line, f"{label}: count {row['count']!r} is not an integer") from e
    return line, Relation(rel_type, row["start"], row["end"], row["source"], weight, count)


def _refuse_duplicates(path: Path, keyed: list[tuple[int, object]], what: str) -> None:
    first_line: dict[object, int] = {}
    for line, key in keyed:
        if key in first_line:
            raise SourceFormatError(path, line, f"duplicate {what} {key!r} (first on line {first_line[key]})")
        first_line[key] = line


# -- writing -------------------------------------------------------------------------------------
def write_sources(ontology: Ontology, folder: str | Path = DEFAULT_SOURCES_DIR) -> list[Path]:
    """Write ``ontology`` as ``folder``'s two CSV files; return the paths whose bytes changed.

    Staged and read back first (:func:`stage_sources`): a value the format cannot hold, or one
    that would read back differently, raises ``OntologyError`` naming the concept and leaves the
    folder as it was. A file whose bytes would not change is not touched.
    """
    with stage_sources(ontology, folder) as staged:
        return staged.install()


class StagedSources:
    """New sources written beside the old ones and read back, not yet in place.

    ``ontology`` is what the staged files read back as (equal to the ontology staged). Use it as
    a context manager: :meth:`install` moves the files into place; leaving the block without
    installing removes them, so the folder keeps its old sources.
    """

    def __init__(self, folder: Path, staged: dict[Path, Path], ontology: Ontology):
        self.folder = folder
        self.staged = staged  # target path -> its staged temporary file (only files that change)
        self.ontology = ontology

    def install(self) -> list[Path]:
        """Move the staged files into place (each one ``os.replace``); return the targets replaced."""
        installed = []
        try:
            for path, temp in list(self.staged.items()):
                os.replace(temp, path)
                del self.staged[path]
                installed.append(path)
        except OSError as e:
            raise OntologyError(f"{self.folder}: cannot write the sources: {e}") from e
        return installed

    def discard(self) -> None:
        for temp in self.staged.values():
            temp.unlink(missing_ok=True)
        self.staged.clear()

    def __enter__(self) -> "StagedSources":
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def stage_sources(ontology: Ontology, folder: str | Path = DEFAULT_SOURCES_DIR) -> StagedSources:
    """Render ``ontology``, write the files that change to temporary files in ``folder`` and read
    them back with the real reader; ``OntologyError`` (nothing left behind) when that fails or
    the ontology read back differs from ``ontology``."""
    folder = Path(folder)
    rendered = {
        folder / CONCEPTS_FILE: render_concepts(ontology),
        folder / RELATIONS_FILE: render_relations(ontology),
    }
    changed = [path for path, data in rendered.items() if not _same_bytes(path, data)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OntologyError(f"{folder}: cannot create the sources folder: {e}") from e
    staged = StagedSources(folder, {}, ontology)
    try:
        for path in changed:
            staged.staged[path] = write_temp_beside(path, rendered[path])
        files = {path: staged.staged.get(path, path) for path in rendered}
        try:
            read_back = read_source_files(files[folder / CONCEPTS_FILE], files[folder / RELATIONS_FILE])
        except OntologyError as e:
            raise UnwritableSourcesError(f"{folder}: the new sources would not read back: {e}") from e
        if read_back != ontology:
            raise UnwritableSourcesError(
                f"{folder}: the new sources would read back differently: {_difference(ontology, read_back)}"
            )
        staged.ontology = read_back
    except OSError as e:
        staged.discard()
        raise OntologyError(f"{folder}: cannot write the sources: {e}") from e
    except BaseException:
        staged.discard()
        raise
    return staged


def _difference(expected: Ontology, found: Ontology) -> str:
    """The first concept or relation that differs, for an error message."""
    found_concepts = {c.id: c for c in found.concepts}
    for concept in expected.concepts:
        if found_concepts.get(concept.id) != concept:
            return f"concept {concept.id!r} would read back as {found_concepts.get(concept.id)!r}"[:500]
    missing = set(found.relations) ^ set(expected.relations)
    if missing:
        return f"relation {sorted(missing, key=lambda r: r.key)[0]!r} differs"[:500]
    extra = sorted(set(found_concepts) - {c.id for c in expected.concepts})
    return f"concept(s) {extra[:5]} appear" if extra else "the content differs"


def render_concepts(ontology: Ontology) -> bytes:
    """The bytes of ``concepts.csv`` for ``ontology`` (rows sorted by id)."""
    rows = []
    for c in sorted(ontology.concepts, key=lambda c: c.id):
        for column, items in (("synonyms", c.synonyms), ("codes", c.codes)):
            bad = [item for item in items if not item or LIST_SEPARATOR in item]
            if bad:
                raise UnwritableSourcesError(
                    f"concept {c.id!r}: {column} {bad!r} cannot be written (empty, or holds {LIST_SEPARATOR!r})"
                )
        synonyms, codes = LIST_SEPARATOR.join(c.synonyms), LIST_SEPARATOR.join(c.codes)
        rows.append([c.id, c.kind.value, c.name, synonyms, c.definition, codes, c.source])
    return _csv_bytes(CONCEPT_COLUMNS, rows)


def render_relations(ontology: Ontology) -> bytes:
    """The bytes of ``relations.csv`` for ``ontology`` (rows sorted by type, start, end, source)."""
    rows = []
    for r in sorted(ontology.relations, key=lambda r: r.key):
        if r.weight is not None and not math.isfinite(r.weight):
            label = f"relation {r.start!r} -[{r.type.value}]-> {r.end!r}"
            raise UnwritableSourcesError(f"{label}: weight {r.weight!r} is not finite")
        weight = "" if r.weight is None else repr(float(r.weight))
        count = "" if r.count is None else str(int(r.count))
        rows.append([r.type.value, r.start, r.end, r.source, weight, count])
    return _csv_bytes(RELATION_COLUMNS, rows)


def _csv_bytes(columns: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


