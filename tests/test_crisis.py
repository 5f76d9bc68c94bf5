"""Crisis language: the labelled set's precision and recall, the hard cases, the resources."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from bot.crisis import (
    country_of_timezone,
    crisis_category,
    is_crisis,
    load_resources,
    normalise,
)

ROOT = Path(__file__).resolve().parent.parent
PHRASES = ROOT / "tests" / "data" / "crisis_phrases.tsv"
SHIPPED_RESOURCES = ROOT / "prompts" / "crisis_resources.toml"


def labelled_phrases() -> list[tuple[bool, str]]:
    with PHRASES.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(row["label"] == "1", row["text"]) for row in rows]


def test_it_has_a_labelled_set_of_at_least_150_rows_with_both_labels_well_represented() -> None:
    phrases = labelled_phrases()
    crises = sum(label for label, _ in phrases)
    assert len(phrases) >= 150
    assert 0.35 <= crises / len(phrases) <= 0.55
    assert len({text for _, text in phrases}) == len(phrases), "a phrase is listed twice"


def test_it_detects_the_labelled_set_with_precision_and_recall_of_at_least_95_percent() -> None:
    phrases = labelled_phrases()
    found = [(label, is_crisis(text), text) for label, text in phrases]
    true_positives = sum(label and alarmed for label, alarmed, _ in found)
    precision = true_positives / sum(alarmed for _, alarmed, _ in found)
    recall = true_positives / sum(label for label, _, _ in found)
    missed = [text for label, alarmed, text in found if label and not alarmed]
    false_alarms = [text for label, alarmed, text in found if alarmed and not label]
    print(
        f"\ncrisis detection on {len(phrases)} phrases "
        f"({sum(label for label, _ in phrases)} crisis): "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    print("missed:", *missed, sep="\n  ")
    print("false alarms:", *false_alarms, sep="\n  ")
    assert precision >= 0.95
    assert recall >= 0.95


@pytest.mark.parametrize(
    "text",
    [
        "I don't see the point of going on",
        "everyone would be better off without me",
        "I've been thinking about ending it",
        "I took all my pills",
        "I want to disappear forever",
        "I wish I could go to sleep and never wake up",
        "I cut myself again last night",
        "I can't keep myself safe tonight",
        "kms",
        "dont want to live",
        "I DONT WANT TO LIVE ANYMORE",
        "i dont want to live anymore",
        "I’m not sure I want to live",
        "I'm not suicidal but I want to die",
        "I keep thinking about killing myself, is that normal?",
        "I haven't told anyone I want to kill myself",
        "I can't go a day without wanting to die",
        "I used to love running, now I want to die",
        "there's no way out except dying",
        "I took too much ketamine and my chest hurts",
        "I can't breathe",
        "my friend is unconscious and won't wake up",
        "I OD'd on my meds last night",
        "I took the whole bottle",
        "I want to fall asleep forever",
        "I don't want to live in this world anymore",
    ],
)
def test_it_alarms_on_crisis_however_it_is_worded(text: str) -> None:
    assert is_crisis(text)


@pytest.mark.parametrize(
    "text",
    [
        "that meeting killed me",
        "I'm dying to try yoga",
        "the old me died in that session and it felt freeing",
        "I felt like I was dying and being reborn, it was beautiful",
        "pure ego death today",
        "killing it at work",
        "I could kill for a coffee",
        "my legs are dead tired",
        "I saw my grandmother who died last year",
        "we talked about my fear of dying",
        "I cut the cord with my past",
        "I overdid it at the gym",
        "this cake is to die for",
        "stuck in a dead end job",
        "I've been killing myself at work to hit this deadline",
        "I cut myself shaving",
        "I'm trying to cut myself some slack",
        "I ran 10 kms this morning",
        "I had my full dose today and it was gentle",
        "I feel odd after the session",
        "I want to make my anxiety disappear",
        "how much ketamine does it take to work?",
        "what's the best way to go about integration?",
        "I wrote a farewell message to my team",
        "my whole world collapsed when he left",
        "if I don't wake up on time I'll miss the infusion",
        "I never wake up rested anymore",
        "my family doesn't need me to fix everything",
        "I never want to live in the city again",
        "laughed so hard I couldn't breathe",
        "the movie was about a man who wants to kill himself",
    ],
)
def test_it_stays_quiet_on_the_metaphors_and_idioms_of_integration_journaling(text: str) -> None:
    assert not is_crisis(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm not suicidal", False),
        ("no thoughts of hurting myself", False),
        ("I would never hurt myself", False),
        ("a whole month without self-harm!", False),
        ("the nurse asked whether I had thoughts of suicide; I haven't", False),
        ("I'm not sure I want to live", True),
        ("I don't think I can stay alive much longer", True),
        ("no one would miss me", True),
    ],
)
def test_it_respects_negation_but_not_uncertainty(text: str, expected: bool) -> None:
    assert is_crisis(text) is expected


def test_it_treats_someone_elses_past_death_as_not_the_writers_crisis() -> None:
    # The judgement call: grief for a suicide years ago is what integration sessions are for;
    # the same person in danger now is a crisis, whoever writes about them.
    assert not is_crisis("the session was about grief for my dad who took his own life years ago")
    assert not is_crisis("My mother tried to kill herself when I was 12")
    assert is_crisis("my sister just told me she's going to kill herself")


def test_it_treats_the_writers_resolved_past_as_past_unless_it_comes_back() -> None:
    assert not is_crisis("I used to self-harm as a teenager; today I felt compassion for her")
    assert not is_crisis("The suicidal thoughts have basically gone since the third infusion")
    assert is_crisis("I was suicidal last year and I can feel it creeping back")


def test_it_names_the_category_of_crisis() -> None:
    assert crisis_category("I want to kill myself") == "suicide"
    assert crisis_category("I burned myself with a lighter") == "self_harm"
    assert crisis_category("he's not breathing") == "medical"
    # An overdose is medical first, whatever else it is: emergency services come first.
    assert crisis_category("I want to die so I took all my pills") == "medical"
    assert crisis_category("I feel calm today") is None


def test_it_normalises_case_apostrophes_accents_and_chat_spelling() -> None:
    assert normalise("I’m  GONNA\tcafé don't") == "im going to cafe dont"


@pytest.mark.parametrize("text", ["", "   ", "💀💀💀", "\n\n", "." * 10_000, "i " * 20_000])
def test_it_never_raises_on_odd_input(text: str) -> None:
    assert not is_crisis(text)


def test_it_takes_microseconds_per_message() -> None:
    texts = [text for _, text in labelled_phrases()]
    started = time.perf_counter()
    for text in texts:
        is_crisis(text)
    per_message = (time.perf_counter() - started) / len(texts)
    # About 0.1 ms here; the bound leaves room for a slow CI machine.
    assert per_message < 0.002


def test_it_loads_the_shipped_resources() -> None:
    resources = load_resources(SHIPPED_RESOURCES)
    assert {"US", "CA", "GB", "IE", "DE", "FR", "AU", "NZ", "NL", "ES", "IN"} <= set(
        resources.by_country
    )
    for country in ("US", "CA"):
        assert any("988" in resource.contact for resource in resources.for_country(country))
    for country in ("GB", "ie"):
        assert any("116 123" in resource.contact for resource in resources.for_country(country))


def test_it_gives_the_default_list_for_an_unknown_or_missing_country() -> None:
    resources = load_resources(SHIPPED_RESOURCES)
    assert resources.for_country("BR") == list(resources.default)
    assert resources.for_country(None) == list(resources.default)
    assert any("findahelpline" in resource.contact for resource in resources.default)


def test_it_reports_each_problem_in_a_broken_resources_file_on_its_own_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crisis_resources.toml"
    path.write_text(
        "[country.UK]\n"
        'resources = [{ name = "Samaritans", contact = "116 123" }]\n'
        "[country.US]\n"
        'resources = [{ name = "988" }, { contact = "911", colour = "red" }]\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="default") as raised:
        load_resources(path)
    assert str(raised.value).splitlines() == [
        "crisis_resources.toml: [default] is missing (shown when a country has no entry)",
        "crisis_resources.toml [country.UK]: not an ISO 3166 country code"
        " (two capitals: US, GB, DE)",
        "crisis_resources.toml [country.US] resource 1: contact is missing",
        "crisis_resources.toml [country.US] resource 2: unknown field 'colour'",
        "crisis_resources.toml [country.US] resource 2: name is missing",
    ]


def test_it_reports_a_resources_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    path = tmp_path / "crisis_resources.toml"
    with pytest.raises(ValueError, match="not found"):
        load_resources(path)
    path.write_text("[default\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_resources(path)


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("Europe/Berlin", "DE"),
        ("America/Toronto", "CA"),
        ("Europe/London", "GB"),
        ("Europe/Dublin", "IE"),
        ("Asia/Kolkata", "IN"),
        ("Europe/Copenhagen", "DK"),
        ("US/Eastern", "US"),
        ("Asia/Calcutta", "IN"),
        ("UTC", None),
        ("Etc/GMT+5", None),
        ("Mars/Olympus_Mons", None),
    ],
)
def test_it_finds_the_country_of_a_time_zone(zone: str, country: str | None) -> None:
    assert country_of_timezone(zone) == country
