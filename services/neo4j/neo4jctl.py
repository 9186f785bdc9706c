#!/usr/bin/env python3
"""Run the genuine Neo4j Community 5.26 LTS server for tests, CI and benchmarks.

The server's jars come from Maven Central via ``mvn`` (see ``pom.xml`` next to
this file); the JVM is started directly on ``org.neo4j.server.CommunityEntryPoint``.
No Docker, no tarball download, no substitute database: if the real server
cannot be had, every command fails loudly with the underlying error.

Command line (stdlib only, Python 3.10+)::

    python services/neo4j/neo4jctl.py resolve
    python services/neo4j/neo4jctl.py start [--port P] [--timeout S] [--quiet]
    python services/neo4j/neo4jctl.py status
    python services/neo4j/neo4jctl.py env
    python services/neo4j/neo4jctl.py stop

    eval "$(python services/neo4j/neo4jctl.py start --quiet)"   # sets NEO4J_URI/USER/PASSWORD

As a library::

    from services.neo4j import neo4jctl   # or load the file by path
    info = neo4jctl.start()
    ...  # connect to info.uri as info.user / info.password
    neo4jctl.stop()

Work folder (``--workdir`` or ``$NEO4J_WORKDIR``, default ``<repo root>/.neo4j``)::

    lib/              jars copied by mvn, plus lib/.pom.sha256 (the stamp)
    server/           NEO4J_HOME: conf/neo4j.conf, data/, logs/, state.json
    .lock             serialises concurrent resolve/start/stop calls
"""

# No `from __future__ import annotations`: with string annotations, dataclasses
# needs the module in sys.modules, which breaks loading this file by path
# (importlib.util.spec_from_file_location) from tests. 3.10+ needs no future import.
import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:  # fcntl is POSIX-only; without it we simply skip inter-process locking.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

HERE: Path = Path(__file__).resolve().parent
POM: Path = HERE / "pom.xml"
REPO_ROOT: Path = HERE.parent.parent
DEFAULT_WORKDIR: Path = REPO_ROOT / ".neo4j"

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
USER = "neo4j"
HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 180.0
STOP_GRACE_S = 30.0
LOG_TAIL_LINES = 40
# Marker that lets start() wipe server/ safely: we only ever delete a folder
# that we created ourselves, never a directory someone pointed --workdir at.
HOME_MARKER = ".neo4jctl-home"

# JVM options. The tarball's bin/neo4j launcher reads these from
# server.jvm.additional in neo4j.conf; we launch java ourselves, so they have
# to be passed on the command line. The --add-opens trio is what Neo4j 5's own
# config migrator inserts (the page cache and netty reach into NIO internals).
# -XX:+AlwaysPreTouch is left out on purpose: it would touch the whole heap up
# front and only slows down a throwaway test server's start.
JVM_HEAP = ["-Xms1g", "-Xmx2g"]
JVM_OPTS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
]


class Neo4jCtlError(RuntimeError):
    """Raised when the server cannot be resolved, started or reached."""


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """What a client needs to reach a running server (mirrors state.json)."""

    pid: int
    port: int
    password: str
    user: str = USER
    uri: str = ""
    home: str = ""
    version: str = ""
    started_at: float = 0.0

    def env(self) -> dict[str, str]:
        """The environment variables a client (tests, the app) reads."""
        return {"NEO4J_URI": self.uri, "NEO4J_USER": self.user, "NEO4J_PASSWORD": self.password}

    def export_lines(self) -> str:
        """Shell ``export`` lines, safe for ``eval``."""
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env().items())


# --------------------------------------------------------------------------- #
# small helpers
# --------------------------------------------------------------------------- #

Log = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    """Default progress sink for library use: stderr keeps stdout clean."""
    print(msg, file=sys.stderr, flush=True)


def _workdir(workdir: str | os.PathLike[str] | None) -> Path:
    """Resolve the work folder: explicit argument, then $NEO4J_WORKDIR, then the default."""
    if workdir is None:
        workdir = os.environ.get("NEO4J_WORKDIR") or DEFAULT_WORKDIR
    return Path(workdir).expanduser().resolve()


def _paths(workdir: Path) -> dict[str, Path]:
    home = workdir / "server"
    return {
        "lib": workdir / "lib",
        "stamp": workdir / "lib" / ".pom.sha256",
        "home": home,
        "conf": home / "conf",
        "data": home / "data",
        "logs": home / "logs",
        "state": home / "state.json",
        "lock": workdir / ".lock",
    }


@contextlib.contextmanager
def _locked(workdir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the work folder.

    Parallel callers (pytest-xdist workers, two make targets) would otherwise
    race on wiping the home and writing state.json; the second one now waits
    and then reuses the server the first one started.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(workdir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pom_hash() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _pom_version() -> str:
    """The Neo4j version the pom asks for (for messages and state.json only)."""
    m = re.search(r"<neo4j\.version>\s*([^<\s]+)\s*</neo4j\.version>", POM.read_text())
    return m.group(1) if m else "unknown"


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _java() -> str:
    """Locate a Java >= 17 (what Neo4j 5.26 requires), preferring $JAVA_HOME."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not java:
        raise Neo4jCtlError("java not found (set JAVA_HOME or put Java 17+ on PATH); Neo4j 5.26 needs Java 17 or 21")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if m:
        major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
        if major < 17:
            raise Neo4jCtlError(f"{java} is Java {major}; Neo4j 5.26 needs Java 17 or 21:\n{out.strip()}")
    return java


def _classpath(lib: Path) -> str:
    # The JVM expands "DIR/*" to every jar in DIR itself; no need to list 200 jars.
    return str(lib / "*")


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie.

    A zombie (our own child that exited but was not reaped yet, which happens
    when start() and stop() run in the same Python process) still answers
    kill(pid, 0), so reap it or look at /proc before trusting that.
    """
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is all we have


def _is_our_server(pid: int, home: Path) -> bool:
    """Guard against PID reuse: is pid really a Neo4j started on this home?"""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return MAIN_CLASS in cmdline and str(home) in cmdline


def _port_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    """Ask the kernel for a free loopback port (bind to 0).

    There is a small window between closing this socket and Neo4j binding the
    port; on a CI box that is acceptable, and a clash shows up as a clear
    "Address already in use" in the log tail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _new_password() -> str:
    """A random password (>= 8 chars, Neo4j's default minimum) that is safe on any command line.

    token_urlsafe can begin with "-", which the admin tool's option parser
    takes for an option ("Missing required parameter: '<password>'"); we pass
    "--" as well, but a leading letter or digit also keeps it unambiguous for
    other tools (cypher-shell -p, curl -u) that tests might use.
    """
    while True:
        password = secrets.token_urlsafe(24)
        if password[0].isalnum():
            return password


def _read_state(state_file: Path) -> ServerInfo | None:
    try:
        raw = json.loads(state_file.read_text())
        fields = {f.name for f in dataclasses.fields(ServerInfo)}
        return ServerInfo(**{k: v for k, v in raw.items() if k in fields})
    except (OSError, ValueError, TypeError):
        return None


def _write_state(state_file: Path, info: ServerInfo) -> None:
    # 0600 from creation (not chmod afterwards): the file holds the password.
    tmp = state_file.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(dataclasses.asdict(info), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, state_file)


def _log_tails(logs: Path) -> str:
    parts = []
    for name in ("neo4j.log", "debug.log", "console.log"):
        text = _tail(logs / name)
        if text:
            parts.append(f"----- {logs / name} (last {LOG_TAIL_LINES} lines) -----\n{text}")
    return "\n".join(parts) or f"(no log output yet in {logs})"


# --------------------------------------------------------------------------- #
# resolve
# --------------------------------------------------------------------------- #


def resolve(workdir: str | os.PathLike[str] | None = None, *, log: Log = _stderr_log) -> Path:
    """Make sure the Neo4j jars are in ``<workdir>/lib``; return that folder.

    Runs ``mvn dependency:copy-dependencies`` only if lib is missing or the
    pom changed since the last resolve (sha256 stamp). The local Maven
    repository stays the default ``~/.m2`` so CI caches it across runs. The
    jars land in a temporary folder first and are swapped in only on success,
    so a failed or interrupted mvn never leaves a half-filled lib behind.
    """
    wd = _workdir(workdir)
    with _locked(wd):
        return _resolve_locked(wd, log)


def _resolve_locked(wd: Path, log: Log) -> Path:
    p = _paths(wd)
    lib, stamp = p["lib"], p["stamp"]
    want = _pom_hash()
    if stamp.is_file() and stamp.read_text().strip() == want and any(lib.glob("neo4j-server-*.jar")):
        return lib

    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jCtlError("mvn not found on PATH; it is needed to fetch Neo4j from Maven Central")
    staging = wd / "lib.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-Dstyle.color=never",
        "-f", str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    log(f"neo4jctl: resolving Neo4j {_pom_version()} from Maven Central: {shlex.join(cmd)}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        # Maven 3.8's jansi emits colour codes even with -B; strip them for CI logs.
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
        tail = "\n".join(output.splitlines()[-60:])
        raise Neo4jCtlError(f"mvn failed with exit code {proc.returncode}:\n{tail}")
    if not any(staging.glob("neo4j-server-*.jar")):
        raise Neo4jCtlError(f"mvn succeeded but {staging} holds no neo4j-server jar:\n{proc.stdout[-4000:]}")

    # Swap the new lib in. A running server keeps its already-open jar files.
    old = wd / "lib.old"
    shutil.rmtree(old, ignore_errors=True)
    if lib.exists():
        lib.rename(old)
    staging.rename(lib)
    shutil.rmtree(old, ignore_errors=True)
    stamp.write_text(want + "\n")
    n = len(list(lib.glob("*.jar")))
    log(f"neo4jctl: resolved {n} jars into {lib} in {time.monotonic() - t0:.1f}s")
    return lib


# --------------------------------------------------------------------------- #
# start / stop / status
# --------------------------------------------------------------------------- #


# The only procedures the server loads (built-in ones included): what the project calls
# (db.awaitIndexes, dbms.components in benchmarks, routing for neo4j:// URIs) and the read
# procedures a user's read-only query may CALL (kg.queries). dbms.listConfig, dbms.killConnections,
# db.clearQueryCaches, dbms.security.* and the rest are then unknown to the server.
PROCEDURE_ALLOWLIST = (
    "db.awaitIndexes", "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.*",
    "dbms.components", "dbms.routing.getRoutingTable",
)
# Transactions that name no timeout of their own (the writers) are cancelled after this; a
# read-only query names its own (GraphStore.run_read_query).
TRANSACTION_TIMEOUT = "10m"


def _neo4j_conf(p: dict[str, Path], port: int) -> str:
    """The generated neo4j.conf: loopback only, Bolt only, nothing phones home, no admin surface
    for a read-only query (docs/security/server.md)."""
    home = p["home"]
    return "\n".join([
        "# Generated by services/neo4j/neo4jctl.py on every start; edits are lost.",
        f"server.directories.data={p['data']}",
        f"server.directories.logs={p['logs']}",
        f"server.directories.plugins={home / 'plugins'}",
        # An empty folder of its own: LOAD CSV file URLs are refused below anyway, and an unset
        # import directory would let them name any file the server can read.
        f"server.directories.import={home / 'import'}",
        f"server.directories.run={home / 'run'}",
        f"server.directories.lib={home / 'lib-unused'}",
        # Loopback only: a test server must not be reachable from the network.
        f"server.default_listen_address={HOST}",
        f"server.default_advertised_address={HOST}",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address={HOST}:{port}",
        f"server.bolt.advertised_address={HOST}:{port}",
        "server.bolt.tls_level=DISABLED",
        # Bolt only: no HTTP/HTTPS port that could clash between parallel servers.
        "server.http.enabled=false",
        "server.https.enabled=false",
        # The server-side routing connector would bind :7688 on every server and
        # collide when several run side by side; plain bolt:// needs none of it.
        "dbms.routing.enabled=false",
        "dbms.security.auth_enabled=true",
        # Security of what a query can reach (Community has no roles: the one user is admin).
        f"dbms.security.procedures.allowlist={','.join(PROCEDURE_ALLOWLIST)}",
        "dbms.security.procedures.unrestricted=",
        "dbms.security.allow_csv_import_from_file_urls=false",
        # LOAD CSV FROM 'http://...' would make the server fetch any address, internal ones
        # included: block every IPv4 and IPv6 address.
        "internal.dbms.cypher_ip_blocklist=0.0.0.0/0,::/0",  # its only name in 5.26
        f"db.transaction.timeout={TRANSACTION_TIMEOUT}",
        # How often timeouts are checked (default 2s): a read-only query's timeout then cancels
        # it within half a second rather than up to two.
        "db.transaction.monitor.check.interval=500ms",
        # Memory: the heap is set by -Xms/-Xmx on the java command line (these
        # two are only read by bin/neo4j, kept so the conf documents the heap).
        "server.memory.heap.initial_size=1g",
        "server.memory.heap.max_size=2g",
        "server.memory.pagecache.size=512m",
        # No phoning home (udc.neo4j.com is the only outbound URL in the jars).
        "dbms.usage_report.enabled=false",
        # Throwaway data: do not keep days of transaction logs around.
        "db.tx_log.rotation.retention_policy=1 files",
        # Bolt's netty shutdown otherwise idles a 5 s quiet period on every stop.
        "internal.dbms.bolt.netty_server_shutdown_quiet_period=0",
        "",
    ])


def status(workdir: str | os.PathLike[str] | None = None) -> ServerInfo | None:
    """Return the running server's info, or None if none is running and answering."""
    p = _paths(_workdir(workdir))
    info = _read_state(p["state"])
    if info is None:
        return None
    if _is_our_server(info.pid, p["home"]) and _port_open(info.port):
        return info
    return None


def start(
    port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    workdir: str | os.PathLike[str] | None = None,
    *,
    log: Log = _stderr_log,
) -> ServerInfo:
    """Start Neo4j (or reuse the one already running) and return how to reach it.

    A fresh home (conf, data, logs) is prepared on every real start: it is a
    test server, and stale data would make tests order-dependent. Raises
    Neo4jCtlError (after killing the process and with the log tails in the
    message) if the server dies or is not answering within ``timeout`` seconds.
    """
    wd = _workdir(workdir)
    with _locked(wd):
        return _start_locked(wd, port, timeout, log)


def _start_locked(wd: Path, port: int | None, timeout: float, log: Log) -> ServerInfo:
    p = _paths(wd)
    running = status(wd)
    if running is not None:
        if port is not None and port != running.port:
            raise Neo4jCtlError(
                f"Neo4j is already running on port {running.port} (pid {running.pid}), "
                f"not the requested {port}; run `stop` first"
            )
        log(f"neo4jctl: reusing running Neo4j (pid {running.pid}) at {running.uri}")
        return running
    # A recorded process that is alive but not answering is hung or half-dead:
    # clear it out rather than start a second server on the same home.
    _stop_locked(wd, log=lambda _m: None)

    lib = _resolve_locked(wd, log)
    java = _java()

    home = p["home"]
    if home.exists():
        if not (home / HOME_MARKER).exists() and any(home.iterdir()):
            raise Neo4jCtlError(f"{home} exists and was not created by neo4jctl; refusing to wipe it")
        shutil.rmtree(home)
    for d in (p["conf"], p["data"], p["logs"], home / "plugins", home / "import", home / "run"):
        d.mkdir(parents=True, exist_ok=True)
    (home / HOME_MARKER).write_text("created by services/neo4j/neo4jctl.py; wiped on every start\n")

    port = port if port is not None else _free_port()
    if _port_open(port):
        raise Neo4jCtlError(f"port {port} on {HOST} is already in use by another process")
    password = _new_password()
    (p["conf"] / "neo4j.conf").write_text(_neo4j_conf(p, port))

    # The admin tool finds the home and conf through the environment.
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(p["conf"])}
    admin = subprocess.run(
        [java, "-cp", _classpath(lib), *JVM_OPTS, ADMIN_CLASS, "dbms", "set-initial-password", "--", password],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if admin.returncode != 0:
        raise Neo4jCtlError(
            f"neo4j-admin dbms set-initial-password failed (exit {admin.returncode}):\n"
            + admin.stdout.replace(password, "***")[-4000:]
        )

    cmd = [
        java, *JVM_HEAP, *JVM_OPTS,
        "-cp", _classpath(lib),
        MAIN_CLASS,
        f"--home-dir={home}",
        f"--config-dir={p['conf']}",
    ]
    log(f"neo4jctl: starting Neo4j {_pom_version()} on bolt://{HOST}:{port} (home {home})")
    t0 = time.monotonic()
    with open(p["logs"] / "console.log", "ab") as console:
        # Own session: the server outlives this script and is not hit by the
        # Ctrl-C / SIGHUP aimed at the shell or make that started it.
        proc = subprocess.Popen(
            cmd, cwd=home, env=env, stdin=subprocess.DEVNULL,
            stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
        )
    info = ServerInfo(
        pid=proc.pid, port=port, password=password, user=USER,
        uri=f"bolt://{HOST}:{port}", home=str(home), version=_pom_version(), started_at=time.time(),
    )
    # Record before waiting, so `stop` can clean up even if we are interrupted.
    _write_state(p["state"], info)

    deadline = t0 + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise Neo4jCtlError(
                    f"Neo4j exited with code {proc.returncode} during start-up\n{_log_tails(p['logs'])}"
                )
            if _started_logged(p["logs"]) and _port_open(port):
                break
            if time.monotonic() > deadline:
                raise Neo4jCtlError(
                    f"Neo4j did not answer on {info.uri} within {timeout:.0f}s\n{_log_tails(p['logs'])}"
                )
            time.sleep(0.25)
    except BaseException:  # includes KeyboardInterrupt: never leave a half-started server behind
        _stop_locked(wd, log=lambda _m: None)
        raise
    log(f"neo4jctl: Neo4j is up at {info.uri} (pid {proc.pid}) after {time.monotonic() - t0:.1f}s")
    return info


def _started_logged(logs: Path) -> bool:
    """Neo4j logs "Started." once every database is online and connectors are up."""
    for name in ("neo4j.log", "console.log"):
        try:
            if "Started." in (logs / name).read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


def stop(workdir: str | os.PathLike[str] | None = None, *, log: Log = _stderr_log) -> bool:
    """Stop the recorded server (SIGTERM, then SIGKILL after 30 s); True if one was running.

    Not running is not an error: ``stop`` is safe to call from cleanup hooks.
    """
    wd = _workdir(workdir)
    with _locked(wd):
        return _stop_locked(wd, log)


def _stop_locked(wd: Path, log: Log) -> bool:
    p = _paths(wd)
    info = _read_state(p["state"])
    if info is None:
        p["state"].unlink(missing_ok=True)
        return False
    was_running = _is_our_server(info.pid, p["home"])
    if was_running:
        log(f"neo4jctl: stopping Neo4j (pid {info.pid})")
        # The server leads its own session/process group; signal the group so
        # nothing it may have spawned is left behind.
        _signal(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while _pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(info.pid):
            log(f"neo4jctl: pid {info.pid} ignored SIGTERM for {STOP_GRACE_S:.0f}s; sending SIGKILL")
            _signal(info.pid, signal.SIGKILL)
            while _pid_alive(info.pid):
                time.sleep(0.1)
    p["state"].unlink(missing_ok=True)
    return was_running


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # pid == pgid because of start_new_session=True
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="neo4jctl.py",
        description="Run the genuine Neo4j Community 5.26 server (from Maven Central) for tests/CI.",
    )
    ap.add_argument("--workdir", help="work folder (default: $NEO4J_WORKDIR or <repo>/.neo4j)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("resolve", help="fetch the jars with mvn if missing or the pom changed")
    sp = sub.add_parser("start", help="start (or reuse) the server and print export lines")
    sp.add_argument("--port", type=int, help="Bolt port (default: a free loopback port)")
    sp.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for Bolt (default 180)")
    sp.add_argument("--quiet", action="store_true", help="stdout: only the export lines; progress to stderr")
    sub.add_parser("stop", help="stop the server; not an error if none is running")
    sub.add_parser("status", help="print running / not running (exit 0 / 3)")
    sub.add_parser("env", help="print export lines for eval (exit 1 if not running)")
    # --workdir is accepted after the subcommand too (`start --workdir X`).
    for p in sub.choices.values():
        p.add_argument("--workdir", dest="workdir_sub", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workdir = getattr(args, "workdir_sub", None) or args.workdir

    quiet = getattr(args, "quiet", False)
    out: Log = _stderr_log if quiet else (lambda m: print(m, flush=True))

    try:
        if args.cmd == "resolve":
            lib = resolve(workdir, log=out)
            out(f"neo4jctl: Neo4j {_pom_version()} jars ready in {lib}")
        elif args.cmd == "start":
            info = start(args.port, args.timeout, workdir, log=out)
            if not quiet:
                print(f"# Neo4j {info.version} running at {info.uri} (pid {info.pid}). For your shell:")
            print(info.export_lines(), flush=True)
        elif args.cmd == "stop":
            print("neo4jctl: stopped" if stop(workdir, log=out) else "neo4jctl: not running")
        elif args.cmd == "status":
            info = status(workdir)
            if info is None:
                print("not running")
                return 3  # like LSB `status`: lets scripts test it without parsing
            print(f"running: Neo4j {info.version} at {info.uri} (pid {info.pid}, home {info.home})")
        elif args.cmd == "env":
            info = status(workdir)
            if info is None:
                print("neo4jctl: Neo4j is not running (run `start` first)", file=sys.stderr)
                return 1
            print(info.export_lines())
    except Neo4jCtlError as exc:
        print(f"neo4jctl: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
