"""The GRID sentence grammar (Cooke et al. 2006) and its file-id convention.

A sentence is ``command color preposition letter digit adverb``; its file id is the word initials,
with the digit written as a numeral: "bin blue at f two now" -> ``bbaf2n``.
"""

from __future__ import annotations

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLORS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")  # GRID omits 'w' (three syllables)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS: tuple[tuple[str, ...], ...] = (COMMANDS, COLORS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)

N_SENTENCES = 4 * 4 * 4 * 25 * 10 * 4  # 64,000


def sample_sentence(rng: np.random.Generator) -> list[str]:
    """Draw one six-word GRID sentence uniformly from the grammar."""
    return [slot[int(rng.integers(len(slot)))] for slot in SLOTS]


def sentence_id(words: list[str]) -> str:
    """GRID file id of a sentence: word initials, the digit as a numeral."""
    if len(words) != 6:
        raise ValueError(f"a GRID sentence has 6 words, got {len(words)}: {words}")
    for w, slot in zip(words, SLOTS, strict=True):
        if w not in slot:
            raise ValueError(f"{w!r} is not a valid word for this GRID slot ({'/'.join(slot[:5])}...)")
    return "".join(str(DIGITS.index(w)) if w in DIGITS else w[0] for w in words)


def words_from_id(file_id: str) -> list[str] | None:
    """Decode a GRID file id back to its words, or ``None`` when it does not follow the grammar.

    The id is unambiguous: every slot's words have distinct initials, the letter slot is the letter.
    """
    if len(file_id) != 6:
        return None
    out: list[str] = []
    for ch, slot in zip(file_id, SLOTS, strict=True):
        if slot is LETTERS:
            word = ch if ch in LETTERS else None
        elif slot is DIGITS:
            word = DIGITS[int(ch)] if ch.isdigit() else None
        else:
            word = next((w for w in slot if w[0] == ch), None)
        if word is None:
            return None
        out.append(word)
    return out
