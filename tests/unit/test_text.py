"""Text normalisation against obfuscation, and word windows over long texts."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from triage.text import normalize, normalize_all, script_of, windows

# ------------------------------------------------------------------------------------------------ obfuscation undone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digit and symbol stand-ins inside words
        ("I will k1ll you", "i will kill you"),
        ("I h@te you", "i hate you"),
        ("you b!tch", "you bitch"),
        ("$tupid", "stupid"),
        ("h3ll0 there", "hello there"),
        ("k1ll3r.", "killer."),
        ("(k1ll)", "(kill)"),
        # spaced-out and separated letters
        ("I will K I L L you", "i will kill you"),
        ("k.i.l.l them", "kill them"),
        ("k-i-l-l them", "kill them"),
        ("d_i_e", "die"),
        # repeated letters
        ("kiiiiill yourself", "kill yourself"),
        ("I HAAAATE you", "i hate you"),
        ("kIiIll", "kill"),  # mixed-case repeats fold too
        # homoglyphs inside Latin words
        ("p\u0430yp\u0430l login", "paypal login"),  # Cyrillic а
        ("\u041a\u0456ll", "kill"),  # Cyrillic К and і
        ("vi\u03bflence", "violence"),  # Greek ο
        # zero-width, format and control characters
        ("k\u200bi\u200cl\u200dl", "kill"),
        ("ki\u00adll", "kill"),  # soft hyphen
        ("k\u2060ill\ufeff", "kill"),  # word joiner, BOM
        ("ki\U000e0041ll", "kill"),  # a tag character (invisible text smuggling)
        ("ki\ufe0fll", "kill"),  # variation selector
        ("kill\x00 you\x07", "kill you"),
        ("\u202ekill\u202c", "kill"),  # bidi override
        # NFKC: full-width, mathematical, ligatures
        ("\uff4b\uff49\uff4c\uff4c", "kill"),
        ("\U0001d424\U0001d422\U0001d425\U0001d425", "kill"),  # mathematical bold
        ("\ufb01ght", "fight"),
        # combining marks stacked on Latin letters
        ("z\u0334a\u0334l\u0334g\u0334o\u0334", "zalgo"),
        ("k\u0336i\u0336l\u0336l\u0336", "kill"),
        # case and spacing
        ("KILL\t\tYOU  NOW", "kill you now"),
        ("  padded  ", "padded"),
        ("\u0130stanbul", "istanbul"),  # Turkish dotted I does not leave a stray combining dot
    ],
)
def test_obfuscation_is_undone(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_a_threat_in_leetspeak_reads_as_the_plain_threat() -> None:
    assert "kill" in normalize("I will k1ll you").split()
    assert normalize("I w1ll k i l l y0u") == normalize("I will kill you")
    assert normalize("ＩＮ　ＨＡＴＥ") == "in hate"


@pytest.mark.parametrize(
    "text",
    [
        "Привет, как дела? Всё хорошо.",  # Russian
        "こんにちは、元気ですか？今日はいい天気ですね。",  # Japanese
        "Καλημέρα, τι κάνεις;",  # Greek
        "Ação, coração e São Paulo não são iguais.",  # Portuguese accents
        "नमस्ते दुनिया",  # Devanagari: virama and vowel signs are spelling, not noise
        "สวัสดีที่รัก",  # Thai tone marks
        "שָׁלוֹם",  # Hebrew points
        "مَرْحَبًا",  # Arabic harakat
        "안녕하세요",  # Korean
    ],
)
def test_other_scripts_are_unchanged_apart_from_case(text: str) -> None:
    assert normalize(text) == unicodedata.normalize("NFKC", text).lower()


def test_cyrillic_and_greek_words_keep_their_letters() -> None:
    # Homoglyph folding only inside words that also hold a Latin letter.
    assert normalize("Москва") == "москва"
    assert normalize("ΚΟΣΜΟΣ") == "κοσμος"


@pytest.mark.parametrize(
    "text",
    [
        "in 2024 we paid $1000 for 3000 items",
        "covid19 and covid-19 cases",
        "call 555-0100 at 7am or 3pm",
        "the 1st, 2nd, 3rd and 4th place",
        "an mp3 over ipv4 on win10",
        "I am 100% sure, 1000000 times",
        "version 1.2.3 and h264",
        "@john said hi",
    ],
)
def test_numbers_codes_and_mentions_are_untouched(text: str) -> None:
    assert normalize(text) == text.lower()


@pytest.mark.parametrize(
    "text",
    [
        "mail me at john.doe@example.com",
        "write to a.b.c-d_e@mail.example.org now",
        "see https://example.com/a-b_c/x.y.z?q=1&r=k-i-l-l",
        "visit www.example.com today",
        "http://aaa.bbb.example/ffff",
    ],
)
def test_urls_and_emails_are_not_destroyed(text: str) -> None:
    assert normalize(text) == text.lower()


def test_ordinary_spelling_survives() -> None:
    # Doubled letters, short words and three spaced letters ('u r a') are ordinary text.
    assert normalize("The committee will meet tomorrow") == "the committee will meet tomorrow"
    assert normalize("u r a star") == "u r a star"
    assert normalize("e.g. this, i.e. that") == "e.g. this, i.e. that"


def test_normalize_all_is_normalize_per_text() -> None:
    texts = ["K1LL", "ｈｉ", "fine"]
    assert normalize_all(texts) == [normalize(t) for t in texts]


def test_long_texts_take_the_uncached_path_with_the_same_result() -> None:
    short = "I will k1ll you. "
    long = short * 60  # over the 512-character cache limit
    assert len(long) > 512
    assert normalize(long) == " ".join([normalize(short)] * 60)


# --------------------------------------------------------------------------------------------------------- properties

# Text drawn mostly from the characters obfuscation uses, plus anything at all (lone surrogates included).
_TRICKY = "aAbkKilLIeE1!3@$|0 .-_*\u200b\u00ad\u0301\u0336\u0430\u0456\u03bf\uff4b\u0130\ufe0f\t\n\r\x00\x85\u2028"
_text = st.one_of(
    st.text(alphabet=_TRICKY, max_size=40),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None), max_size=40),
    st.lists(st.sampled_from(["k1ll", "w w w w", "a.b.c", "iii", "İ", "p а y", "www.x.com", "1st", "a@b.co", " "]),
             max_size=8).map(" ".join),
)


@settings(max_examples=800, deadline=None)
@given(_text)
@example("p \u0430 y p")
@example("a a a a.b.c")
@example("k i l lll")
@example("kIiI")
@example("\u0130")
@example("\ud800x")
def test_normalize_is_idempotent_and_never_raises(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=500, deadline=None)
@given(_text)
def test_output_has_no_invisible_or_control_characters(text: str) -> None:
    out = normalize(text)
    for ch in out:
        category = unicodedata.category(ch)
        assert category != "Cf", (text, out, ch)
        assert category != "Cc" or ch == "\n", (text, out, ch)
        assert category not in ("Zl", "Zp"), (text, out, ch)
        assert ch not in "\t\r\u200b\ufeff", (text, out, ch)
    assert out == out.strip()
    assert "  " not in out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=60))
def test_plain_lowercase_words_keep_their_letters(text: str) -> None:
    """Only separators and repeats can change in plain text: the letters, in order, survive up to repeat folding."""
    out = normalize(text)
    assert set(out) <= set(text)


# ------------------------------------------------------------------------------------------------------------ windows


def test_short_text_is_one_window_unchanged() -> None:
    text = "a short ticket\nwith a newline"
    assert windows(text, size=10, stride=5, max_windows=4) == [text]
    assert windows("", size=3, stride=1, max_windows=1) == [""]


def test_windows_overlap_and_end_on_the_last_word() -> None:
    words = [f"w{i}" for i in range(10)]
    got = windows(" ".join(words), size=4, stride=3, max_windows=10)
    assert got == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    # A stride that does not land on the end adds one window ending on the last word.
    got = windows(" ".join(words), size=4, stride=4, max_windows=10)
    assert got == ["w0 w1 w2 w3", "w4 w5 w6 w7", "w6 w7 w8 w9"]


def test_the_count_is_bounded_and_spread_from_first_to_last() -> None:
    words = [f"w{i}" for i in range(1000)]
    got = windows(" ".join(words), size=10, stride=5, max_windows=4)
    assert len(got) == 4
    assert got[0].split()[0] == "w0"
    assert got[-1].split()[-1] == "w999"
    starts = [int(w.split()[0][1:]) for w in got]
    assert starts == sorted(starts)
    # One window only: the end of the report (where a buried threat sits) is what is read.
    assert windows(" ".join(words), size=10, stride=5, max_windows=1) == [" ".join(words[-10:])]


@pytest.mark.parametrize(("size", "stride", "max_windows"), [(0, 1, 1), (4, 0, 1), (4, 5, 1), (4, 2, 0)])
def test_bad_window_settings_are_refused(size: int, stride: int, max_windows: int) -> None:
    with pytest.raises(ValueError, match="size"):
        windows("a b c d e f", size, stride, max_windows)


@st.composite
def window_cases(draw: st.DrawFn) -> tuple[list[str], int, int, int]:
    n = draw(st.integers(0, 300))
    size = draw(st.integers(1, 40))
    stride = draw(st.integers(1, size))
    max_windows = draw(st.integers(1, 30))
    return [f"w{i}" for i in range(n)], size, stride, max_windows


@settings(max_examples=500, deadline=None)
@given(window_cases())
def test_windows_properties(case: tuple[list[str], int, int, int]) -> None:
    words, size, stride, max_windows = case
    got = windows(" ".join(words), size, stride, max_windows)
    assert 1 <= len(got) <= max_windows
    spans = [[int(w[1:]) for w in piece.split()] for piece in got]
    if not words:
        assert got == [""]
        return
    for span in spans:
        assert 1 <= len(span) <= size
        assert span == list(range(span[0], span[0] + len(span)))  # contiguous words
    covered = {i for span in spans for i in span}
    assert len(words) - 1 in covered  # the last words are always read
    if max_windows >= 2:
        assert 0 in covered  # and the first ones with room for two windows
    assert [s[0] for s in spans] == sorted({s[0] for s in spans})  # in order, no duplicates
    needed = 1 if len(words) <= size else -(-(len(words) - size) // stride) + 1
    if needed <= max_windows:
        assert covered == set(range(len(words)))  # within the bound, every word is read
        # consecutive windows overlap by size - stride words (except the last one, which may overlap more)
        for a, b in itertools.pairwise(spans):
            assert b[0] - a[0] <= stride


def test_script_of_names_the_dominant_writing_system() -> None:
    assert script_of("これはスパムです") == "kana" and script_of("혐오 표현") == "hangul"
    assert script_of("Привет") == "cyrillic" and script_of("1234 !!") == "none"
    assert script_of("win a prize") == "latin" and script_of("héllo ✓ 你好你好你好") == "cjk"
