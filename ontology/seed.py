"""The seed ontology, used until the curated ontology lands.

It holds the 29 Chest ImaGenome regions (ids are the snake_case of their names), a PART_OF tree
linking each of them up to ``body`` through a few intermediate structures, about a dozen common
chest radiograph findings LOCATED_IN those regions, and three diseases the findings SUGGEST.
Every concept and relation has ``source="seed"``. Codes are given only where the SNOMED CT code is
certain (checked against DICOM's coded concepts); everything else is left without a code.

The committed ``data/seed.owl`` is generated from these tables: after editing them, run
``python -m anatomy_vlm.ontology.seed`` to rewrite it (a test checks it is up to date).
"""

from __future__ import annotations

from pathlib import Path

from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import load_owl, save_owl

SOURCE = "seed"
SEED_NAME = "anatomy-vlm-seed"
SEED_OWL_PATH = Path(__file__).parent / "data" / "seed.owl"

# (id, name, synonyms, definition, codes) -- the 29 Chest ImaGenome regions, in their index order.
REGIONS: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    ("right_lung", "right lung", (),
     "The lung on the right side of the chest, made of the upper, middle and lower lobes.", ()),
    ("right_upper_lung_zone", "right upper lung zone", (),
     "The upper third of the right lung field on a frontal radiograph, above the anterior end of the second rib.", ()),
    ("right_mid_lung_zone", "right mid lung zone", (),
     "The middle third of the right lung field on a frontal radiograph, between the anterior ends of the second and fourth ribs.", ()),
    ("right_lower_lung_zone", "right lower lung zone", (),
     "The lower third of the right lung field on a frontal radiograph, from the anterior end of the fourth rib down to the hemidiaphragm.", ()),
    ("right_hilar_structures", "right hilar structures", ("right hilum",),
     "The root of the right lung, where the main bronchus, pulmonary vessels and lymph nodes enter and leave it.", ()),
    ("right_apical_zone", "right apical zone", ("right apex", "right lung apex"),
     "The apex of the right lung, the top of the upper lung zone reaching above the clavicle.", ()),
    ("right_costophrenic_angle", "right costophrenic angle", ("right CP angle",),
     "The angle where the right hemidiaphragm meets the lateral chest wall, the lowest recess of the right pleural space.", ()),
    ("right_hemidiaphragm", "right hemidiaphragm", (),
     "The right dome of the diaphragm, forming the floor of the right hemithorax.", ()),
    ("left_lung", "left lung", (),
     "The lung on the left side of the chest, made of the upper and lower lobes.", ()),
    ("left_upper_lung_zone", "left upper lung zone", (),
     "The upper third of the left lung field on a frontal radiograph, above the anterior end of the second rib.", ()),
    ("left_mid_lung_zone", "left mid lung zone", (),
     "The middle third of the left lung field on a frontal radiograph, between the anterior ends of the second and fourth ribs.", ()),
    ("left_lower_lung_zone", "left lower lung zone", (),
     "The lower third of the left lung field on a frontal radiograph, from the anterior end of the fourth rib down to the hemidiaphragm.", ()),
    ("left_hilar_structures", "left hilar structures", ("left hilum",),
     "The root of the left lung, where the main bronchus, pulmonary vessels and lymph nodes enter and leave it.", ()),
    ("left_apical_zone", "left apical zone", ("left apex", "left lung apex"),
     "The apex of the left lung, the top of the upper lung zone reaching above the clavicle.", ()),
    ("left_costophrenic_angle", "left costophrenic angle", ("left CP angle",),
     "The angle where the left hemidiaphragm meets the lateral chest wall, the lowest recess of the left pleural space.", ()),
    ("left_hemidiaphragm", "left hemidiaphragm", (),
     "The left dome of the diaphragm, forming the floor of the left hemithorax.", ()),
    ("trachea", "trachea", ("windpipe",),
     "The airway running from the larynx down to the carina, where it divides into the main bronchi.", ("SNOMED:44567001",)),
    ("spine", "spine", ("thoracic spine", "vertebral column"),
     "The vertebral column; on a chest radiograph, the thoracic vertebrae seen through the mediastinum.", ("SNOMED:421060004",)),
    ("right_clavicle", "right clavicle", ("right collarbone",),
     "The right collarbone, the long bone joining the sternum to the right shoulder.", ()),
    ("left_clavicle", "left clavicle", ("left collarbone",),
     "The left collarbone, the long bone joining the sternum to the left shoulder.", ()),
    ("aortic_arch", "aortic arch", ("aortic knob", "aortic knuckle"),
     "The curved segment of the aorta between its ascending and descending parts, seen as the knob at the upper left mediastinal border.", ("SNOMED:57034009",)),
    ("mediastinum", "mediastinum", (),
     "The central compartment of the thorax between the two pleural cavities, holding the heart, great vessels, trachea and oesophagus.", ("SNOMED:72410000",)),
    ("upper_mediastinum", "upper mediastinum", ("superior mediastinum",),
     "The part of the mediastinum above the plane of the sternal angle, holding the aortic arch, great vessels, trachea and superior vena cava.", ()),
    ("svc", "svc", ("superior vena cava",),
     "The superior vena cava, the large vein returning blood from the head, neck and arms to the right atrium; it forms the upper right mediastinal border.", ("SNOMED:48345005",)),
    ("cardiac_silhouette", "cardiac silhouette", ("cardiac shadow", "heart shadow"),
     "The outline of the heart on a chest radiograph, whose width against that of the thorax is used to judge heart size.", ()),
    ("cavoatrial_junction", "cavoatrial junction", ("cavo-atrial junction",),
     "The junction of the superior vena cava with the right atrium, the usual target for the tip of a central venous catheter.", ()),
    ("right_atrium", "right atrium", (),
     "The upper right chamber of the heart, receiving blood from the venae cavae; it forms the right heart border.", ("SNOMED:73829009",)),
    ("carina", "carina", ("tracheal carina",),
     "The ridge at the lower end of the trachea where it divides into the right and left main bronchi.", ("SNOMED:28700002",)),
    ("abdomen", "abdomen", (),
     "The part of the trunk below the diaphragm; on a chest radiograph, the upper abdomen under the hemidiaphragms.", ("SNOMED:113345001",)),
)  # fmt: skip

REGION_IDS: tuple[str, ...] = tuple(region[0] for region in REGIONS)

# (id, name, synonyms, definition, codes) -- anatomy above the regions in the PART_OF tree.
INTERMEDIATE_ANATOMY: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    ("body", "body", ("entire body", "whole body"),
     "The whole body of the patient, the root of the part-of hierarchy.", ("SNOMED:38266002",)),
    ("thorax", "thorax", ("chest",),
     "The part of the trunk between the neck and the abdomen, enclosed by the ribs and the diaphragm.", ("SNOMED:51185008",)),
    ("lungs", "lungs", ("both lungs",),
     "The paired organs of respiration, filling the thoracic cavity on either side of the mediastinum.", ()),
    ("heart", "heart", (),
     "The muscular organ that pumps blood through the body, lying in the middle mediastinum.", ("SNOMED:80891009",)),
    ("diaphragm", "diaphragm", (),
     "The dome-shaped muscle separating the thoracic cavity from the abdominal cavity.", ("SNOMED:5798000",)),
    ("thoracic_skeleton", "thoracic skeleton", ("bony thorax",),
     "The bones of the chest seen on a radiograph: thoracic spine, ribs, sternum, clavicles and scapulae.", ()),
    ("ribs", "ribs", ("rib",),
     "The twelve pairs of curved bones forming the thoracic cage.", ("SNOMED:113197003",)),
)  # fmt: skip

# (child, parent): every region has one; the tree ends at "body".
PART_OF: tuple[tuple[str, str], ...] = (
    ("thorax", "body"),
    ("abdomen", "body"),
    # lungs
    ("lungs", "thorax"),
    ("right_lung", "lungs"),
    ("right_upper_lung_zone", "right_lung"),
    ("right_apical_zone", "right_upper_lung_zone"),
    ("right_mid_lung_zone", "right_lung"),
    ("right_lower_lung_zone", "right_lung"),
    ("right_costophrenic_angle", "right_lower_lung_zone"),
    ("right_hilar_structures", "right_lung"),
    ("left_lung", "lungs"),
    ("left_upper_lung_zone", "left_lung"),
    ("left_apical_zone", "left_upper_lung_zone"),
    ("left_mid_lung_zone", "left_lung"),
    ("left_lower_lung_zone", "left_lung"),
    ("left_costophrenic_angle", "left_lower_lung_zone"),
    ("left_hilar_structures", "left_lung"),
    # diaphragm
    ("diaphragm", "thorax"),
    ("right_hemidiaphragm", "diaphragm"),
    ("left_hemidiaphragm", "diaphragm"),
    # mediastinum
    ("mediastinum", "thorax"),
    ("upper_mediastinum", "mediastinum"),
    ("trachea", "upper_mediastinum"),
    ("carina", "trachea"),
    ("aortic_arch", "upper_mediastinum"),
    ("svc", "upper_mediastinum"),
    ("cardiac_silhouette", "mediastinum"),
    ("heart", "mediastinum"),
    ("right_atrium", "heart"),
    ("cavoatrial_junction", "heart"),
    # bones
    ("thoracic_skeleton", "thorax"),
    ("spine", "thoracic_skeleton"),
    ("ribs", "thoracic_skeleton"),
    ("right_clavicle", "thoracic_skeleton"),
    ("left_clavicle", "thoracic_skeleton"),
)

# (id, name, synonyms, definition, codes, regions it is LOCATED_IN)
FINDINGS: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("lung_opacity", "lung opacity", ("airspace opacity", "pulmonary opacity"),
     "An area of lung that looks whiter than normal on a radiograph because it attenuates more X-rays.", (),
     ("right_lung", "left_lung")),
    ("consolidation", "consolidation", ("airspace consolidation",),
     "Filling of the alveolar airspaces with fluid, pus, blood or cells, making the lung opaque, often with air bronchograms.", (),
     ("right_lung", "left_lung")),
    ("atelectasis", "atelectasis", ("lung collapse", "volume loss"),
     "Incomplete expansion or collapse of part or all of a lung, with loss of volume.", (),
     ("right_lung", "left_lung")),
    ("pulmonary_edema", "pulmonary edema", ("lung edema", "pulmonary oedema"),
     "Fluid in the lung interstitium and airspaces, most often from raised pulmonary venous pressure.", ("SNOMED:19242006",),
     ("right_lung", "left_lung")),
    ("lung_nodule", "lung nodule", ("nodule", "pulmonary nodule"),
     "A rounded opacity in the lung up to 3 cm across.", (),
     ("right_lung", "left_lung")),
    ("pleural_effusion", "pleural effusion", ("effusion", "pleural fluid"),
     "Excess fluid in the pleural space, first seen as blunting of the costophrenic angle.", ("SNOMED:60046008",),
     ("right_costophrenic_angle", "left_costophrenic_angle")),
    ("pneumothorax", "pneumothorax", ("PTX",),
     "Air in the pleural space separating the lung from the chest wall, best seen at the apex on an upright film.", ("SNOMED:36118008",),
     ("right_apical_zone", "left_apical_zone", "right_lung", "left_lung")),
    ("cardiomegaly", "cardiomegaly", ("enlarged cardiac silhouette", "enlarged heart"),
     "Enlargement of the cardiac silhouette, a cardiothoracic ratio above 0.5 on a PA radiograph.", (),
     ("cardiac_silhouette",)),
    ("hilar_enlargement", "hilar enlargement", ("enlarged hilum", "hilar prominence"),
     "Enlargement or increased density of a hilum, from enlarged lymph nodes, enlarged pulmonary arteries or a mass.", (),
     ("right_hilar_structures", "left_hilar_structures")),
    ("mediastinal_widening", "mediastinal widening", ("mediastinal enlargement", "widened mediastinum"),
     "A mediastinum wider than expected, for example from haemorrhage, aortic disease, lymph nodes or a mass.", (),
     ("mediastinum", "upper_mediastinum")),
    ("tracheal_deviation", "tracheal deviation", ("tracheal shift",),
     "Displacement of the trachea from the midline, pushed by a mass or tension, or pulled by collapse.", (),
     ("trachea",)),
    ("fracture", "fracture", ("broken bone",),
     "A break in the continuity of a bone.", (),
     ("thoracic_skeleton",)),
    ("rib_fracture", "rib fracture", ("broken rib", "fractured rib"),
     "A break in one or more ribs.", (),
     ("ribs",)),
    ("clavicle_fracture", "clavicle fracture", ("broken collarbone", "fractured clavicle"),
     "A break in a clavicle.", (),
     ("right_clavicle", "left_clavicle")),
    ("elevated_hemidiaphragm", "elevated hemidiaphragm", ("raised hemidiaphragm",),
     "A hemidiaphragm higher than normal, from lung volume loss, phrenic nerve palsy or pressure from below.", (),
     ("right_hemidiaphragm", "left_hemidiaphragm")),
)  # fmt: skip

# (child, parent) among findings.
FINDING_IS_A: tuple[tuple[str, str], ...] = (
    ("consolidation", "lung_opacity"),
    ("atelectasis", "lung_opacity"),
    ("rib_fracture", "fracture"),
    ("clavicle_fracture", "fracture"),
)

# (id, name, synonyms, definition, codes, anatomy it is LOCATED_IN)
DISEASES: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("pneumonia", "pneumonia", ("lung infection",),
     "Infection of the lung parenchyma, typically seen as consolidation on a radiograph.", (),
     ("lungs",)),
    ("heart_failure", "heart failure", ("CHF", "cardiac failure", "congestive heart failure"),
     "Failure of the heart to pump enough blood for the body's needs, congesting the lungs and tissues with fluid.", ("SNOMED:84114007",),
     ("heart",)),
    ("lung_cancer", "lung cancer", ("bronchogenic carcinoma", "lung carcinoma"),
     "A primary malignant tumour arising in the lung.", ("SNOMED:93880001",),
     ("lungs",)),
)  # fmt: skip

# (finding, disease)
SUGGESTS: tuple[tuple[str, str], ...] = (
    ("consolidation", "pneumonia"),
    ("cardiomegaly", "heart_failure"),
    ("pulmonary_edema", "heart_failure"),
    ("pleural_effusion", "heart_failure"),
    ("lung_nodule", "lung_cancer"),
)


def _concept(kind: ConceptKind, cid: str, name: str, synonyms, definition: str, codes) -> Concept:
    return Concept(
        id=cid,
        kind=kind,
        name=name,
        synonyms=tuple(sorted(synonyms)),
        definition=definition,
        codes=tuple(sorted(codes)),
        source=SOURCE,
    )


def seed_ontology() -> Ontology:
    """The seed ontology built from the tables above, validated."""
    anatomy = REGIONS + INTERMEDIATE_ANATOMY
    concepts = [_concept(ConceptKind.ANATOMY, *row) for row in anatomy]
    concepts += [_concept(ConceptKind.FINDING, *row[:5]) for row in FINDINGS]
    concepts += [_concept(ConceptKind.DISEASE, *row[:5]) for row in DISEASES]

    def edges(rel_type: RelationType, pairs) -> list[Relation]:
        return [Relation(rel_type, start, end, SOURCE) for start, end in pairs]

    relations = edges(RelationType.PART_OF, PART_OF)
    relations += edges(RelationType.IS_A, FINDING_IS_A)
    relations += edges(RelationType.SUGGESTS, SUGGESTS)
    located = [(row[0], where) for row in FINDINGS + DISEASES for where in row[5]]
    relations += edges(RelationType.LOCATED_IN, located)
    return Ontology(concepts=tuple(concepts), relations=tuple(relations), name=SEED_NAME).validate()


def load_seed() -> Ontology:
    """The seed ontology as committed in ``data/seed.owl``."""
    return load_owl(SEED_OWL_PATH)


def write_seed(path: Path = SEED_OWL_PATH) -> Path:
    """Regenerate the seed OWL file from the tables; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_owl(seed_ontology(), path)
    return path


if __name__ == "__main__":
    print(f"wrote {write_seed()}")
