"""The graph store: Neo4j or the embedded engine, the schema, sync, variants, queries, exports.

    from anatomy_vlm.kg import GraphConfig, GraphConnection
    with GraphConnection(GraphConfig()) as graph:          # the embedded default
        graph.store.sync(ontology)
        graph.store.neighbourhood(["right_upper_lung_zone"])
"""

from anatomy_vlm.kg.backends import ARCADEDB, NEO4J, Dialect, GraphConfig, GraphConnection, dialect_of_driver
from anatomy_vlm.kg.embedded import DEFAULT_EMBEDDED_PATH, EmbeddedConfig, EmbeddedGraphServer
from anatomy_vlm.kg.export import GraphIndex, to_hetero_data, to_networkx
from anatomy_vlm.kg.provenance import PredictionRecord, ProvenanceRecord, RegionOfInterest
from anatomy_vlm.kg.store import GraphStore
from anatomy_vlm.kg.types import (
    DEFAULT_VARIANT,
    Ancestor,
    EdgeType,
    LocatedFinding,
    Neighbourhood,
    NodeType,
    QueryResult,
    SyncReport,
    VariantInfo,
)

__all__ = [
    "ARCADEDB", "NEO4J", "DEFAULT_EMBEDDED_PATH", "DEFAULT_VARIANT", "Ancestor", "Dialect", "EdgeType",
    "EmbeddedConfig", "EmbeddedGraphServer", "GraphConfig", "GraphConnection", "GraphIndex", "GraphStore",
    "LocatedFinding", "Neighbourhood", "NodeType", "PredictionRecord", "ProvenanceRecord", "QueryResult",
    "RegionOfInterest", "SyncReport", "VariantInfo", "dialect_of_driver", "to_hetero_data", "to_networkx",
]
