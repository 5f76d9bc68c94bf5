"""Training the crisis model from labelled sets: `python -m bot crisis train`.

Reproducible: the same sets give the same model.json, byte for byte (no randomness; numpy
sums in a fixed order). Logistic regression over hashed features, trained on windows: every
window of a safe message is a safe example; a crisis message longer than one window is a bag
whose crisis lies in some window, taken (after a first model has been trained on the short
messages) to be the window the model scores highest, and the model trained again. Category
heads (medical, suicide, self_harm) are trained on the crisis windows alone.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.crisis.features import Speller, position_features, tokens, windows
from bot.crisis.model import CATEGORIES, FORMAT, CrisisModel, pack

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

TRAINING_DIR = Path(__file__).resolve().parent / "training"
# Written apart from the training sets, by another hand: it sets the threshold, nothing else.
DEV_SET = TRAINING_DIR / "dev" / "dev.tsv"
# Everyday messages set apart from the training: the threshold must leave nearly all of them be.
ORDINARY_DEV_SET = TRAINING_DIR / "dev" / "ordinary.tsv"
LABELS = {"crisis", "safe"}
# The model leans towards alarming: a missed crisis costs far more than a needless list of
# helplines. Crisis windows weigh this much more than safe ones in training...
CRISIS_WEIGHT = 2.0
# ...and the threshold is the lowest that keeps this precision on the development set and
# alarms on no more than this share of its safe messages (most of them hard ones): a net that
# answered one ordinary entry in fifteen with helplines would soon be ignored.
TARGET_PRECISION = 0.9
MAX_FALSE_ALARMS = 0.04
# ...and on no more than this share of everyday messages, which most entries are.
MAX_ORDINARY_ALARMS = 0.01
# No penalty on the weights: stopping after a few gentle steps keeps them small, and the
# development set preferred that to an L2 penalty at every strength tried (1e-3 to 1e-5).
STEPS = 250
LEARNING_RATE = 0.03
MIL_ROUNDS = 3
MIN_MESSAGES = 2
# Weights below these are left out of model.json, which keeps it small.
SMALLEST_WEIGHT = 0.01
SMALLEST_CATEGORY_WEIGHT = 0.05


@dataclass(frozen=True)
class Example:
    crisis: bool
    category: str  # medical, suicide, self_harm, or "-"
    text: str


def read_examples(paths: Iterable[Path]) -> list[Example]:
    """Rows of label<TAB>category<TAB>text; lines starting with # are comments."""
    examples = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as file:
            for number, row in enumerate(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) != 3 or row[0] not in LABELS:
                    raise ValueError(f"{path.name} line {number + 1}: not label, category, text")
                label, category, text = row
                if (label == "crisis") != (category in CATEGORIES):
                    raise ValueError(f"{path.name} line {number + 1}: label and category differ")
                examples.append(Example(label == "crisis", category, text))
    return examples


def training_sets() -> list[Path]:
    return sorted(TRAINING_DIR.glob("*.tsv"))


def vocabulary(examples: Sequence[Example]) -> dict[str, int]:
    counts = Counter(word for example in examples for word in tokens(example.text))
    return {word: count for word, count in sorted(counts.items()) if word.isalpha()}


class _Design:
    """Rows of feature columns as flat arrays, for fast sums and gradients."""

    def __init__(self, rows: Sequence[Sequence[int]], columns: int) -> None:
        import numpy as np

        lengths = np.array([len(row) for row in rows], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lengths = lengths
        self.indices = np.array([b for row in rows for b in row], dtype=np.int64)
        self.rows = len(rows)
        self.columns = columns

    def scores(self, weights: NDArray[np.float64], bias: float) -> NDArray[np.float64]:
        import numpy as np

        gathered = weights[self.indices]
        sums = np.add.reduceat(gathered, self.starts) if len(gathered) else gathered
        return np.where(self.lengths > 0, sums, 0.0) + bias

    def gradient(self, residuals: NDArray[np.float64]) -> NDArray[np.float64]:
        import numpy as np

        per_index = np.repeat(residuals, self.lengths)
        return np.bincount(self.indices, weights=per_index, minlength=self.columns).astype(
            np.float64
        )


def fit(
    rows: Sequence[Sequence[int]],
    columns: int,
    targets: Sequence[float],
    sample_weights: Sequence[float],
) -> tuple[NDArray[np.float64], float]:
    """Weighted logistic regression by full-batch Adam, stopped early: deterministic."""
    import numpy as np

    design = _Design(rows, columns)
    y = np.array(targets, dtype=np.float64)
    sw = np.array(sample_weights, dtype=np.float64)
    sw = sw / sw.sum()
    weights = np.zeros(columns)
    bias = 0.0
    m, v = np.zeros(columns), np.zeros(columns)
    mb = vb = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        scores = design.scores(weights, bias)
        probabilities = 1.0 / (1.0 + np.exp(-np.clip(scores, -30, 30)))
        residuals = (probabilities - y) * sw
        grad = design.gradient(residuals)
        grad_bias = float(residuals.sum())
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        mb = beta1 * mb + (1 - beta1) * grad_bias
        vb = beta2 * vb + (1 - beta2) * grad_bias * grad_bias
        correction1, correction2 = 1 - beta1**step, 1 - beta2**step
        weights -= LEARNING_RATE * (m / correction1) / (np.sqrt(v / correction2) + eps)
        bias -= LEARNING_RATE * (mb / correction1) / (np.sqrt(vb / correction2) + eps)
    return weights, bias


class _Featuriser:
    """Messages to window rows of feature columns. Only features seen in MIN_MESSAGES training
    messages have a column: one seen once would learn that message by heart, and a feature
    without a column has no weight in the shipped model."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.vocabulary = vocabulary(examples)
        self.speller = Speller(self.vocabulary)
        seen = Counter(
            feature
            for example in examples
            for feature in {f for found in self._positions(example.text) for f in found}
        )
        kept = sorted(feature for feature, count in seen.items() if count >= MIN_MESSAGES)
        self.columns = {feature: column for column, feature in enumerate(kept)}

    def _positions(self, text: str) -> list[list[int]]:
        return position_features([self.speller.mend(word) for word in tokens(text)])

    def bag(self, text: str) -> list[list[int]]:
        positions = self._positions(text)
        rows = []
        for window in windows(len(positions)):
            # Each feature once, as CrisisModel.score counts it.
            row = {
                column
                for i in window
                for feature in positions[i]
                if (column := self.columns.get(feature)) is not None
            }
            rows.append(sorted(row))
        return rows

    def weights_by_feature(
        self, weights: NDArray[np.float64], smallest: float
    ) -> dict[int, float]:
        """The weights worth shipping: the rest change no score by more than rounding."""
        return {
            feature: float(weights[column])
            for feature, column in self.columns.items()
            if abs(weights[column]) >= smallest
        }


def train(
    examples: Sequence[Example], dev: Sequence[Example], ordinary: Sequence[Example]
) -> dict[str, object]:
    """The model, as model.json holds it: weights from `examples`, threshold from `dev` and the
    `ordinary` messages set apart."""
    featuriser = _Featuriser(examples)
    bags = [featuriser.bag(example.text) for example in examples]
    columns = len(featuriser.columns)
    safe_rows = [
        row
        for example, bag in zip(examples, bags, strict=True)
        if not example.crisis
        for row in bag
    ]
    crisis_bags = [
        (example, bag)
        for example, bag in zip(examples, bags, strict=True)
        if example.crisis and bag
    ]
    # Multiple-instance learning: a long crisis message holds its crisis in some window. A
    # first model learns from the short ones; each round then takes the window it scores
    # highest in each long one.
    chosen = [bag[0] for _, bag in crisis_bags if len(bag) == 1]
    for _ in range(MIL_ROUNDS):
        rows = safe_rows + chosen
        targets = [0.0] * len(safe_rows) + [1.0] * len(chosen)
        sample = [1.0] * len(safe_rows) + [CRISIS_WEIGHT] * len(chosen)
        weights, bias = fit(rows, columns, targets, sample)
        chosen = [_best(bag, columns, weights, bias)[1] for _, bag in crisis_bags]
    categories: dict[str, object] = {}
    for name in CATEGORIES:
        targets = [1.0 if example.category == name else 0.0 for example, _ in crisis_bags]
        head, head_bias = fit(chosen, columns, targets, [1.0] * len(chosen))
        categories[name] = {
            "bias": round(head_bias, 6),
            "weights": pack(featuriser.weights_by_feature(head, SMALLEST_CATEGORY_WEIGHT)),
        }
    model: dict[str, object] = {
        "format": FORMAT,
        "threshold": 0.0,
        "bias": round(bias, 6),
        "weights": pack(featuriser.weights_by_feature(weights, SMALLEST_WEIGHT)),
        "categories": categories,
        "vocabulary": featuriser.vocabulary,
        "trained_on": {
            "messages": len(examples),
            "crisis": sum(example.crisis for example in examples),
        },
    }
    model["threshold"] = _threshold(CrisisModel(model), dev, ordinary)
    return model


def _best(
    bag: list[list[int]], columns: int, weights: NDArray[np.float64], bias: float
) -> tuple[float, list[int]]:
    """The highest window score of a message, and that window."""
    if not bag:
        return -1e9, []
    scores = _Design(bag, columns).scores(weights, bias)
    index = int(scores.argmax())
    return float(scores[index]), bag[index]


def _threshold(model: CrisisModel, dev: Sequence[Example], ordinary: Sequence[Example]) -> float:
    """The lowest threshold at which the development set keeps TARGET_PRECISION and
    MAX_FALSE_ALARMS and the ordinary messages MAX_ORDINARY_ALARMS, as the model that ships
    scores them (weights rounded as model.json holds them). Messages whose words give no
    evidence never alarm (CrisisModel.alarms)."""

    def alarmable(examples: Sequence[Example]) -> list[tuple[float, bool]]:
        scored = [(model.score(example.text), example.crisis) for example in examples]
        return sorted((s.score, crisis) for s, crisis in scored if s.evidence > 0)

    candidates, everyday = alarmable(dev), [score for score, _ in alarmable(ordinary)]
    safe = sum(not example.crisis for example in dev)
    for index, (score, _) in enumerate(candidates):
        above = candidates[index:]
        hits = sum(crisis for _, crisis in above)
        if (
            hits >= TARGET_PRECISION * len(above)
            and len(above) - hits <= MAX_FALSE_ALARMS * safe
            and sum(s >= score for s in everyday) <= MAX_ORDINARY_ALARMS * len(ordinary)
        ):
            return score
    return candidates[-1][0] if candidates else 0.0


def write_model(model: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(model, sort_keys=True, indent=0) + "\n", encoding="utf-8")
