"""What every ``anatomy-vlm`` command shares: the consoles and the graph options, declared once.

``@graph_command`` adds the graph options (``--uri``/``NEO4J_URI``, ``--user``, ``--password``,
``--database``, ``--read-user``/``--read-password`` for read-only queries, ``--graph-path``/``ANATOMY_VLM_GRAPH``) to a command and hands it one
``GraphConfig`` named ``graph``; with no URI the embedded engine over ``--graph-path`` is used
(default ``kg.DEFAULT_EMBEDDED_PATH``, the one constant the API settings and the engine use too).
This module imports no command module, so the command modules import it without a cycle.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console

from anatomy_vlm.kg.embedded import DEFAULT_EMBEDDED_PATH

console = Console()
error_console = Console(stderr=True)

_GRAPH_PARAMETERS = [
    inspect.Parameter("uri", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--uri", envvar="NEO4J_URI", help="bolt:// or neo4j:// URI of a server; omit for the embedded engine.")),
    inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        "neo4j", "--user", envvar="NEO4J_USER", help="User on the server.")),
    inspect.Parameter("password", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--password", envvar="NEO4J_PASSWORD", help="Password on the server.")),
    inspect.Parameter("database", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--database", envvar="NEO4J_DATABASE", help="Database name (default: the server's).")),
    inspect.Parameter("read_user", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--read-user", envvar="NEO4J_READ_USER", help="A read-only user for read-only queries (Enterprise/Aura reader role).")),
    inspect.Parameter("read_password", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--read-password", envvar="NEO4J_READ_PASSWORD", help="Password of --read-user.")),
    inspect.Parameter("graph_path", inspect.Parameter.KEYWORD_ONLY, annotation=Path, default=typer.Option(
        DEFAULT_EMBEDDED_PATH, "--graph-path", envvar="ANATOMY_VLM_GRAPH", help="Data folder of the embedded engine.")),
]
_GRAPH_NAMES = [p.name for p in _GRAPH_PARAMETERS]


def graph_command(function: Callable) -> Callable:
    """Give ``function`` the graph options; it receives them as one ``graph: GraphConfig`` argument."""
    signature = inspect.signature(function)
    if "graph" not in signature.parameters:
        raise TypeError(f"{function.__name__} must take a 'graph' parameter to use @graph_command")
    kept = [p for name, p in signature.parameters.items() if name != "graph"]

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from anatomy_vlm.kg import GraphConfig

        values = {name: kwargs.pop(name) for name in _GRAPH_NAMES}
        kwargs["graph"] = GraphConfig(uri=values["uri"] or None, user=values["user"], password=values["password"],
                                      database=values["database"], embedded_path=values["graph_path"],
                                      read_user=values["read_user"] or None, read_password=values["read_password"])
        return function(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + _GRAPH_PARAMETERS)  # type: ignore[attr-defined]
    return wrapper


@contextmanager
def open_store(graph) -> Iterator:
    """The ``GraphStore`` of a ``GraphConfig``, its connection closed afterwards."""
    from anatomy_vlm.kg import GraphConnection

    where = graph.uri or f"embedded engine at {graph.embedded_path}"
    with console.status(f"connecting to {where}"):
        connection = GraphConnection(graph).open()
    try:
        yield connection.store
    finally:
        connection.close()


VariantOption = typer.Option("canonical", "--variant", help="Knowledge variant to use.")

__all__ = ["VariantOption", "console", "error_console", "graph_command", "open_store"]
