"""Text handling shared by training and serving: normalisation against obfuscation, and windows over long texts.

Every model applies `normalize` inside its own `predict` (and its trainer applies it to the training texts), so
the same function sees a ticket in training and in serving. `windows` cuts a long ticket into overlapping word
windows; a model scores each window and keeps the most severe one, so a threat at the end of a long report is
seen whole instead of being truncated away or diluted by the benign text around it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

# Zero-width and formatting characters used to split words invisibly (ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft hyphen,
# Mongolian vowel separator, invisible operators) and bidirectional controls.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, *range(0x200B, 0x2010),
     *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0x3164, 0xFEFF, 0xFFA0]
)

# Letters of other scripts drawn like Latin letters (Unicode confusables, the ones seen in evasion). Applied only
# inside words that also hold a Latin letter, so Greek, Cyrillic and Armenian text is left alone.
_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ԛ": "q", "ԝ": "w", "һ": "h",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t", "У": "y",
    "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w", "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ζ": "z",
    # Latin look-alikes outside ASCII that NFKC keeps
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ƒ": "f",
})

# Digits and symbols standing for letters inside a word ("k1ll", "h@te", "$tupid").
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"})

_WORD = re.compile(r"\S+")
_LATIN = re.compile(r"[A-Za-z]")
# Single letters spelled apart: four or more separated by spaces ('k i l l'; three would join 'u r a'), or three or
# more separated by a dot, dash, underscore or asterisk ('d.i.e', 'k-i-l-l').
_SPACED = re.compile(r"(?<![^\W\d_])((?:[^\W\d_] ){3,}[^\W\d_]|(?:[^\W\d_][.\-_*]){2,}[^\W\d_])(?![^\W\d_])")
_SEPARATORS = re.compile(r"[ .\-_*]")
# A character repeated three or more times: 'kiiiill' -> 'kill' (runs of two are ordinary spelling).
_REPEATS = re.compile(r"(.)\1{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\r\f\v]+")


_LEAD = "(\"'[{<"
_TRAIL = ".,;:?!\"')]}>"
_LEET_CORE = re.compile(r"^[A-Za-z0-9@$!|€]+$")
_DIGIT_RUN = re.compile(r"\d\d")


def _leet_core(core: str) -> bool:
    """A word spelled with stand-ins: mostly Latin letters, one or more of 0-9 @ $ ! | €, no number in it."""
    if len(core) < 3 or core.isalpha() or not _LEET_CORE.match(core) or _DIGIT_RUN.search(core):
        return False
    letters = sum(ch.isascii() and ch.isalpha() for ch in core)
    return letters >= 2 and letters * 2 >= len(core)


def _deobfuscate_word(word: str) -> str:
    if _LATIN.search(word) and not word.isascii():
        word = word.translate(_HOMOGLYPHS)
    head = len(word) - len(word.lstrip(_LEAD))
    tail = len(word.rstrip(_TRAIL))
    core = word[head:tail]
    if _leet_core(core):
        word = word[:head] + core.translate(_LEET) + word[tail:]
    return word


def _join_spaced(match: re.Match[str]) -> str:
    return _SEPARATORS.sub("", match.group(1))


@lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return _normalize(text)


def _normalize(text: str) -> str:
    # NFKC folds full-width letters, ligatures, mathematical alphanumerics and circled letters into plain ones.
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_INVISIBLE)
    # Combining marks stacked on letters ('z̴a̴l̴g̴o̴') are noise; accents on a precomposed letter are kept.
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _WORD.sub(lambda m: _deobfuscate_word(m.group(0)), text)
    text = _SPACED.sub(_join_spaced, text)
    text = _REPEATS.sub(r"\1", text)
    return text.strip().lower()


def normalize(text: str) -> str:
    """One canonical form of a ticket's text for the models: obfuscation undone, case folded, spacing collapsed.

    Undoes zero-width and control characters, full-width and stylised letters (NFKC), Latin look-alikes from other
    scripts inside Latin words, digit and symbol stand-ins inside words ('k1ll' -> 'kill'), spaced-out letters
    ('k i l l' -> 'kill') and letters repeated three or more times. Idempotent; never returns more characters than
    NFKC gives, plus nothing.
    """
    return _normalize_cached(text) if len(text) <= 512 else _normalize(text)


def normalize_all(texts: Sequence[str]) -> list[str]:
    """`normalize` over a batch."""
    return [normalize(t) for t in texts]


def windows(text: str, size: int, stride: int, max_windows: int) -> list[str]:
    """Overlapping windows of `size` words every `stride` words; a text of at most `size` words is one window.

    At most `max_windows` windows are returned, which bounds the cost of a very long ticket: beyond that they are
    spread evenly from the first to the last (the end of a report is always covered).
    """
    if size < 1 or not 1 <= stride <= size or max_windows < 1:
        raise ValueError(f"need size >= 1, 1 <= stride <= size and max_windows >= 1 (got {size}, {stride}, "
                         f"{max_windows})")
    words = text.split()
    if len(words) <= size:
        return [text]
    starts = list(range(0, len(words) - size + 1, stride))
    if starts[-1] != len(words) - size:
        starts.append(len(words) - size)
    if len(starts) > max_windows:
        picks = [round(i * (len(starts) - 1) / (max_windows - 1)) for i in range(max_windows)] if max_windows > 1 \
            else [len(starts) - 1]
        starts = [starts[i] for i in sorted(set(picks))]
    return [" ".join(words[s:s + size]) for s in starts]
