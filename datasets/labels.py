"""The one place where each data set's label vocabulary is mapped onto ontology concept ids.

Every table maps a source string to a concept id of ``ontology/sources/concepts.csv`` (a test
checks each id exists there), or to ``None``: a label the source really uses for which the
ontology has no concept yet (VinDr "Other lesion", IU "No Indexing", ...). Such a label is
*known*: readers never raise on it, and they record it in ``meta["unmapped_labels"]`` so it is
never dropped silently. A string in no table is *unknown*; what happens then is the reader's
``unknown`` policy (``UnknownPolicy``):

* ``"raise"`` (default): ``LabelError`` naming the string, the vocabulary and the file;
* ``"skip"``: a logged warning, and the string is counted in ``LabelMapper.unknown_counts``.

Uncertainty (CheXpert-style 1 / 0 / -1 / blank), see ``UncertaintyPolicy`` and ``label_value``:
1 -> 1.0, 0 -> 0.0, -1 -> what the policy says, blank -> absent from ``image_labels`` (the
report said nothing: unknown, not negative).
"""

from __future__ import annotations

import enum
import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Literal

from anatomy_vlm.exceptions import DataError
from anatomy_vlm.ontology.build import CHEXPERT_LABELS
from anatomy_vlm.ontology.seed import REGION_IDS

log = logging.getLogger(__name__)

UnknownPolicy = Literal["raise", "skip"]


class LabelError(DataError):
    """A label, attribute or region name is in no vocabulary table; names the string and the file."""

    def __init__(self, label: str, vocabulary: str, path: object):
        self.label, self.vocabulary, self.path = label, vocabulary, path
        super().__init__(f"{path}: unknown {vocabulary} label {label!r} (add it to datasets/labels.py, "
                         f"or read with unknown='skip')")


class UncertaintyPolicy(str, enum.Enum):
    """What a CheXpert-style uncertain mention (-1) becomes (Irvin et al. 2019, section 3)."""

    U_ONES = "u-ones"  # -1 -> 1.0: an uncertain finding counts as present
    U_ZEROS = "u-zeros"  # -1 -> 0.0: an uncertain finding counts as absent
    U_IGNORE = "u-ignore"  # -1 -> NaN: kept in image_labels but masked out of the loss


def label_value(raw: str | float | None, policy: UncertaintyPolicy) -> float | None:
    """One CheXpert-style cell to a label value; ``None`` means absent (blank: not mentioned).

    Raises ``ValueError`` on anything but 1, 0, -1 or blank (the caller names the file).
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
        raw = float(raw)  # ValueError on text
    if math.isnan(raw):
        return None
    if raw == 1.0:
        return 1.0
    if raw == 0.0:
        return 0.0
    if raw == -1.0:
        return {UncertaintyPolicy.U_ONES: 1.0, UncertaintyPolicy.U_ZEROS: 0.0,
                UncertaintyPolicy.U_IGNORE: math.nan}[UncertaintyPolicy(policy)]
    raise ValueError(f"label value {raw!r} is not 1, 0, -1 or blank")


def _fold(label: str) -> str:
    """Case- and whitespace-insensitive key (IU tags have "Subcutaneous  Emphysema", trailing blanks)."""
    return " ".join(label.split()).lower()


class LabelMapper:
    """Maps one vocabulary's strings to concept ids under an unknown-string policy.

    ``map`` returns the concept id, or ``None`` for a known label without a concept (counted in
    ``unmapped_counts``) and for an unknown label under ``unknown="skip"`` (logged, counted in
    ``unknown_counts``). Matching is exact after stripping, then ignoring case and runs of blanks.
    """

    def __init__(self, table: Mapping[str, str | None], vocabulary: str, unknown: UnknownPolicy = "raise"):
        if unknown not in ("raise", "skip"):
            raise ValueError(f"unknown must be 'raise' or 'skip', got {unknown!r}")
        self.table = dict(table)
        self._folded = {_fold(key): value for key, value in table.items()}
        self.vocabulary, self.unknown = vocabulary, unknown
        self.unknown_counts: Counter[str] = Counter()
        self.unmapped_counts: Counter[str] = Counter()

    def known(self, label: str) -> bool:
        return label.strip() in self.table or _fold(label) in self._folded

    def map(self, label: str, path: object) -> str | None:
        key = label.strip()
        if key in self.table:
            concept = self.table[key]
        elif _fold(key) in self._folded:
            concept = self._folded[_fold(key)]
        elif self.unknown == "raise":
            raise LabelError(label, self.vocabulary, path)
        else:
            if not self.unknown_counts[key]:
                log.warning("%s: skipping unknown %s label %r (further occurrences only counted)", path,
                            self.vocabulary, label)
            self.unknown_counts[key] += 1
            return None
        if concept is None:
            self.unmapped_counts[key] += 1
        return concept


# -- CheXpert and MIMIC-CXR (the CheXpert labeller's 14 labels) -------------------------------
CHEXPERT_LABEL_IDS: dict[str, str | None] = dict(CHEXPERT_LABELS)

# -- NIH ChestX-ray14 (Wang et al. 2017): 14 findings and "No Finding", as Data_Entry_2017 spells them
NIH_LABELS: dict[str, str | None] = {
    "No Finding": "no_finding",
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Effusion": "pleural_effusion",
    "Infiltration": "infiltration",
    "Mass": "lung_mass",
    "Nodule": "lung_nodule",
    "Pneumonia": "pneumonia",
    "Pneumothorax": "pneumothorax",
    "Consolidation": "consolidation",
    "Edema": "pulmonary_edema",
    "Emphysema": "emphysema",
    "Fibrosis": "pulmonary_fibrosis",
    "Pleural_Thickening": "pleural_thickening",
    "Hernia": "hiatal_hernia",  # ChestX-ray14 "Hernia" cases are hiatal hernias behind the heart
}
# BBox_List_2017 spells two of them differently.
NIH_BBOX_LABELS: dict[str, str | None] = {**NIH_LABELS, "Infiltrate": "infiltration"}

# -- VinDr-CXR (Nguyen et al. 2022): 22 local labels (boxes) and 6 global labels --------------
VINDR_LOCAL_LABELS: dict[str, str | None] = {
    "Aortic enlargement": None,  # no concept yet (neither tortuous aorta nor mediastinal widening)
    "Atelectasis": "atelectasis",
    "Calcification": None,  # any calcification (nodule, aorta, valve ...): no single concept
    "Cardiomegaly": "cardiomegaly",
    "Clavicle fracture": "clavicle_fracture",
    "Consolidation": "consolidation",
    "Edema": "pulmonary_edema",
    "Emphysema": "emphysema",
    "Enlarged PA": "pulmonary_artery_enlargement",
    "ILD": "interstitial_lung_disease",
    "Infiltration": "infiltration",
    "Lung Opacity": "lung_opacity",
    "Lung cavity": "cavitation",
    "Lung cyst": "lung_cyst_bullae",
    "Mediastinal shift": "mediastinal_displacement",
    "Nodule/Mass": "mass_nodule",
    "Pleural effusion": "pleural_effusion",
    "Pleural thickening": "pleural_thickening",
    "Pneumothorax": "pneumothorax",
    "Pulmonary fibrosis": "pulmonary_fibrosis",
    "Rib fracture": "rib_fracture",
    "Other lesion": None,  # a catch-all without a concept
}
VINDR_GLOBAL_LABELS: dict[str, str | None] = {
    "COPD": "copd",
    "Lung tumor": "lung_cancer",  # VinDr's "lung tumor" is a malignancy label
    "Pneumonia": "pneumonia",
    "Tuberculosis": "tuberculosis",
    "Other diseases": None,  # catch-all
    "Other disease": None,  # the 1.0.0 CSVs spell it without the s
    "No finding": "no_finding",
}
VINDR_LABELS: dict[str, str | None] = {**VINDR_LOCAL_LABELS, **VINDR_GLOBAL_LABELS}

# -- Chest ImaGenome (Wu et al. 2021) scene-graph attributes: "<category>|<yes/no>|<name>" ---------
IMAGENOME_ATTRIBUTES: dict[str, str | None] = {
    # anatomicalfinding
    "lung opacity": "lung_opacity",
    "airspace opacity": "airspace_opacity",
    "consolidation": "consolidation",
    "infiltration": "infiltration",
    "atelectasis": "atelectasis",
    "linear/patchy atelectasis": "linear_patchy_atelectasis",
    "lobar/segmental collapse": "lobar_segmental_collapse",
    "pulmonary edema/hazy opacity": "pulmonary_edema",
    "costophrenic angle blunting": "costophrenic_angle_blunting",
    "pleural effusion": "pleural_effusion",
    "pleural/parenchymal scarring": "pleural_parenchymal_scarring",
    "pneumothorax": "pneumothorax",
    "hydropneumothorax": "hydropneumothorax",
    "enlarged cardiac silhouette": "enlarged_cardiac_silhouette",
    "vascular congestion": "vascular_congestion",
    "hilar congestion": "hilar_congestion",
    "mediastinal widening": "mediastinal_widening",
    "mediastinal displacement": "mediastinal_displacement",
    "enlarged hilum": "hilar_enlargement",
    "elevated hemidiaphragm": "elevated_hemidiaphragm",
    "increased reticular markings/ild pattern": "increased_reticular_markings",
    "lung lesion": "lung_lesion",
    "mass/nodule (not otherwise specified)": "mass_nodule",
    "multiple masses/nodules": "multiple_masses_nodules",
    "calcified nodule": "calcified_nodule",
    "cyst/bullae": "lung_cyst_bullae",
    "cavitation": "cavitation",
    "hyperaeration": "hyperaeration",
    "low lung volumes": "low_lung_volumes",
    "bone lesion": "bone_lesion",
    "rib fracture": "rib_fracture",
    "clavicle fracture": "clavicle_fracture",
    "spinal fracture": "spinal_fracture",
    "humeral fracture": "humeral_fracture",
    "spinal degenerative changes": "spinal_degenerative_changes",
    "shoulder osteoarthritis": "shoulder_osteoarthritis",
    "scoliosis": "scoliosis",
    "subcutaneous air": "subcutaneous_air",
    "sub-diaphragmatic air": "subdiaphragmatic_air",
    "pneumomediastinum": "pneumomediastinum",
    "tortuous aorta": "tortuous_aorta",
    "vascular calcification": "vascular_calcification",
    "vascular redistribution": "vascular_redistribution",
    "superior mediastinal mass/enlargement": "superior_mediastinal_enlargement",
    "hiatal hernia": "hiatal_hernia",
    "pleural thickening": "pleural_thickening",
    # disease
    "pneumonia": "pneumonia",
    "fluid overload/heart failure": "heart_failure",
    "copd/emphysema": "copd",
    "granulomatous disease": "granulomatous_disease",
    "interstitial lung disease": "interstitial_lung_disease",
    "lung cancer": "lung_cancer",
    "alveolar hemorrhage": "alveolar_hemorrhage",
    "aspiration": "aspiration",
    "pericardial effusion": "pericardial_effusion",
    "goiter": "goiter",
    # tubesandlines and devices
    "chest tube": "chest_tube",
    "mediastinal drain": "support_devices",  # no narrower concept yet
    "pigtail catheter": "chest_tube",  # a small-bore pleural drain
    "endotracheal tube": "endotracheal_tube",
    "tracheostomy tube": "tracheostomy_tube",
    "picc": "picc_line",
    "ij line": "ij_line",
    "chest port": "chest_port",
    "subclavian line": "central_venous_catheter",
    "swan-ganz catheter": "swan_ganz_catheter",
    "intra-aortic balloon pump": "support_devices",  # no narrower concept yet
    "enteric tube": "enteric_tube",
    "sternotomy wires": "sternotomy_wires",
    "cardiac pacer and wires": "pacemaker",
    "prosthetic valve": "prosthetic_heart_valve",
    "aortic graft/repair": "aortic_graft_repair",
    # technicalassessment
    "breast/nipple shadows": "breast_nipple_shadows",
    "artifact": None,
    "rotated": None,
    "skin fold": None,
}
# Categories whose attributes are summaries, not findings: read, never mapped (documented policy).
IMAGENOME_SUMMARY_CATEGORIES: frozenset[str] = frozenset({"nlp"})

# bbox_name -> region id. The 29 boxed regions, plus names that appear in attributes but carry
# no box in Chest ImaGenome (mapped to None: their findings count for the image, not a region).
IMAGENOME_REGIONS: dict[str, str | None] = {
    **{region_id.replace("_", " "): region_id for region_id in REGION_IDS},
    "left arm": None, "right arm": None, "left breast": None, "right breast": None,
    "left chest wall": None, "right chest wall": None, "left shoulder": None, "right shoulder": None,
    "neck": None, "descending aorta": None, "left cardiac silhouette": None, "right cardiac silhouette": None,
    "left cardiophrenic angle": None, "right cardiophrenic angle": None,
}  # fmt: skip

# -- IU X-ray / OpenI (Demner-Fushman et al. 2016): MeSH-style <major> tags ------------------
# A tag is "Head/qualifier/qualifier...": the head is a finding, or an anatomical term whose
# qualifier names the finding (IU_COMPOUND, e.g. "Aorta/tortuous"); the other qualifiers are
# locations (IU_LOCATIONS), sides (IU_SIDES) or descriptors (IU_DESCRIPTORS, kept in meta only).
IU_FINDINGS: dict[str, str | None] = {
    "normal": "no_finding",
    "Opacity": "lung_opacity",
    "Density": "lung_opacity",
    "Cardiomegaly": "cardiomegaly",
    "Pulmonary Atelectasis": "atelectasis",
    "Calcinosis": None,  # any calcification: its site decides (see IU_COMPOUND)
    "Calcified Granuloma": "calcified_nodule",
    "Granuloma": "calcified_nodule",
    "Granulomatous Disease": "granulomatous_disease",
    "Cicatrix": "pleural_parenchymal_scarring",
    "Pleural Effusion": "pleural_effusion",
    "Markings": None,  # needs its qualifier (IU_COMPOUND: "Markings/interstitial")
    "Airspace Disease": "airspace_opacity",
    "Atherosclerosis": "vascular_calcification",
    "Catheters, Indwelling": "support_devices",
    "Deformity": None,
    "Scoliosis": "scoliosis",
    "Nodule": "lung_nodule",
    "Surgical Instruments": "support_devices",
    "Implanted Medical Device": "support_devices",
    "Medical Device": "support_devices",
    "Tube, Inserted": "support_devices",
    "Stents": "support_devices",
    "Sutures": "support_devices",
    "No Indexing": None,
    "Fractures, Bone": "fracture",
    "Technical Quality of Image Unsatisfactory": None,
    "Pulmonary Congestion": "vascular_congestion",
    "Osteophyte": "spinal_degenerative_changes",
    "Spondylosis": "spinal_degenerative_changes",
    "Infiltrate": "infiltration",
    "Emphysema": "emphysema",
    "Pulmonary Emphysema": "emphysema",
    "Bullous Emphysema": "lung_cyst_bullae",
    "Blister": "lung_cyst_bullae",
    "Cysts": "lung_cyst_bullae",
    "Thickening": "pleural_thickening",
    "Pulmonary Disease, Chronic Obstructive": "copd",
    "Hernia, Hiatal": "hiatal_hernia",
    "Hernia, Diaphragmatic": None,
    "Pulmonary Edema": "pulmonary_edema",
    "Pneumonia": "pneumonia",
    "Kyphosis": "kyphosis",
    "Foreign Bodies": None,
    "Diaphragmatic Eventration": "elevated_hemidiaphragm",
    "Arthritis": None,
    "Consolidation": "consolidation",
    "Bone Diseases, Metabolic": "osteopenia",
    "Osteoporosis": "osteopenia",
    "Spinal Fusion": None,
    "Lucency": None,
    "Pneumothorax": "pneumothorax",
    "Hydropneumothorax": "hydropneumothorax",
    "Hemopneumothorax": "hydropneumothorax",
    "Hemothorax": None,
    "Pulmonary Fibrosis": "pulmonary_fibrosis",
    "Fibrosis": "pulmonary_fibrosis",
    "Lung, Hyperlucent": "hyperaeration",
    "Mass": "lung_mass",
    "Epicardial Fat": None,
    "Lung Diseases, Interstitial": "interstitial_lung_disease",
    "Heart Failure": "heart_failure",
    "Sclerosis": None,
    "Shift": "mediastinal_displacement",
    "Volume Loss": "lobar_segmental_collapse",
    "Hypertension, Pulmonary": "pulmonary_hypertension",
    "Pericardial Effusion": "pericardial_effusion",
    "Nipple Shadow": "breast_nipple_shadows",
    "Mastectomy": None,
    "Pneumonectomy": None,
    "Cavitation": "cavitation",
    "Dislocations": None,
    "Breast Implants": None,
    "Hyperostosis, Diffuse Idiopathic Skeletal": "spinal_degenerative_changes",
    "Subcutaneous Emphysema": "subcutaneous_air",
    "Mediastinal Emphysema": "pneumomediastinum",
    "Bronchiectasis": "bronchiectasis",
    "Pneumoperitoneum": "subdiaphragmatic_air",
    "Contrast Media": None,
    "Funnel Chest": None,
    "Pectus Carinatum": None,
    "Cystic Fibrosis": None,
    "Aortic Aneurysm": None,
    "Sarcoidosis": None,
    "Tuberculosis": "tuberculosis",
    "Cholelithiasis": None,
    "Colonic Interposition": None,
    "Expansile Bone Lesions": "bone_lesion",
    "Bronchitis": None,
    "Bronchiolitis": None,
    "Hypovolemia": None,
    # Anatomical heads: the finding is in the qualifiers (IU_COMPOUND); alone they name no finding.
    "Lung": None, "Thoracic Vertebrae": None, "Spine": None, "Aorta": None, "Aorta, Thoracic": None,
    "Diaphragm": None, "Costophrenic Angle": None, "Cardiac Shadow": None, "Mediastinum": None,
    "Shoulder": None, "Pulmonary Artery": None, "Lumbar Vertebrae": None, "Heart": None, "Sulcus": None,
    "Ribs": None, "Adipose Tissue": None, "Heart Atria": None, "Bone and Bones": None, "Pleura": None,
    "Heart Ventricles": None, "Abdomen": None, "Humerus": None, "Lymph Nodes": None,
    "Cervical Vertebrae": None, "Trachea, Carina": None, "Thorax": None, "Blood Vessels": None,
    "Trachea": None,
}  # fmt: skip

# (head, qualifier) -> finding: the qualifier names the finding of an anatomical (or vague) head.
IU_COMPOUND: dict[tuple[str, str], str] = {
    ("lung", "hypoinflation"): "low_lung_volumes",
    ("lung", "hyperdistention"): "hyperaeration",
    ("aorta", "tortuous"): "tortuous_aorta",
    ("aorta, thoracic", "tortuous"): "tortuous_aorta",
    ("aorta", "enlarged"): "mediastinal_widening",
    ("thoracic vertebrae", "degenerative"): "spinal_degenerative_changes",
    ("spine", "degenerative"): "spinal_degenerative_changes",
    ("lumbar vertebrae", "degenerative"): "spinal_degenerative_changes",
    ("cervical vertebrae", "degenerative"): "spinal_degenerative_changes",
    ("shoulder", "degenerative"): "shoulder_osteoarthritis",
    ("arthritis", "shoulder"): "shoulder_osteoarthritis",
    ("diaphragm", "elevated"): "elevated_hemidiaphragm",
    ("costophrenic angle", "blunted"): "costophrenic_angle_blunting",
    ("cardiac shadow", "enlarged"): "enlarged_cardiac_silhouette",
    ("heart", "enlarged"): "cardiomegaly",
    ("mediastinum", "enlarged"): "mediastinal_widening",
    ("pulmonary artery", "enlarged"): "pulmonary_artery_enlargement",
    ("markings", "interstitial"): "increased_reticular_markings",
    ("markings", "reticular"): "increased_reticular_markings",
    ("markings", "bronchovascular"): "increased_reticular_markings",
    ("lymph nodes", "enlarged"): "hilar_enlargement",
    ("calcinosis", "aorta"): "vascular_calcification",
    ("calcinosis", "blood vessels"): "vascular_calcification",
    ("calcinosis", "coronary vessels"): "vascular_calcification",
    ("calcinosis", "lung"): "calcified_nodule",
    ("fractures, bone", "ribs"): "rib_fracture",
    ("fractures, bone", "clavicle"): "clavicle_fracture",
    ("fractures, bone", "humerus"): "humeral_fracture",
    ("fractures, bone", "thoracic vertebrae"): "spinal_fracture",
    ("fractures, bone", "spine"): "spinal_fracture",
}

IU_SIDES: dict[str, tuple[str, ...]] = {"right": ("right",), "left": ("left",), "bilateral": ("right", "left")}

# Location qualifier -> region ids; "{side}" is filled from IU_SIDES (both sides when none given).
IU_LOCATIONS: dict[str, tuple[str, ...]] = {
    "lung": ("{side}_lung",),
    "base": ("{side}_lower_lung_zone",),
    "lower lobe": ("{side}_lower_lung_zone",),
    "upper lobe": ("{side}_upper_lung_zone",),
    "middle lobe": ("right_mid_lung_zone",),
    "lingula": ("left_mid_lung_zone",),  # the lingula projects over the left mid zone
    "apex": ("{side}_apical_zone",),
    "hilum": ("{side}_hilar_structures",),
    "costophrenic angle": ("{side}_costophrenic_angle",),
    "pleural sinus": ("{side}_costophrenic_angle",),
    "diaphragm": ("{side}_hemidiaphragm",),
    "clavicle": ("{side}_clavicle",),
    "retrocardiac": ("left_lower_lung_zone",),  # behind the heart: the left lower zone
    "cardiophrenic angle": ("cardiac_silhouette",),
    "heart": ("cardiac_silhouette",),
    "cardiac shadow": ("cardiac_silhouette",),
    "heart ventricles": ("cardiac_silhouette",),
    "heart atria": ("right_atrium",),
    "mediastinum": ("mediastinum",),
    "paratracheal": ("upper_mediastinum",),
    "supracardiac": ("upper_mediastinum",),
    "trachea": ("trachea",),
    "trachea, carina": ("carina",),
    "spine": ("spine",),
    "thoracic vertebrae": ("spine",),
    "abdomen": ("abdomen",),
    "aorta": ("aortic_arch",),
    "aorta, thoracic": ("aortic_arch",),
    # locations with no region among the 29: known, give no region
    "lumbar vertebrae": (), "cervical vertebrae": (), "ribs": (), "humerus": (), "shoulder": (),
    "breast": (), "breast implants": (), "neck": (), "sternum": (), "thorax": (), "pleura": (),
    "blood vessels": (), "coronary vessels": (), "lymph nodes": (), "bronchi": (), "pulmonary artery": (),
    "pulmonary alveoli": (), "adipose tissue": (), "aortic valve": (), "mitral valve": (), "esophagus": (),
    "azygos lobe": (), "sulcus": (), "posterior": (), "anterior": (),
}  # fmt: skip

# Severity, size, shape and time descriptors: kept in meta, no label of their own.
IU_DESCRIPTORS: frozenset[str] = frozenset({
    "mild", "moderate", "severe", "small", "large", "borderline", "multiple", "scattered", "focal", "diffuse",
    "patchy", "streaky", "round", "irregular", "prominent", "enlarged", "tortuous", "degenerative", "chronic",
    "acute", "healed", "interstitial", "bronchovascular", "reticular", "obscured", "flattened", "elevated",
    "blunted", "hypoinflation", "hyperdistention", "abnormal", "multilobar",
})  # fmt: skip


def iu_regions(locations: list[str], sides: list[str]) -> list[str]:
    """Region ids of an IU tag's location qualifiers; ``{side}`` is filled from ``sides`` (both if none).

    A side without any location ("Opacity/right") means that lung.
    """
    given_sides = list(sides)
    sides = given_sides or ["right", "left"]
    locations = [loc.strip().lower() for loc in locations]
    if "lung" in locations and len(locations) > 1:
        locations.remove("lung")  # "lung/base/left": the base says more than the lung
    templates = [t for loc in locations for t in IU_LOCATIONS[loc]]
    if not locations and given_sides:
        templates = ["{side}_lung"]
    out: list[str] = []
    for template in templates:
        for side in sides if "{side}" in template else [""]:
            region = template.format(side=side)
            if region not in out:
                out.append(region)
    return out


def all_mapped_ids() -> dict[str, set[str]]:
    """Every concept id each vocabulary table maps to (what the ontology must contain)."""
    def ids(values) -> set[str]:
        return {v for v in values if v is not None}
    return {
        "chexpert": ids(CHEXPERT_LABEL_IDS.values()),
        "nih": ids(NIH_BBOX_LABELS.values()),
        "vindr": ids(VINDR_LABELS.values()),
        "imagenome": ids(IMAGENOME_ATTRIBUTES.values()),
        "imagenome_regions": ids(IMAGENOME_REGIONS.values()),
        "iu": ids(IU_FINDINGS.values()) | ids(IU_COMPOUND.values()),
        "iu_regions": {r.format(side=s) for ts in IU_LOCATIONS.values() for r in ts for s in ("right", "left")},
    }
