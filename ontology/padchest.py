"""Data-driven LOCATED_IN edges and UMLS CUIs from the PadChest labels that torchxrayvision ships.

torchxrayvision's data folder holds ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz``
(PadChest, Bustos et al. 2020, CC BY-SA 4.0): one row per image (160,861), several images per
report (107,783 reports). Its columns used here:

* ``LabelsLocalizationsBySentence``: per sentence of the report, the labels found in it followed
  by their localizations (``"loc ..."`` strings), e.g.
  ``[['pleural effusion', 'loc pleural', 'loc right'], ['cardiomegaly', 'loc cardiac']]``.
  Only the reports labelled by physicians (27% of them) keep the sentences apart; the reports
  labelled by the authors' RNN give one flat list for the whole report, in which a location
  cannot be tied to its sentence's labels, so they are skipped (and counted).
* ``Labels``/``labelCUIS`` and ``Localizations``/``LocalizationsCUIS``: per report the label and
  localization strings and the UMLS CUIs of those that have one, as two unaligned lists.

**Edges.** Every PadChest string goes through :data:`PADCHEST_TERMS`, the one mapping table, to
a label (our finding, disease or device), a place (our anatomy, resolved by side), or a side.
In each sentence every mapped label is paired with every place; a place that comes in a right
and a left form takes the label's own side ("pleural effusion left side") or else the sides the
sentence names ("loc right", "loc bilateral"), and its side-less form when no side is named
(places without one give no pair then, counted as *unsided*). Per report the pairs are a set.
For a finding ``f`` and a region ``r``: ``count`` = reports with the pair, ``weight`` = ``count``
/ reports (among those used) that mention ``f`` at all, so ``weight`` is in (0, 1]: the share of
``f``'s reports that place it in ``r``. Pairs seen in fewer than ``min_count`` reports, or in
less than ``min_weight`` of the finding's reports, are left out: a sentence naming two findings
pairs each with the other's places, and such co-mentions are rare for any one finding. Strings
the table does not list are counted and reported, never guessed; strings it maps to ``None`` are
deliberately ignored (not findings: "normal", "unchanged" ...).

**CUIs.** A string's CUI is derived from the unaligned per-report lists: the CUIs present in every
report that has the string, less those that are the derived CUI of another string; it counts when
exactly one is left and the string is in at least ``min_cui_reports`` reports. A CUI is given to
a concept only when the string itself (without ``"loc "``) is the concept's name or a synonym.
"""

from __future__ import annotations

import ast
import csv
import gzip
import importlib.util
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import ConceptKind, Ontology, Relation, RelationType

SOURCE = "padchest"  # the source of every relation this module derives
PADCHEST_FILE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
LICENCE = "CC BY-SA 4.0"
LOC_PREFIX = "loc "

RIGHT, LEFT = "right", "left"
BOTH = frozenset({RIGHT, LEFT})


@dataclass(frozen=True)
class Label:
    """A PadChest label that names one of our findings, diseases or devices."""

    concept: str  # our concept id
    sides: frozenset[str] = frozenset()  # sides the label itself names ("... left side")


@dataclass(frozen=True)
class Place:
    """A PadChest localization that names one of our anatomy concepts, per side."""

    any: str | None  # the concept when no side applies (or the place has no sides)
    right: str | None = None  # the right-sided concept, for places that come in pairs
    left: str | None = None
    sides: frozenset[str] = frozenset()  # sides the string itself names ("loc left costophrenic angle")

    def targets(self, sides: frozenset[str]) -> list[str]:
        """Our anatomy ids for this place when the label/sentence names ``sides``."""
        sided = self.right is not None or self.left is not None
        sides = self.sides or sides
        if sided and sides:
            return [cid for side, cid in ((RIGHT, self.right), (LEFT, self.left)) if side in sides and cid]
        return [self.any] if self.any else []


@dataclass(frozen=True)
class Side:
    """A PadChest localization that only names sides ("loc right", "loc bilateral")."""

    sides: frozenset[str]


def _pair(right: str, left: str, any: str | None = None) -> Place:
    return Place(any, right, left)


def _fixed(right: str | None, left: str | None, sides: frozenset[str]) -> Place:
    return Place(None, right, left, sides)


_LUNG_ZONES = {
    "upper": ("right_upper_lung_zone", "left_upper_lung_zone"),
    "middle": ("right_mid_lung_zone", "left_mid_lung_zone"),
    "lower": ("right_lower_lung_zone", "left_lower_lung_zone"),
}
_R, _L = frozenset({RIGHT}), frozenset({LEFT})

# The one mapping table: PadChest string -> Label | Place | Side, or None for strings that are
# deliberately ignored (they name no finding or no place). A string missing here is "unmapped":
# counted and reported by the build, for a curator to map once our ontology has its concept.
PADCHEST_TERMS: dict[str, Label | Place | Side | None] = {
    # -- labels that are not findings: status words and study quality
    "normal": None,
    "unchanged": None,
    "exclude": None,
    "suboptimal study": None,
    "chronic changes": None,
    # -- labels: lungs
    "increased density": Label("lung_opacity"),
    "alveolar pattern": Label("airspace_opacity"),
    "consolidation": Label("consolidation"),
    "consolidation bilateral": Label("consolidation", BOTH),
    "infiltrates": Label("infiltration"),
    "ground glass pattern": Label("ground_glass_opacity"),
    "atelectasis": Label("atelectasis"),
    "atelectasis right side": Label("atelectasis", _R),
    "atelectasis basal": Label("atelectasis"),
    "atelectasis basal right side": Label("atelectasis", _R),
    "atelectasis basal left side": Label("atelectasis", _L),
    "round atelectasis": Label("atelectasis"),
    "volume loss": Label("atelectasis"),  # loss of lung volume is what atelectasis is
    "laminar atelectasis": Label("linear_patchy_atelectasis"),
    "lobar atelectasis": Label("lobar_segmental_collapse"),
    "segmental atelectasis": Label("lobar_segmental_collapse"),
    "total atelectasis": Label("atelectasis"),
    "pulmonary edema": Label("pulmonary_edema"),
    "hilar congestion": Label("hilar_congestion"),
    "vascular redistribution": Label("vascular_redistribution"),
    "interstitial pattern": Label("increased_reticular_markings"),
    "interstitial pattern bilateral": Label("increased_reticular_markings", BOTH),
    "reticular interstitial pattern": Label("increased_reticular_markings"),
    "reticulonodular interstitial pattern": Label("increased_reticular_markings"),
    "fibrotic band": Label("pleural_parenchymal_scarring"),
    "bronchiectasis": Label("bronchiectasis"),
    "nodule": Label("lung_nodule"),
    "pulmonary mass": Label("lung_mass"),
    "multiple nodules": Label("multiple_masses_nodules"),
    "calcified granuloma": Label("calcified_nodule"),
    "bullas": Label("lung_cyst_bullae"),
    "cavitation": Label("cavitation"),
    # PadChest's "atrapamiento aéreo" on a radiograph is judged by overinflated lungs.
    "air trapping": Label("hyperaeration"),
    "hyperinflated lung": Label("hyperaeration"),
    "hyperinflated lung both sides": Label("hyperaeration", BOTH),
    "hyperinflated lung right side": Label("hyperaeration", _R),
    "hyperinflated lung left side": Label("hyperaeration", _L),
    "hypoexpansion": Label("low_lung_volumes"),
    "hypoexpansion both side": Label("low_lung_volumes", BOTH),
    "hypoexpansion left side": Label("low_lung_volumes", _L),
    "hypoexpansion basal": Label("low_lung_volumes"),
    "hypoexpansion basal both sides": Label("low_lung_volumes", BOTH),
    # -- labels: pleura
    "pleural effusion": Label("pleural_effusion"),
    "pleural effusion both sides": Label("pleural_effusion", BOTH),
    "pleural effusion right side": Label("pleural_effusion", _R),
    "pleural effusion left side": Label("pleural_effusion", _L),
    "loculated pleural effusion": Label("pleural_effusion"),
    "loculated fissural effusion": Label("pleural_effusion"),
    "empyema": Label("pleural_effusion"),  # an infected pleural effusion
    "costophrenic angle blunting": Label("costophrenic_angle_blunting"),
    "pleural thickening": Label("pleural_thickening"),
    "apical pleural thickening": Label("pleural_thickening"),
    "calcified pleural thickening": Label("pleural_thickening"),
    "pleural plaques": Label("pleural_plaques"),
    "calcified pleural plaques": Label("pleural_plaques"),
    "pneumothorax": Label("pneumothorax"),
    "hydropneumothorax": Label("hydropneumothorax"),
    # -- labels: heart, mediastinum, vessels
    "cardiomegaly": Label("cardiomegaly"),
    "pericardial effusion": Label("pericardial_effusion"),
    "mediastinal enlargement": Label("mediastinal_widening"),
    "superior mediastinal enlargement": Label("superior_mediastinal_enlargement"),
    "mediastinal shift": Label("mediastinal_displacement"),
    "tracheal shift": Label("tracheal_deviation"),
    "hilar enlargement": Label("hilar_enlargement"),
    "vascular hilar enlargement": Label("hilar_enlargement"),
    "pulmonary artery enlargement": Label("pulmonary_artery_enlargement"),
    "aortic elongation": Label("tortuous_aorta"),
    "descendent aortic elongation": Label("tortuous_aorta"),
    "ascendent aortic elongation": Label("tortuous_aorta"),
    # "ateromatosis aórtica" on a radiograph is seen as calcified plaque in the aortic wall.
    "aortic atheromatosis": Label("vascular_calcification"),
    "hiatal hernia": Label("hiatal_hernia"),
    # -- labels: diaphragm, abdomen
    "hemidiaphragm elevation": Label("elevated_hemidiaphragm"),
    "hemidiaphragm elevation right side": Label("elevated_hemidiaphragm", _R),
    "hemidiaphragm elevation left side": Label("elevated_hemidiaphragm", _L),
    "pneumoperitoneo": Label("subdiaphragmatic_air"),
    # -- labels: bones and soft tissues
    "fracture": Label("fracture"),
    "rib fracture": Label("rib_fracture"),
    "callus rib fracture": Label("rib_fracture"),
    "clavicle fracture": Label("clavicle_fracture"),
    "humeral fracture": Label("humeral_fracture"),
    "vertebral fracture": Label("spinal_fracture"),
    "vertebral compression": Label("spinal_fracture"),
    "vertebral anterior compression": Label("spinal_fracture"),
    "sclerotic bone lesion": Label("bone_lesion"),
    "lytic bone lesion": Label("bone_lesion"),
    "blastic bone lesion": Label("bone_lesion"),
    "bone metastasis": Label("bone_lesion"),
    "osteopenia": Label("osteopenia"),
    "osteoporosis": Label("osteopenia"),
    "vertebral degenerative changes": Label("spinal_degenerative_changes"),
    "scoliosis": Label("scoliosis"),
    "kyphosis": Label("kyphosis"),
    "subcutaneous emphysema": Label("subcutaneous_air"),
    "nipple shadow": Label("breast_nipple_shadows"),
    # -- labels: diseases
    "pneumonia": Label("pneumonia"),
    "atypical pneumonia": Label("pneumonia"),
    "heart insufficiency": Label("heart_failure"),
    "COPD signs": Label("copd"),
    "emphysema": Label("emphysema"),
    "pulmonary fibrosis": Label("pulmonary_fibrosis"),
    "granuloma": Label("granulomatous_disease"),
    "tuberculosis": Label("tuberculosis"),
    "tuberculosis sequelae": Label("tuberculosis"),
    "lung metastasis": Label("pulmonary_metastases"),
    "lepidic adenocarcinoma": Label("lung_cancer"),
    "pulmonary hypertension": Label("pulmonary_hypertension"),
    "pulmonary artery hypertension": Label("pulmonary_hypertension"),
    "goiter": Label("goiter"),
    # -- labels: devices
    "NSG tube": Label("nasogastric_tube"),
    "gastrostomy tube": Label("enteric_tube"),
    "endotracheal tube": Label("endotracheal_tube"),
    "tracheostomy tube": Label("tracheostomy_tube"),
    "central venous catheter": Label("central_venous_catheter"),
    "central venous catheter via subclavian vein": Label("central_venous_catheter"),
    "central venous catheter via umbilical vein": Label("central_venous_catheter"),
    "central venous catheter via jugular vein": Label("ij_line"),
    "reservoir central venous catheter": Label("chest_port"),
    "chest drain tube": Label("chest_tube"),
    "pacemaker": Label("pacemaker"),
    "dual chamber device": Label("pacemaker"),
    "single chamber device": Label("pacemaker"),
    # a sternotomy shows on the radiograph as the wires that close it
    "sternotomy": Label("sternotomy_wires"),
    "artificial heart valve": Label("prosthetic_heart_valve"),
    "artificial mitral heart valve": Label("prosthetic_heart_valve"),
    "artificial aortic heart valve": Label("prosthetic_heart_valve"),
    "aortic endoprosthesis": Label("aortic_graft_repair"),
    # -- localizations that only name sides
    "loc right": Side(_R),
    "loc left": Side(_L),
    "loc bilateral": Side(BOTH),
    # -- localizations that name no place: qualifiers of extent or position
    "loc central": None,
    "loc lobar": None,
    "loc subsegmental": None,
    # -- localizations: lungs
    "loc lung field": _pair("right_lung", "left_lung", "lungs"),
    "loc hemithorax": _pair("right_lung", "left_lung", "lungs"),
    "loc diffuse bilateral": _fixed("right_lung", "left_lung", BOTH),
    "loc upper lung field": _pair(*_LUNG_ZONES["upper"]),
    "loc middle lung field": _pair(*_LUNG_ZONES["middle"]),
    "loc lower lung field": _pair(*_LUNG_ZONES["lower"]),
    "loc basal": _pair(*_LUNG_ZONES["lower"]),
    "loc basal bilateral": _fixed(*_LUNG_ZONES["lower"], BOTH),
    "loc apical": _pair("right_apical_zone", "left_apical_zone"),
    "loc hilar": _pair("right_hilar_structures", "left_hilar_structures"),
    "loc perihilar": _pair("right_hilar_structures", "left_hilar_structures"),
    "loc hilar bilateral": _fixed("right_hilar_structures", "left_hilar_structures", BOTH),
    "loc upper lobe": _pair("right_upper_lobe", "left_upper_lobe"),
    "loc lower lobe": _pair("right_lower_lobe", "left_lower_lobe"),
    "loc right upper lobe": Place("right_upper_lobe"),
    "loc middle lobe": Place("right_middle_lobe"),
    "loc right lower lobe": Place("right_lower_lobe"),
    "loc left upper lobe": Place("left_upper_lobe"),
    "loc lingula": Place("lingula"),
    "loc left lower lobe": Place("left_lower_lobe"),
    "loc bronchi": Place("bronchi"),
    # -- localizations: pleura
    "loc pleural": _pair("right_pleura", "left_pleura", "pleura"),
    "loc costophrenic angle": _pair("right_costophrenic_angle", "left_costophrenic_angle"),
    "loc right costophrenic angle": _fixed("right_costophrenic_angle", None, _R),
    "loc left costophrenic angle": _fixed(None, "left_costophrenic_angle", _L),
    "loc bilateral costophrenic angle": _fixed("right_costophrenic_angle", "left_costophrenic_angle", BOTH),
    "loc fissure": Place("lung_fissures"),
    "loc minor fissure": Place("minor_fissure"),
    "loc major fissure": Place("major_fissure"),
    # -- localizations: heart, mediastinum, vessels, airway
    "loc cardiac": Place("cardiac_silhouette"),
    "loc coronary": Place("heart"),
    "loc mediastinum": Place("mediastinum"),
    "loc superior mediastinum": Place("upper_mediastinum"),
    "loc lower mediastinum": Place("mediastinum"),
    "loc anterior mediastinum": Place("mediastinum"),
    "loc middle mediastinum": Place("mediastinum"),
    "loc posterior mediastinum": Place("mediastinum"),
    "loc aortopulmonary window": Place("mediastinum"),
    "loc supra aortic": Place("upper_mediastinum"),  # above the arch: the superior mediastinum
    "loc paratracheal": Place("upper_mediastinum"),  # beside the trachea, inside the superior mediastinum
    "loc tracheal": Place("trachea"),
    "loc aortic": Place("aorta"),
    "loc aortic button": Place("aortic_arch"),
    "loc pulmonary artery": Place("pulmonary_artery"),
    "loc superior cave vein": Place("svc"),
    "loc brachiocephalic veins": Place("brachiocephalic_veins"),
    "loc subclavian vein": Place("subclavian_veins"),
    "loc esophageal": Place("esophagus"),
    # -- localizations: diaphragm and abdomen
    "loc diaphragm": _pair("right_hemidiaphragm", "left_hemidiaphragm", "diaphragm"),
    "loc infradiaphragm": Place("abdomen"),
    "loc hypochondrium": Place("abdomen"),
    "loc right hypochondrium": Place("abdomen"),
    "loc left hypochondrium": Place("abdomen"),
    "loc epigastric": Place("abdomen"),
    "loc gallbladder": Place("abdomen"),
    "loc gastric chamber": Place("stomach"),
    # -- localizations: bones, joints, soft tissues
    "loc bone": Place("thoracic_skeleton"),
    "loc rib": Place("ribs"),
    "loc anterior rib": Place("ribs"),
    "loc posterior rib": Place("ribs"),
    "loc rib cartilage": Place("ribs"),
    "loc clavicle": _pair("right_clavicle", "left_clavicle"),
    "loc column": Place("spine"),
    "loc dorsal vertebrae": Place("spine"),
    "loc cervical vertebrae": Place("spine"),
    "loc lumbar vertebrae": Place("spine"),
    "loc intersomatic space": Place("spine"),
    "loc shoulder": Place("shoulders"),
    "loc glenohumeral joint": Place("shoulders"),
    "loc acromioclavicular joint": Place("shoulders"),
    "loc rotator cuff": Place("shoulders"),
    "loc scapula": Place("scapulae"),
    "loc humerus": Place("humeri"),
    "loc humeral head": Place("humeri"),
    "loc humeral neck": Place("humeri"),
    "loc cervical": Place("neck"),
    "loc carotid artery": Place("neck"),
    "loc soft tissue": Place("soft_tissues"),
    "loc subcutaneous": Place("soft_tissues"),
    "loc pectoral": Place("chest_wall"),
    "loc axilar": Place("axillae"),
    "loc nipple": Place("nipples"),
}


# -- reading the CSV -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PadChestReport:
    """One report (its images share it): the per-sentence terms and the per-report CUI lists."""

    report_id: str
    sentences: tuple[tuple[str, ...], ...] | None  # None when the report is not split in sentences
    labels: tuple[str, ...]  # the ``Labels`` column
    label_cuis: tuple[str, ...]  # the ``labelCUIS`` column (not aligned with ``labels``)
    localizations: tuple[str, ...]
    localization_cuis: tuple[str, ...]


def find_padchest_csv() -> Path:
    """The PadChest labels CSV in the installed torchxrayvision package (found without importing it)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise OntologyError("the PadChest labels ship in the torchxrayvision package, which is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / PADCHEST_FILE
        if path.is_file():
            return path
    raise OntologyError(f"torchxrayvision is installed but its data folder has no {PADCHEST_FILE}")


def read_reports(path: str | Path | None = None, *, progress: bool = True) -> tuple[PadChestReport, ...]:
    """Every report of the PadChest CSV, once each (the first of its image rows), in file order.

    Cached per file (path, size and modification time): parsing the 160k rows takes a few
    seconds, and a build may ask twice.
    """
    path = Path(path) if path is not None else find_padchest_csv()
    try:
        stat = path.stat()
    except OSError as e:
        raise OntologyError(f"{path}: cannot read the PadChest CSV: {e}") from e
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE.clear()  # one file at a time: the parsed reports of the 160k-row file take ~100 MB
        _CACHE[key] = _parse(path, stat.st_size, progress)
    return _CACHE[key]


_CACHE: dict[tuple[str, int, int], tuple[PadChestReport, ...]] = {}


def _parse(path: Path, size: int, progress: bool) -> tuple[PadChestReport, ...]:
    # The Report column can be long. The limit is process-wide, so it is put back afterwards: the
    # curated sources' reader relies on the default to refuse an oversized field (curation read-back).
    previous = csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        return _parse_rows(path, size, progress)
    finally:
        csv.field_size_limit(previous)


def _parse_rows(path: Path, size: int, progress: bool) -> tuple[PadChestReport, ...]:
    reports: list[PadChestReport] = []
    seen: set[str] = set()
    try:
        with open(path, "rb") as raw, tqdm.wrapattr(
            raw, "read", total=size, desc="PadChest labels", unit="B", unit_scale=True,
            disable=not progress, leave=False,
        ) as counted, gzip.open(counted, "rt", encoding="utf-8", newline="") as text:
            reader = csv.reader(text)
            header = next(reader)
            try:
                columns = [header.index(name) for name in _COLUMNS]
            except ValueError as e:
                raise OntologyError(f"{path}: not the PadChest labels CSV: it lacks a column ({e})") from e
            for line, row in enumerate(reader, start=2):
                report_id = row[columns[0]]
                if report_id not in seen:
                    seen.add(report_id)
                    reports.append(_report(f"{path}:{line}", *(row[i] for i in columns)))
    except (OSError, EOFError, csv.Error, IndexError, StopIteration, UnicodeDecodeError) as e:
        raise OntologyError(f"{path}: cannot parse the PadChest CSV: {e!r}") from e
    return tuple(reports)


_COLUMNS = ("ReportID", "LabelsLocalizationsBySentence", "Labels", "labelCUIS", "Localizations", "LocalizationsCUIS")


def _report(
    where: str, report_id: str, sentences: str, labels: str, label_cuis: str, locs: str, loc_cuis: str
) -> PadChestReport:
    return PadChestReport(
        report_id=report_id,
        sentences=parse_sentences(sentences, where=where),
        labels=_string_list(labels),
        label_cuis=_string_list(label_cuis),
        localizations=_string_list(locs),
        localization_cuis=_string_list(loc_cuis),
    )


def parse_sentences(text: str, *, where: str = "PadChest") -> tuple[tuple[str, ...], ...] | None:
    """``"[['a', 'loc b'], nan, ['c']]"`` -> ``(('a', 'loc b'), ('c',))``.

    Returns None for a flat list (the RNN-labelled reports, not split in sentences) or an empty
    cell; raises ``OntologyError`` naming ``where`` for anything else that is not a list.
    """
    text = text.strip()
    if not text or text == "nan" or text.startswith(("['", '["')):
        return None  # empty, or flat: a list of strings (checked cheaply, as most reports are flat)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise OntologyError(f"{where}: LabelsLocalizationsBySentence is not a list literal: {text[:80]!r}") from e
    if not isinstance(node, ast.List):
        raise OntologyError(f"{where}: LabelsLocalizationsBySentence is not a list: {text[:80]!r}")
    items = [_literal(item, where) for item in node.elts]
    if any(isinstance(item, str) for item in items):
        return None
    return tuple(tuple(term.strip() for term in item if term.strip()) for item in items if item)


def _literal(node: ast.expr, where: str) -> str | list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id == "nan":  # pandas wrote a missing sentence as nan
        return None
    if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]
    raise OntologyError(f"{where}: unexpected item in LabelsLocalizationsBySentence: {ast.unparse(node)[:80]!r}")


_QUOTED = re.compile(r"'([^']*)'")


def _string_list(text: str) -> tuple[str, ...]:
    """``"['a' 'b']"`` or ``"['a', 'b']"`` (numpy or Python repr) -> ``('a', 'b')``, stripped, no empties.

    The values hold no quotes, so a regular expression is exact here, and much faster than ``ast``.
    """
    return tuple(item for item in (found.strip() for found in _QUOTED.findall(text)) if item)


# -- deriving edges ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PadChestConfig:
    """How the PadChest evidence is turned into edges and codes."""

    min_count: int = 5  # leave out a finding-region pair seen in fewer reports than this
    min_weight: float = 0.01  # ... or in a smaller share of the finding's reports (co-mention noise)
    min_cui_reports: int = 5  # derive a string's CUI only from at least this many reports
    progress: bool = True  # show a progress bar while reading the CSV


@dataclass(frozen=True)
class PadChestResult:
    """The edges and CUIs derived from PadChest, and what could not be used."""

    relations: tuple[Relation, ...]  # LOCATED_IN edges, source "padchest", with weight and count
    cuis: dict[str, tuple[str, ...]]  # concept id -> "UMLS:C..." codes
    reports: int = 0  # reports in the file
    reports_used: int = 0  # reports split in sentences (physician-labelled)
    finding_reports: dict[str, int] = field(default_factory=dict)  # concept id -> used reports mentioning it
    unmapped: dict[str, int] = field(default_factory=dict)  # PadChest string -> used reports holding it
    ignored: dict[str, int] = field(default_factory=dict)  # strings mapped to None -> used reports
    unsided: int = 0  # label-place pairs dropped because the place needs a side and none was named
    left_out: int = 0  # distinct pairs left out for min_count or min_weight
    cui_notes: tuple[str, ...] = ()

    def format(self, top: int = 15) -> str:
        lines = [
            f"PadChest ({LICENCE}): {self.reports} reports, {self.reports_used} split in sentences used "
            f"({self.reports - self.reports_used} not split in sentences, RNN-labelled, skipped)",
            f"  {len(self.relations)} LOCATED_IN edges for {len({r.start for r in self.relations})} concepts; "
            f"{self.left_out} rarer pairs left out (min_count, min_weight); "
            f"{self.unsided} pairs without a side dropped",
            f"  {len(self.unmapped)} unmapped strings ({sum(self.unmapped.values())} report mentions); most frequent:",
        ]
        for text, n in sorted(self.unmapped.items(), key=lambda item: (-item[1], item[0]))[:top]:
            lines.append(f"    {n:6d}  {text}")
        lines.append(f"  {len(self.ignored)} strings ignored on purpose ({sum(self.ignored.values())} report mentions)")
        lines.append(f"  {sum(len(v) for v in self.cuis.values())} UMLS CUIs for {len(self.cuis)} concepts")
        lines += [f"    {note}" for note in self.cui_notes]
        return "\n".join(lines)


def check_terms(ontology: Ontology) -> list[str]:
    """Problems with :data:`PADCHEST_TERMS` against ``ontology``: unknown ids and wrong kinds."""
    found = []
    for text, term in PADCHEST_TERMS.items():
        if isinstance(term, Label):
            targets, kinds = [term.concept], {ConceptKind.FINDING, ConceptKind.DISEASE, ConceptKind.DEVICE}
        elif isinstance(term, Place):
            targets, kinds = [t for t in (term.any, term.right, term.left) if t], {ConceptKind.ANATOMY}
        else:
            continue
        for cid in targets:
            if cid not in ontology:
                found.append(f"PadChest term {text!r} maps to unknown concept {cid!r}")
            elif ontology[cid].kind not in kinds:
                found.append(f"PadChest term {text!r} maps to {cid!r}, a {ontology[cid].kind.value}")
    return found


def derive_located_in(reports: Iterable[PadChestReport], config: PadChestConfig = PadChestConfig()) -> PadChestResult:
    """LOCATED_IN edges from the sentence-split reports, and counts of what was used (no CUIs yet)."""
    pair_reports: Counter[tuple[str, str]] = Counter()
    finding_reports: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    unsided = total = used = 0
    for report in reports:
        total += 1
        if report.sentences is None:
            continue
        used += 1
        pairs, findings, missing, skipped = set(), set(), set(), set()
        for sentence in report.sentences:
            labels, places, sides = [], [], frozenset()
            for text in sentence:
                if text not in PADCHEST_TERMS:
                    missing.add(text)
                    continue
                term = PADCHEST_TERMS[text]
                if term is None:
                    skipped.add(text)
                elif isinstance(term, Label):
                    labels.append(term)
                elif isinstance(term, Side):
                    sides |= term.sides
                else:
                    places.append(term)
            for label in labels:
                findings.add(label.concept)
                for place in places:
                    targets = place.targets(label.sides or sides)
                    unsided += not targets
                    pairs.update((label.concept, target) for target in targets)
        pair_reports.update(pairs)
        finding_reports.update(findings)
        unmapped.update(missing)
        ignored.update(skipped)
    relations = tuple(
        Relation(RelationType.LOCATED_IN, finding, region, SOURCE, n / finding_reports[finding], n)
        for (finding, region), n in sorted(pair_reports.items())
        if n >= config.min_count and n / finding_reports[finding] >= config.min_weight
    )
    return PadChestResult(
        relations=relations,
        cuis={},
        reports=total,
        reports_used=used,
        finding_reports=dict(sorted(finding_reports.items())),
        unmapped=dict(sorted(unmapped.items())),
        ignored=dict(sorted(ignored.items())),
        unsided=unsided,
        left_out=len(pair_reports) - len(relations),
    )


def derive_cuis(reports: Iterable[PadChestReport], min_reports: int = 5) -> dict[str, str]:
    """PadChest string -> its UMLS CUI, from the unaligned per-report lists (see the module docstring)."""
    common: dict[str, set[str]] = {}  # string -> CUIs present in every report that has it
    reports_of: dict[str, set[int]] = defaultdict(set)  # string -> indices of the reports that have it
    for index, report in enumerate(reports):
        for strings, cuis in ((report.labels, report.label_cuis), (report.localizations, report.localization_cuis)):
            cui_set = {c for c in cuis if c.startswith("C")}
            for text in set(strings):
                reports_of[text].add(index)
                common[text] = cui_set.copy() if text not in common else common[text] & cui_set
    candidates = {text: cuis for text, cuis in common.items() if len(reports_of[text]) >= min_reports and cuis}
    while True:  # a string left with several CUIs loses those that other strings own alone
        owned = {next(iter(cuis)) for cuis in candidates.values() if len(cuis) == 1}
        narrowed = {text: (cuis - owned if len(cuis) > 1 else cuis) for text, cuis in candidates.items()}
        if narrowed == candidates:
            break
        candidates = narrowed
    claims: dict[str, list[str]] = defaultdict(list)  # CUI -> strings left with it alone
    for text, cuis in candidates.items():
        if len(cuis) == 1:
            claims[next(iter(cuis))].append(text)
    derived = {}
    for cui, texts in claims.items():
        # Several strings share a CUI when one always comes with another ("loc cardiophrenic
        # angle" always with "loc cardiac"): it belongs to the companion present in all their
        # reports and in more; with no such string it belongs to none.
        owners = [a for a in texts if all(b == a or reports_of[b] < reports_of[a] for b in texts)]
        if len(owners) == 1:
            derived[owners[0]] = cui
    return dict(sorted(derived.items()))


def cuis_for_concepts(ontology: Ontology, string_cuis: dict[str, str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """concept id -> "UMLS:C..." codes for PadChest strings that are a concept's name or synonym."""
    by_text: dict[tuple[bool, str], set[str]] = defaultdict(set)  # (is anatomy, label text) -> concept ids
    for c in ontology.concepts:
        for text in (c.name, *c.synonyms):
            by_text[(c.kind is ConceptKind.ANATOMY, _key(text))].add(c.id)
    found: dict[str, set[str]] = defaultdict(set)
    notes = []
    for text, cui in sorted(string_cuis.items()):
        is_place = text.startswith(LOC_PREFIX)
        holders = by_text.get((is_place, _key(text[len(LOC_PREFIX) :] if is_place else text)), set())
        if len(holders) == 1:
            found[next(iter(holders))].add(f"UMLS:{cui}")
        elif len(holders) > 1:
            notes.append(f"CUI {cui} of {text!r} not given: {sorted(holders)} all have that name")
    return {cid: tuple(sorted(codes)) for cid, codes in sorted(found.items())}, notes


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def padchest_evidence(
    ontology: Ontology, path: str | Path | None = None, config: PadChestConfig = PadChestConfig()
) -> PadChestResult:
    """Read the PadChest CSV and derive LOCATED_IN edges and CUIs for ``ontology``'s concepts.

    Raises ``OntologyError`` when :data:`PADCHEST_TERMS` names a concept ``ontology`` lacks or
    one of the wrong kind (the table and the sources must agree).
    """
    problems = check_terms(ontology)
    if problems:
        raise OntologyError("padchest.PADCHEST_TERMS does not fit the ontology: " + "; ".join(problems))
    reports = read_reports(path, progress=config.progress)
    cuis, notes = cuis_for_concepts(ontology, derive_cuis(reports, config.min_cui_reports))
    return replace(derive_located_in(reports, config), cuis=cuis, cui_notes=tuple(notes))
