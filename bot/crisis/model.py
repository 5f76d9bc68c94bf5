"""The learned crisis model: linear weights over hashed features, shipped in model.json.

It scores every window of a message and keeps the highest score, so a long entry alarms on
its one crisis sentence. `python -m bot crisis train` rebuilds model.json from the training
sets in bot/crisis/training/ (bot/crisis/training.py); nothing is downloaded at run time.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from array import array
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from bot.crisis.features import Speller, position_features, tokens, windows

CrisisCategory = Literal["medical", "suicide", "self_harm"]
CATEGORIES: tuple[CrisisCategory, ...] = ("medical", "suicide", "self_harm")
MODEL_PATH = Path(__file__).resolve().parent / "model.json"
FORMAT = "integration-companion/crisis-model/1"


def pack(weights: dict[int, float]) -> str:
    """Feature ids and their float32 weights, ascending ids, compressed, as text."""
    ids = sorted(weights)
    raw = (
        len(ids).to_bytes(4, "little")
        + array("Q", ids).tobytes()
        + array("f", (weights[i] for i in ids)).tobytes()
    )
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack(text: str) -> dict[int, float]:
    raw = zlib.decompress(base64.b64decode(text))
    count = int.from_bytes(raw[:4], "little")
    ids, values = array("Q"), array("f")
    ids.frombytes(raw[4 : 4 + 8 * count])
    values.frombytes(raw[4 + 8 * count :])
    return dict(zip(ids, values, strict=True))


@dataclass(frozen=True)
class Scored:
    score: float  # the highest window's log-odds of a crisis
    evidence: float  # how much that window's words added to the prior
    features: tuple[int, ...]  # that window's feature ids


class CrisisModel:
    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a crisis model of format {FORMAT}")
        self.threshold = float(data["threshold"])
        self._bias = float(data["bias"])
        self._weights = unpack(data["weights"])
        self._category_bias = {
            name: float(data["categories"][name]["bias"]) for name in CATEGORIES
        }
        self._category_weights = {
            name: unpack(data["categories"][name]["weights"]) for name in CATEGORIES
        }
        self.speller = Speller(data["vocabulary"])

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> CrisisModel:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def words(self, text: str) -> list[str]:
        return [self.speller.mend(word) for word in tokens(text)]

    def score(self, text: str) -> Scored:
        """The highest score of any window of the text, and that window's features."""
        positions = position_features(self.words(text))
        if not positions:
            return Scored(-math.inf, -math.inf, ())
        weights = self._weights
        best, best_features = -math.inf, frozenset[int]()
        for window in windows(len(positions)):
            # Each feature once: "i i i i" is not four times the evidence of "i".
            features = frozenset(f for i in window for f in positions[i])
            total = self._bias + sum(weights.get(f, 0.0) for f in features)
            if total > best:
                best, best_features = total, features
        return Scored(best, best - self._bias, tuple(sorted(best_features)))

    def alarms(self, scored: Scored) -> bool:
        """Above the threshold, on the strength of the words: words it does not know (another
        script, a long link, keyboard mashing) never alarm by themselves."""
        return scored.score >= self.threshold and scored.evidence > 0

    def category(self, scored: Scored) -> CrisisCategory:
        """What kind of crisis the highest window speaks of."""
        return max(
            CATEGORIES,
            key=lambda name: (
                self._category_bias[name]
                + sum(self._category_weights[name].get(f, 0.0) for f in scored.features)
            ),
        )


@cache
def shipped_model() -> CrisisModel:
    return CrisisModel.load()
