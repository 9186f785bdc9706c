"""IU X-ray / OpenI (Demner-Fushman et al. 2016): NLMCXR report XML and the PNG images it names.

Each report (``ecgen-radiology/<n>.xml``; a folder of them or the ``NLMCXR_reports.tgz`` archive)
is an ``<eCitation>`` with ``<MeSH><major>...</major><automatic>...</automatic></MeSH>`` and one
``<parentImage id="CXR1_1_IM-0001-3001">`` per image (usually a frontal and a lateral view).
Every image of a report gets the report's labels; its file is ``images_dir/<id>.png``.

Labels come from the ``<major>`` tags only (the manual MeSH coding; ``<automatic>`` tags are
MTI output, kept in ``meta["automatic_tags"]``). A tag is ``Head/qualifier/...``, e.g.
``Opacity/lung/base/left/mild``: the head is a finding (``labels.IU_FINDINGS``), or an anatomical
head whose qualifier names the finding (``labels.IU_COMPOUND``: ``Aorta/tortuous``); qualifiers
are locations (``IU_LOCATIONS`` -> region ids, with ``IU_SIDES``), or descriptors
(``IU_DESCRIPTORS``: severity, shape, kept in ``meta["tags"]``). ``normal`` -> no_finding.
A finding is 1.0 in ``image_labels`` and in ``region_labels`` of each region its qualifiers
name. There are no negatives: IU tags list what is present. Unknown heads or qualifiers raise
``LabelError`` (``unknown="skip"``: logged, counted); known heads without a concept go to
``meta["unmapped_labels"]``. No boxes.
"""

from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from anatomy_vlm.datasets.labels import (
    IU_COMPOUND,
    IU_DESCRIPTORS,
    IU_FINDINGS,
    IU_LOCATIONS,
    IU_SIDES,
    DataError,
    LabelError,
    LabelMapper,
    UnknownPolicy,
    iu_regions,
)
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset


@dataclass
class IUReport:
    """One parsed NLMCXR report."""

    report_id: str
    image_ids: list[str]
    image_labels: dict[str, float]
    region_labels: dict[str, dict[str, float]]
    tags: list[str]  # the <major> tags as written
    automatic_tags: list[str]
    unmapped_labels: dict[str, float]
    sections: dict[str, str] = field(default_factory=dict)  # FINDINGS, IMPRESSION, ... text


class IUTagParser:
    """Maps ``<major>`` tags to findings and regions under an unknown-string policy."""

    def __init__(self, unknown: UnknownPolicy = "raise"):
        self.heads = LabelMapper(IU_FINDINGS, "IU X-ray MeSH", unknown)
        qualifier_table = {q: q for q in (*IU_LOCATIONS, *IU_SIDES, *IU_DESCRIPTORS)}
        self.qualifiers = LabelMapper(qualifier_table, "IU X-ray qualifier", unknown)

    def parse(self, tag: str, where: object) -> tuple[str | None, list[str], str | None]:
        """``tag`` -> (finding id or None, region ids, the head when it is known but unmapped)."""
        head, *qualifiers = [part.strip() for part in tag.split("/")]
        qualifiers = [q.lower() for q in qualifiers if q]
        # Anatomical/vague head + qualifier naming the finding ("Aorta/tortuous", "Calcinosis/aorta").
        compound = next((IU_COMPOUND[(head.lower(), q)] for q in qualifiers if (head.lower(), q) in IU_COMPOUND), None)
        if compound is None and not self.heads.known(head):
            self.heads.map(head, where)  # raises, or logs and counts under "skip"
            return None, [], None
        finding = compound or self.heads.map(head, where)
        sides: list[str] = []
        # An anatomical head is itself the location ("Diaphragm/right/elevated": the right hemidiaphragm).
        locations = [head.lower()] if head.lower() in IU_LOCATIONS else []
        for q in qualifiers:
            if not self.qualifiers.known(q):
                self.qualifiers.map(q, where)
                continue
            if q in IU_SIDES:
                sides += [s for s in IU_SIDES[q] if s not in sides]
            elif q in IU_LOCATIONS:
                locations.append(q)
        regions = iu_regions(locations, sides) if finding is not None and finding != "no_finding" else []
        return finding, regions, (head if finding is None else None)


def parse_iu_report(xml_text: str | bytes, where: object, parser: IUTagParser | None = None) -> IUReport:
    """Parse one NLMCXR report XML; ``where`` names it in errors."""
    parser = parser or IUTagParser()
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise DataError(f"{where}: not well-formed XML ({e})") from e
    if root.tag != "eCitation":
        raise DataError(f"{where}: root element is <{root.tag}>, expected <eCitation>")
    uid = root.find("uId")
    report_id = uid.get("id", "") if uid is not None else str(where)
    tags = [(e.text or "").strip() for e in root.iterfind("MeSH/major") if (e.text or "").strip()]
    automatic = [(e.text or "").strip() for e in root.iterfind("MeSH/automatic") if (e.text or "").strip()]
    image_labels: dict[str, float] = {}
    region_labels: dict[str, dict[str, float]] = {}
    unmapped: dict[str, float] = {}
    for tag in tags:
        finding, regions, unmapped_head = parser.parse(tag, where)
        if unmapped_head is not None:
            unmapped[unmapped_head] = 1.0
        if finding is None:
            continue
        image_labels[finding] = 1.0
        for region in regions:
            region_labels.setdefault(region, {})[finding] = 1.0
    sections = {e.get("Label", ""): (e.text or "").strip() for e in root.iter("AbstractText")}
    image_ids = [e.get("id", "") for e in root.iterfind("parentImage") if e.get("id")]
    return IUReport(report_id, image_ids, image_labels, region_labels, tags, automatic, unmapped, sections)


def iter_report_files(reports: Path) -> Iterator[tuple[str, bytes]]:
    """(name, xml bytes) of every report in a folder of XMLs or an ``NLMCXR_reports.tgz`` archive."""
    if reports.is_dir():
        for path in sorted(reports.rglob("*.xml")):
            yield str(path), path.read_bytes()
    elif reports.is_file() and reports.name.endswith((".tgz", ".tar.gz", ".tar")):
        with tarfile.open(reports) as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".xml"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield f"{reports}:{member.name}", handle.read()
    else:
        raise DataError(f"{reports}: neither a folder of report XMLs nor a .tgz archive")


@dataclass
class IUXrayConfig(ReaderConfig):
    reports: Path = Path("ecgen-radiology")  # folder of report XMLs, or NLMCXR_reports.tgz
    images_dir: Path = Path("images")  # holds <parentImage id>.png
    image_suffix: str = ".png"


class IUXrayDataset(XrayDataset):
    """IU X-ray images with their report's MeSH-derived image and region labels."""

    source = "iu-xray"

    def __init__(self, config: IUXrayConfig, transform: Transform | None = None):
        parser = IUTagParser(config.unknown)
        records = []
        for name, xml in iter_report_files(Path(config.reports)):
            report = parse_iu_report(xml, name, parser)
            for image_id in report.image_ids:
                meta = {"report_id": report.report_id, "tags": report.tags, "automatic_tags": report.automatic_tags,
                        "unmapped_labels": report.unmapped_labels, "sections": report.sections, "report_file": name}
                records.append(Record(image_path=Path(config.images_dir) / f"{image_id}{config.image_suffix}",
                                      source_id=image_id, image_labels=report.image_labels,
                                      region_labels=report.region_labels, meta=meta))
        self.unknown_labels = dict(parser.heads.unknown_counts) | dict(parser.qualifiers.unknown_counts)
        super().__init__(records, config, transform)


__all__ = ["IUReport", "IUTagParser", "IUXrayConfig", "IUXrayDataset", "LabelError", "iter_report_files",
           "parse_iu_report"]
