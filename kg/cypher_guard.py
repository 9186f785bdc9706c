"""The read-only Cypher guard: parse the query, then allow only what a reader needs.

Every user query on the read-only path (``GraphStore.run_read_query``: ``POST /cypher``, the
viewer's Cypher tab, ``anatomy-vlm kg query``) passes :func:`check_read_only` before it reaches
a server. The check has four steps, and a query must pass all of them:

1. **Limits**, before any parsing: at most ``MAX_QUERY_CHARS`` characters, ``MAX_TOKENS``
   tokens (the parse costs ~0.1 ms a token) and ``MAX_NESTING`` levels of ``( [ {``, counted by
   one linear scan, so a 6,000-parentheses bomb is refused in milliseconds and never reaches a
   recursive parser (Neo4j's overflows on it).
2. **Lexical agreement with both servers.** A guard is only as good as its agreement with the
   server about where comments, strings and names end; the regex guard this replaces lost that
   (``//x\\r CALL { ... }``: Neo4j and ArcadeDB end a ``//`` comment at a lone ``\\r``). Probing
   Neo4j 5.26 and ArcadeDB 26.10 showed three such traps, each refused here: a carriage return
   not followed by a line feed (ends a comment on both servers); ``\\uXXXX`` anywhere (Neo4j
   decodes Java unicode escapes *before* lexing, so ``//c\\u000a`` ends a comment and
   ``'a\\u0027`` ends a string); control, format and line/paragraph-separator characters. Outside
   string literals, comments and backticked names only ASCII is accepted (Python's
   ``str.upper`` turns ``ſ`` into ``S``; the servers do not). The scan's view of the text is
   then compared token by token with the parser's, so the two can never disagree silently.
3. **Parse and allow-list.** The query is parsed into a syntax tree and every node of it must be
   on an allow-list: the clauses ``MATCH``, ``OPTIONAL MATCH``, ``WHERE``, ``WITH``, ``UNWIND``,
   ``RETURN``, ``ORDER BY``, ``SKIP``, ``LIMIT``, ``UNION [ALL]``, ``CALL { ... }`` subqueries that
   return rows (never ``IN TRANSACTIONS``), ``CALL`` of a procedure in ``READ_PROCEDURES``, and
   expressions whose functions are in ``READ_FUNCTIONS``. Everything else (``CREATE``, ``SET``,
   ``LOAD CSV``, ``SHOW``, ``TERMINATE``, ``USE``, ``EXPLAIN``, ``apoc.*``, ``sql.*``, ``dbms.*``,
   ...) is refused with a message naming it; so is text that does not parse. Each query (and
   each ``CALL { }`` body) must end in ``RETURN`` (a lone read procedure call excepted): a query
   that "ends" early is the signature of text the guard did not see.
4. **A keyword backstop** over the code the scan found: a bare write/admin keyword (``CREATE``,
   ``SET``, ``DELETE``, ``SHOW``, ``TRANSACTIONS`` ...) anywhere outside a string, comment or
   backticks is refused even where the parser read it as a name, so a parser bug alone cannot
   let a write through. A property that is really called ``set`` is written ``n.`set```.

``range()`` with constant bounds is limited to ``MAX_RANGE_ELEMENTS`` elements. A range whose
bounds are parameters or computed from the data cannot be bounded soundly here; rows and bytes
for those are capped by the server-side path (``run_read_query``'s row limit and timeout).

Why this parser. ``cypherast`` (PyPI, MIT, pure Python with no dependencies, a typed AST for
openCypher 9 plus Neo4j 5/25: ``CALL { }`` with ``IN TRANSACTIONS``, ``COUNT { }``, ``EXISTS { }``,
quantified paths, ``LOAD CSV`` as its own node, procedure calls as ``CallProcedure``) parses the
project's queries in about a millisecond and has its own recursion-depth guard. Evaluated and
rejected: ``antlr4-cypher`` 0.1.2 (BSD; a one-off 2025 ANTLR build of the grammars-v4 Cypher
grammar, no releases since): it fails on the project's ``READ_RELATIONS`` (``AS end``) and
``NEIGHBOURHOOD``, lexes ``1-2`` as ``1`` ``-2``, has no ``CALL { }``, takes 5-250 ms a query in
the Python ANTLR runtime, and the grammar's current version silently hides unknown characters
(``ERRCHAR -> channel(HIDDEN)``), the very kind of gap behind this issue; the openCypher grammar (Apache-2.0, only on PyPI inside
``cypherglot``, which drags in ``sqlglot``) has no ``CALL { }`` and rejects ``AS end``;
``cypher-guard`` (Neo4j field team, Rust) offers only ``is_read``/``is_write`` booleans, no tree
to allow-list or name a clause with; ``cypher_validator`` pulls in spaCy, torch and OpenAI;
``pycypher``/``libcypher-parser-python`` (libcypher-parser, Cypher 3.x) were last released in
2017/2019. ``cypherast`` is young (alpha, 0.1.x), which is why steps 2 and 4 do not trust it
alone and why the server side enforces read-only access too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cypherast import ast
from cypherast.errors import CypherastError
from cypherast.lexer import TokenKind
from cypherast.parser import Parser

from anatomy_vlm.exceptions import ReadOnlyQueryError

MAX_QUERY_CHARS = 20_000  # the viewer's longest useful query is ~1 KB; Neo4j's parser dies near 12 KB of '('
MAX_NESTING = 32  # brackets ( [ { open at once; the project's deepest query uses 4
MAX_TOKENS = 4_000  # words, literals and symbols; parsing costs ~0.1 ms each (NEIGHBOURHOOD has ~200)
MAX_RANGE_ELEMENTS = 100_000  # range() with constant bounds; larger lists are refused

# Procedures a reader may CALL (compared lower-case; Neo4j procedure names are case-insensitive).
READ_PROCEDURES = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
    "db.schema.nodetypeproperties", "db.schema.reltypeproperties",
})

# Functions a reader may call (lower-case). Scalar, aggregate, list, string, math and temporal
# functions of openCypher and Neo4j 5; nothing that reaches outside the graph (apoc.*, sql.*,
# dbms.*, db.* functions, file or network access) and no spatial functions.
READ_FUNCTIONS = frozenset({
    # aggregates
    "count", "collect", "sum", "avg", "min", "max", "percentilecont", "percentiledisc", "stdev", "stdevp",
    # scalar and graph
    "size", "length", "labels", "type", "keys", "properties", "id", "elementid", "coalesce", "exists",
    "startnode", "endnode", "head", "last", "timestamp", "nullif", "valuetype", "isempty", "randomuuid",
    # lists
    "range", "tail", "reverse", "nodes", "relationships",
    # conversion
    "tostring", "tostringornull", "tointeger", "tointegerornull", "tofloat", "tofloatornull",
    "toboolean", "tobooleanornull", "tobooleanlist", "tofloatlist", "tointegerlist", "tostringlist",
    # strings
    "tolower", "toupper", "lower", "upper", "split", "substring", "trim", "ltrim", "rtrim", "btrim",
    "replace", "left", "right", "normalize", "char_length", "character_length",
    # maths
    "abs", "ceil", "floor", "round", "sign", "rand", "isnan", "sqrt", "exp", "log", "log10", "e", "pi",
    "sin", "cos", "tan", "cot", "asin", "acos", "atan", "atan2", "degrees", "radians", "haversin",
    # temporal
    "date", "datetime", "localdatetime", "localtime", "time", "duration",
    "date.truncate", "date.realtime", "date.statement", "date.transaction",
    "datetime.truncate", "datetime.fromepoch", "datetime.fromepochmillis",
    "datetime.realtime", "datetime.statement", "datetime.transaction",
    "localdatetime.truncate", "localdatetime.realtime", "localdatetime.statement", "localdatetime.transaction",
    "localtime.truncate", "localtime.realtime", "localtime.statement", "localtime.transaction",
    "time.truncate", "time.realtime", "time.statement", "time.transaction",
    "duration.between", "duration.inmonths", "duration.indays", "duration.inseconds",
})

# Bare words that start a write or administrative clause. Step 4 refuses them anywhere in code.
WRITE_KEYWORDS = frozenset({
    "CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "FOREACH", "LOAD", "INSERT",
    "ALTER", "GRANT", "DENY", "REVOKE", "RENAME", "ENABLE", "DEALLOCATE", "REALLOCATE",
    "TERMINATE", "SHOW", "USE", "EXPLAIN", "PROFILE", "TRANSACTIONS", "FINISH",
})

ALLOWED_CLAUSES = "MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION, CALL { }"

# Syntax-tree nodes that only read. CallSubquery, CallProcedure, FunctionCall, ListLambda and
# Cypher are allowed too, after the checks in ``_check_node``.
_READ_NODES: frozenset[type[ast.AstNode]] = frozenset({
    ast.Null, ast.Boolean, ast.Integer, ast.Float, ast.String, ast.Parameter, ast.Identifier, ast.Star,
    ast.PropertySelector, ast.Property, ast.LabelPredicate, ast.Map, ast.List, ast.ListSubscript,
    ast.ListSlice, ast.Range, ast.Alias,
    ast.Add, ast.Sub, ast.Mul, ast.Div, ast.Mod, ast.Pow, ast.EQ, ast.NEQ, ast.LT, ast.LTE, ast.GT,
    ast.GTE, ast.And, ast.Or, ast.Xor, ast.In, ast.StartsWith, ast.EndsWith, ast.Contains, ast.RegexMatch,
    ast.Not, ast.Neg, ast.IsNull, ast.Case, ast.Coalesce, ast.ListComprehension, ast.Quantifier,
    ast.PatternComprehension, ast.MapProjection, ast.PatternPredicate, ast.CountSubquery,
    ast.LabelExpression, ast.NodePattern, ast.RelationshipPattern, ast.PathPattern, ast.Pattern,
    ast.ShortestPath, ast.QuantifiedPath,
    ast.Match, ast.Where, ast.With, ast.Return, ast.Unwind, ast.Order, ast.Ordered, ast.Skip, ast.Limit,
    ast.Yield, ast.Union, ast.Query,
})

# How a refused node is named in the error message.
_CLAUSE_NAMES: dict[type[ast.AstNode], str] = {
    ast.Create: "CREATE", ast.Merge: "MERGE", ast.OnCreate: "MERGE", ast.OnMatch: "MERGE",
    ast.Set: "SET", ast.SetItem: "SET", ast.Delete: "DELETE", ast.Remove: "REMOVE",
    ast.RemoveLabels: "REMOVE", ast.Foreach: "FOREACH", ast.LoadCsv: "LOAD CSV", ast.Use: "USE",
    ast.Insert: "INSERT", ast.For: "FOR", ast.Let: "LET", ast.Filter: "FILTER", ast.FilterItem: "FILTER",
    ast.Next: "NEXT", ast.WhenQuery: "WHEN", ast.WhenBranch: "WHEN", ast.Search: "SEARCH",
    ast.GroupBy: "GROUP BY", ast.SessionCommand: "a session command",
    ast.TransactionCommand: "a transaction command", ast.CreateGraphType: "CREATE GRAPH TYPE",
}

# Characters no query may contain anywhere (strings included; pass such text as a $parameter).
# Servers disagree on which of them end a // comment, so none may decide where one ends.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class CheckedQuery:
    """What the guard read in a query it accepted."""

    text: str  # the query, unchanged
    clauses: tuple[str, ...]  # the clause node names, in tree order (Match, With, Return, ...)
    procedures: tuple[str, ...]  # read procedures it CALLs, as written
    functions: tuple[str, ...]  # functions it calls, as written


@dataclass(frozen=True)
class _Scan:
    """The guard's own lexical view: where code is, and the bare words in it."""

    literal_starts: dict[int, str]  # offset -> "string" | "name" for each string literal / `name`
    inside: bytearray  # 1 where a character belongs to a literal, a name or a comment (not its start)
    words: list[tuple[int, str]]  # (offset, word) of every bare word in code
    tokens: int  # words, literals and symbols in code: what the parser's work grows with


def check_read_only(cypher: str) -> CheckedQuery:
    """Accept ``cypher`` if it only reads; raise ``ReadOnlyQueryError`` naming what is refused."""
    if not isinstance(cypher, str):
        raise ReadOnlyQueryError(f"a query must be text, got {type(cypher).__name__}")
    if not cypher.strip():
        raise ReadOnlyQueryError("empty query")
    if len(cypher) > MAX_QUERY_CHARS:
        raise ReadOnlyQueryError(f"query is {len(cypher):,} characters; read-only queries may have at most {MAX_QUERY_CHARS:,}")
    scan = _scan(cypher)
    if scan.tokens > MAX_TOKENS:
        raise ReadOnlyQueryError(f"query has about {scan.tokens:,} tokens; read-only queries may have at most {MAX_TOKENS:,}")
    try:
        parser = Parser(cypher, dialect="neo4j25")
        _agree(cypher, scan, parser)
        tree = parser.parse()
    except CypherastError as error:
        _backstop(scan)  # a refused keyword names the problem better than the parser's complaint
        raise ReadOnlyQueryError(_parse_failure(cypher, error)) from None
    except RecursionError:
        raise ReadOnlyQueryError(f"query is nested too deeply to check (at most {MAX_NESTING} levels)") from None
    checked = _check_tree(cypher, tree)
    _backstop(scan)
    return checked


# -- step 1 and 2: limits and the lexical scan -----------------------------------------------------
def _scan(text: str) -> _Scan:
    """Two linear passes: forbidden characters, then literals, comments, words and bracket depth."""
    n = len(text)
    inside = bytearray(n)
    literal_starts: dict[int, str] = {}
    words: list[tuple[int, str]] = []
    stack: list[str] = []
    symbols = 0
    lower = text.lower()
    if "\\u" in lower:
        at = lower.index("\\u")
        raise ReadOnlyQueryError(
            f"unicode escape {text[at:at + 6]!r} at {_where(text, at)} is refused: Neo4j decodes \\u escapes "
            "before it reads the query, also inside comments and strings; write the character itself or pass a $parameter"
        )
    for i, ch in enumerate(text):
        if ch == "\r" and text[i + 1:i + 2] != "\n":
            raise ReadOnlyQueryError(
                f"a carriage return not followed by a line feed at {_where(text, i)}: it ends a // comment on "
                "the servers; use \\n or \\r\\n line ends"
            )
        if ch not in _ALLOWED_CONTROLS and (ord(ch) > 0x7E or ord(ch) < 0x20):
            if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES or ch in "\u0085\u2028\u2029":
                raise ReadOnlyQueryError(
                    f"character U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')}) at {_where(text, i)} is not "
                    "allowed in a read-only query; pass such text as a $parameter"
                )
    i = 0
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = _string_end(text, i)
            literal_starts[i] = "string"
            inside[i + 1:end] = b"\x01" * (end - i - 1)
            i = end
        elif ch == "`":
            end = text.find("`", i + 1)
            while end != -1 and text[end + 1:end + 2] == "`":  # `` is a backtick inside the name
                end = text.find("`", end + 2)
            if end == -1:
                raise ReadOnlyQueryError(f"unterminated `name` starting at {_where(text, i)}")
            if "\\" in text[i:end]:
                raise ReadOnlyQueryError(f"a backslash inside the `name` at {_where(text, i)} is refused (some Cypher lexers read it as an escape)")
            literal_starts[i] = "name"
            inside[i + 1:end + 1] = b"\x01" * (end - i)
            i = end + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            inside[i:end] = b"\x01" * (end - i)
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                raise ReadOnlyQueryError(f"unterminated /* comment starting at {_where(text, i)}")
            inside[i:end + 2] = b"\x01" * (end + 2 - i)
            i = end + 2
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            start = i
            while i < n and text[i].isascii() and (text[i].isalnum() or text[i] == "_"):
                i += 1
            if start == 0 or text[start - 1] != "$":  # a $parameter's name is not a keyword
                words.append((start, text[start:i]))
        elif not ch.isascii():
            raise ReadOnlyQueryError(
                f"character {ch!r} at {_where(text, i)} is outside a string or `name`; "
                "write non-ASCII names in backticks"
            )
        else:
            if ch in _BRACKETS:
                stack.append(_BRACKETS[ch])
                if len(stack) > MAX_NESTING:
                    raise ReadOnlyQueryError(
                        f"query nests brackets more than {MAX_NESTING} deep (at {_where(text, i)})"
                    )
            elif ch in ")]}" and stack and stack[-1] == ch:
                stack.pop()
            elif ch == ";":
                raise ReadOnlyQueryError(f"';' at {_where(text, i)}: send one statement, without a semicolon")
            if not ch.isspace():
                symbols += 1
            i += 1
    return _Scan(literal_starts=literal_starts, inside=inside, words=words,
                 tokens=len(words) + len(literal_starts) + symbols)


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (a backslash escapes one character)."""
    quote, i, n = text[start], start + 1, len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text[i] == quote:
            return i + 1
        else:
            i += 1
    raise ReadOnlyQueryError(f"unterminated string starting at {_where(text, start)}")


def _agree(text: str, scan: _Scan, parser: Parser) -> None:
    """The parser's tokens start where the scan sees code, literals where it sees them, and at
    every bare word of the scan's code: the two readings of the text are the same."""
    seen = 0
    starts = set()
    for token in parser.tokens:
        if token.kind is TokenKind.EOF:
            break
        at = token.position.offset
        starts.add(at)
        kind = scan.literal_starts.get(at)
        if kind is not None:
            expected = TokenKind.STRING if kind == "string" else TokenKind.IDENT
            if token.kind is not expected:
                raise ReadOnlyQueryError(f"the guard and the parser read the text at {_where(text, at)} differently")
            seen += 1
        elif at >= len(scan.inside) or scan.inside[at]:
            raise ReadOnlyQueryError(f"the guard and the parser read the text at {_where(text, at)} differently")
    if seen != len(scan.literal_starts):
        raise ReadOnlyQueryError("the guard and the parser found different string literals or `names`")
    for at, _ in scan.words:  # and no word of the scan's code may vanish inside a parser token
        if at not in starts and not text[at - 1].isdigit():  # 1e5, 0x1F: the number's token starts earlier
            raise ReadOnlyQueryError(f"the guard and the parser read the text at {_where(text, at)} differently")


def _backstop(scan: _Scan) -> None:
    for _, word in scan.words:
        if word.upper() in WRITE_KEYWORDS:
            clause = "IN TRANSACTIONS" if word.upper() == "TRANSACTIONS" else word.upper()
            raise ReadOnlyQueryError(
                f"read-only queries may not use {clause} (allowed: {ALLOWED_CLAUSES}; "
                "a property or label with that name is written in backticks)"
            )


def _parse_failure(text: str, error: CypherastError) -> str:
    offset = getattr(getattr(error, "position", None), "offset", None)
    where = near = ""
    if isinstance(offset, int) and 0 <= offset <= len(text):
        where = f" at {_where(text, offset)}"
        near = f" near {text[offset:offset + 24].splitlines()[0]!r}" if offset < len(text) else " at its end"
    detail = getattr(error, "message", None) or str(error).splitlines()[0]
    return (f"not valid Cypher in the supported read-only subset (the query failed to parse{where}{near}: {detail}); "
            f"allowed: {ALLOWED_CLAUSES}")


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


# -- step 3: the allow-list over the tree ----------------------------------------------------------
def _check_tree(text: str, tree: ast.AstNode) -> CheckedQuery:
    if not isinstance(tree, ast.Cypher):
        raise ReadOnlyQueryError(f"not a query: {type(tree).__name__}")
    if tree.args.get("version") is not None:
        raise ReadOnlyQueryError("read-only queries may not use a CYPHER version or options prefix")
    clauses: list[str] = []
    subqueries: list[ast.CallSubquery] = []
    procedures: list[str] = []
    functions: list[str] = []
    stack: list[object] = [tree.args["this"]]
    while stack:  # iterative: a 5,000-term a+a+...+a is a tree that deep
        value = stack.pop()
        if isinstance(value, ast.AstNode):
            _check_node(value, procedures, functions)
            if isinstance(value, (ast.Match, ast.With, ast.Unwind, ast.Return, ast.CallSubquery, ast.CallProcedure)):
                clauses.append(type(value).__name__)
            if isinstance(value, ast.CallSubquery):
                subqueries.append(value)
            stack.extend(reversed(list(value.args.values())))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed(value))
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
    # Only once every node is known to read: a refused clause is the better message.
    _ends_in_return(tree.args["this"], top=True)
    for subquery in subqueries:
        _ends_in_return(subquery.args["query"], top=False)
    return CheckedQuery(text=text, clauses=tuple(clauses), procedures=tuple(procedures), functions=tuple(functions))


def _check_node(node: ast.AstNode, procedures: list[str], functions: list[str]) -> None:
    kind = type(node)
    if kind in _READ_NODES:
        return
    if kind is ast.FunctionCall:
        name = str(node.args.get("name") or "")
        if name.lower() not in READ_FUNCTIONS:
            raise ReadOnlyQueryError(
                f"function {name}() is not on the read-only allow-list (kg.cypher_guard.READ_FUNCTIONS)"
            )
        if name.lower() == "range":
            _check_range(node)
        functions.append(name)
        return
    if kind is ast.ListLambda:  # reduce(); the legacy filter()/extract() are gone from Neo4j 5
        name = str(node.args.get("name") or "")
        if name.lower() != "reduce":
            raise ReadOnlyQueryError(f"function {name}() is not on the read-only allow-list")
        return
    if kind is ast.CallProcedure:
        name = str(node.args.get("name") or "")
        if name.lower() not in READ_PROCEDURES:
            raise ReadOnlyQueryError(
                f"read-only queries may CALL only {', '.join(sorted(READ_PROCEDURES))}; got {name}"
            )
        procedures.append(name)
        return
    if kind is ast.CallSubquery:
        if node.args.get("in_transactions") or node.args.get("transaction_rows") is not None:
            raise ReadOnlyQueryError(
                "read-only queries may not use CALL { ... } IN TRANSACTIONS (each batch commits on its own)"
            )
        return
    if kind is ast.Delete and node.args.get("detach"):
        raise ReadOnlyQueryError("read-only queries may not use DETACH DELETE")
    if kind is ast.AdminStatement:
        words = str(node.args.get("text") or "").split()
        raise ReadOnlyQueryError(f"read-only queries may not use {' '.join(words[:2]).upper() or 'an administrative command'}")
    name = _CLAUSE_NAMES.get(kind, kind.__name__)
    raise ReadOnlyQueryError(f"read-only queries may not use {name} (allowed: {ALLOWED_CLAUSES})")


def _ends_in_return(query: object, *, top: bool) -> None:
    """Each part of a (union) query ends in RETURN; at the top a lone read CALL may stand alone."""
    if isinstance(query, ast.Union):
        _ends_in_return(query.args["this"], top=top)
        _ends_in_return(query.args["expression"], top=top)
        return
    if not isinstance(query, ast.Query):
        raise ReadOnlyQueryError(f"read-only queries may not use {_CLAUSE_NAMES.get(type(query), type(query).__name__)}")
    clauses = query.args.get("clauses") or []
    last = clauses[-1] if clauses else None
    if isinstance(last, ast.Return):
        return
    if top and len(clauses) == 1 and isinstance(last, ast.CallProcedure):
        return
    where = "the query" if top else "a CALL { } subquery"
    raise ReadOnlyQueryError(f"{where} must end in RETURN (it ends in {type(last).__name__ if last else 'nothing'})")


def _check_range(node: ast.FunctionCall) -> None:
    args = node.args.get("expressions") or []
    values = [_constant_int(arg) for arg in args]
    if len(values) not in (2, 3) or any(v is None for v in values):
        return  # not constant: the server-side row limit and timeout bound it
    start, end = values[0], values[1]
    step = values[2] if len(values) == 3 else 1
    if step == 0:
        return  # the server refuses a zero step itself
    size = max(0, (end - start) // step + 1)
    if size > MAX_RANGE_ELEMENTS:
        raise ReadOnlyQueryError(f"range() would build {size:,} elements; read-only queries may build at most {MAX_RANGE_ELEMENTS:,}")


def _constant_int(node: object, depth: int = 0) -> int | None:
    """The value of an integer expression made of literals and + - * (None when not constant)."""
    if depth > 16:
        return None
    if isinstance(node, ast.Integer) and isinstance(node.args.get("this"), int):
        return node.args["this"]
    if isinstance(node, ast.Neg):
        value = _constant_int(node.args.get("this"), depth + 1)
        return None if value is None else -value
    if isinstance(node, (ast.Add, ast.Sub, ast.Mul)):
        left = _constant_int(node.args.get("this"), depth + 1)
        right = _constant_int(node.args.get("expression"), depth + 1)
        if left is None or right is None:
            return None
        if isinstance(node, ast.Add):
            return left + right
        if isinstance(node, ast.Sub):
            return left - right
        return left * right
    return None
