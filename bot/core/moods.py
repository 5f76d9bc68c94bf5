"""Moods and treatments as points in time, as a chart or a recap holds them. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MOOD_MIN, MOOD_MAX = 1, 10


@dataclass(frozen=True)
class MoodPoint:
    when: datetime  # aware
    value: int  # 1..10

    def __post_init__(self) -> None:
        require_aware(self.when)
        if not MOOD_MIN <= self.value <= MOOD_MAX:
            raise ValueError(f"mood {self.value} is outside {MOOD_MIN}..{MOOD_MAX}")


@dataclass(frozen=True)
class TreatmentMark:
    when: datetime  # aware
    number: int

    def __post_init__(self) -> None:
        require_aware(self.when)


def require_aware(moment: datetime) -> None:
    # A chart would read a naive time as UTC and draw it hours away from where it belongs.
    if moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone")
