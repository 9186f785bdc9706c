"""Dataset readers (MIMIC-CXR + Chest ImaGenome, CheXpert-style CSVs, VinDr-CXR, NIH ChestX-ray14,
IU X-ray, DICOM/PNG/JPEG folders) and the phantom benchmark, all returning one ``XraySample``."""

from anatomy_vlm.datasets.sample import REGION_IDS, REGION_NAMES, XraySample

__all__ = ["REGION_IDS", "REGION_NAMES", "XraySample"]
