"""``create_app(settings)``: the FastAPI application of the service.

Nothing happens at import or at ``create_app``: the lifespan opens the graph and loads the model
(``services.runtime.Runtime.start``) and closes them at shutdown. The viewer's files in
``settings.static_dir`` are served at ``/`` (index.html) and ``/static``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from anatomy_vlm.api import errors
from anatomy_vlm.api.limits import BodySizeLimit
from anatomy_vlm.api.routes import concepts, curation, cypher, health, predict, predictions, variants
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime
from anatomy_vlm.api.settings import Settings

DESCRIPTION = """Chest radiograph in; regions, findings and, for every finding, the regions and knowledge-graph
nodes that produced it. Predictions are stored in the graph and explained by Cypher.

Send an API key in the `X-API-Key` header (`anatomy-vlm api-key create --role reader|curator|admin`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Opening the graph may start the embedded engine (seconds): off the event loop.
        runtime = await run_in_threadpool(Runtime.start, settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            app.state.runtime = None
            await run_in_threadpool(runtime.close)

    app = FastAPI(title="Anatomy-VLM", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = None
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    for module in (health, predict, predictions, cypher, concepts, curation, variants):
        app.include_router(module.router)

    static_dir = settings.static_dir

    @app.get("/", include_in_schema=False)
    def viewer() -> FileResponse:
        index = static_dir / "index.html"
        if not index.is_file():
            raise ServiceError(404, f"the web viewer is not installed ({index} is missing)")
        return FileResponse(index)

    # check_dir=False: the folder may be filled after start-up (or not at all on a headless install).
    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")
    return app
