"""The two backends, what differs between them, and how a connection to either is opened.

Both speak Bolt and openCypher, so one ``GraphStore`` over the ``neo4j`` driver serves both. What
differs is how each starts (a server at a URI vs. the embedded engine started here) and a few
behaviours recorded in ``Dialect`` (the README lists them):

- Neo4j enforces a READ transaction's access mode: a write in ``execute_read`` fails. ArcadeDB
  does not, so user queries there run as a read-only database user whose writes the engine
  refuses (see ``kg.embedded``); the read-only path also checks the query text
  (``queries.ensure_read_only``) on both backends. ``docs/security/server.md`` says what each
  backend guarantees.
- ArcadeDB ignores a Bolt transaction's timeout; its engine aborts any statement after
  ``EmbeddedConfig.statement_timeout_s`` instead, and ``GraphStore.run_read_query`` closes the
  connection of a read that outlives its own timeout.
- Neo4j builds indexes in the background and offers ``db.awaitIndexes``; ArcadeDB builds them
  synchronously and has no such procedure.
- ArcadeDB stores a node's labels as its record type; changing them under a uniqueness
  constraint fails, so a concept whose kind changed is recreated there (its relations rewritten,
  its provenance edges moved over) in two journalled transactions, the first undone by
  ``GraphConnection.open`` after a crash; on Neo4j it is relabelled in place, in one transaction.
- ArcadeDB needs a database created before Bolt can open it (the embedded engine does that);
  Neo4j Community has exactly one user database, ``neo4j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import neo4j
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

from anatomy_vlm.exceptions import GraphUnavailableError
from anatomy_vlm.kg.embedded import DEFAULT_EMBEDDED_PATH, EmbeddedConfig, EmbeddedGraphServer


@dataclass(frozen=True)
class Dialect:
    name: str
    enforces_read_access: bool  # a write inside a READ transaction is refused by the server
    await_indexes: str | None  # statement that blocks until indexes are online, if any
    relabels_in_place: bool  # SET/REMOVE of a label works on a node under a uniqueness constraint


NEO4J = Dialect(
    name="neo4j", enforces_read_access=True, await_indexes="CALL db.awaitIndexes(300)", relabels_in_place=True
)
ARCADEDB = Dialect(name="arcadedb", enforces_read_access=False, await_indexes=None, relabels_in_place=False)


def dialect_of(agent: str) -> Dialect:
    """Tell the backend from the Bolt server agent ("Neo4j/5.26.0" or "... (ArcadeDB 26.10.2)")."""
    return ARCADEDB if "arcadedb" in agent.lower() else NEO4J


def dialect_of_driver(driver: neo4j.Driver) -> Dialect:
    return dialect_of(driver.get_server_info().agent)


@dataclass(frozen=True)
class GraphConfig:
    """Where the graph lives. With no ``uri`` the embedded engine over ``embedded_path`` is used."""

    uri: str | None = None  # bolt:// or neo4j:// (routing, for clusters and Aura) URI of a server
    user: str = "neo4j"  # ignored for the embedded engine, which has its own generated credentials
    password: str | None = None
    database: str | None = None  # None: "neo4j" on a server, the engine's own database when embedded
    embedded_path: Path = DEFAULT_EMBEDDED_PATH  # data folder of the embedded engine
    connect_timeout_s: float = 15.0  # how long to try to reach a server before giving up
    # A user that may only read (a Neo4j Enterprise/Aura role with no write or admin privilege),
    # used for user-supplied queries when given. Without it a server's user-supplied queries run
    # as ``user`` in READ mode; the embedded engine always uses its own read-only user.
    read_user: str | None = None
    read_password: str | None = None


class GraphConnection:
    """Opens the driver (starting the embedded engine first when there is no URI) and closes both.

    Use as a context manager; ``store`` is the ``GraphStore`` over the open driver::

        with GraphConnection(GraphConfig(uri="bolt://db:7687", password=...)) as graph:
            graph.store.sync(ontology)
    """

    def __init__(self, config: GraphConfig | None = None):
        self.config = config or GraphConfig()
        self.driver: neo4j.Driver | None = None
        self.read_driver: neo4j.Driver | None = None  # user-supplied queries; None: ``driver``
        self.embedded: EmbeddedGraphServer | None = None
        self.uri: str | None = None
        self._store = None

    @property
    def store(self):  # -> GraphStore (imported lazily: the store module imports this one)
        if self._store is None:
            raise GraphUnavailableError("the graph connection is not open")
        return self._store

    def open(self) -> "GraphConnection":
        from anatomy_vlm.kg.store import GraphStore

        config = self.config
        read_auth: tuple[str, str] | None = None
        if config.uri:
            uri, auth, database = config.uri, (config.user, config.password or ""), config.database or "neo4j"
            if config.read_user:
                read_auth = (config.read_user, config.read_password or "")
            elif config.read_password:
                raise GraphUnavailableError("a read password was given without a read user (NEO4J_READ_USER)")
        else:
            self.embedded = EmbeddedGraphServer(EmbeddedConfig(path=config.embedded_path))
            uri = self.embedded.start()
            auth = self.embedded.credentials()
            read_auth = self.embedded.read_credentials()
            database = config.database or self.embedded.config.database
        self.uri = uri
        self.driver = self._connect(uri, auth, "")
        dialect = dialect_of_driver(self.driver)
        if read_auth is not None:
            self.read_driver = self._connect(uri, read_auth, " (the read-only user)")
        self._store = GraphStore(self.driver, database=database, dialect=dialect, read_driver=self.read_driver)
        try:
            # A kind-change sync that a crash left half done is undone before anyone reads (on the
            # writer's driver: the read-only user could not).
            self._store.recover_interrupted_syncs()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self, uri: str, auth: tuple[str, str], role: str) -> neo4j.Driver:
        """A driver that has reached the server and passed authentication; the connection is
        closed on any failure."""
        config = self.config
        driver = None
        try:
            driver = neo4j.GraphDatabase.driver(
                uri, auth=auth, connection_timeout=config.connect_timeout_s,
                connection_acquisition_timeout=config.connect_timeout_s,
            )
            driver.verify_connectivity()
            return driver
        except AuthError as error:
            self._abandon(driver)
            raise GraphUnavailableError(f"graph database at {uri} refused the credentials of user {auth[0]!r}{role}") from error
        except (ServiceUnavailable, Neo4jError, OSError, ValueError) as error:
            self._abandon(driver)
            raise GraphUnavailableError(f"cannot reach the graph database at {uri}: {error}") from error

    def _abandon(self, driver: neo4j.Driver | None) -> None:
        if driver is not None:
            driver.close()
        self.close()

    def close(self) -> None:
        if self.read_driver is not None:
            self.read_driver.close()
            self.read_driver = None
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        self._store = None

    def __enter__(self) -> "GraphConnection":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
