"""From a message to the features the crisis model weighs: the same code trains and detects.

A message is normalised (case, accents, apostrophes, chat spellings), split into tokens, its
rare misspellings mended against the training vocabulary, negation marked only over the few
words it governs, and each token position given its features: the word, the two and three
words starting there, the word two along, and the letter groups of longer words (which is
what lets "suicidel" or "killin" weigh like the words they mean). The model scores windows
of a few words, so one crisis sentence in a long diary entry is not drowned by the rest.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

WINDOW = 16  # tokens a window holds
STRIDE = 8  # tokens between window starts

# Apostrophes are deleted, not spaced, so "don't", "don’t" and "dont" all read "dont"; "OD'd"
# would then read "odd" as in "I feel odd", so it is spelled out first.
_APOSTROPHES = str.maketrans("", "", "'’‘ʼ`´")
_OD_APOSTROPHE = re.compile(r"\bod['’ʼ](?:d|ed)\b")
_TOKEN = re.compile(r"\w+|[.!?;,]")
# Chat spellings and spelled-out negations, rewritten to one form.
_SPELLINGS = {
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "abt": "about",
    "bc": "because",
    "cuz": "because",
    "coz": "because",
    "rn": "right now",
    "idk": "i dont know",
    "u": "you",
    "i am": "im",
    "do not": "dont",
    "does not": "doesnt",
    "did not": "didnt",
    "cannot": "cant",
    "can not": "cant",
    "will not": "wont",
    "would not": "wouldnt",
    "is not": "isnt",
    "are not": "arent",
    "was not": "wasnt",
    "have not": "havent",
    "has not": "hasnt",
}
_SPELLING = re.compile(r"\b(" + "|".join(sorted(_SPELLINGS, key=len, reverse=True)) + r")\b")

# Negation, in the languages the companion's clinics work in. It governs the next few words,
# up to a clause's end: "im not ok i want to die" negates "ok", not "want to die".
NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "dont",
        "doesnt",
        "didnt",
        "wont",
        "wouldnt",
        "cant",
        "couldnt",
        "shouldnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "havent",
        "hasnt",
        "hadnt",
        "nor",
        "without",
        "nothing",
        "nobody",
        "none",
        "nicht",
        "kein",
        "keine",
        "keinen",
        "nie",
        "niemals",
        "nunca",
        "jamas",
        "ni",
        "pas",
        "jamais",
        "rien",
        "aucun",
        "niet",
        "geen",
        "nooit",
        "nao",
        "nem",
    }
)
NEGATION_REACH = 3
_CLAUSE_ENDS = frozenset(
    {
        ".",
        "!",
        "?",
        ";",
        ",",
        "and",
        "but",
        "so",
        "because",
        "then",
        "or",
        "though",
        "although",
        "while",
        "when",
        "if",
        "i",
        "im",
        "ive",
        "id",
        "ill",
        "he",
        "she",
        "they",
        "we",
        "you",
        "hes",
        "shes",
        "theyre",
        "its",
    }
)
NEGATED = "~"
# Words short enough that a one-letter slip makes another word ("die", "dye"): left alone.
_SHORTEST_MENDED = 4
# Longer "words" are links, codes or keyboard mashing: weighed whole, not by their letters.
_LONGEST_SPELLED = 24


def normalise(text: str) -> str:
    """Casefolded, accent-free, apostrophe-free text with chat spellings expanded."""
    if not text.isascii():  # the decomposition is most of the cost; most messages skip it
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = _OD_APOSTROPHE.sub("overdosed", text.casefold()).translate(_APOSTROPHES)
    folded = re.sub(r"\s+", " ", folded)
    return _SPELLING.sub(lambda match: _SPELLINGS[match.group(1)], folded).strip()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Speller:
    """Mends a word the training data never saw into a frequent word one slip away (a letter
    missing, added, changed or two swapped), the commonest when several are."""

    def __init__(self, frequencies: Mapping[str, int], *, known_at: int = 1, target_at: int = 4):
        self._known = {word for word, count in frequencies.items() if count >= known_at}
        self._by_deletion: dict[str, str] = {}
        targets = sorted(
            (word for word, count in frequencies.items() if count >= target_at),
            key=lambda word: (-frequencies[word], word),
        )
        for word in targets:  # commonest first: it keeps each key
            for key in (word, *_deletions(word)):
                self._by_deletion.setdefault(key, word)

    def mend(self, word: str) -> str:
        if len(word) < _SHORTEST_MENDED or word in self._known or not word.isalpha():
            return word
        for key in (word, *sorted(_deletions(word))):
            target = self._by_deletion.get(key)
            if target is not None and abs(len(target) - len(word)) <= 1:
                return target
        return word


def mark_negation(words: Sequence[str]) -> list[str]:
    """The words, those a negation governs prefixed with NEGATED."""
    marked: list[str] = []
    reach = 0
    for word in words:
        if word in NEGATIONS:
            marked.append(word)
            reach = NEGATION_REACH
        elif reach and word not in _CLAUSE_ENDS:
            marked.append(NEGATED + word)
            reach -= 1
        else:
            marked.append(word)
            reach = 0
    return marked


def feature_id(feature: str) -> int:
    """A 64-bit id of a feature: two checksums, so that ids of different features do not meet
    (a feature the training never saw then weighs nothing, not another feature's weight)."""
    raw = feature.encode("utf-8")
    return zlib.crc32(raw) << 32 | zlib.adler32(raw)


@lru_cache(maxsize=20_000)
def _word_features(word: str) -> tuple[int, ...]:
    """The word itself and, for words of ordinary length, its groups of three and four
    letters, each group once (a 4,000-letter "xxxx..." is one odd word, not 8,000 signals)."""
    found = {feature_id("w:" + word)}
    if _SHORTEST_MENDED <= len(word) <= _LONGEST_SPELLED and not word.startswith(NEGATED):
        padded = f"<{word}>"
        for size in (3, 4):
            found.update(
                feature_id(f"c:{padded[i : i + size]}") for i in range(len(padded) - size + 1)
            )
    return tuple(sorted(found))


def position_features(words: Sequence[str]) -> list[list[int]]:
    """For each token position, the ids of the features that start there."""
    marked = mark_negation(words)
    count = len(words)
    positions: list[list[int]] = []
    for i in range(count):
        found = list(_word_features(marked[i]))
        if i + 1 < count:
            found.append(feature_id(f"b:{words[i]} {words[i + 1]}"))
        if i + 2 < count:
            found.append(feature_id(f"t:{words[i]} {words[i + 1]} {words[i + 2]}"))
            found.append(feature_id(f"s:{words[i]} _ {words[i + 2]}"))
        positions.append(found)
    return positions


def windows(count: int) -> Iterable[range]:
    """Token ranges of at most WINDOW tokens, STRIDE apart, covering every token."""
    if count <= WINDOW:
        yield range(count)
        return
    start = 0
    while True:
        yield range(start, min(start + WINDOW, count))
        if start + WINDOW >= count:
            return
        start += STRIDE
