"""Readers for the shared public datasets: each source's labels mapped onto the policy taxonomy, in one place.

Every mapping decision lives in this module: `SPECS` documents it (and docs/datasets.md reproduces it) and one
`_load_<source>` function per source implements it. A category a source says nothing about is left out of
`Example.labels` (unknown), never set to 0; severity is None when the source cannot grade it.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from triage.data.schema import Example
from triage.data.splits import EVALUATION_ONLY_SOURCES, text_key
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
    use: Literal["train and evaluate", "evaluate only"] = "train and evaluate"


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
        known=("hate", "harassment", "violence"),
        mapping="class 0 hate→hate=1 (harassment unknown); class 1 offensive→hate=0, harassment UNKNOWN "
        "(casual profanity/slurs, not targeted: mapping it to harassment would teach that swearing is "
        "harassment); class 2 neither→hate=0, harassment=0, violence=0 (a threat is offensive). Rows whose "
        "majority class has ≤ half the votes are dropped as ambiguous.",
        severity="hate→medium, offensive→low, neither→none",
        weight="majority votes / annotators",
    ),
    SourceSpec(
        name="olid",
        files=("olid/olid-training-v1.0.tsv",),
        language="en",
        license="none stated (research release)",
        known=("hate", "harassment", "violence"),
        mapping="NOT→hate=0, harassment=0, violence=0 (OLID counts threats as offensive); OFF+UNT (untargeted "
        "profanity)→hate=0, harassment=0, violence=0 (a threat has a target); "
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
        known=("hate", "harassment", "violence"),
        mapping="`sentiment` == normal→hate=0, harassment=0, violence=0; 'hateful' with a protected `target` (origin, "
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
        known=("hate", "harassment", "violence"),
        mapping="as mlma_en",
        severity="as mlma_en",
    ),
    SourceSpec(
        name="mlma_ar",
        files=("mlma_hate_speech/hate_speech_mlma/ar_dataset.csv",),
        language="ar",
        license="MIT",
        known=("hate", "harassment", "violence"),
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
        known=("hate", "harassment", "violence"),
        mapping="`hate`=hate with `bias`=gender→hate=1; `hate`=hate with bias=none (insult at the article's "
        "person)→harassment=1, hate=0; bias=others (politics, age, looks mixed with race/religion)→hate "
        "unknown; offensive→hate=0 when bias=none, harassment unknown; none→hate=0, harassment=0, violence=0 (neither "
        "hateful nor offensive: no threat)",
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
    SourceSpec(
        name="convabuse",
        files=("convabuse/2_splits/ConvAbuseEMNLPtrain.csv", "convabuse/2_splits/ConvAbuseEMNLPvalid.csv",
               "convabuse/2_splits/ConvAbuseEMNLPtest.csv"),
        language="en",
        license="CC BY 4.0",
        known=("hate", "harassment", "sexual", "violence"),
        mapping="the `user` utterance only (the bot's turns are context, not the ticket). Per annotator the "
        "is_abuse step; a strict majority 'not abusive'→hate=0, harassment=0, sexual=0, violence=0; a strict majority "
        "abusive (mild/strong/very strong)→abusive; anything else (ambiguous votes, no majority)→dropped. "
        "Abusive rows, by the abusive annotators' strict majority (no vote→0, a minority vote→unknown): "
        "sex_harassment→sexual=1 and harassment=1; target individual or system (the bot: a proxy for "
        "second-person insults in chat)→harassment=1; an identity type (sexist, racist, homophobic, "
        "transphobic, ableist)→hate=1; no target vote at all→harassment=0 (generalised abuse); no identity "
        "vote→hate=0",
        severity="median step of the abusive annotators: mild→low, strong→medium, very strong→high; not "
        "abusive→none",
        weight="majority votes / annotators",
    ),
    SourceSpec(
        name="implicit_hate",
        files=("implicit_hate/implicit_hate_v1_stg1_posts.tsv", "implicit_hate/implicit_hate_v1_stg2_posts.tsv",
               "implicit_hate/implicit_hate_v1_stg3_posts.tsv"),
        language="en",
        license="CC BY 4.0 (third-party copy of the request-form release; tweets under X terms)",
        known=("hate", "violence"),
        mapping="stage 1 not_hate→hate=0 (hard negatives: identity groups and politics without hate); "
        "explicit_hate→hate=1; implicit_hate→hate=1; stage 2 (joined on the text) threatening as primary or "
        "secondary class→violence=1 (violence otherwise UNKNOWN: stage 1 judged hate only); an implicit post "
        "whose stage-3 targets are all political (liberals, democrats, antifa, ...: not a protected "
        "attribute)→hate unknown; a text with two stage-1 classes→dropped",
        severity="threatening→high; explicit, incitement, inferiority, stereotypical→medium; white grievance, "
        "irony, other or no stage-2 class→low; not_hate→none",
    ),
    SourceSpec(
        name="guest_misogyny",
        files=("guest_misogyny/final_labels.csv",),
        language="en",
        license="MIT",
        known=("hate", "harassment", "violence", "sexual", "privacy"),
        mapping="labels of all rows of one `entry_id` united; `author` (usernames) never read; image posts, "
        "[deleted]/[removed] bodies dropped. Misogynistic→hate=1 (women: gender), otherwise hate=0 (incl. "
        "counter-speech: the expert annotators judged misogyny; other hate is rare in these gender-topic "
        "subreddits); personal attack (misogynistic or not)→harassment=1, non-misogynistic without one→"
        "harassment=0, misogynistic without one→unknown; Threatening_Physical_violence→violence=1; "
        "Threatening_Sexual_violence→violence=1, sexual=1; Threatening_Privacy→privacy=1; violence, sexual, "
        "privacy otherwise UNKNOWN",
        severity="physical or sexual threat→high; misogyny or personal attack→medium; none of the categories or "
        "counter-speech→none",
    ),
    SourceSpec(
        name="reddit_cssrs",
        files=("reddit_cssrs/500_Reddit_users_posts_labels.csv",),
        language="en",
        license="CC BY (Zenodo 10.5281/zenodo.2667859; third-party copy)",
        known=("self_harm",),
        mapping="one example per user, all posts joined by blank lines (long texts kept whole); `User` dropped. "
        "C-SSRS Ideation, Behavior, Attempt→self_harm=1; Supportive (talks about suicide to support "
        "others)→self_harm=0; Indicator (risk signs without ideation, which the policy's 'intent, plans' "
        "does not cover)→dropped as ambiguous",
        severity="Ideation→high (self-harm intent); Behavior (preparation, self-harm acts) and Attempt→"
        "critical; Supportive→none",
    ),
    SourceSpec(
        name="toxigen_prompts",
        files=("toxigen_prompts/prompts",),
        language="en",
        license="MIT + CDLA-Permissive-2.0",
        known=("hate",),
        mapping="each `hate_<group>_1k.txt`/`neutral_<group>_1k.txt` line split on the literal \\n into "
        "statements, '- ' stripped, deduplicated to the statement: hate file→hate=1, neutral file (benign "
        "or positive identity mentions)→hate=0; a statement in both→dropped. Labels are by file (authors), "
        "not per item",
        severity="hate→medium (hateful generalisations), neutral→none",
    ),
    SourceSpec(
        name="edos",
        files=("edos/data/edos_labelled_aggregated.csv",),
        language="en",
        license="CC0 1.0",
        known=("hate", "violence"),
        mapping="`label_sexist` sexist→hate=1 (women: gender); category 1 (1.1 threats of harm, 1.2 incitement "
        "and encouragement of harm)→violence=1; any other sexist category→violence=0 (the annotators placed "
        "the post in one category of a scheme whose first category is threats); not sexist→hate and violence "
        "UNKNOWN (the negative class is 'not sexist', not benign: it holds other abuse and violence); "
        "harassment, sexual UNKNOWN (target and objectification are not separable in the labels). EDOS's own "
        "`split` is ignored: the project's hash split applies",
        severity="1.1, 1.2, 2.3 dehumanising attacks and overt sexual objectification→high; 2.1, 2.2, 4.1→"
        "medium; 3.1-3.4, 4.2→low; not sexist→unknown",
    ),
    SourceSpec(
        name="jigsaw_identity_templates",
        files=("jigsaw_identity_templates/en_sentence_templates.csv",
               "jigsaw_identity_templates/toxicity_nonfuzzed_testset.csv",
               "jigsaw_identity_templates/toxicity_fuzzed_testset.csv"),
        language="en",
        license="CC BY 4.0",
        known=("hate", "harassment", "violence"),
        mapping="EVALUATION ONLY (identity-term bias; synthetic). Templates: nontoxic→hate=0, harassment=0, "
        "violence=0; toxic 'I hate X', 'Being X is nasty'→hate=1; '<name> is a nasty X', 'You are a nasty "
        "X'→hate=1, harassment=1; 'kill X'→hate=1, violence=1; 'You are a nasty <occupation>'→"
        "harassment=1, hate=0; an age term (old, young, teenage, ...: not protected by the policy) leaves "
        "hate unknown. Wikipedia comments (original and identity-swapped): toxic False→hate=0, harassment=0, "
        "violence=0; toxic True→no category known (meta toxic=1)",
        severity="nontoxic→none; toxic templates→medium, 'kill X'→high; toxic comments→unknown",
        use="evaluate only",
    ),
)

SOURCES: tuple[str, ...] = tuple(s.name for s in SPECS)
TRAINING_SOURCES: tuple[str, ...] = tuple(s.name for s in SPECS if s.use != "evaluate only")
EVALUATION_SOURCES: tuple[str, ...] = tuple(s.name for s in SPECS if s.use == "evaluate only")
assert set(EVALUATION_SOURCES) == EVALUATION_ONLY_SOURCES, "triage.data.splits must keep these out of training"
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
    per_class = (({"hate": 1}, "medium"), ({"hate": 0}, "low"), ({"hate": 0, "harassment": 0, "violence": 0}, "none"))
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
        ("NOT", "NULL", "NULL"): ({"hate": 0, "harassment": 0, "violence": 0}, "none"),
        ("OFF", "UNT", "NULL"): ({"hate": 0, "harassment": 0, "violence": 0}, "low"),
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
            out.append(_example(name, text, {"hate": 0, "harassment": 0, "violence": 0}, "none"))
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
                labels = {"hate": 0, "harassment": 0, "violence": 0}
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


# ---------------------------------------------------------------------------------------------- added sources


def _dedupe(examples: list[Example]) -> list[Example]:
    """One example per normalised text: the labels and severity a strict majority of the copies carry (weight scaled
    by that majority's share), none when no reading has a majority."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(text_key(ex.text), []).append(ex)
    out = []
    for copies in groups.values():
        readings = Counter((tuple(sorted(c.labels.items())), c.severity) for c in copies)
        (labels, severity), votes = readings.most_common(1)[0]
        if votes * 2 > len(copies):
            first = next(c for c in copies if (tuple(sorted(c.labels.items())), c.severity) == (labels, severity))
            out.append(first if votes == len(copies) else replace(first, weight=round(first.weight * votes
                                                                                      / len(copies), 4)))
    return out


def _vote(votes: int, voters: int) -> int | None:
    """1 for a strict majority, 0 for no vote, None (unknown) for a minority."""
    if votes * 2 > voters:
        return 1
    return 0 if votes == 0 else None


_CONV_FIELDS = ("is_abuse.1", "is_abuse.0", "is_abuse.-1", "is_abuse.-2", "is_abuse.-3", "ableist", "homophobic",
                "intellectual", "racist", "sexist", "sex_harassment", "transphobic", "target.generalised",
                "target.individual", "target.system", "explicit", "implicit")
_CONV_IDENTITY = ("ableist", "homophobic", "racist", "sexist", "transphobic")
_CONV_STEP_SEVERITY = {-1: "low", -2: "medium", -3: "high"}


def _convabuse_blocks(df: pd.DataFrame, path: Path) -> list[list[str]]:
    """Column names of each annotator's block. The release repeats `Annotator6_transphobic` for annotators 7 and
    8 (pandas renames them `.1`/`.2`), so blocks are read by position and checked by field name."""
    start = list(df.columns).index("Annotator1_is_abuse.1") if "Annotator1_is_abuse.1" in df.columns else -1
    cols = list(df.columns)[start:] if start >= 0 else []
    width = len(_CONV_FIELDS)
    if not cols or len(cols) % width:
        raise DataError(f"{path}: expected annotator blocks of {width} columns from Annotator1_is_abuse.1")
    blocks = [cols[i:i + width] for i in range(0, len(cols), width)]
    for block in blocks:
        for col, field in zip(block, _CONV_FIELDS, strict=True):
            if not col.split("_", 1)[-1].startswith(field):
                raise DataError(f"{path}: column {col!r} where an annotator's {field!r} was expected")
    return blocks


def _conv_count(judgements: list[np.ndarray], *fields: str) -> int:
    """Annotators who ticked any of `fields`."""
    idx = [_CONV_FIELDS.index(f) for f in fields]
    return sum(1 for j in judgements if j[idx].any())


def _load_convabuse(d: Path) -> list[Example]:
    out = []
    for rel in _SPEC["convabuse"].files:
        path = _path(d, rel)
        df = _read_table(path, ["user", "Annotator1_is_abuse.1"])
        blocks = _convabuse_blocks(df, path)
        # An annotator who saw an utterance twice (intra-annotator agreement) has "1, 1": the first judgement counts.
        first = df.iloc[:, list(df.columns).index(blocks[0][0]):].apply(lambda col: col.str.split(",").str[0])
        matrices = [_numbers(first.loc[:, block].replace("", "0"), path, block).astype(int) for block in blocks]
        answered = [(first.loc[:, block[:5]] != "").any(axis=1).to_numpy() for block in blocks]
        for i, text in enumerate(df["user"]):
            judgements = [m[i] for m, a in zip(matrices, answered, strict=True) if a[i] and m[i][:5].sum() == 1]
            if not judgements:
                continue
            steps = [1 - int(np.argmax(j[:5])) for j in judgements]  # 1 not abusive, 0 ambiguous, -1..-3 abusive
            n = len(steps)
            abusive = [j for j, s in zip(judgements, steps, strict=True) if s < 0]
            if steps.count(1) * 2 > n:
                labels: dict[str, int | None] = {"hate": 0, "harassment": 0, "sexual": 0, "violence": 0}
                severity, weight = "none", steps.count(1) / n
            elif len(abusive) * 2 > n:
                k = len(abusive)
                sex = _vote(_conv_count(abusive, "sex_harassment"), k)
                targeted = _vote(_conv_count(abusive, "target.individual", "target.system"), k)
                labels = {"hate": _vote(_conv_count(abusive, *_CONV_IDENTITY), k), "sexual": sex,
                          "harassment": 1 if 1 in (sex, targeted) else (None if None in (sex, targeted) else 0)}
                severity = _CONV_STEP_SEVERITY[sorted(s for s in steps if s < 0)[::-1][(k - 1) // 2]]
                weight = k / n
            else:
                continue
            known = {c: v for c, v in labels.items() if v is not None}
            out.append(_example("convabuse", text, known, severity, weight, meta={"split": rel}))
    return _dedupe(out)


_IH_POLITICAL = re.compile(r"\b(liberal|progressive|democrat|republican|conservative|leftist|left|right|antifa|"
                           r"communist|socialist|marxist|sjw|politician|government|media|trump|obama|gop|dems?)",
                           re.IGNORECASE)
_IH_SEVERITY = {"threatening": "high", "incitement": "medium", "inferiority": "medium", "stereotypical": "medium"}


def _load_implicit_hate(d: Path) -> list[Example]:
    stg1, stg2, stg3 = (_path(d, rel) for rel in _SPEC["implicit_hate"].files)
    posts = _read_table(stg1, ["post", "class"], sep="\t")
    fine = _read_table(stg2, ["post", "implicit_class", "extra_implicit_class"], sep="\t")
    targets = _read_table(stg3, ["post", "target"], sep="\t")
    classes: dict[str, set[str]] = {}
    for text, primary, extra in zip(fine["post"], fine["implicit_class"], fine["extra_implicit_class"], strict=True):
        classes.setdefault(text, set()).update(c.strip() for c in (primary, extra) if c.strip())
    political: dict[str, bool] = {}
    for text, target in zip(targets["post"], targets["target"], strict=True):
        political[text] = political.get(text, True) and bool(_IH_POLITICAL.search(target))
    out = []
    for i, (text, cls) in enumerate(zip(posts["post"], posts["class"], strict=True)):
        cls = cls.strip()
        if cls == "not_hate":
            out.append(_example("implicit_hate", text, {"hate": 0}, "none"))
            continue
        if cls not in ("implicit_hate", "explicit_hate"):
            raise DataError(f"{stg1}: row {i + 1}: unknown class {cls!r}")
        fine_classes = classes.get(text, set())
        labels = {"hate": 1}
        if cls == "implicit_hate" and political.get(text, False):
            labels = {}
        if "threatening" in fine_classes:
            labels["violence"] = 1
        severity = "medium" if cls == "explicit_hate" else "low"
        for c in ("threatening", "incitement", "inferiority", "stereotypical"):
            if c in fine_classes:
                severity = max(severity, _IH_SEVERITY[c], key=("low", "medium", "high").index)
        meta = {"class": cls, "implicit_class": ",".join(sorted(fine_classes))}
        out.append(_example("implicit_hate", text, labels, severity, meta=meta))
    return _dedupe(out)


_GUEST_LEVEL_2 = {"None_of_the_categories", "Derogation", "Misogynistic_pejorative", "Treatment",
                  "Nonmisogynistic_personal_attack", "Misogynistic_personal_attack", "Counter_speech"}
_GUEST_THREATS = {"Threatening_Physical_violence": {"violence": 1},
                  "Threatening_Sexual_violence": {"violence": 1, "sexual": 1},
                  "Threatening_Privacy": {"privacy": 1}}


def _load_guest_misogyny(d: Path) -> list[Example]:
    path = _path(d, _SPEC["guest_misogyny"].files[0])
    # `author` holds Reddit usernames: it is never read.
    df = _read_table(path, ["entry_id", "body", "image", "level_1", "level_2", "level_3"],
                     usecols=["entry_id", "body", "image", "level_1", "level_2", "level_3"])
    entries: dict[str, tuple[str, set[str]]] = {}
    for i, (entry, body, image, l1, l2, l3) in enumerate(zip(df["entry_id"], df["body"], df["image"],
                                                            df["level_1"], df["level_2"], df["level_3"],
                                                            strict=True)):
        if l1 not in ("Misogynistic", "Nonmisogynistic") or l2 not in _GUEST_LEVEL_2:
            raise DataError(f"{path}: row {i + 1}: unexpected level_1/level_2 {l1!r}/{l2!r}")
        if image.strip() == "Yes" or body.strip() in ("", "[deleted]", "[removed]"):
            continue  # the label may be about the image; no text to judge
        text, tags = entries.setdefault(entry, (body, set()))
        tags.update(t for t in (l1, l2, l3.strip()) if t)
    out = []
    for text, tags in entries.values():
        misogynistic = "Misogynistic" in tags
        attack = bool(tags & {"Misogynistic_personal_attack", "Nonmisogynistic_personal_attack"})
        labels: dict[str, int] = {"hate": int(misogynistic)}
        if attack or not misogynistic:
            labels["harassment"] = int(attack)
        for tag, extra in _GUEST_THREATS.items():
            if tag in tags:
                labels.update(extra)
        if labels.get("violence"):
            severity = "high"
        elif any(labels.values()):
            severity = "medium"
        else:
            severity = "none"
        level_2 = ",".join(sorted(tags & _GUEST_LEVEL_2))
        out.append(_example("guest_misogyny", text, labels, severity, meta={"level_2": level_2}))
    return _dedupe(out)


_EDOS_SEVERITY = {"1.1": "high", "1.2": "high", "2.3": "high", "2.1": "medium", "2.2": "medium", "4.1": "medium",
                  "3.1": "low", "3.2": "low", "3.3": "low", "3.4": "low", "4.2": "low"}


def _load_edos(d: Path) -> list[Example]:
    path = _path(d, _SPEC["edos"].files[0])
    df = _read_table(path, ["text", "label_sexist", "label_vector"])
    out = []
    for i, (text, sexist, vector) in enumerate(zip(df["text"], df["label_sexist"], df["label_vector"], strict=True)):
        code = vector.split(" ", 1)[0]
        if sexist == "not sexist" and vector == "none":
            out.append(_example("edos", text, {}, None, meta={"vector": "none"}))
            continue
        if sexist != "sexist" or code not in _EDOS_SEVERITY:
            raise DataError(f"{path}: row {i + 1}: unexpected label_sexist/label_vector {sexist!r}/{vector!r}")
        labels = {"hate": 1, "violence": int(code.startswith("1."))}
        out.append(_example("edos", text, labels, _EDOS_SEVERITY[code], meta={"vector": code}))
    return _dedupe(out)


_CSSRS = {"Supportive": ({"self_harm": 0}, "none"), "Ideation": ({"self_harm": 1}, "high"),
          "Behavior": ({"self_harm": 1}, "critical"), "Attempt": ({"self_harm": 1}, "critical")}
_CSSRS_SEPARATOR = re.compile(r"""['"],\s*['"]""")


def _cssrs_posts(cell: str) -> str:
    """A user's posts, released as a Python-list-like string that is not always a valid literal, as one text."""
    body = cell.strip()
    # Some cells stop at a spreadsheet's 32,767-character limit, without the closing "']".
    body = body.removeprefix("[").removesuffix("]").strip()
    if body[:1] in ("'", '"'):
        body = body[1:]
    if body[-1:] in ("'", '"'):
        body = body[:-1]
    return "\n\n".join(p.strip() for p in _CSSRS_SEPARATOR.split(body) if p.strip())


def _load_reddit_cssrs(d: Path) -> list[Example]:
    path = _path(d, _SPEC["reddit_cssrs"].files[0])
    df = _read_table(path, ["Post", "Label"], usecols=["Post", "Label"])  # `User` is never read
    out = []
    for i, (post, label) in enumerate(zip(df["Post"], df["Label"], strict=True)):
        label = label.strip()
        if label == "Indicator":
            continue
        if label not in _CSSRS:
            raise DataError(f"{path}: row {i + 1}: unknown C-SSRS label {label!r}")
        labels, severity = _CSSRS[label]
        out.append(_example("reddit_cssrs", _cssrs_posts(post), dict(labels), severity, meta={"cssrs": label}))
    return _dedupe(out)


def _load_toxigen_prompts(d: Path) -> list[Example]:
    folder = Path(d) / _SPEC["toxigen_prompts"].files[0]
    files = sorted(folder.glob("*_1k.txt")) if folder.is_dir() else []
    if not files:
        raise DataError(f"{folder}: no hate_<group>_1k.txt / neutral_<group>_1k.txt files")
    raw: dict[str, set[tuple[str, str]]] = {}  # statement -> {(kind, group)}; 31,000 lines hold 668 statements
    for path in files:
        kind, _, group = path.name.removesuffix("_1k.txt").partition("_")
        if kind not in ("hate", "neutral") or not group:
            raise DataError(f"{path}: expected a name hate_<group>_1k.txt or neutral_<group>_1k.txt")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for statement in line.split("\\n"):
                text = statement.strip().removeprefix("-").strip()
                if text:
                    raw.setdefault(text, set()).add((kind, group))
    seen: dict[str, tuple[str, set[str], set[str]]] = {}  # text key -> (text, kinds, groups)
    for text, origins in raw.items():
        _, kinds, groups = seen.setdefault(text_key(text), (text, set(), set()))
        kinds.update(k for k, _ in origins)
        groups.update(g for _, g in origins)
    out = []
    for text, kinds, groups in seen.values():
        if len(kinds) > 1:
            continue  # the same statement in a hate and a neutral file: ambiguous
        hate = int("hate" in kinds)
        out.append(_example("toxigen_prompts", text, {"hate": hate}, "medium" if hate else "none",
                            meta={"group": ",".join(sorted(groups))}))
    return out


_AGE_TERMS = {"old", "older", "young", "younger", "teenage", "millenial", "millennial", "middle aged", "elderly"}
_TEMPLATE_TOXIC = {"am_hate_adj": {"hate": 1}, "being_adj": {"hate": 1}, "name_adj": {"hate": 1, "harassment": 1},
                   "you_are_adj": {"hate": 1, "harassment": 1}, "verb_adj": {"hate": 1, "violence": 1},
                   "you_occupation": {"hate": 0, "harassment": 1}}
_BEING = re.compile(r"^being (.+) is \w+$", re.IGNORECASE)


def _template_term(template: str, phrase: str, terms: Sequence[str]) -> str:
    """The identity term a template sentence was filled with ('' for the occupation templates)."""
    if template == "you_occupation":
        return ""
    text = phrase.strip().lower()
    being = _BEING.match(text)
    if being:
        return being.group(1)
    return next((t for t in terms if text.endswith(" " + t) or text == t), "")


def _template_labels(template: str, toxic: bool, term: str) -> dict[str, int]:
    if not toxic:
        return {"hate": 0, "harassment": 0, "violence": 0}
    labels = {"hate": 0, "harassment": 0, "violence": 0, **_TEMPLATE_TOXIC[template]}
    if term in _AGE_TERMS:
        del labels["hate"]  # age is not a protected attribute in the policy
    return labels


def _load_jigsaw_identity_templates(d: Path) -> list[Example]:
    templates, *wiki = (_path(d, rel) for rel in _SPEC["jigsaw_identity_templates"].files)
    df = _read_table(templates, ["template", "toxicity", "phrase"])
    # The identity terms are those of the "Being <term> is <adj>" template, longest first ("african american").
    terms = sorted({m.group(1) for m in map(_BEING.match, df["phrase"].str.strip().str.lower()) if m},
                   key=len, reverse=True)
    out = []
    for i, (template, toxicity, phrase) in enumerate(zip(df["template"], df["toxicity"], df["phrase"],
                                                         strict=True)):
        if template not in _TEMPLATE_TOXIC or toxicity not in ("toxic", "nontoxic"):
            raise DataError(f"{templates}: row {i + 1}: unexpected template/toxicity {template!r}/{toxicity!r}")
        toxic = toxicity == "toxic"
        term = _template_term(template, phrase, terms)
        labels = _template_labels(template, toxic, term)
        severity = ("high" if labels.get("violence") else "medium") if toxic else "none"
        out.append(_example("jigsaw_identity_templates", phrase, labels, severity,
                            meta={"set": "templates", "template": template, "term": term,
                                  "toxic": str(int(toxic))}))
    for path in wiki:
        comments = _read_table(path, ["rev_id", "comment", "toxic"])
        for i, (rev, text, toxic) in enumerate(zip(comments["rev_id"], comments["comment"], comments["toxic"],
                                                   strict=True)):
            if toxic not in ("True", "False"):
                raise DataError(f"{path}: row {i + 1}: toxic must be True or False, got {toxic!r}")
            meta = {"set": path.stem, "toxic": str(int(toxic == "True")), "rev_id": rev.strip()}
            if toxic == "True":
                out.append(_example("jigsaw_identity_templates", text, {}, None, meta=meta))
            else:
                out.append(_example("jigsaw_identity_templates", text,
                                    {"hate": 0, "harassment": 0, "violence": 0}, "none", meta=meta))
    return _dedupe(out)


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
    "convabuse": _load_convabuse,
    "implicit_hate": _load_implicit_hate,
    "guest_misogyny": _load_guest_misogyny,
    "reddit_cssrs": _load_reddit_cssrs,
    "toxigen_prompts": _load_toxigen_prompts,
    "edos": _load_edos,
    "jigsaw_identity_templates": _load_jigsaw_identity_templates,
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
    """The training sources' (or the chosen sources') examples, empty texts dropped, names checked against the
    policy. Evaluation-only sources (`EVALUATION_SOURCES`) are read only when named."""
    pol = policy or load_policy()
    names = tuple(sources) if sources else TRAINING_SOURCES
    out: list[Example] = []
    for name in names:
        examples = [ex for ex in load_source(name, datasets_dir) if ex.text]
        validate_examples(examples, pol, f"{Path(datasets_dir) / _SPEC[name].files[0]}")
        out.extend(examples)
    logger.info("loaded %d examples from %d sources", len(out), len(names))
    return out


def example_tickets_path() -> Path:
    """The hand-written example tickets shipped with the package (fallback training set)."""
    return Path(str(resources.files("triage") / "data" / "examples" / "example_tickets.jsonl"))


def written_tickets_path() -> Path:
    """Tickets the team wrote where public data is thin: personal threats, buried threats, self-harm disclosures,
    and harmless look-alikes (violent words in sport, cooking or news; prevention talk; negation)."""
    return example_tickets_path().with_name("written_tickets.jsonl")


SHIPPED = "examples"  # the source name of the shipped example and written tickets


def load_examples(policy: Policy | None = None) -> list[Example]:
    """The shipped example and written tickets as examples, so a baseline trains without the shared datasets."""
    from triage.data.imports import read_labelled_file

    pol = policy or load_policy()
    files = [p for p in (example_tickets_path(), written_tickets_path()) if p.is_file()]
    examples = [ex for path in files for ex in read_labelled_file(path, pol)]
    return [Example(text=ex.text, labels=ex.labels, severity=ex.severity, source=SHIPPED,
                    language=ex.language, weight=ex.weight, meta=ex.meta) for ex in examples]
