"""Crisis language and crisis resources: pure, no Telegram, no database, no network.

Detection is a small learned model (bot/crisis/model.py) shipped in model.json and rebuilt by
`python -m bot crisis train` from the labelled sets in bot/crisis/training/. It leans towards
alarming: a missed crisis costs far more than a needless list of helplines.
"""

from __future__ import annotations

from bot.crisis.features import normalise
from bot.crisis.model import CrisisCategory, shipped_model
from bot.crisis.resources import (
    CrisisResources,
    Resource,
    country_of_timezone,
    is_country_code,
    load_resources,
)

__all__ = [
    "CrisisCategory",
    "CrisisResources",
    "Resource",
    "country_of_timezone",
    "crisis_category",
    "is_country_code",
    "is_crisis",
    "load_resources",
    "normalise",
]


def crisis_category(text: str) -> CrisisCategory | None:
    """The kind of crisis the text expresses, or None."""
    if not isinstance(text, str):  # a caller's None or bytes must not break a reply
        return None
    model = shipped_model()
    scored = model.score(text)
    return model.category(scored) if model.alarms(scored) else None


def is_crisis(text: str) -> bool:
    """True when the text expresses suicidal thoughts, self-harm or a medical emergency."""
    if not isinstance(text, str):
        return False
    model = shipped_model()
    return model.alarms(model.score(text))
