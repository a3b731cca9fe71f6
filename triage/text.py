"""Text handling shared by training and serving: normalisation against obfuscation, and windows over long texts.

Every model applies `normalize` inside its own `predict` (and its trainer applies it to the training texts), so
the same function sees a ticket in training and in serving. `windows` cuts a long ticket into overlapping word
windows; a model scores each window and keeps the most severe one, so a threat at the end of a long report is
seen whole instead of being truncated away or diluted by the benign text around it. `script_of` names a text's
dominant writing system (the decision log and the drift report use it).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

# Invisible characters used to split words (ZWSP, ZWJ, word joiner, BOM, soft hyphen, bidirectional controls, tag
# characters: every format character, category Cf) and the invisible ones of other categories: combining grapheme
# joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors.
_INVISIBLE_EXTRA = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0,
     *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
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

# Digits and symbols standing for letters inside a word ("k1ll", "h@te", "b!tch").
_STAND_INS = "0134578 9@$!|€".replace(" ", "")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"})

# A word holding a stand-in or a non-ASCII letter: the only words `_deobfuscate_word` can change.
_CANDIDATE = "0-9@$!|\x80-\U0010ffff"
_WORD = re.compile(rf"(?<!\S)[^\s{_CANDIDATE}]*[{_CANDIDATE}]\S*")
_LATIN = re.compile(r"[A-Za-z]")
# Addresses are kept as written: spaced-letter joining and repeat folding would break 'www.' and 'a-b_c' in them.
_ADDRESS = re.compile(r"(?:\b(?:https?://|www\.)\S+|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)", re.IGNORECASE)
# Single letters spelled apart: four or more separated by spaces ('k i l l'; three would join 'u r a'), or three or
# more separated by a dot, dash, underscore or asterisk ('d.i.e', 'k-i-l-l').
_SPACED = re.compile(r"(?<!\w)((?:[^\W\d_] ){3,}[^\W\d_]|(?:[^\W\d_][.\-_*]){2,}[^\W\d_])(?!\w)")
_SEPARATORS = re.compile(r"[ .\-_*]")
# A character other than a digit repeated three or more times: 'kiiiill' -> 'kill' (runs of two are ordinary
# spelling; '1000' is a number, not a repeat).
_REPEATS = re.compile(r"(\D)\1{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Any run of whitespace but newlines (tabs, CR, no-break, ogham, line and paragraph separators) is one space.
_SPACES = re.compile(r"[^\S\n]+")


_LEAD = "(\"'[{<"
_TRAIL = ".,;:?!\"')]}>"
_LEET_CORE = re.compile(r"^[A-Za-z0-9@$!|€]+$")
_DIGIT_RUN = re.compile(r"\d\d")
# Passes of the whole normalisation until nothing changes (one step can expose work for another: joining 'p а y p'
# makes a Latin word of a Cyrillic letter); two in practice.
_MAX_PASSES = 8


def _leet_core(core: str) -> bool:
    """A word spelled with stand-ins: mostly Latin letters, a stand-in between letters (a digit only there: '1st',
    '3pm', 'mp3' are not leetspeak), no number in it, and no leading '@' (a mention)."""
    if len(core) < 3 or core.isalpha() or not _LEET_CORE.match(core) or _DIGIT_RUN.search(core):
        return False
    letters = sum(ch.isascii() and ch.isalpha() for ch in core)
    if letters < 2 or letters * 2 < len(core):
        return False
    first = next(i for i, ch in enumerate(core) if ch.isalpha())
    last = max(i for i, ch in enumerate(core) if ch.isalpha())
    return any(
        ch in _STAND_INS and (first < i < last or (not ch.isdigit() and not (i == 0 and ch == "@")))
        for i, ch in enumerate(core)
    )


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


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def _strip_invisible(text: str) -> str:
    """Drop format and invisible characters, and combining marks on anything but a letter of a non-Latin script.

    Marks stacked on Latin letters, digits or spaces ('z̴a̴l̴g̴o̴') are noise once NFKC has composed the accented
    letters; on Devanagari, Thai, Hebrew or Arabic letters they are part of the spelling and are kept.
    """
    out: list[str] = []
    base = " "
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf" or ord(ch) in _INVISIBLE_EXTRA:
            continue
        if category[0] == "M":
            if (base.isalpha() and not _is_latin(base)) or not unicodedata.combining(ch):
                out.append(ch)
            continue
        base = ch
        out.append(ch)
    return "".join(out)


def _deobfuscate(segment: str) -> str:
    segment = _REPEATS.sub(r"\1", segment)
    segment = _SPACED.sub(_join_spaced, segment)
    segment = _WORD.sub(lambda m: _deobfuscate_word(m.group(0)), segment)
    return _REPEATS.sub(r"\1", segment)


def _one_pass(text: str) -> tuple[str, bool]:
    """One pass of every step; also whether the obfuscation steps (after case, NFKC and spacing) changed anything."""
    # NFKC folds full-width letters, ligatures, mathematical alphanumerics and circled letters into plain ones.
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        text = _strip_invisible(text)
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    pieces: list[str] = []
    end = 0
    for match in _ADDRESS.finditer(text):
        pieces.append(_deobfuscate(text[end:match.start()]))
        pieces.append(match.group(0))
        end = match.end()
    pieces.append(_deobfuscate(text[end:]))
    done = "".join(pieces)
    return done.strip(), done != text


@lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return _normalize(text)


def _normalize(text: str) -> str:
    for _ in range(_MAX_PASSES):
        done, deobfuscated = _one_pass(text)
        # On ASCII text case, spacing and control characters settle in one pass: only a change by the obfuscation
        # steps (which can expose more) calls for another.
        if done == text or (not deobfuscated and done.isascii()):
            return done
        text = done
    return text


def normalize(text: str) -> str:
    """One canonical form of a ticket's text for the models: obfuscation undone, case folded, spacing collapsed.

    Undoes zero-width, format and control characters, full-width and stylised letters (NFKC), Latin look-alikes from
    other scripts inside Latin words, digit and symbol stand-ins inside words ('k1ll' -> 'kill'), spaced-out letters
    ('k i l l' -> 'kill') and letters repeated three or more times; numbers, URLs and e-mail addresses are kept.
    Idempotent (passes run until nothing changes); never raises on a str, lone surrogates included.
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


_SCRIPTS = (("LATIN", "latin"), ("CYRILLIC", "cyrillic"), ("ARABIC", "arabic"), ("HANGUL", "hangul"),
            ("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("CJK", "cjk"), ("GREEK", "greek"), ("HEBREW", "hebrew"),
            ("DEVANAGARI", "devanagari"), ("THAI", "thai"))


@lru_cache(maxsize=65_536)
def _script_of_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return next((s for prefix, s in _SCRIPTS if name.startswith(prefix)), "other")


def script_of(text: str, sample: int = 400) -> str:
    """The dominant writing system of a text's letters (the language mix a log can see without a detector)."""
    head = text[:sample]
    if head.isascii():
        return "latin" if any(ch.isalpha() for ch in head) else "none"
    counts: Counter[str] = Counter(_script_of_char(ch) for ch in head if ch.isalpha())
    return counts.most_common(1)[0][0] if counts else "none"
