"""Crisis language: the held-out figures, the cases issue 12 named, the model's parts, the
resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.crisis import (
    country_of_timezone,
    crisis_category,
    is_crisis,
    load_resources,
    normalise,
)
from bot.crisis.features import Speller, mark_negation
from bot.crisis.training import (
    DEV_SET,
    Example,
    read_examples,
    training_sets,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Written in one go by a helper session that never saw the detector or its training data,
# committed before the one measurement, never edited after it.
HELD_OUT = ROOT / "tests" / "data" / "crisis_heldout.tsv"
SHIPPED_RESOURCES = ROOT / "prompts" / "crisis_resources.toml"


def held_out(path: Path = HELD_OUT) -> list[Example]:
    return read_examples([path])


def figures(examples: list[Example]) -> tuple[float, float]:
    alarmed = [(example.crisis, is_crisis(example.text)) for example in examples]
    hits = sum(crisis and alarm for crisis, alarm in alarmed)
    precision = hits / sum(alarm for _, alarm in alarmed)
    recall = hits / sum(crisis for crisis, _ in alarmed)
    return precision, recall


def test_the_held_out_set_is_large_enough_and_apart_from_the_training():
    examples = held_out()
    assert len(examples) >= 300
    assert sum(example.crisis for example in examples) >= 120
    # Its writer saw neither the model nor its data; ten short messages ("ok", "i want to
    # die", the labelling guide's own examples) were written by both hands all the same.
    trained_on = {example.text for example in read_examples([*training_sets(), DEV_SET])}
    assert len(trained_on & {example.text for example in examples}) <= 10


def test_the_readme_states_the_held_out_figures_the_model_gets():
    precision, recall = figures(held_out())
    print(f"\nheld-out set: precision {precision:.3f}, recall {recall:.3f}")
    readme = README.read_text(encoding="utf-8")
    assert f"precision {precision:.3f} and recall {recall:.3f}" in readme


@pytest.mark.parametrize(
    "text",
    [
        "im not ok i want to die",
        "the ketamine isnt working i want to die",
        "i wnat to die",
        "thinkin about killin myself",
        "I don't deserve to live",
        "I've been giving my things away this week and it feels right",
        "I have a plan now and I know when",
        "I bought a rope today",
        "I won't be here for the next session, thank you for everything",
        "It would be so easy to just not wake up tomorrow",
        "took like 20 of my sleeping pills",
        "Ich will nicht mehr leben",
    ],
)
def test_it_alarms_on_what_the_pattern_detector_missed(text: str) -> None:
    assert is_crisis(text)


@pytest.mark.parametrize(
    "text",
    [
        "the old me died in that session and it felt freeing",
        "pure ego death today",
        "I felt like I was dying and then peace",
        "this traffic is killing me",
        "I'm dying to try yoga",
    ],
)
def test_it_stays_quiet_on_death_and_rebirth_language(text: str) -> None:
    assert not is_crisis(text)


def test_negation_reaches_only_the_words_it_governs() -> None:
    assert mark_negation(["im", "not", "ok", "i", "want", "to", "die"]) == [
        "im",
        "not",
        "~ok",
        "i",
        "want",
        "to",
        "die",
    ]
    assert mark_negation(["no", "thoughts", "of", "hurting", "myself"]) == [
        "no",
        "~thoughts",
        "~of",
        "~hurting",
        "myself",
    ]


def test_it_mends_rare_misspellings_but_not_short_words() -> None:
    speller = Speller({"want": 50, "killing": 20, "die": 40, "dye": 1})
    assert [speller.mend(word) for word in ("wnat", "killin", "dye", "die")] == [
        "want",
        "killing",
        "dye",
        "die",
    ]


def test_it_names_the_category_of_crisis() -> None:
    assert crisis_category("took like 20 of my sleeping pills") == "medical"
    assert crisis_category("thinkin about killin myself") == "suicide"
    assert crisis_category("I feel calm today") is None


def test_it_normalises_case_apostrophes_accents_and_chat_spelling() -> None:
    assert normalise("I’m  GONNA\tcafé don't") == "im going to cafe dont"


@pytest.mark.parametrize("text", ["", "   ", "💀💀💀", "\n\n", "." * 10_000, "x" * 4_000])
def test_it_stays_quiet_on_text_without_words(text: str) -> None:
    assert not is_crisis(text)


def test_it_never_raises_on_odd_input() -> None:
    for text in ("i " * 20_000, "\u202e" * 100, "a\x00b", "🙏" * 3000):
        assert is_crisis(text) in (True, False)
    assert not is_crisis(None)  # type: ignore[arg-type]


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
