"""``anatomy-vlm serve`` and ``anatomy-vlm api-key``: run the service, manage its API keys.

Options are turned into the service's ``Settings`` in one place, ``build_settings``; whatever is
not given on the command line comes from the environment (``ANATOMY_VLM_*``, ``NEO4J_*``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from anatomy_vlm.api.settings import DEFAULT_KEYS_FILE
from anatomy_vlm.cli_common import console, graph_command

app = typer.Typer(help="The HTTP service and its API keys.", no_args_is_help=True)
key_app = typer.Typer(help="API keys of the service (stored hashed; the key is shown once).", no_args_is_help=True)
app.add_typer(key_app, name="api-key")
KeysFileOption = typer.Option(DEFAULT_KEYS_FILE, "--keys-file", envvar="ANATOMY_VLM_KEYS_FILE",
                              help="JSON file holding the hashed API keys.")


def build_settings(**given):
    """``Settings`` from the options given (``None`` = not given: the environment or the default applies)."""
    from anatomy_vlm.api.settings import Settings

    return Settings(**{name: value for name, value in given.items() if value is not None})


@app.command("serve")
@graph_command
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Trained model (.pt); without it /predict is 503."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Knowledge variant to serve (default canonical)."),
    keys_file: Path = KeysFileOption,
    sources: Optional[Path] = typer.Option(None, "--sources", help="Curated ontology sources that curation edits."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="Where curated-version snapshots are kept."),
    device: Optional[str] = typer.Option(None, "--device", help="torch device of the model (cpu, cuda, auto)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    graph=None,
) -> None:
    """Serve the API (and the web viewer at /) with uvicorn."""
    import uvicorn

    from anatomy_vlm.api.app import create_app

    settings = build_settings(checkpoint=checkpoint, neo4j_uri=graph.uri or "", neo4j_user=graph.user,
                              neo4j_password=graph.password, neo4j_database=graph.database,
                              neo4j_read_user=graph.read_user, neo4j_read_password=graph.read_password,
                              graph_path=graph.embedded_path, variant=variant, keys_file=keys_file,
                              sources_dir=sources, state_dir=state_dir, device=device)
    if not settings.neo4j_uri:
        settings.neo4j_uri = None  # an empty NEO4J_URI means the embedded engine, as in the other commands
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@key_app.command("create")
def key_create(
    role: str = typer.Option(..., "--role", help="reader, curator or admin."),
    name: str = typer.Option(..., "--name", help="Who holds the key (recorded as the curator in audit entries)."),
    keys_file: Path = KeysFileOption,
) -> None:
    """Create a key; it is printed once and only its salted hash is stored."""
    from anatomy_vlm.api.auth import KeyStore, Role

    try:
        role_value = Role(role.lower())
    except ValueError:
        raise typer.BadParameter(f"{role!r} is not one of reader, curator, admin", param_hint="--role") from None
    key, record = KeyStore(keys_file).create(name, role_value)
    console.print(f"created {record.role.value} key {record.key_id} for {record.name!r} in {keys_file}")
    console.print("the key (shown only now):")
    print(key)


@key_app.command("list")
def key_list(keys_file: Path = KeysFileOption) -> None:
    """List the keys (ids, names, roles; never the keys themselves)."""
    from anatomy_vlm.api.auth import KeyStore

    table = Table("id", "name", "role", "created")
    for record in KeyStore(keys_file).list():
        table.add_row(record.key_id, record.name, record.role.value, record.created_at)
    console.print(table)


@key_app.command("revoke")
def key_revoke(key_id: str = typer.Argument(..., help="The key's id (from `api-key list`)."),
               keys_file: Path = KeysFileOption) -> None:
    """Revoke a key: requests with it get 401 from then on (the service re-reads the file)."""
    from anatomy_vlm.api.auth import KeyStore

    try:
        record = KeyStore(keys_file).revoke(key_id)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="KEY_ID") from None
    console.print(f"revoked key {record.key_id} ({record.name}, {record.role.value})")


if __name__ == "__main__":
    app()
