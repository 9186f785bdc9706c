"""The FastAPI service: prediction with explanations, read-only Cypher, curation and variants.

``anatomy_vlm.api.app.create_app(settings)`` builds the application; nothing connects to the graph
or loads a model until its lifespan starts (``anatomy-vlm serve`` runs it under uvicorn).
"""
