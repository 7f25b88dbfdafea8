"""A small ESCO package in the portal's CSV layout, written by the tests themselves.

Real ESCO v1.1.1 URIs, codes and preferred labels of a dozen occupations and
skills, in Finnish, Swedish and English, with the columns, multi-line label
cells and file names of the download, so the importer reads what users have.
"""

from __future__ import annotations

import csv
from pathlib import Path

from esco.importer import PORTAL_COLUMNS

OCC = "http://data.europa.eu/esco/occupation/"
SKILL = "http://data.europa.eu/esco/skill/"
ISCO = "http://data.europa.eu/esco/isco/C"

WELDER = OCC + "7aedaa07-3884-4c5b-88f9-80997b2aa54b"
FORKLIFT_OPERATOR = OCC + "eeac6251-1974-42f5-91ed-513c6c883755"
COOK = OCC + "90f75f67-495d-49fa-ab57-2f320e251d7e"
CHEF = OCC + "1009be17-7efd-45f1-a033-566bf179c588"
KITCHEN_PORTER = OCC + "f756fdab-7726-4c48-bfcc-94ff8810fc08"
HEALTHCARE_ASSISTANT = OCC + "d38c2107-98f2-47b7-8bb4-f69750d51082"
SHOP_ASSISTANT = OCC + "0b15375e-dfdd-4047-9efb-096e0aaee7d2"
SOFTWARE_DEVELOPER = OCC + "f2b15a0e-e65a-438a-affb-29b9d50b77d1"
ELECTRICIAN = OCC + "5dbb9cf0-b226-402c-a295-2f42ef05ff8b"

WELDING = SKILL + "530cb489-d900-46ab-9350-4d50ccd49eea"
FORKLIFT = SKILL + "28cb374e-6261-4133-8371-f9a5470145da"
DISHES = SKILL + "c662be22-f17a-4ba0-894f-d720b20c44cf"
SURFACES = SKILL + "6ff01827-907d-43d8-b6e4-7162c1cf0aca"
CUSTOMER_SERVICE = SKILL + "15a33d76-4640-438d-ae64-fdc0c1d3eebc"
PROGRAMMING = SKILL + "21d2f96d-35f7-4e3f-9745-c533d2dd6e97"
COOKING = SKILL + "f3934441-4bff-4076-9945-e6c51a01c467"
HYGIENE = SKILL + "a34f4fd4-1aff-4941-82d5-542ac94f81c3"

# uri: code, ISCO group, {language: (preferred, alternatives, hidden)}
OCCUPATIONS = {
    WELDER: ("7212.3", "7212", {
        "fi": ("hitsaaja", ["kaarihitsaaja"], []),
        "sv": ("svetsare, manuell", ["svetsare"], []),
        "en": ("welder", ["welding operator", "fabrication welder"], ["weldor"]),
    }),
    FORKLIFT_OPERATOR: ("8344.1", "8344", {
        "fi": ("trukinkuljettaja", ["trukinajaja"], []),
        "sv": ("truckförare", [], []),
        "en": ("forklift operator", ["forklift truck driver", "fork lift"], []),
    }),
    COOK: ("5120.1", "5120", {
        "fi": ("kokki", ["ravintolakokki"], []),
        "sv": ("kokerska", ["kock"], []),
        "en": ("cook", ["restaurant cook", "line cook"], []),
    }),
    CHEF: ("3434.1", "3434", {
        "fi": ("keittiömestari", [], []),
        "sv": ("kock", [], []),
        "en": ("chef", ["head chef"], []),
    }),
    KITCHEN_PORTER: ("9412.2", "9412", {
        "fi": ("keittiöapulainen", [], []),
        "sv": ("köksstädare", [], []),
        "en": ("kitchen porter", ["kitchen assistant", "dishwasher"], []),
    }),
    HEALTHCARE_ASSISTANT: ("5321.1", "5321", {
        "fi": ("lähihoitaja", [], []),
        "sv": ("undersköterska, vård- och specialavdelning och mottagning", [], []),
        "en": ("healthcare assistant", ["nursing assistant"], []),
    }),
    SHOP_ASSISTANT: ("5223.6", "5223", {
        "fi": ("myymäläapulainen", ["myyjä"], []),
        "sv": ("butikssäljare", [], []),
        "en": ("shop assistant", ["sales assistant"], []),
    }),
    SOFTWARE_DEVELOPER: ("2512.4", "2512", {
        "fi": ("ohjelmistokehittäjä", ["ohjelmoija"], []),
        "sv": ("programvaruutvecklare", [], []),
        "en": ("software developer", ["programmer", "software engineer"], []),
    }),
    ELECTRICIAN: ("7411.1.1.1", "7411", {
        "fi": ("sähköasentaja, kotitaloudet", [], []),
        "sv": ("serviceelektriker, hushåll", [], []),
        "en": ("domestic electrician", ["house electrician"], []),
    }),
}  # fmt: skip

# uri: skill type, {language: preferred label}
SKILLS = {
    WELDING: ("knowledge", {
        "fi": "hitsaustekniikat", "sv": "svetstekniker", "en": "welding techniques"}),
    FORKLIFT: ("skill/competence", {
        "fi": "käyttää haarukkatrukkia", "sv": "köra gaffeltruck",
        "en": "operate forklift"}),
    DISHES: ("skill/competence", {
        "fi": "pestä astioita", "sv": "diska", "en": "wash the dishes"}),
    SURFACES: ("skill/competence", {
        "fi": "puhdistaa pintoja", "sv": "rengöra ytor", "en": "clean surfaces"}),
    CUSTOMER_SERVICE: ("knowledge", {
        "fi": "asiakaspalvelu", "sv": "kundservice", "en": "customer service"}),
    PROGRAMMING: ("knowledge", {
        "fi": "tietokoneohjelmointi", "sv": "datorprogrammering",
        "en": "computer programming"}),
    COOKING: ("skill/competence", {
        "fi": "käyttää ruoanvalmistusmenetelmiä",
        "sv": "använda matlagningstekniker", "en": "use cooking techniques"}),
    HYGIENE: ("skill/competence", {
        "fi": "noudattaa hygieniaprosesseja elintarvikkeiden jalostuksen aikana",
        "sv": "följa hygienförfaranden vid livsmedelsberedning",
        "en": "follow hygienic procedures during food processing"}),
}  # fmt: skip

RELATIONS = [
    (WELDER, "essential", WELDING),
    (WELDER, "optional", FORKLIFT),
    (FORKLIFT_OPERATOR, "essential", FORKLIFT),
    (FORKLIFT_OPERATOR, "optional", CUSTOMER_SERVICE),
    (COOK, "essential", COOKING),
    (COOK, "essential", HYGIENE),
    (COOK, "essential", DISHES),
    (KITCHEN_PORTER, "essential", DISHES),
    (KITCHEN_PORTER, "essential", SURFACES),
    (SHOP_ASSISTANT, "essential", CUSTOMER_SERVICE),
    (SOFTWARE_DEVELOPER, "essential", PROGRAMMING),
]

ISCO_GROUPS = {
    "7212": {"fi": "Hitsaajat ja metallinleikkaajat", "en": "Welders and flamecutters"},
    "8344": {"fi": "Trukinkuljettajat", "en": "Lifting truck operators"},
    "5120": {"fi": "Kokit", "en": "Cooks"},
}

OCCUPATION_HEADER = PORTAL_COLUMNS["occupations"]
SKILL_HEADER = PORTAL_COLUMNS["skills"]
ISCO_HEADER = PORTAL_COLUMNS["ISCOGroups"]
RELATION_HEADER = PORTAL_COLUMNS["occupationSkillRelations"]


def write_esco(
    root: Path, languages: tuple[str, ...] = ("fi", "sv", "en"), version: str = "1.1.1"
) -> Path:
    """Write the package as the portal names it; return its folder."""
    folder = root / f"ESCO dataset - v{version} - classification - csv"
    folder.mkdir(parents=True, exist_ok=True)
    for language in languages:
        write_rows(folder / f"occupations_{language}.csv", OCCUPATION_HEADER, [
            ["Occupation", uri, group, labels[language][0],
             "\n".join(labels[language][1]), "\n".join(labels[language][2]),
             "released", "2021-08-19T11:31:40Z", "", "", "",
             "http://data.europa.eu/esco/concept-scheme/occupations", "", code]
            for uri, (code, group, labels) in OCCUPATIONS.items()
        ])  # fmt: skip
        write_rows(folder / f"skills_{language}.csv", SKILL_HEADER, [
            ["KnowledgeSkillCompetence", uri, skill_type, "sector-specific",
             labels[language], "", "", "released", "2021-08-19T11:31:40Z", "", "",
             "http://data.europa.eu/esco/concept-scheme/skills", ""]
            for uri, (skill_type, labels) in SKILLS.items()
        ])  # fmt: skip
        write_rows(folder / f"ISCOGroups_{language}.csv", ISCO_HEADER, [
            ["ISCOGroup", ISCO + code, code, labels.get(language, labels["en"]),
             "released", "", "http://data.europa.eu/esco/concept-scheme/isco", ""]
            for code, labels in ISCO_GROUPS.items()
        ])  # fmt: skip
    write_rows(
        folder / f"occupationSkillRelations_{languages[-1]}.csv",
        RELATION_HEADER,
        [[occ, kind, "skill/competence", skill] for occ, kind, skill in RELATIONS],
    )

    return folder


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
