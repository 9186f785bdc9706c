"""Child-process entry point of the embedded engine: ``python -m anatomy_vlm.kg.embedded_main``.

Started by ``EmbeddedGraphServer``; not meant to be run by hand. It starts ArcadeDB with its Bolt
plugin on loopback, creates the database on first use, records its pid and port in
``server.json``, prints one ``READY`` line, and stops cleanly (flushing the database to disk)
when its stdin closes or it receives SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="anatomy_vlm.kg.embedded_main")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--database", required=True)
    parser.add_argument("--bolt-port", required=True, type=int)
    parser.add_argument("--http-port", required=True, type=int)
    parser.add_argument("--heap", default="2g")
    args = parser.parse_args(argv)
    password = os.environ.get("ANATOMY_VLM_EMBEDDED_PASSWORD")
    if not password:
        print("ANATOMY_VLM_EMBEDDED_PASSWORD is not set", file=sys.stderr)
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
    server.start()
    state_file = args.root / "server.json"
    stopped = threading.Event()

    try:
        if not (args.root / "databases" / args.database).exists():
            server.create_database(args.database)
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
