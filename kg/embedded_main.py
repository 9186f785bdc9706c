"""Child-process entry point of the embedded engine: ``python -m anatomy_vlm.kg.embedded_main``.

Started by ``EmbeddedGraphServer``; not meant to be run by hand. It starts ArcadeDB with its Bolt
plugin on loopback, creates the database on first use, makes sure the read-only user exists
(see ``ensure_reader``), records its pid and port in ``server.json``, prints one ``READY`` line,
and stops cleanly (flushing the database to disk) when its stdin closes or it receives
SIGTERM/SIGINT.

Server-side limits set here, because the engine ignores a Bolt transaction's timeout:

- ``arcadedb.command.timeout``: every statement, from any user, is aborted inside the engine once
  it has run ``--statement-timeout`` seconds (checked in the scan, expand and filter loops). It
  is the only cancellation this engine offers over Bolt; closing the connection does not stop a
  running query (measured: a cartesian MATCH ran on for > 90 s after its client went away).
- LOAD CSV may read neither local files nor remote URLs: the project never uses it.
- ``range()`` may produce at most ``RANGE_LIMIT`` elements.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


READ_GROUP = "reader"
RANGE_LIMIT = 1_000_000  # elements one range() may produce (the engine's default scales with the heap)
# What the read-only group may do, in ArcadeDB's server-groups.json form: read records of every
# type, nothing else (no record writes, no schema, security or database-settings changes).
# resultSetLimit/readTimeout are honoured by ArcadeDB's SQL only, not by its Cypher, so they are
# left unlimited here and the limits above (and in ``GraphStore.run_read_query``) apply instead.
READ_GROUP_CONFIG = {
    "access": [],
    "resultSetLimit": -1,
    "readTimeout": -1,
    "types": {"*": {"access": ["readRecord"]}},
}


def ensure_reader(server, database: str, user: str, password: str) -> None:
    """Make ``user`` a member of the read-only group of ``database`` (only), with ``password``.

    Run on every start, so the group's permissions and the user's password always match what
    this file says and what the data folder's credentials hold, whatever an earlier version or a
    hand edit left in ``config/server-users.jsonl``.
    """
    import jpype

    JSONObject = jpype.JClass("com.arcadedb.serializer.json.JSONObject")
    security = server._java_server.getSecurity()
    security.saveGroup(database, READ_GROUP, JSONObject(json.dumps(READ_GROUP_CONFIG)))
    if security.existsUser(user):
        security.dropUser(user)
    security.createUser(JSONObject(json.dumps({
        "name": user,
        "password": str(security.encodePassword(password)),
        "databases": {database: [READ_GROUP]},
    })))


def _set_jvm_settings(settings: dict[str, object]) -> None:
    import jpype

    GlobalConfiguration = jpype.JClass("com.arcadedb.GlobalConfiguration")
    for key, value in settings.items():
        setting = GlobalConfiguration.findByKey(key)
        if setting is None:  # a renamed setting must not pass silently: the limit would be gone
            raise RuntimeError(f"the embedded engine has no setting {key}")
        setting.setValue(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="anatomy_vlm.kg.embedded_main")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--database", required=True)
    parser.add_argument("--bolt-port", required=True, type=int)
    parser.add_argument("--http-port", required=True, type=int)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--read-user", required=True)
    parser.add_argument("--statement-timeout", type=float, default=120.0, help="seconds; 0: no limit")
    args = parser.parse_args(argv)
    password = os.environ.get("ANATOMY_VLM_EMBEDDED_PASSWORD")
    read_password = os.environ.get("ANATOMY_VLM_EMBEDDED_READ_PASSWORD")
    if not password or not read_password:
        print("ANATOMY_VLM_EMBEDDED_PASSWORD and ANATOMY_VLM_EMBEDDED_READ_PASSWORD must be set", file=sys.stderr)
        return 2

    from arcadedb_embedded.server import ArcadeDBServer  # the JVM starts here, in this process only

    server = ArcadeDBServer(
        root_path=str(args.root),
        root_password=password,
        config={
            "host": "127.0.0.1",
            "http_port": args.http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": args.bolt_port,
            "mode": "production",
        },
        jvm_kwargs={"heap_size": args.heap},
    )
    # JVM-wide, not in the server's config above: a database reads these from its own
    # configuration, which falls back to the JVM's values and never sees the server's (measured:
    # arcadedb.command.timeout given in the server config did not stop a query).
    limits = {
        "arcadedb.command.timeout": int(args.statement_timeout * 1000),  # ms; 0 disables
        "arcadedb.opencypher.loadCsv.allowFileUrls": False,
        "arcadedb.opencypher.loadCsv.allowRemoteUrls": False,
        "arcadedb.queryMaxRangeSize": RANGE_LIMIT,
    }
    _set_jvm_settings(limits)
    server.start()
    state_file = args.root / "server.json"
    stopped = threading.Event()

    try:
        if not (args.root / "databases" / args.database).exists():
            server.create_database(args.database)
        ensure_reader(server, args.database, args.read_user, read_password)
        state_file.write_text(json.dumps({"pid": os.getpid(), "bolt_port": args.bolt_port}))
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        print(f"READY bolt://127.0.0.1:{args.bolt_port}", flush=True)

        # The parent holds our stdin; when it closes (the parent stopped us, or died) we stop too.
        def watch_stdin() -> None:
            sys.stdin.read()
            stopped.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stopped.wait(0.5):
            pass
    finally:
        try:
            server.stop()  # flushes and closes the database files
        finally:
            state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
