"""The service's settings: read from the environment (``ANATOMY_VLM_*``) in this one place.

``Settings()`` reads the environment; tests and the CLI build one directly with keyword arguments.
The Neo4j connection keeps the names the CLI and the tests already use (``NEO4J_URI``,
``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``); with no URI the embedded engine over
``graph_path`` is used, as everywhere else in the project.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from anatomy_vlm.kg.embedded import DEFAULT_EMBEDDED_PATH
from anatomy_vlm.kg.types import DEFAULT_VARIANT
from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR

MiB = 1024 * 1024
DEFAULT_KEYS_FILE = Path(".anatomy-vlm/api-keys.json")  # where `anatomy-vlm api-key` and the service keep the hashed keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANATOMY_VLM_", extra="ignore", populate_by_name=True)

    # -- graph -------------------------------------------------------------------------------------
    neo4j_uri: str | None = Field(None, validation_alias=AliasChoices("neo4j_uri", "NEO4J_URI"))  # None: embedded engine
    neo4j_user: str = Field("neo4j", validation_alias=AliasChoices("neo4j_user", "NEO4J_USER"))
    neo4j_password: str | None = Field(None, validation_alias=AliasChoices("neo4j_password", "NEO4J_PASSWORD"))
    neo4j_database: str | None = Field(None, validation_alias=AliasChoices("neo4j_database", "NEO4J_DATABASE"))
    # A user with read privileges only (Neo4j Enterprise/Aura reader role) for /cypher; unset: the
    # main user in READ mode. The embedded engine has its own read-only user. docs/security/server.md
    neo4j_read_user: str | None = Field(None, validation_alias=AliasChoices("neo4j_read_user", "NEO4J_READ_USER"))
    neo4j_read_password: str | None = Field(None, validation_alias=AliasChoices("neo4j_read_password", "NEO4J_READ_PASSWORD"))
    graph_path: Path = Field(DEFAULT_EMBEDDED_PATH, validation_alias=AliasChoices("graph_path", "ANATOMY_VLM_GRAPH"))
    variant: str = DEFAULT_VARIANT  # knowledge variant the model scores against and curation publishes to

    # -- model -------------------------------------------------------------------------------------
    checkpoint: Path | None = None  # trained aligner; without one /predict answers 503
    device: str = "cpu"  # torch device of the model ("auto" picks CUDA when present)
    predict_workers: int = Field(2, ge=1)  # predictions run at once; more wait (the timeout counts the wait)

    # -- auth and curation -------------------------------------------------------------------------
    keys_file: Path = DEFAULT_KEYS_FILE  # hashed API keys (anatomy-vlm api-key create)
    sources_dir: Path = DEFAULT_SOURCES_DIR  # curated ontology sources that curation edits
    audit_log: Path | None = None  # default: audit.jsonl inside sources_dir
    state_dir: Path = Path(".anatomy-vlm/api")  # curated-version snapshots for /versions/diff

    # -- limits ------------------------------------------------------------------------------------
    max_upload_bytes: int = Field(20 * MiB, ge=1)  # larger request bodies get 413
    max_image_side: int = Field(8192, ge=1)  # pixels; checked from the file header before decoding
    # width x height (x frames), checked from the header and again by the reader before it allocates;
    # 25 MP holds every chest radiograph format (a 43 x 43 cm detector at 0.1 mm is 4300 x 4300 = 18.5 MP)
    max_image_pixels: int = Field(25_000_000, ge=1)
    # bytes of decoded stored pixels (width x height x frames x samples x bytes per sample) and the most a
    # deflated DICOM may inflate to: 25 MP of 16-bit gray is 50 MB, 25 MP of 8-bit RGBA 100 MB
    max_image_bytes: int = Field(128 * MiB, ge=1)
    predict_timeout_s: float = Field(60.0, gt=0)  # decode + predict (+ persist) budget -> 504
    cypher_timeout_s: float = Field(30.0, gt=0)  # server-side transaction timeout of /cypher -> 504
    # The client hears back at cypher_timeout_s + this even when the backend ignores transaction
    # timeouts (the embedded ArcadeDB does: it aborts the statement at its own statement timeout).
    cypher_grace_s: float = Field(5.0, ge=0)
    cypher_max_rows: int = Field(10_000, ge=1)  # the most rows /cypher returns, whatever "limit" asks

    # -- viewer ------------------------------------------------------------------------------------
    static_dir: Path = Path(__file__).parent / "static"  # the web viewer's files (index.html at /)

    def graph_config(self):
        """The ``kg.GraphConfig`` these settings describe."""
        from anatomy_vlm.kg.backends import GraphConfig

        return GraphConfig(uri=self.neo4j_uri or None, user=self.neo4j_user, password=self.neo4j_password,
                           database=self.neo4j_database, embedded_path=self.graph_path,
                           read_user=self.neo4j_read_user or None, read_password=self.neo4j_read_password)
