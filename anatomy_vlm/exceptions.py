"""The project's exception tree: every error the library raises on purpose derives from one root."""

from __future__ import annotations


class AnatomyVLMError(Exception):
    """Root of every error this project raises on purpose."""


class OntologyError(AnatomyVLMError):
    """An ontology could not be read, or breaks a structural rule."""


class OntologyValidationError(OntologyError):
    """The ontology breaks one or more rules; ``problems`` lists each, naming the concept at fault."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = "\n  - ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"ontology is invalid ({len(self.problems)} problem(s)):\n  - {shown}{more}")


class FileFormatError(OntologyError):
    """A line of an input file breaks its format; ``path`` and ``line`` say where."""

    def __init__(self, path: object, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem
        super().__init__(f"{path}:{line}: {problem}")


class CurationError(OntologyError):
    """A curation change cannot be applied as asked: an unknown id, an id that already exists, a
    concept still referenced by relations. The message names the offending item."""


class DataError(AnatomyVLMError):
    """An image or a data set's file could not be read or mapped; the message names the file."""


class ImageReadError(DataError):
    """An image file is unreadable, truncated, or in a form the readers refuse (named in the message)."""


class ImageTooLargeError(ImageReadError):
    """An image's header declares more pixels or bytes than the reader's budget allows (refused before decoding)."""


class GraphStoreError(AnatomyVLMError):
    """A graph-store operation failed; nothing it started was left half-written."""


class GraphUnavailableError(GraphStoreError):
    """The graph database could not be reached or started."""


class UnknownConceptError(GraphStoreError):
    """One or more concept ids are not in the graph (or not in the variant asked for)."""

    def __init__(self, missing: list[str], variant: str):
        self.missing = list(missing)
        self.variant = variant
        super().__init__(f"unknown concept id(s) in variant {variant!r}: {', '.join(self.missing)}")


class VariantError(GraphStoreError):
    """A knowledge variant is missing, already exists, or cannot be changed as asked."""


class ReadOnlyQueryError(GraphStoreError):
    """A query sent down the read-only path contains a clause that writes or administers."""


class QueryTimeoutError(GraphStoreError):
    """A read-only query ran past its timeout and was cancelled (by the server, or by closing its
    connection); ``timeout_s`` is the limit it had."""

    def __init__(self, timeout_s: float, detail: str):
        self.timeout_s = timeout_s
        super().__init__(f"query cancelled after {timeout_s:g} s: {detail}")
