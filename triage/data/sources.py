"""Readers for the shared public datasets: each source's labels mapped onto the policy taxonomy, in one place.

Every mapping decision lives in this module: `SPECS` documents it (and docs/datasets.md reproduces it) and one
`_load_<source>` function per source implements it. A category a source says nothing about is left out of
`Example.labels` (unknown), never set to 0; severity is None when the source cannot grade it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from triage.data.schema import Example
from triage.errors import DataError
from triage.taxonomy import Policy, load_policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSpec:
    """One dataset and how its labels become taxonomy labels (the readable half of the mapping)."""

    name: str
    files: tuple[str, ...]
    language: str
    license: str
    known: tuple[str, ...]
    mapping: str
    severity: str
    weight: str = "1.0"


SPECS: tuple[SourceSpec, ...] = (
    SourceSpec(
        name="openai_moderation",
        files=("openai_moderation_dev/samples-dev.jsonl",),
        language="en",
        license="MIT",
        known=("sexual", "hate", "violence", "harassment", "self_harm", "child_safety"),
        mapping="S→sexual, H→hate, V→violence, HR→harassment, SH→self_harm, S3→child_safety; a missing key "
        "stays unknown (most rows lack some keys). H2/V2 only grade severity.",
        severity="S3=1→critical; H2, V2 or SH=1→high; any other positive→medium; all 8 keys present and 0→none; "
        "otherwise unknown",
    ),
    SourceSpec(
        name="davidson",
        files=("davidson_hate_offensive/data/labeled_data.csv",),
        language="en",
        license="MIT",
        known=("hate", "harassment"),
        mapping="class 0 hate→hate=1 (harassment unknown); class 1 offensive→hate=0, harassment UNKNOWN "
        "(casual profanity/slurs, not targeted: mapping it to harassment would teach that swearing is "
        "harassment); class 2 neither→hate=0, harassment=0. Rows whose majority class has ≤ half the votes "
        "are dropped as ambiguous.",
        severity="hate→medium, offensive→low, neither→none",
        weight="majority votes / annotators",
    ),
    SourceSpec(
        name="olid",
        files=("olid/olid-training-v1.0.tsv",),
        language="en",
        license="none stated (research release)",
        known=("hate", "harassment"),
        mapping="NOT→hate=0, harassment=0; OFF+UNT (untargeted profanity)→hate=0, harassment=0; "
        "OFF+TIN+IND→harassment=1, hate unknown (an insult at a person may also attack a protected "
        "attribute); OFF+TIN+GRP→harassment=0, hate UNKNOWN (OLID groups are often political, e.g. "
        "'liberals', which the policy's protected attributes exclude, so GRP is only a hate candidate); "
        "OFF+TIN+OTH (organisation/event)→hate=0, harassment=0",
        severity="NOT→none; OFF+UNT→low; TIN+IND→medium; TIN+GRP→medium; TIN+OTH→low",
    ),
    SourceSpec(
        name="mlma_en",
        files=("mlma_hate_speech/hate_speech_mlma/en_dataset.csv",),
        language="en",
        license="MIT",
        known=("hate", "harassment"),
        mapping="`sentiment` == normal→hate=0, harassment=0; 'hateful' with a protected `target` (origin, "
        "gender, sexual_orientation, religion, disability) and `group` not 'individual'→hate=1; any "
        "non-normal label with `group`=individual→harassment=1; 'normal' mixed with other labels→dropped; "
        "other rows leave hate/harassment unknown (MLMA labels are sentiments of pre-filtered tweets, "
        "not policy decisions)",
        severity="normal→none; hateful→medium (hateful+fearful→high); other non-normal→low",
    ),
    SourceSpec(
        name="mlma_fr",
        files=("mlma_hate_speech/hate_speech_mlma/fr_dataset.csv",),
        language="fr",
        license="MIT",
        known=("hate", "harassment"),
        mapping="as mlma_en",
        severity="as mlma_en",
    ),
    SourceSpec(
        name="mlma_ar",
        files=("mlma_hate_speech/hate_speech_mlma/ar_dataset.csv",),
        language="ar",
        license="MIT",
        known=("hate", "harassment"),
        mapping="as mlma_en",
        severity="as mlma_en",
    ),
    SourceSpec(
        name="ethos_binary",
        files=("ethos/ethos/ethos_data/Ethos_Dataset_Binary.csv",),
        language="en",
        license="GPLv3",
        known=("hate",),
        mapping="isHate ≥ 2/3→hate=1; isHate ≤ 1/3→hate=0; in between→dropped as ambiguous",
        severity="hate→medium; isHate = 0→none; other negatives unknown",
        weight="annotator agreement (isHate or 1 − isHate)",
    ),
    SourceSpec(
        name="ethos_multi",
        files=("ethos/ethos/ethos_data/Ethos_Dataset_Multi_Label.csv",),
        language="en",
        license="GPLv3",
        known=("hate", "violence", "harassment"),
        mapping="every row is a hate comment→hate=1; violence ≥ 0.5→violence=1 else 0; "
        "directed_vs_generalized ≥ 0.5 (aimed at a person)→harassment=1 else 0",
        severity="violence=1→high, otherwise medium",
    ),
    SourceSpec(
        name="sms_spam",
        files=("sms_spam_collection/SMSSpamCollection",),
        language="en",
        license="free for all purposes (authors)",
        known=("spam", "fraud"),
        mapping="spam→spam=1, fraud UNKNOWN (many prize blasts are scams, the set does not say which); "
        "ham→spam=0, fraud=0; nothing about other categories",
        severity="spam→low; ham→unknown (the set only judges spam)",
    ),
    SourceSpec(
        name="smishing",
        files=("smishing_mishra_soni/Dataset_5971.csv",),
        language="en",
        license="not stated in the copy",
        known=("spam", "fraud"),
        mapping="smishing→fraud=1, spam=1 (unsolicited bulk too); spam→spam=1, fraud=0; ham→spam=0, fraud=0 "
        "(label compared case-insensitively)",
        severity="smishing with URL=yes→high (credential phishing), other smishing→medium; spam→low; "
        "ham→unknown",
    ),
    SourceSpec(
        name="japanese_toxic",
        files=("japanese_toxic/data/subset.csv",),
        language="ja",
        license="Apache-2.0",
        known=("hate", "sexual"),
        mapping="差別 (discrimination) votes→hate, 猥褻 (obscenity) votes→sexual: ≥ half of annotators→1, "
        "no vote→0, a minority vote→unknown. 卑語 (vulgar), 迷惑行為 (nuisance: smears, ads, suicide mixed), "
        "privacy/dating, illegal and bias columns are too mixed or too rare (≤ 5 votes) to map.",
        severity="level with most votes: Not Toxic→none, Toxic→low, Very Toxic→medium, Hard to Say or a "
        "tie→unknown",
        weight="majority level votes / annotators",
    ),
    SourceSpec(
        name="korean_hate",
        files=("korean_hate_speech/labeled/train.tsv", "korean_hate_speech/labeled/dev.tsv"),
        language="ko",
        license="CC BY-SA 4.0",
        known=("hate", "harassment"),
        mapping="`hate`=hate with `bias`=gender→hate=1; `hate`=hate with bias=none (insult at the article's "
        "person)→harassment=1, hate=0; bias=others (politics, age, looks mixed with race/religion)→hate "
        "unknown; offensive→hate=0 when bias=none, harassment unknown; none→hate=0, harassment=0",
        severity="hate→medium, offensive→low, none→none",
    ),
    SourceSpec(
        name="told_br",
        files=("told_br/ToLD-BR.csv",),
        language="pt",
        license="CC BY-SA 4.0",
        known=("hate", "harassment"),
        mapping="homophobia, racism, misogyny, xenophobia: max flags ≥ 2 of 3→hate=1, all 0→hate=0, one "
        "flag→unknown; insult ≥ 2→harassment=1, 0→harassment=0, one flag→unknown; obscene is profanity "
        "and maps to no category (severity only)",
        severity="hate or harassment→medium; obscene ≥ 2 only→low; all flags 0→none; otherwise unknown",
        weight="mean agreement of the mapped decisions (flags/3 for positives, 1 for zero flags)",
    ),
    SourceSpec(
        name="jigsaw_sample",
        files=("jigsaw_toxic_ibm_sample/samples/test_examples.csv",),
        language="en",
        license="CC0",
        known=("hate", "harassment", "violence"),
        mapping="identity_hate→hate, insult→harassment, threat→violence (0 is a real negative: every "
        "column is labelled)",
        severity="severe_toxic or threat→high; insult or identity_hate→medium; toxic/obscene only→low; "
        "not toxic→none",
    ),
)

SOURCES: tuple[str, ...] = tuple(s.name for s in SPECS)
_SPEC = {s.name: s for s in SPECS}


def spec(name: str) -> SourceSpec:
    """The documented mapping of one source; DataError names the known sources."""
    try:
        return _SPEC[name]
    except KeyError:
        raise DataError(f"unknown data source {name!r}; known sources: {', '.join(SOURCES)}") from None


# ---------------------------------------------------------------------------------------------- file access


def _path(datasets_dir: Path, rel: str) -> Path:
    p = Path(datasets_dir) / rel
    if not p.is_file():
        raise DataError(f"{p}: dataset file is missing")
    return p


def _read_table(path: Path, columns: Sequence[str], **kwargs: object) -> pd.DataFrame:
    """Read a delimited file as strings with invalid UTF-8 replaced; DataError if a column is missing."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8",
                         encoding_errors="replace", **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot parse: {err}") from err
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}")
    return df


def _numbers(df: pd.DataFrame, path: Path, columns: Sequence[str]) -> np.ndarray:
    """Columns as a float matrix; DataError names the first bad cell's row."""
    out = np.empty((len(df), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = pd.to_numeric(df[col].str.strip(), errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: row {row + 1}: column {col!r} is not a number: {df[col].iloc[row]!r}")
        out[:, j] = values.to_numpy(dtype=np.float64)
    return out


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _example(name: str, text: str, labels: dict[str, int], severity: str | None, weight: float = 1.0,
             meta: dict[str, str] | None = None) -> Example:
    return Example(text=_clean(text), labels=labels, severity=severity, source=name,
                   language=_SPEC[name].language, weight=round(float(weight), 4), meta=meta or {})


# ---------------------------------------------------------------------------------------------- per source

_OPENAI_KEYS = {"S": "sexual", "H": "hate", "V": "violence", "HR": "harassment", "SH": "self_harm",
                "S3": "child_safety"}
_OPENAI_ALL = (*_OPENAI_KEYS, "H2", "V2")


def _load_openai_moderation(d: Path) -> list[Example]:
    path = _path(d, _SPEC["openai_moderation"].files[0])
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {lineno}: bad JSON: {err.msg}") from err
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise DataError(f"{path}: line {lineno}: expected an object with a string 'prompt'")
            flags = {k: int(row[k]) for k in _OPENAI_ALL if k in row}
            labels = {cat: flags[k] for k, cat in _OPENAI_KEYS.items() if k in flags}
            if flags.get("S3"):
                severity: str | None = "critical"
            elif flags.get("H2") or flags.get("V2") or flags.get("SH"):
                severity = "high"
            elif any(flags.values()):
                severity = "medium"
            elif len(flags) == len(_OPENAI_ALL):
                severity = "none"
            else:
                severity = None
            out.append(_example("openai_moderation", row["prompt"], labels, severity))
    return out


def _load_davidson(d: Path) -> list[Example]:
    path = _path(d, _SPEC["davidson"].files[0])
    cols = ["count", "hate_speech", "offensive_language", "neither", "class"]
    df = _read_table(path, [*cols, "tweet"])
    num = _numbers(df, path, cols)
    out = []
    per_class = (({"hate": 1}, "medium"), ({"hate": 0}, "low"), ({"hate": 0, "harassment": 0}, "none"))
    for (count, hs, off, nei, cls), text in zip(num, df["tweet"], strict=True):
        agreement = max(hs, off, nei) / count if count else 0.0
        if agreement <= 0.5:
            continue
        labels, severity = per_class[int(cls)]
        out.append(_example("davidson", text, dict(labels), severity, agreement))
    return out


def _load_olid(d: Path) -> list[Example]:
    path = _path(d, _SPEC["olid"].files[0])
    df = _read_table(path, ["tweet", "subtask_a", "subtask_b", "subtask_c"], sep="\t", quoting=3)
    table: dict[tuple[str, str, str], tuple[dict[str, int], str]] = {
        ("NOT", "NULL", "NULL"): ({"hate": 0, "harassment": 0}, "none"),
        ("OFF", "UNT", "NULL"): ({"hate": 0, "harassment": 0}, "low"),
        ("OFF", "TIN", "IND"): ({"harassment": 1}, "medium"),
        ("OFF", "TIN", "GRP"): ({"harassment": 0}, "medium"),
        ("OFF", "TIN", "OTH"): ({"hate": 0, "harassment": 0}, "low"),
    }
    out = []
    for i, (text, a, b, c) in enumerate(zip(df["tweet"], df["subtask_a"], df["subtask_b"], df["subtask_c"],
                                            strict=True)):
        key = (a.strip(), b.strip(), c.strip())
        if key not in table:
            raise DataError(f"{path}: row {i + 1}: unexpected label combination {'/'.join(key)}")
        labels, severity = table[key]
        out.append(_example("olid", text, dict(labels), severity, meta={"olid": "/".join(key)}))
    return out


_MLMA_PROTECTED = {"origin", "gender", "sexual_orientation", "religion", "disability"}
_MLMA_ABUSIVE = {"offensive", "hateful", "abusive", "disrespectful", "fearful"}


def _mlma(name: str, d: Path) -> list[Example]:
    path = _path(d, _SPEC[name].files[0])
    df = _read_table(path, ["tweet", "sentiment", "target", "group"])
    out = []
    for i, (text, sentiment, target, group) in enumerate(zip(df["tweet"], df["sentiment"], df["target"],
                                                             df["group"], strict=True)):
        tags = set(sentiment.strip().split("_"))
        unknown = tags - _MLMA_ABUSIVE - {"normal"}
        if unknown or not tags:
            raise DataError(f"{path}: row {i + 1}: unknown sentiment label(s) {sorted(unknown)}")
        if "normal" in tags:
            if len(tags) > 1:
                continue
            out.append(_example(name, text, {"hate": 0, "harassment": 0}, "none"))
            continue
        labels: dict[str, int] = {}
        if "hateful" in tags and target in _MLMA_PROTECTED and group != "individual":
            labels["hate"] = 1
        if group == "individual":
            labels["harassment"] = 1
        severity = ("high" if "fearful" in tags else "medium") if "hateful" in tags else "low"
        out.append(_example(name, text, labels, severity, meta={"target": target, "group": group}))
    return out


def _load_ethos_binary(d: Path) -> list[Example]:
    path = _path(d, _SPEC["ethos_binary"].files[0])
    df = _read_table(path, ["comment", "isHate"], sep=";")
    score = _numbers(df, path, ["isHate"])[:, 0]
    out = []
    for text, p in zip(df["comment"], score, strict=True):
        if p >= 2 / 3:
            out.append(_example("ethos_binary", text, {"hate": 1}, "medium", p))
        elif p <= 1 / 3:
            out.append(_example("ethos_binary", text, {"hate": 0}, "none" if p == 0 else None, 1 - p))
    return out


def _load_ethos_multi(d: Path) -> list[Example]:
    path = _path(d, _SPEC["ethos_multi"].files[0])
    df = _read_table(path, ["comment", "violence", "directed_vs_generalized"], sep=";")
    num = _numbers(df, path, ["violence", "directed_vs_generalized"])
    out = []
    for text, (violence, directed) in zip(df["comment"], num, strict=True):
        v = int(violence >= 0.5)
        labels = {"hate": 1, "violence": v, "harassment": int(directed >= 0.5)}
        out.append(_example("ethos_multi", text, labels, "high" if v else "medium"))
    return out


def _load_sms_spam(d: Path) -> list[Example]:
    path = _path(d, _SPEC["sms_spam"].files[0])
    out = []
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line or (lineno == 1 and line.lower().startswith("label\t")):
                continue
            label, sep, text = line.partition("\t")
            label = label.strip().lower()
            if not sep or label not in ("ham", "spam"):
                raise DataError(f"{path}: line {lineno}: expected 'ham<TAB>text' or 'spam<TAB>text'")
            if label == "spam":
                out.append(_example("sms_spam", text, {"spam": 1}, "low"))
            else:
                out.append(_example("sms_spam", text, {"spam": 0, "fraud": 0}, None))
    return out


def _load_smishing(d: Path) -> list[Example]:
    path = _path(d, _SPEC["smishing"].files[0])
    df = _read_table(path, ["label", "TEXT", "URL"])
    out = []
    for i, (label, text, url) in enumerate(zip(df["label"], df["TEXT"], df["URL"], strict=True)):
        kind = label.strip().lower()
        if kind == "smishing":
            sev = "high" if url.strip().lower() == "yes" else "medium"
            out.append(_example("smishing", text, {"fraud": 1, "spam": 1}, sev))
        elif kind == "spam":
            out.append(_example("smishing", text, {"spam": 1, "fraud": 0}, "low"))
        elif kind == "ham":
            out.append(_example("smishing", text, {"spam": 0, "fraud": 0}, None))
        else:
            raise DataError(f"{path}: row {i + 1}: unknown label {label!r} (expected ham, spam or smishing)")
    return out


_JA_LEVELS = ("Not Toxic", "Hard to Say", "Toxic", "Very Toxic")
_JA_SEVERITY = ("none", None, "low", "medium")
_JA_CATEGORIES = {"category_差別": "hate", "category_猥褻": "sexual"}


def _load_japanese_toxic(d: Path) -> list[Example]:
    path = _path(d, _SPEC["japanese_toxic"].files[0])
    cats = list(_JA_CATEGORIES)
    df = _read_table(path, ["text", *_JA_LEVELS, *cats, "annotation_num"])
    levels = _numbers(df, path, _JA_LEVELS)
    votes = _numbers(df, path, cats)
    annotators = _numbers(df, path, ["annotation_num"])[:, 0]
    out = []
    for text, lv, cv, n in zip(df["text"], levels, votes, annotators, strict=True):
        n = max(n, lv.sum(), 1.0)
        labels = {}
        for col, v in zip(cats, cv, strict=True):
            if v == 0:
                labels[_JA_CATEGORIES[col]] = 0
            elif v / n >= 0.5:
                labels[_JA_CATEGORIES[col]] = 1
        top = int(np.argmax(lv))
        tie = int((lv == lv[top]).sum()) > 1
        severity = None if tie else _JA_SEVERITY[top]
        out.append(_example("japanese_toxic", text, labels, severity, lv[top] / n))
    return out


def _load_korean_hate(d: Path) -> list[Example]:
    out = []
    for rel in _SPEC["korean_hate"].files:
        path = _path(d, rel)
        df = _read_table(path, ["comments", "bias", "hate"], sep="\t", quoting=3)
        for i, (text, bias, hate) in enumerate(zip(df["comments"], df["bias"], df["hate"], strict=True)):
            bias, hate = bias.strip(), hate.strip()
            if hate not in ("none", "offensive", "hate") or bias not in ("none", "gender", "others"):
                raise DataError(f"{path}: row {i + 1}: unexpected hate/bias {hate!r}/{bias!r}")
            labels: dict[str, int] = {}
            if hate == "none":
                labels = {"hate": 0, "harassment": 0}
            elif hate == "hate" and bias == "gender":
                labels = {"hate": 1}
            elif hate == "hate" and bias == "none":
                labels = {"hate": 0, "harassment": 1}
            elif hate == "offensive" and bias == "none":
                labels = {"hate": 0}
            severity = {"none": "none", "offensive": "low", "hate": "medium"}[hate]
            out.append(_example("korean_hate", text, labels, severity, meta={"bias": bias, "split": rel}))
    return out


_TOLD_HATE = ("homophobia", "racism", "misogyny", "xenophobia")


def _load_told_br(d: Path) -> list[Example]:
    path = _path(d, _SPEC["told_br"].files[0])
    cols = [*_TOLD_HATE, "insult", "obscene"]
    df = _read_table(path, ["text", *cols])
    flags = _numbers(df, path, cols)
    out = []
    for text, f in zip(df["text"], flags, strict=True):
        hate_votes, insult, obscene = f[:4].max(), f[4], f[5]
        labels: dict[str, int] = {}
        agreement = []
        for cat, votes in (("hate", hate_votes), ("harassment", insult)):
            if votes == 0:
                labels[cat] = 0
                agreement.append(1.0)
            elif votes >= 2:
                labels[cat] = 1
                agreement.append(votes / 3)
        if 1 in labels.values():
            severity: str | None = "medium"
        elif not f.any():
            severity = "none"
        elif obscene >= 2 and len(labels) == 2:
            severity = "low"
        else:
            severity = None
        weight = float(np.mean(agreement)) if agreement else 1.0
        out.append(_example("told_br", text, labels, severity, weight))
    return out


def _load_jigsaw_sample(d: Path) -> list[Example]:
    path = _path(d, _SPEC["jigsaw_sample"].files[0])
    cols = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    df = _read_table(path, ["comment_text", *cols])
    num = _numbers(df, path, cols).astype(int)
    out = []
    for text, (toxic, severe, obscene, threat, insult, ihate) in zip(df["comment_text"], num, strict=True):
        labels = {"hate": ihate, "harassment": insult, "violence": threat}
        if severe or threat:
            severity = "high"
        elif insult or ihate:
            severity = "medium"
        elif toxic or obscene:
            severity = "low"
        else:
            severity = "none"
        out.append(_example("jigsaw_sample", text, {k: int(v) for k, v in labels.items()}, severity))
    return out


_LOADERS: dict[str, Callable[[Path], list[Example]]] = {
    "openai_moderation": _load_openai_moderation,
    "davidson": _load_davidson,
    "olid": _load_olid,
    "mlma_en": lambda d: _mlma("mlma_en", d),
    "mlma_fr": lambda d: _mlma("mlma_fr", d),
    "mlma_ar": lambda d: _mlma("mlma_ar", d),
    "ethos_binary": _load_ethos_binary,
    "ethos_multi": _load_ethos_multi,
    "sms_spam": _load_sms_spam,
    "smishing": _load_smishing,
    "japanese_toxic": _load_japanese_toxic,
    "korean_hate": _load_korean_hate,
    "told_br": _load_told_br,
    "jigsaw_sample": _load_jigsaw_sample,
}
assert set(_LOADERS) == set(SOURCES), "every documented source needs a loader"


# ---------------------------------------------------------------------------------------------- public API


def load_source(name: str, datasets_dir: str | Path) -> list[Example]:
    """Examples of one source, with its labels mapped onto the taxonomy as documented in `SPECS`."""
    spec(name)
    d = Path(datasets_dir)
    if not d.is_dir():
        raise DataError(f"{d}: datasets directory does not exist")
    examples = _LOADERS[name](d)
    logger.debug("loaded %d examples from %s", len(examples), name)
    return examples


def validate_examples(examples: Iterable[Example], policy: Policy, origin: str) -> None:
    """DataError unless every label and severity name exists in the policy and every label is 0 or 1."""
    categories, levels = set(policy.category_names), set(policy.severity_names)
    for i, ex in enumerate(examples):
        bad = [k for k in ex.labels if k not in categories]
        if bad:
            raise DataError(f"{origin}: example {i}: categories {bad} are not in policy {policy.name!r}")
        if any(v not in (0, 1) for v in ex.labels.values()):
            raise DataError(f"{origin}: example {i}: labels must be 0 or 1, got {dict(ex.labels)}")
        if ex.severity is not None and ex.severity not in levels:
            raise DataError(f"{origin}: example {i}: severity {ex.severity!r} is not in policy {policy.name!r}")


def load_all(datasets_dir: str | Path, sources: Sequence[str] | None = None,
             policy: Policy | None = None) -> list[Example]:
    """Every (or the chosen) source's examples, empty texts dropped, names checked against the policy."""
    pol = policy or load_policy()
    out: list[Example] = []
    for name in sources or SOURCES:
        examples = [ex for ex in load_source(name, datasets_dir) if ex.text]
        validate_examples(examples, pol, f"{Path(datasets_dir) / _SPEC[name].files[0]}")
        out.extend(examples)
    logger.info("loaded %d examples from %d sources", len(out), len(sources or SOURCES))
    return out


def example_tickets_path() -> Path:
    """The hand-written example tickets shipped with the package (fallback training set)."""
    return Path(str(resources.files("triage") / "data" / "examples" / "example_tickets.jsonl"))


def load_examples(policy: Policy | None = None) -> list[Example]:
    """The shipped example tickets as examples, so a baseline trains without the shared datasets."""
    from triage.data.imports import read_labelled_file

    examples = read_labelled_file(example_tickets_path(), policy or load_policy())
    return [Example(text=ex.text, labels=ex.labels, severity=ex.severity, source="examples",
                    language=ex.language, weight=ex.weight, meta=ex.meta) for ex in examples]
