"""Anatomy-VLM KG: a knowledge-graph-centric vision-language model for chest radiographs.

The library lives in the sibling packages ``anatomy_vlm.ontology``, ``anatomy_vlm.kg``,
``anatomy_vlm.encoder``, ``anatomy_vlm.alignment`` and ``anatomy_vlm.api``; this folder holds only
the command line and what they share (the exception tree).
"""

__version__ = "0.1.0"
