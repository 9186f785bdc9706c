"""Curation fuzz (issue 14, R5 and item 6): random curation requests never get a 5xx, and a refused
one changes nothing.

A fixed-seed mix of valid and invalid ``POST/PATCH/DELETE /concepts`` and ``POST/DELETE
/relations`` against the real service (TestClient with its lifespan) over the embedded ArcadeDB
engine, with odd strings (quotes, XML specials, emoji, right-to-left text, zero-width and
combining characters), huge fields (up to 1 MB), control characters, bad ids and codes, weights
and counts out of range, wrong types and broken JSON. After every request:

* no 5xx;
* a refused request (4xx) left the curated sources, the audit log and the graph's version as
  they were (compared byte for byte);
* an accepted one left sources that read back.

At the end the graph holds what the sources hold, and its OWL export parses. The figures are
printed (run with ``-s``) and recorded in docs/security/curation.md.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from anatomy_vlm.api.app import create_app
from anatomy_vlm.api.auth import KeyStore
from anatomy_vlm.kg import GraphStore, dialect_of_driver
from anatomy_vlm.ontology import limits
from anatomy_vlm.ontology.sources_io import read_sources
from tests.api.conftest import settings_for
from tests.conftest import wipe

pytestmark = [pytest.mark.embedded, pytest.mark.slow]

SEED = 14
ATTEMPTS = 520
# The share of concept and relation requests drawn valid. An accepted change costs a graph sync
# (about half a second on a quiet machine), a refused one milliseconds: this keeps the run near a
# minute while still committing some 100 changes among the refusals.
VALID_SHARE = 0.2

# Characters a curated text may hold, the awkward ones included: CSV and XML specials, non-Latin
# scripts, emoji with a variation selector, combining and zero-width marks, bidi overrides, NBSP.
VALID_CHARS = list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 ,;:.'\"<>&/\\()[]{}#%*+=?!-_") + [
    "é", "ß", "ü", "ñ", "漢", "字", "ا", "ل", "ר", "י", "Ж", "🫁", "❤️", "😀", "\u0301", "\u200b", "\u200d",
    "\u202e", "\u00a0", "\u3000", "|",
]
BAD_CHARS = [chr(c) for c in range(32)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)] + [
    "\u2028", "\u2029", "\ufffe", "\uffff", "\ud800", "\udfff",
]
HUGE = (limits.MAX_DEFINITION + 1, 10_000, 131_073, 1_000_000)
KINDS = ("Finding", "Disease", "Attribute", "Device")
CODE_SYSTEMS = ("UMLS", "SNOMED", "RadLex", "ICD-10", "MeSH")
BAD_IDS = ("has space", "", "1abc", "a-b", "é_accent", "x" * (limits.MAX_ID + 1), "a\x00b", "tab\tid", "code",
           "assertion", "Concept", "part_of", "../etc/passwd", "DROP TABLE")
BAD_CODES = ("SNOMED 123", ":123", "SNOMED:", "snomed:12|3", "UMLS:C0001\x00", "12:ab", "x" * 101)


@dataclass
class Tally:
    by_status: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def attempts(self) -> int:
        return sum(self.by_status.values())

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.by_status.items() if low <= status < high)

    def line(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.by_status.items()))
        return (f"curation fuzz (seed {SEED}): {self.attempts} attempts, 2xx {self.count(200, 300)}, "
                f"4xx {self.count(400, 500)}, 5xx {self.count(500, 600)} ({statuses}) in {self.seconds:.1f} s")


class Requests:
    """Draws curation requests: (method, path, raw JSON body or None, what it is, what to track on success)."""

    def __init__(self, rng: random.Random, anatomy: list[str], findings: list[str], diseases: list[str]):
        self.rng = rng
        self.anatomy, self.findings, self.diseases = anatomy, findings, diseases
        self.added: dict[str, str] = {}  # concept id -> kind, of concepts this fuzz added (and not removed)
        self.relations: list[dict] = []  # relation keys this fuzz added (and not removed)
        self.serial = 0

    # -- values ------------------------------------------------------------------------------------
    def text(self, low: int, high: int, *, alphabet: list[str] = VALID_CHARS) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(low, high)))

    def bad_text(self, base: str = "") -> str:
        base = base or self.text(1, 20)
        cut = self.rng.randint(0, len(base))
        return base[:cut] + self.rng.choice(BAD_CHARS) + base[cut:]

    def name(self) -> str:
        self.serial += 1
        return f"fuzz {self.serial} {self.text(0, 30)}".strip()

    def synonyms(self) -> list[str]:
        clean = [c for c in VALID_CHARS if c != "|"]
        return [f"fz syn {self.serial}.{i} {self.text(0, 20, alphabet=clean)}".strip()
                for i in range(self.rng.randint(0, 4))]

    def codes(self) -> list[str]:
        return [f"{self.rng.choice(CODE_SYSTEMS)}:{self.rng.choice('CRD')}{self.rng.randint(0, 10**8)}"
                for _ in range(self.rng.randint(0, 3))]

    def valid_concept(self) -> dict:
        self.serial += 1
        return {
            "id": f"fz_{self.serial}_{self.rng.choice(['a', 'B', 'x_y', 'Z9'])}",
            "kind": self.rng.choice(KINDS),
            "name": self.name(),
            "synonyms": self.synonyms(),
            "definition": self.text(0, 300),
            "codes": self.codes(),
            "source": self.rng.choice(["curated", "fuzz", self.text(1, 40)]).strip() or "fuzz",
            "why": self.rng.choice([None, self.text(1, 100)]),
        }

    def break_concept(self, body: dict) -> str:
        """Make one field of a concept body invalid; return which."""
        rng = self.rng
        how = rng.choice([
            "huge-definition", "bad-char-name", "long-name", "blank-name", "pipe-synonym", "bad-char-synonym",
            "many-synonyms", "empty-synonym", "long-synonym", "synonyms-not-list", "bad-code", "many-codes", "bad-id",
            "bad-kind", "extra-key", "name-not-text", "bad-char-source", "long-source", "bad-char-why", "long-why",
            "existing-id", "existing-name", "anatomy-without-parent", "bad-char-definition",
        ])
        if how == "huge-definition":
            body["definition"] = "d" * rng.choice(HUGE)
        elif how == "bad-char-name":
            body["name"] = self.bad_text(body.get("name", ""))
        elif how == "long-name":
            body["name"] = "n" * rng.randint(limits.MAX_NAME + 1, 5000)
        elif how == "blank-name":
            body["name"] = rng.choice(["", " ", "\u3000 "])
        elif how == "pipe-synonym":
            body["synonyms"] = [*body.get("synonyms", []), f"left|right {self.serial}"]
        elif how == "bad-char-synonym":
            body["synonyms"] = [*body.get("synonyms", []), self.bad_text()]
        elif how == "many-synonyms":
            body["synonyms"] = [f"s{i}" for i in range(rng.randint(limits.MAX_SYNONYMS + 1, 500))]
        elif how == "empty-synonym":
            body["synonyms"] = [*body.get("synonyms", []), ""]
        elif how == "long-synonym":
            body["synonyms"] = ["s" * rng.randint(limits.MAX_SYNONYM + 1, 10_000)]
        elif how == "synonyms-not-list":
            body["synonyms"] = rng.choice(["a|b", 5, {"a": 1}, [1, 2]])
        elif how == "bad-code":
            body["codes"] = [rng.choice(BAD_CODES)]
        elif how == "many-codes":
            body["codes"] = [f"UMLS:C{i:07d}" for i in range(limits.MAX_CODES + 1)]
        elif how == "bad-id":
            body["id"] = rng.choice(BAD_IDS)
        elif how == "bad-kind":
            body["kind"] = rng.choice(["Gadget", 5, None, "finding"])
        elif how == "extra-key":
            body["colour"] = "red"
        elif how == "name-not-text":
            body["name"] = rng.choice([123, [], {}, None, True])
        elif how == "bad-char-source":
            body["source"] = self.bad_text()
        elif how == "long-source":
            body["source"] = "s" * rng.randint(limits.MAX_SOURCE + 1, 3000)
        elif how == "bad-char-why":
            body["why"] = self.bad_text()
        elif how == "long-why":
            body["why"] = "w" * rng.randint(limits.MAX_WHY + 1, 20_000)
        elif how == "existing-id":
            body["id"] = rng.choice(self.findings + self.anatomy)
        elif how == "existing-name":  # duplicate-name within a kind: the validator refuses it
            body["kind"], body["name"] = "Finding", rng.choice(["cardiomegaly", "Pneumothorax", "pleural  effusion"])
        elif how == "anatomy-without-parent":
            body["kind"] = "Anatomy"
        elif how == "bad-char-definition":
            body["definition"] = self.bad_text(body.get("definition", ""))
        return how

    def some_concept(self) -> str:
        """A concept id to change or remove: mostly one this fuzz added, sometimes a curated or unknown one."""
        roll = self.rng.random()
        if self.added and roll < 0.6:
            return self.rng.choice(sorted(self.added))
        if roll < 0.85:
            return self.rng.choice(self.findings + self.diseases)
        return self.rng.choice(["no_such_concept", "a\x00b", "Cardiomegaly", "x" * 300, "é", "%", "a b"])

    # -- requests ------------------------------------------------------------------------------------
    def draw(self) -> tuple[str, str, object, str, tuple]:
        kind = self.rng.choices(
            ["post-concept", "patch-concept", "delete-concept", "post-relation", "delete-relation", "garbage"],
            weights=[30, 25, 12, 20, 8, 5],
        )[0]
        return getattr(self, kind.replace("-", "_"))()

    def post_concept(self):
        body = self.valid_concept()
        if self.rng.random() < VALID_SHARE:
            return "POST", "/concepts", body, "valid concept", ("concept", body["id"], body["kind"])
        how = self.break_concept(body)
        return "POST", "/concepts", body, f"concept: {how}", ()

    def patch_concept(self):
        target = self.some_concept()
        valid = {"definition": self.text(0, 400), "name": self.name(), "synonyms": self.synonyms()}
        body = {key: valid[key] for key in self.rng.sample(sorted(valid), self.rng.randint(1, 3))}
        how = "valid change"
        if self.rng.random() >= VALID_SHARE:
            how = self.break_concept(body)
            if set(body) - {"name", "synonyms", "definition", "why"}:
                how += " (a key PATCH does not take)"
        elif self.rng.random() < 0.1:
            body, how = {}, "nothing to change"
        return "PATCH", f"/concepts/{quote(target, safe='')}", body, f"patch {target[:20]!r}: {how}", ()

    def delete_concept(self):
        target = self.some_concept()
        cascade = self.rng.random() < (0.7 if target in self.added else 0.05)
        params = {"cascade": str(cascade).lower()}
        if self.rng.random() < 0.25:
            params["why"] = self.rng.choice([self.bad_text(), "w" * 2001, "", self.text(1, 50)])
        query = "&".join(f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items())
        return ("DELETE", f"/concepts/{quote(target, safe='')}?{query}", None, f"delete {target[:20]!r}",
                ("delete-concept", target, cascade))

    def relation_ends(self) -> tuple[str, str, str]:
        rng = self.rng
        starts = [i for i, kind in self.added.items() if kind in ("Finding", "Disease", "Device")]
        start = rng.choice(sorted(starts)) if starts and rng.random() < 0.8 else rng.choice(self.findings)
        rel_type = rng.choice(["LOCATED_IN", "LOCATED_IN", "SUGGESTS", "IS_A", "PART_OF"])
        end = {
            "LOCATED_IN": lambda: rng.choice(self.anatomy),
            "SUGGESTS": lambda: rng.choice(self.diseases),
            "IS_A": lambda: rng.choice(self.findings),
            "PART_OF": lambda: rng.choice(self.anatomy),
        }[rel_type]()
        return start, rel_type, end

    def post_relation(self):
        rng = self.rng
        start, rel_type, end = self.relation_ends()
        body = {"start": start, "type": rel_type, "end": end, "source": rng.choice(["curated", "fuzz", "padchest"]),
                "weight": rng.choice([None, round(rng.random(), 6), 0, 1]),
                "count": rng.choice([None, rng.randint(0, 10**6)])}
        how = "valid relation"
        if rng.random() >= VALID_SHARE:
            how = rng.choice(["negative-weight", "weight-above-one", "nan-weight", "inf-weight", "text-weight",
                              "negative-count", "huge-count", "fractional-count", "bad-start", "unknown-end",
                              "bad-type", "bad-char-source", "empty-source", "duplicate"])
            if how == "negative-weight":
                body["weight"] = -rng.random() - 1e-9
            elif how == "weight-above-one":
                body["weight"] = 1 + rng.random() + 1e-9
            elif how == "nan-weight":
                body["weight"] = float("nan")
            elif how == "inf-weight":
                body["weight"] = rng.choice([float("inf"), -float("inf"), 1e308 * 10])
            elif how == "text-weight":
                body["weight"] = rng.choice(["heavy", [], {}])
            elif how == "negative-count":
                body["count"] = -rng.randint(1, 10**6)
            elif how == "huge-count":
                body["count"] = rng.choice([2**53, 2**64, 10**30])
            elif how == "fractional-count":
                body["count"] = 1.5
            elif how == "bad-start":
                body["start"] = rng.choice(BAD_IDS)
            elif how == "unknown-end":
                body["end"] = "no_such_region"
            elif how == "bad-type":
                body["type"] = rng.choice(["CAUSES", "located_in", 3])
            elif how == "bad-char-source":
                body["source"] = self.bad_text()
            elif how == "empty-source":
                body["source"] = ""
            elif how == "duplicate" and self.relations:
                body = {**rng.choice(self.relations)}
        key = {k: body.get(k) for k in ("start", "type", "end", "source")}
        return "POST", "/relations", body, f"relation: {how}", ("relation", key)

    def delete_relation(self):
        rng = self.rng
        if self.relations and rng.random() < 0.7:
            body, how = {**rng.choice(self.relations)}, "fuzz relation"
        else:
            start, rel_type, end = self.relation_ends()
            body, how = {"start": start, "type": rel_type, "end": end, "source": "nowhere"}, "unknown relation"
        if rng.random() < 0.2:
            body["source"], how = self.bad_text(), "bad source"
        return "DELETE", "/relations", body, f"delete relation: {how}", ("delete-relation", dict(body))

    def garbage(self):
        rng = self.rng
        method, path = rng.choice([("POST", "/concepts"), ("POST", "/relations"), ("DELETE", "/relations"),
                                   ("PATCH", "/concepts/heart")])
        raw = rng.choice([b"{not json", b"[]", b"null", b'"text"', b"{}", b"\xff\xfe\x00", b'{"id": ' * 50])
        return method, path, raw, "garbage body", ()

    # -- bookkeeping after an accepted request -------------------------------------------------------
    def accepted(self, track: tuple) -> None:
        if not track:
            return
        if track[0] == "concept":
            self.added[track[1]] = track[2]
        elif track[0] == "delete-concept":
            _, target, _ = track
            self.added.pop(target, None)
            self.relations = [r for r in self.relations if target not in (r["start"], r["end"])]
        elif track[0] == "relation":
            self.relations.append(track[1])
        elif track[0] == "delete-relation":
            key = {k: track[1][k] for k in ("start", "type", "end", "source")}
            self.relations = [r for r in self.relations if r != key]


def _body(payload: object) -> bytes | None:
    """JSON as a client might send it: NaN/Infinity tokens and escaped lone surrogates allowed."""
    if payload is None or isinstance(payload, bytes):
        return payload
    return json.dumps(payload, allow_nan=True).encode("ascii")


def _files(sources: Path) -> tuple[bytes, ...]:
    return tuple((sources / name).read_bytes() if (sources / name).exists() else b""
                 for name in ("concepts.csv", "relations.csv", "audit.jsonl"))


@pytest.fixture(scope="module")
def fuzz_service(request, drivers, built_ontology, tmp_path_factory):
    """The service over the embedded engine, with no model loaded (curation needs none)."""
    driver, database = drivers("embedded")
    wipe(driver, database)
    store = GraphStore(driver, database=database, dialect=dialect_of_driver(driver))
    store.sync(built_ontology)
    settings = settings_for("embedded", request, tmp_path_factory.mktemp("curation-fuzz"))
    key = KeyStore(settings.keys_file).create("fuzz-curator", "curator")[0]
    # Unhandled errors are answered (500) rather than raised into the test, so they are counted.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, store, settings, {"X-API-Key": key}


@pytest.mark.timeout(900)  # about a minute on a quiet machine; a loaded one can be several times slower
def test_curation_fuzz_never_5xx_and_refusals_change_nothing(fuzz_service, tmp_path):
    client, store, settings, headers = fuzz_service
    sources = settings.sources_dir
    curated = read_sources(sources)
    requests = Requests(
        random.Random(SEED),
        anatomy=[c.id for c in curated.of_kind("Anatomy")],
        findings=[c.id for c in curated.of_kind("Finding")],
        diseases=[c.id for c in curated.of_kind("Disease")],
    )
    tally = Tally()
    started = time.perf_counter()
    files, version = _files(sources), store.version("canonical")
    for attempt in range(ATTEMPTS):
        method, path, payload, what, track = requests.draw()
        response = client.request(method, path, headers={**headers, "Content-Type": "application/json"},
                                  content=_body(payload))
        status = response.status_code
        tally.by_status[status] += 1
        label = f"#{attempt} {method} {path[:60]} ({what}) -> {status}: {response.text[:200]}"
        if status >= 500:
            tally.failures.append(label)
        elif status >= 400:
            assert _files(sources) == files, f"a refused request changed the sources or the audit log: {label}"
            assert store.version("canonical") == version, f"a refused request changed the graph: {label}"
        else:
            requests.accepted(track)
            read_sources(sources)  # what was written reads back
            files, version = _files(sources), store.version("canonical")
            assert version == response.json()["graph_version"], label
    tally.seconds = time.perf_counter() - started
    print("\n" + tally.line())

    assert not tally.failures, f"{len(tally.failures)} x 5xx:\n" + "\n".join(tally.failures[:10])
    assert tally.attempts >= 500
    assert tally.count(200, 300) >= 30 and tally.count(400, 500) >= 300  # both sides were exercised

    # The graph holds what the sources hold, and its OWL export (`kg variant export`) parses.
    from anatomy_vlm.ontology.owl import load_owl, save_owl

    final, graph = read_sources(sources), store.read_ontology("canonical")
    assert {c.id for c in final.concepts} == {c.id for c in graph.concepts}
    for concept in final.concepts:
        held = graph[concept.id]
        assert (held.kind, held.name, held.synonyms, held.definition) == (
            concept.kind, concept.name, concept.synonyms, concept.definition)
    assert {r.key for r in final.relations} <= {r.key for r in graph.relations}
    save_owl(graph, tmp_path / "variant.owl")
    assert load_owl(tmp_path / "variant.owl") == graph
