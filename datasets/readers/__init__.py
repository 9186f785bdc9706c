"""Readers for the published chest X-ray formats; each returns ``XraySample`` items.

Labels are mapped to ontology concept ids in one place, ``anatomy_vlm.datasets.labels``.
"""

from anatomy_vlm.datasets.labels import DataError, LabelError, UncertaintyPolicy
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, XrayDataset
from anatomy_vlm.datasets.readers.chexpert import CheXpertConfig, CheXpertDataset
from anatomy_vlm.datasets.readers.folder import FolderConfig, FolderDataset
from anatomy_vlm.datasets.readers.iu_xray import IUXrayConfig, IUXrayDataset, parse_iu_report
from anatomy_vlm.datasets.readers.mimic import MimicConfig, MimicCxrDataset, parse_scene_graph
from anatomy_vlm.datasets.readers.nih import NIHConfig, NIHDataset
from anatomy_vlm.datasets.readers.vindr import VinDrConfig, VinDrDataset

__all__ = [
    "CheXpertConfig", "CheXpertDataset", "DataError", "FolderConfig", "FolderDataset", "IUXrayConfig",
    "IUXrayDataset", "LabelError", "MimicConfig", "MimicCxrDataset", "NIHConfig", "NIHDataset", "ReaderConfig",
    "Record", "UncertaintyPolicy", "VinDrConfig", "VinDrDataset", "XrayDataset", "parse_iu_report",
    "parse_scene_graph",
]  # fmt: skip
