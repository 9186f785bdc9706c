"""Knowledge-variant recipes: pure, deterministic ``Ontology -> Ontology`` transformations.

A researcher derives a variant of the graph (drop an edge type, shuffle edges, keep only the
data-driven knowledge, add new findings), retrains or re-scores on it, and compares. Each recipe
here is a plain function of an ontology and a few parameters; the random ones take a ``seed`` and
draw from their own ``random.Random(seed)`` over the ontology's sorted relations, so the same
input and seed give the same output on every machine and Python version.

Spec language (what ``anatomy-vlm kg variant create NAME --recipe SPEC ...`` takes)
----------------------------------------------------------------------------------
``NAME`` or ``NAME:ARGS``, where ``ARGS`` is a comma-separated list of ``key=value`` pairs, led
optionally by one bare value for the recipe's positional parameter::

    drop-edge-type:LOCATED_IN                     # = drop-edge-type:type=LOCATED_IN
    drop-edges:fraction=0.2,seed=7,type=LOCATED_IN
    shuffle-located-in:seed=7
    data-driven-only                              # or data-driven-only:prefixes=padchest+mimic
    curated-only
    add-concepts:extra/findings.owl               # everything after ':' is the path

Keys may be written with ``-`` or ``_``; booleans are ``true/false`` (also ``yes/no``, ``1/0``);
lists (``prefixes``) are joined with ``+``. Recipes apply in the order given. The canonical form
of a recipe (:meth:`Recipe.spec`) writes its positional value bare, then the other parameters in
their declared order, leaving out those equal to their default; :func:`apply_recipes` joins the
canonical forms with ``" | "`` into the description stored on the variant, e.g.
``"shuffle-located-in:seed=7 | drop-edge-type:SUGGESTS"``.

Every recipe's output is checked with :meth:`Ontology.validate` by :func:`apply_recipe`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from anatomy_vlm.exceptions import OntologyError, OntologyValidationError
from anatomy_vlm.ontology.diff import diff_ontologies
from anatomy_vlm.ontology.model import Concept, Ontology, Relation, RelationType
from anatomy_vlm.ontology.files import load_ontology
from anatomy_vlm.ontology.seed import REGION_IDS

logger = logging.getLogger(__name__)

# A relation is *data-driven* when its ``source`` starts with one of these (case-insensitive):
# edges mined from PadChest / MIMIC-CXR / Chest ImaGenome, or any source a data importer labels
# ``data:<name>``. Everything else (``seed``, curated files, ontology imports) counts as curated.
DATA_DRIVEN_PREFIXES: tuple[str, ...] = ("padchest", "mimic", "chest-imagenome", "data:")

# Double-edge swaps attempted per LOCATED_IN edge by ``shuffle-located-in`` (rejected attempts
# count: the chain stays put, as a Markov chain sampler should). 10 per edge mixes well in practice.
SWAPS_PER_EDGE = 10

# File suffixes ``add-concepts`` reads, and with what.

# ``drop-edges`` keeps a PART_OF parent for each of these (the 29 Chest ImaGenome regions).
_REGIONS = frozenset(REGION_IDS)

RECIPE_SEPARATOR = " | "  # joins canonical recipe specs into a variant's description

RecipeFn = Callable[..., Ontology]


# -- parameters ----------------------------------------------------------------------------------
class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Required()  # default of a parameter the spec must give


@dataclass(frozen=True)
class Param:
    """One parameter of a recipe: its spec key, the function's keyword, and how to read a value."""

    key: str  # as written in a spec, e.g. "keep-tree"
    arg: str  # the recipe function's keyword argument, e.g. "keep_tree"
    convert: Callable[[object], object]  # str or already-typed value -> typed value; ValueError if bad
    default: object = REQUIRED  # REQUIRED, or the value used when the spec leaves it out
    help: str = ""  # one line for the CLI's help


@dataclass(frozen=True)
class RecipeSignature:
    """How a recipe is written in the spec language."""

    params: tuple[Param, ...]
    positional: str | None = None  # key of the parameter a bare value fills, e.g. "type"
    verbatim: bool = False  # the bare value is everything after ':' (paths may hold ',' or '=')

    def param(self, key: str) -> Param | None:
        return next((p for p in self.params if p.key == key), None)

    def usage(self, name: str) -> str:
        """E.g. ``drop-edges:fraction=F,seed=N[,type=T][,keep-tree=B]``."""
        text, separator = name, ":"
        for p in self.params:
            placeholder = p.key.upper().replace("-", "_")
            part = separator + (placeholder if p.key == self.positional else f"{p.key}={placeholder}")
            text += part if p.default is REQUIRED else f"[{part}]"
            separator = ","
        return text


def _fraction(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number from 0 to 1")
    number = float(value)  # type: ignore[arg-type]
    if not 0.0 <= number <= 1.0:  # also refuses nan
        raise ValueError("must be a number from 0 to 1")
    return number


def _int(value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be an integer")
    number = int(value.strip()) if isinstance(value, str) else value
    if minimum is not None and number < minimum:
        raise ValueError(f"must be at least {minimum}")
    return number


def _relation_type(value: object) -> RelationType:
    if isinstance(value, RelationType):
        return value
    text = str(value).strip().upper().replace("-", "_")
    try:
        return RelationType(text)
    except ValueError as e:
        raise ValueError(f"not a relation type (one of {', '.join(t.value for t in RelationType)})") from e


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError("must be true or false")


def _prefixes(value: object) -> tuple[str, ...]:
    items = value.split("+") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    prefixes = tuple(str(item).strip() for item in items if str(item).strip())
    if not prefixes:
        raise ValueError("must name at least one source prefix")
    return prefixes


def _path(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must be a file path")
    return text


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, RelationType):
        return value.value
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, tuple):
        return "+".join(str(v) for v in value)
    return str(value)


# -- registry ------------------------------------------------------------------------------------
RECIPES: dict[str, RecipeFn] = {}  # name -> recipe function; its docstring is the CLI's help
SIGNATURES: dict[str, RecipeSignature] = {}  # name -> how the spec language writes it


def _recipe(name: str, *params: Param, positional: str | None = None, verbatim: bool = False):
    def register(fn: RecipeFn) -> RecipeFn:
        RECIPES[name] = fn
        SIGNATURES[name] = RecipeSignature(params, positional, verbatim)
        return fn

    return register


def _signature(name: str) -> RecipeSignature:
    signature = SIGNATURES.get(name)
    if signature is None:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))}")
    return signature


def recipe_help() -> str:
    """One block per recipe: its usage line and the first paragraph of its docstring (CLI help)."""
    blocks = []
    for name in sorted(RECIPES):
        doc = (RECIPES[name].__doc__ or "").strip().split("\n\n")[0]
        blocks.append(f"{SIGNATURES[name].usage(name)}\n    " + " ".join(doc.split()))
    return "\n".join(blocks)


# -- recipes as values ---------------------------------------------------------------------------
@dataclass
class Recipe:
    """One recipe to apply: its registered name and its parameters keyed by spec key (typed)."""

    name: str  # a key of RECIPES, e.g. "drop-edges"
    params: dict[str, object] = field(default_factory=dict)  # e.g. {"fraction": 0.2, "seed": 7}

    def resolved(self) -> dict[str, object]:
        """Every parameter, checked and typed, defaults filled in; ``ValueError`` naming a bad one."""
        return _resolve(self.name, self.params, where=f"recipe {self.name!r}")

    def spec(self) -> str:
        """The canonical spec text: ``parse_recipe(r.spec())`` gives back an equal recipe."""
        signature = _signature(self.name)
        values = self.resolved()
        parts: list[str] = []
        for p in signature.params:
            value = values[p.arg]
            if p.key == signature.positional:
                parts.insert(0, _format_value(value))
            elif p.default is REQUIRED or value != p.default:
                parts.append(f"{p.key}={_format_value(value)}")
        return self.name + (":" + ",".join(parts) if parts else "")


def _resolve(name: str, given: Mapping[str, object], *, where: str) -> dict[str, object]:
    """Keyword arguments for the recipe function from ``given`` (spec keys, '-' or '_')."""
    signature = _signature(name)
    known = ", ".join(p.key for p in signature.params) or "no parameters"
    values: dict[str, object] = {}
    for raw_key, raw_value in given.items():
        key = str(raw_key).strip().replace("_", "-")
        param = signature.param(key)
        if param is None:
            raise ValueError(f"{where}: unknown parameter {raw_key!r} for {name} (it takes {known})")
        if param.arg in values:
            raise ValueError(f"{where}: parameter {key!r} given twice")
        try:
            values[param.arg] = param.convert(raw_value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: bad value {raw_value!r} for {key}: {e}") from e
    for param in signature.params:
        if param.arg not in values:
            if param.default is REQUIRED:
                raise ValueError(f"{where}: {name} needs {param.key}=... ({param.help})")
            values[param.arg] = param.default
    return values


def parse_recipe(spec: str) -> Recipe:
    """Read one spec (``NAME[:ARGS]``, see the module docstring); ``ValueError`` naming the bad part."""
    text = spec.strip()
    if not text:
        raise ValueError("empty recipe spec")
    name, colon, rest = text.partition(":")
    name = name.strip()
    signature = _signature(name)
    where = f"recipe {spec!r}"
    if colon and not rest.strip():
        raise ValueError(f"{where}: nothing after ':'")
    given: dict[str, object] = {}
    positional_prefix = f"{signature.positional}="
    if rest.strip() and signature.verbatim and not rest.strip().startswith(positional_prefix):
        given[signature.positional or ""] = rest.strip()  # a path: ',' and '=' are part of it
    elif rest.strip():
        for index, part in enumerate(rest.split(",")):
            part = part.strip()
            if not part:
                raise ValueError(f"{where}: empty parameter (a stray ',')")
            key, equals, value = part.partition("=")
            if equals:
                key = key.strip().replace("_", "-")
                if not key or not value.strip():
                    raise ValueError(f"{where}: parameter {part!r} needs the form key=value")
                if key in given:
                    raise ValueError(f"{where}: parameter {key!r} given twice")
                given[key] = value.strip()
            elif index == 0 and signature.positional is not None:
                given[signature.positional] = part
            else:
                raise ValueError(f"{where}: parameter {part!r} needs the form key=value")
    _resolve(name, given, where=where)  # refuse bad parameters now, not when applied
    signature_keys = {p.key: p for p in signature.params}
    return Recipe(name, {key: signature_keys[key].convert(value) for key, value in given.items()})


def split_description(description: str) -> list[str]:
    """The specs of a stored variant description (the inverse of joining with ``" | "``)."""
    return [part.strip() for part in description.split(RECIPE_SEPARATOR) if part.strip()]


def apply_recipe(ontology: Ontology, recipe: Recipe) -> Ontology:
    """Apply one recipe and validate the result (problems are prefixed with the recipe's spec)."""
    kwargs = recipe.resolved()
    result = RECIPES[recipe.name](ontology, **kwargs)
    try:
        return result.validate()
    except OntologyValidationError as e:
        raise OntologyValidationError([f"after {recipe.spec()}: {p}" for p in e.problems]) from e


def apply_recipes(
    ontology: Ontology,
    specs: Sequence[str],
    *,
    on_step: Callable[[Recipe, Ontology, Ontology], None] | None = None,
) -> tuple[Ontology, str]:
    """Apply the specs in order; return the variant and its canonical description.

    Every spec is parsed before any is applied, so a typo in the last one costs nothing.
    ``on_step(recipe, before, after)`` is called after each step (the CLI prints a summary).
    No specs give the ontology unchanged and an empty description.
    """
    if isinstance(specs, str):  # a lone string would be iterated character by character
        raise TypeError("apply_recipes takes a sequence of spec strings, not one string")
    recipes = [parse_recipe(spec) for spec in specs]
    current = ontology
    for recipe in recipes:
        before, current = current, apply_recipe(current, recipe)
        if on_step is not None:
            on_step(recipe, before, current)
    return current, RECIPE_SEPARATOR.join(recipe.spec() for recipe in recipes)


# -- the recipes ---------------------------------------------------------------------------------
_TYPE = Param("type", "rel_type", _relation_type, help="a relation type, e.g. LOCATED_IN")
_SEED = Param("seed", "seed", _int, help="integer seed of the random draw")
_PREFIXES = Param(
    "prefixes", "prefixes", _prefixes, DATA_DRIVEN_PREFIXES,
    help="'+'-joined source prefixes that count as data-driven",
)


@_recipe("drop-edge-type", _TYPE, positional="type")
def drop_edge_type(ontology: Ontology, rel_type: RelationType | str) -> Ontology:
    """Remove every relation of one type, e.g. drop-edge-type:LOCATED_IN.

    Concepts are kept. Dropping PART_OF this way does leave regions without a parent: it was asked for.
    """
    rel_type = _relation_type(rel_type)
    kept = [r for r in ontology.relations if r.type is not rel_type]
    logger.info("drop-edge-type: removed %d %s relations", len(ontology.relations) - len(kept), rel_type.value)
    return ontology.with_changes(relations=kept)


@_recipe(
    "drop-edges",
    Param("fraction", "fraction", _fraction, help="share of the relations to drop, 0 to 1"),
    _SEED,
    dataclasses.replace(_TYPE, default=None, help="only relations of this type (default: all types)"),
    Param("keep-tree", "keep_tree", _bool, True, help="never leave a Chest ImaGenome region without a PART_OF parent"),
)
def drop_edges(
    ontology: Ontology,
    fraction: float,
    seed: int,
    rel_type: RelationType | str | None = None,
    keep_tree: bool = True,
) -> Ontology:
    """Drop a seeded random fraction of the relations (of one type with type=T).

    Exactly round(fraction * n) of the n candidate relations are dropped (Python's round: halves
    go to the even number). With keep-tree=true (the default) a PART_OF edge is never dropped when
    it is the last PART_OF edge leaving one of the 29 Chest ImaGenome regions, so every region
    keeps a parent; other edges are drawn instead, and if too few remain it is an error.
    keep-tree=false drops any edge.
    """
    fraction = _fraction(fraction)
    rel_type = None if rel_type is None else _relation_type(rel_type)
    candidates = [r for r in ontology.relations if rel_type is None or r.type is rel_type]
    target = round(fraction * len(candidates))
    order = list(candidates)  # relations are sorted by key, so the draw depends only on the seed
    random.Random(seed).shuffle(order)
    # PART_OF edges still leaving each region; an edge is protected while it is the only one.
    parents = Counter(
        r.start for r in ontology.relations_of_type(RelationType.PART_OF) if r.start in _REGIONS
    ) if keep_tree else Counter()
    dropped: set[tuple[str, str, str, str]] = set()
    protected = 0
    for r in order:
        if len(dropped) == target:
            break
        if r.type is RelationType.PART_OF and parents.get(r.start, 0) == 1:
            protected += 1
            continue
        if r.type is RelationType.PART_OF and r.start in parents:
            parents[r.start] -= 1
        dropped.add(r.key)
    what = f"{rel_type.value} " if rel_type else ""
    if len(dropped) < target:
        raise OntologyError(
            f"drop-edges: cannot drop {target} of {len(candidates)} {what}relations: {protected} are the last "
            f"PART_OF edge of a Chest ImaGenome region; lower the fraction or pass keep-tree=false"
        )
    logger.info("drop-edges: dropped %d of %d %srelations (seed %d)", len(dropped), len(candidates), what, seed)
    return ontology.with_changes(relations=[r for r in ontology.relations if r.key not in dropped])



@dataclass(frozen=True)
class ShuffleResult:
    """What ``shuffle-located-in`` did."""

    ontology: Ontology  # the shuffled ontology
    edges: int  # LOCATED_IN relations shuffled
    attempts: int  # double-edge swaps tried (swaps_per_edge x edges)
    accepted: int  # swaps carried out; the rest would have duplicated an edge or changed nothing
    moved: int  # LOCATED_IN relations whose target differs from the one they started with


def shuffle_located_in_result(ontology: Ontology, seed: int, swaps_per_edge: int = SWAPS_PER_EDGE) -> ShuffleResult:
    """Degree-preserving double-edge swaps of LOCATED_IN targets; see :func:`shuffle_located_in`."""
    seed = _int(seed)
    swaps_per_edge = _int(swaps_per_edge, minimum=1)
    located = ontology.relations_of_type(RelationType.LOCATED_IN)  # sorted by key: the draw depends on the seed only
    ends = [r.end for r in located]
    taken = {(r.start, r.end, r.source) for r in located}  # relation keys in use (the type is fixed)
    rng = random.Random(seed)
    attempts = swaps_per_edge * len(located) if len(located) >= 2 else 0
    accepted = 0
    for _ in range(attempts):
        i, j = rng.sample(range(len(located)), 2)
        a, b = located[i], located[j]
        x, y = ends[i], ends[j]
        # a->x, b->y becomes a->y, b->x: out-degrees and in-degrees are unchanged. Refuse a swap
        # that changes nothing or that would give one source two identical edges (same key).
        if x == y or (a.start, y, a.source) in taken or (b.start, x, b.source) in taken:
            continue
        taken -= {(a.start, x, a.source), (b.start, y, b.source)}
        taken |= {(a.start, y, a.source), (b.start, x, b.source)}
        ends[i], ends[j] = y, x
        accepted += 1
    # The edge keeps its source, weight and count: the evidence travels with the rewired edge.
    shuffled = [dataclasses.replace(r, end=end) for r, end in zip(located, ends)]
    others = [r for r in ontology.relations if r.type is not RelationType.LOCATED_IN]
    moved = sum(r.end != end for r, end in zip(located, ends))
    logger.info(
        "shuffle-located-in: %d of %d swaps accepted, %d of %d edges at a different target (seed %d)",
        accepted, attempts, moved, len(located), seed,
    )
    return ShuffleResult(ontology.with_changes(relations=others + shuffled), len(located), attempts, accepted, moved)


@_recipe(
    "shuffle-located-in",
    _SEED,
    Param("swaps-per-edge", "swaps_per_edge", lambda v: _int(v, minimum=1), SWAPS_PER_EDGE,
          help="double-edge swaps tried per LOCATED_IN edge"),
)
def shuffle_located_in(ontology: Ontology, seed: int, swaps_per_edge: int = SWAPS_PER_EDGE) -> Ontology:
    """Shuffle LOCATED_IN targets, keeping every node's degree (seeded double-edge swaps).

    A configuration-model null graph: swaps_per_edge x (number of LOCATED_IN edges) random swaps
    a->x, b->y => a->y, b->x are tried (10 per edge by default); a swap is refused when x == y or
    when it would create an edge whose (start, end, source) already exists. Every finding keeps
    its LOCATED_IN out-degree and every anatomy node its in-degree. Each edge keeps its source,
    weight and count (they travel with the edge), so each finding's evidence totals are unchanged.
    The number of edges that ended at a different target is logged (see shuffle_located_in_result).
    """
    return shuffle_located_in_result(ontology, seed, swaps_per_edge).ontology


def is_data_driven(source: str, prefixes: Sequence[str] = DATA_DRIVEN_PREFIXES) -> bool:
    """Whether a relation's source starts with one of ``prefixes`` (case-insensitive)."""
    text = source.strip().lower()
    return any(text.startswith(prefix.lower()) for prefix in prefixes)


@_recipe("data-driven-only", _PREFIXES)
def data_driven_only(ontology: Ontology, prefixes: Sequence[str] = DATA_DRIVEN_PREFIXES) -> Ontology:
    """Keep only data-driven relations; every concept is kept.

    A relation is data-driven when its source starts with one of the prefixes (case-insensitive),
    by default padchest, mimic, chest-imagenome or data: (DATA_DRIVEN_PREFIXES).
    """
    prefixes = _prefixes(prefixes)
    return ontology.with_changes(relations=[r for r in ontology.relations if is_data_driven(r.source, prefixes)])


@_recipe("curated-only", _PREFIXES)
def curated_only(ontology: Ontology, prefixes: Sequence[str] = DATA_DRIVEN_PREFIXES) -> Ontology:
    """Keep only curated relations (the complement of data-driven-only); every concept is kept."""
    prefixes = _prefixes(prefixes)
    return ontology.with_changes(relations=[r for r in ontology.relations if not is_data_driven(r.source, prefixes)])


@_recipe(
    "add-concepts",
    Param("path", "path", _path, help="an OWL or JSON ontology file"),
    positional="path",
    verbatim=True,
)
def add_concepts(ontology: Ontology, path: str | Path) -> Ontology:
    """Add the concepts and relations of an OWL or JSON file, e.g. add-concepts:new_findings.owl.

    Its relations may point to concepts of the base. A concept id (or relation) already in the
    base must be identical there, or it is an error naming each conflicting id. A concept of the
    file with only an id and a kind (no name, synonyms, definition, codes or source) is a reference
    to the base concept of that id and kind: an OWL file has to declare every class its edges use.
    """
    extra = load_ontology(path)
    references = [c for c in extra.concepts if _is_reference(c)]
    dangling = [f"{c.id} ({c.kind.value})" for c in references if c.id not in ontology]
    if dangling:
        raise OntologyError(
            f"{path}: concept(s) declared by id only, which the base ontology lacks: {', '.join(dangling)}"
        )
    conflicts = [
        f"{c.id} ({', '.join(_changed_fields(ontology[c.id], c))})"
        for c in extra.concepts
        if c.id in ontology and ontology[c.id] != c and not (_is_reference(c) and ontology[c.id].kind is c.kind)
    ]
    if conflicts:
        raise OntologyError(
            f"{path}: concept id(s) already in the base ontology with different content: {'; '.join(conflicts)}"
        )
    base_relations = {r.key: r for r in ontology.relations}
    clashes = [
        f"{r.start} -[{r.type.value}]-> {r.end} [{r.source}]"
        for r in extra.relations if r.key in base_relations and base_relations[r.key] != r
    ]
    if clashes:
        raise OntologyError(
            f"{path}: relation(s) already in the base with a different weight or count: {'; '.join(clashes)}"
        )
    new_concepts = [c for c in extra.concepts if c.id not in ontology]
    new_relations = [r for r in extra.relations if r.key not in base_relations]
    logger.info("add-concepts: %d concepts and %d relations from %s", len(new_concepts), len(new_relations), path)
    return ontology.with_changes(
        concepts=[*ontology.concepts, *new_concepts],
        relations=[*ontology.relations, *new_relations],
    )


def _is_reference(concept: Concept) -> bool:
    """A concept given by id and kind only: it stands for the base concept of that id."""
    return not (concept.name or concept.synonyms or concept.definition or concept.codes or concept.source)


def _changed_fields(before: Concept, after: Concept) -> list[str]:
    names = ("kind", "name", "synonyms", "definition", "codes", "source")
    return [name for name in names if getattr(before, name) != getattr(after, name)]


# -- comparing variants --------------------------------------------------------------------------
def located_in_pairs(ontology: Ontology) -> set[tuple[str, str]]:
    """The (start, end) pairs of LOCATED_IN, whatever source asserted them."""
    return {(r.start, r.end) for r in ontology.relations_of_type(RelationType.LOCATED_IN)}


def _summary(ontology: Ontology, version: str) -> dict[str, object]:
    return {"name": ontology.name, "version": version, "concepts": len(ontology.concepts),
            "relations": len(ontology.relations)}


def compare_variants(a: Ontology, b: Ontology) -> dict[str, object]:
    """JSON-ready comparison of two variants for ``kg variant diff``.

    Keys: ``a``/``b`` (name, version, concept and relation counts), ``diff``
    (:meth:`OntologyDiff.to_dict` of a -> b), ``relations_by_type`` (per type: counts in a and b
    and b minus a), ``located_in`` (distinct (start, end) pairs in a and b, shared, and their
    Jaccard overlap, shared / union; 1.0 when neither has any).
    """
    diff = diff_ontologies(a, b)
    count_a = Counter(r.type.value for r in a.relations)
    count_b = Counter(r.type.value for r in b.relations)
    pairs_a, pairs_b = located_in_pairs(a), located_in_pairs(b)
    union = pairs_a | pairs_b
    shared = pairs_a & pairs_b
    return {
        "a": _summary(a, diff.before_version),
        "b": _summary(b, diff.after_version),
        "diff": diff.to_dict(),
        "relations_by_type": {
            t.value: {"a": count_a[t.value], "b": count_b[t.value], "delta": count_b[t.value] - count_a[t.value]}
            for t in RelationType
        },
        "located_in": {
            "pairs_a": len(pairs_a),
            "pairs_b": len(pairs_b),
            "shared": len(shared),
            "jaccard": len(shared) / len(union) if union else 1.0,
        },
    }


__all__ = [
    "DATA_DRIVEN_PREFIXES",
    "RECIPES",
    "SIGNATURES",
    "SWAPS_PER_EDGE",
    "Param",
    "Recipe",
    "RecipeSignature",
    "ShuffleResult",
    "add_concepts",
    "apply_recipe",
    "apply_recipes",
    "compare_variants",
    "curated_only",
    "data_driven_only",
    "drop_edge_type",
    "drop_edges",
    "is_data_driven",
    "located_in_pairs",
    "parse_recipe",
    "recipe_help",
    "shuffle_located_in",
    "shuffle_located_in_result",
    "split_description",
]
