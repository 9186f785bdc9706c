"""Readiness: the graph answers and a model is loaded."""

from __future__ import annotations

from anatomy_vlm.api import schemas
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime


def readiness(runtime: Runtime) -> schemas.ReadyOut:
    problems = []
    graph_ok = runtime.graph.reachable()
    version = None
    if graph_ok:
        try:
            version = runtime.graph.store().version(runtime.settings.variant)
        except Exception as error:  # the server went away between the two calls
            graph_ok = False
            problems.append(f"graph: {error}")
        if graph_ok and version is None:
            graph_ok = False
            problems.append(f"graph: the variant {runtime.settings.variant!r} does not exist (run `anatomy-vlm kg sync`)")
    else:
        problems.append(f"graph: {runtime.graph.error}")
    model_name = None
    model_ok = False
    try:
        if graph_ok:
            model_name = runtime.model.current(runtime.graph).name
            model_ok = True
        elif runtime.model.predictor is not None:
            model_name = runtime.model.predictor.name
            model_ok = True
    except ServiceError as error:
        problems.append(f"model: {error.message}")
    if not model_ok and runtime.model.error and not any(p.startswith("model:") for p in problems):
        problems.append(f"model: {runtime.model.error}")
    return schemas.ReadyOut(graph=graph_ok, model=model_ok, graph_version=version, variant=runtime.settings.variant,
                            model_name=model_name, problems=problems)
