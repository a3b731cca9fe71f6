"""The behaviour suite: short hand-written cases grouped by behaviour, and how a classifier fares on each group.

A case says which policy categories a text must be flagged for (`must_flag: true`, `expected` non-empty) or that
it must not be flagged at all (`must_flag: false`, `expected: []`). The suite ships as YAML files in
`triage/data/behaviour/` (one per language); see docs/behaviour_suite.md for the format.

"Flagged" means what the service does with a ticket: a category is predicted when its calibrated probability
reaches the model's decision threshold for it (the model card's, else the policy's), the rule `routing.decide`
applies. A must-flag case passes when at least one of its expected categories is predicted; a must-not-flag case
passes when no category is predicted. Separately, "sent to review" is the route the scorer chooses (review
because unsure, ambiguous, always-review category or severity, or outside the precision guarantee): a must-flag
case that is not flagged but is reviewed is still seen by a person, a must-not-flag case sent to review costs
an expert's time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from triage.data.imports import _rows
from triage.errors import DataError
from triage.models.base import Classifier, LoadedModel
from triage.scorer import Scorer
from triage.taxonomy import Policy, load_policy
from triage.tickets import Ticket

log = logging.getLogger(__name__)

# The behaviours the suite covers; a case naming another group is rejected (a typo would make a new group).
GROUPS: dict[str, str] = {
    "negation": "negated hate or threats ('I don't hate ...'), and hate hiding behind a negation",
    "counter_speech": "counter-speech and quoting hate in order to reject it, vs repeating it approvingly",
    "identity_mention": "neutral and positive mentions of identity groups, vs attacks on them",
    "reclaimed": "reclaimed or self-referential terms, vs the same terms aimed at someone",
    "obfuscation": "leetspeak, spaced or repeated letters, homoglyphs, zero-width characters",
    "polite_hate": "hateful questions and politely phrased hateful opinions, vs genuine questions",
    "direct_threat": "first/second-person threats with and without weapon or place, vs violent idioms",
    "buried_threat": "a threat (or disclosure) at the end of several hundred words of benign text",
    "self_harm": "self-harm disclosure vs discussion (news, prevention, fiction, idioms)",
    "spam_phishing": "spam vs phishing vs legitimate notices",
    "harassment_banter": "targeted insults vs banter and criticism",
    "sexual_vs_medical": "sexual content vs educational and medical mentions",
}
SUITE_SUFFIXES = (".yaml", ".yml", ".jsonl")
_CASE_FIELDS = {"id", "group", "language", "text", "expected", "must_flag", "min_severity", "context"}


@dataclass(frozen=True)
class BehaviourCase:
    """One hand-written case: a text, what the model must (or must not) flag it as, and its behaviour group."""

    id: str
    group: str
    language: str
    text: str
    expected: tuple[str, ...]
    must_flag: bool
    min_severity: str | None = None


def default_suite_path() -> Path:
    """The directory of suite files shipped with the package."""
    return Path(str(resources.files("triage") / "data" / "behaviour"))


def _suite_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUITE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no suite files ({', '.join(SUITE_SUFFIXES)}) in this directory")
        return files
    if not path.is_file():
        raise DataError(f"{path}: no such suite file or directory")
    if path.suffix not in SUITE_SUFFIXES:
        raise DataError(f"{path}: a suite file must end in {', '.join(SUITE_SUFFIXES)}")
    return [path]


def _read_file(path: Path) -> tuple[list[dict[str, Any]], str | None, dict[str, str]]:
    """Raw case mappings of one file, its default language and its named passages."""
    if path.suffix == ".jsonl":
        return [fields for _, fields in _rows(path)], None, {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot read suite file: {err.strerror or err}") from err
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise DataError(f"{path}: expected a mapping with a 'cases' list")
    passages = doc.get("passages") or {}
    if not isinstance(passages, dict) or not all(isinstance(v, str) for v in passages.values()):
        raise DataError(f"{path}: 'passages' must map names to texts")
    language = doc.get("language")
    return doc["cases"], str(language) if language else None, {str(k): v for k, v in passages.items()}


def _parse_case(raw: Any, where: str, language: str | None, passages: Mapping[str, str], policy: Policy,
                problems: list[str]) -> BehaviourCase | None:
    """One case from its raw mapping; appends every problem found to `problems` (None when there is one)."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: a case must be a mapping, got {type(raw).__name__}")
        return None
    cid = str(raw.get("id") or "").strip()
    label = f"{where} case {cid or '(no id)'}"
    before = len(problems)
    if not cid:
        problems.append(f"{label}: missing id")
    unknown = sorted(set(raw) - _CASE_FIELDS)
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}")
    group = raw.get("group")
    if group not in GROUPS:
        problems.append(f"{label}: unknown group {group!r}; known groups: {', '.join(GROUPS)}")
    lang = raw.get("language", language)
    if not isinstance(lang, str) or not lang.strip():
        problems.append(f"{label}: no language (set it on the case or at the top of the file)")
    expected = raw.get("expected")
    if not isinstance(expected, list) or not all(isinstance(c, str) for c in expected):
        problems.append(f"{label}: 'expected' must be a list of category names ([] = must not be flagged)")
        expected = []
    bad = sorted(set(expected) - set(policy.category_names))
    if bad:
        problems.append(f"{label}: unknown categor{'y' if len(bad) == 1 else 'ies'} {', '.join(map(repr, bad))}; "
                        f"the policy {policy.name!r} has {', '.join(policy.category_names)}")
    must_flag = raw.get("must_flag")
    if not isinstance(must_flag, bool):
        problems.append(f"{label}: 'must_flag' must be true or false")
    elif must_flag != bool(expected):
        problems.append(f"{label}: must_flag is {str(must_flag).lower()} but expected is "
                        f"{expected or '[]'} (must-flag cases name categories, must-not-flag cases name none)")
    min_sev = raw.get("min_severity")
    if min_sev is not None:
        if min_sev not in policy.severity_names:
            problems.append(f"{label}: unknown min_severity {min_sev!r}; levels: {', '.join(policy.severity_names)}")
        elif not must_flag:
            problems.append(f"{label}: min_severity only applies to must-flag cases")
    context = raw.get("context") or []
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        context, missing = [], ["(context must be a list of passage names)"]
    else:
        missing = [c for c in context if c not in passages]
    if missing:
        problems.append(f"{label}: unknown context passage(s) {', '.join(map(str, missing))}")
    body = raw.get("text")
    if not isinstance(body, str) or not body.strip():
        problems.append(f"{label}: empty text")
    if len(problems) > before:
        return None
    full = "\n\n".join([*(passages[c] for c in context), str(body).strip()])
    return BehaviourCase(cid, str(group), str(lang).strip(), full, tuple(expected), bool(must_flag), min_sev)


def load_suite(path: str | Path | None = None, policy: Policy | None = None) -> list[BehaviourCase]:
    """Load and validate the suite (a file or a directory of files; the shipped one when None) against the policy.

    Every problem in every file is collected and raised at once as a DataError naming the cases.
    """
    pol = policy or load_policy()
    root = Path(path) if path else default_suite_path()
    cases: list[BehaviourCase] = []
    problems: list[str] = []
    for file in _suite_files(root):
        rows, language, passages = _read_file(file)
        for n, raw in enumerate(rows, start=1):
            case = _parse_case(raw, f"{file.name}#{n}", language, passages, pol, problems)
            if case is not None:
                cases.append(case)
    counts = Counter(c.id for c in cases)
    dupes = sorted(i for i, k in counts.items() if k > 1)
    if dupes:
        problems.append(f"duplicate case id(s): {', '.join(dupes)}")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise DataError(f"behaviour suite {root}: {len(problems)} problem(s): {shown}")
    if not cases:
        raise DataError(f"behaviour suite {root}: no cases")
    return cases


@dataclass(frozen=True)
class CaseResult:
    """What the model did with one case: predicted categories, route, top severity, and whether it passed."""

    id: str
    group: str
    language: str
    must_flag: bool
    expected: tuple[str, ...]
    predicted: tuple[str, ...]
    route: str
    severity: str
    passed: bool
    reviewed: bool
    severity_ok: bool | None
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupStats:
    """Accuracy on the must-flag and must-not-flag cases of one slice, and what went to review."""

    must_flag: int
    flagged: int
    caught: int
    must_not_flag: int
    left_alone: int
    clean_reviewed: int
    severity_cases: int
    severity_met: int

    @staticmethod
    def _rate(k: int, n: int) -> float | None:
        return k / n if n else None

    @property
    def flag_accuracy(self) -> float | None:
        """Share of must-flag cases flagged for an expected category."""
        return self._rate(self.flagged, self.must_flag)

    @property
    def caught_rate(self) -> float | None:
        """Share of must-flag cases flagged or sent to review (seen by a person either way)."""
        return self._rate(self.caught, self.must_flag)

    @property
    def clean_accuracy(self) -> float | None:
        """Share of must-not-flag cases with no category predicted."""
        return self._rate(self.left_alone, self.must_not_flag)

    @property
    def clean_review_rate(self) -> float | None:
        """Share of must-not-flag cases the scorer sends to review anyway (expert time spent)."""
        return self._rate(self.clean_reviewed, self.must_not_flag)

    @property
    def severity_accuracy(self) -> float | None:
        """Share of cases with a min_severity whose most likely severity reaches it."""
        return self._rate(self.severity_met, self.severity_cases)

    def as_dict(self) -> dict[str, float | int | None]:
        """Counts and rates, JSON-ready."""
        return {**asdict(self), "flag_accuracy": self.flag_accuracy, "caught_rate": self.caught_rate,
                "clean_accuracy": self.clean_accuracy, "clean_review_rate": self.clean_review_rate,
                "severity_accuracy": self.severity_accuracy}


def _stats(results: Iterable[CaseResult]) -> GroupStats:
    rs = list(results)
    pos = [r for r in rs if r.must_flag]
    neg = [r for r in rs if not r.must_flag]
    sev = [r for r in pos if r.severity_ok is not None]
    return GroupStats(
        must_flag=len(pos), flagged=sum(r.passed for r in pos), caught=sum(r.passed or r.reviewed for r in pos),
        must_not_flag=len(neg), left_alone=sum(r.passed for r in neg), clean_reviewed=sum(r.reviewed for r in neg),
        severity_cases=len(sev), severity_met=sum(bool(r.severity_ok) for r in sev),
    )


ALL = "all"


@dataclass(frozen=True)
class SuiteReport:
    """Per-case results with the slices the team reads: per group, per language, per group and language."""

    model: str
    results: tuple[CaseResult, ...]

    def slice(self, group: str = ALL, language: str = ALL) -> GroupStats:
        """Stats of the cases in `group` and `language` (ALL = every one)."""
        return _stats(r for r in self.results if group in (ALL, r.group) and language in (ALL, r.language))

    @property
    def groups(self) -> list[str]:
        """Groups present, in GROUPS order."""
        present = {r.group for r in self.results}
        return [g for g in GROUPS if g in present]

    @property
    def languages(self) -> list[str]:
        """Languages present, sorted."""
        return sorted({r.language for r in self.results})

    def rows(self) -> list[dict[str, Any]]:
        """One row per (group, language) slice with data, then per group, per language and overall."""
        rows = []
        keys = [(g, lang) for g in self.groups for lang in self.languages]
        keys += [(g, ALL) for g in self.groups] + [(ALL, lang) for lang in self.languages] + [(ALL, ALL)]
        for g, lang in keys:
            s = self.slice(g, lang)
            if s.must_flag + s.must_not_flag:
                rows.append({"group": g, "language": lang, **s.as_dict()})
        return rows

    def flat_metrics(self, prefix: str = "suite") -> dict[str, float]:
        """`<prefix>.<group|all>.<language|all>.<rate>` for every defined rate (for MLflow and tables)."""
        out: dict[str, float] = {}
        for row in self.rows():
            for rate in ("flag_accuracy", "caught_rate", "clean_accuracy", "clean_review_rate",
                         "severity_accuracy"):
                if row[rate] is not None:
                    out[f"{prefix}.{row['group']}.{row['language']}.{rate}"] = float(row[rate])
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole report: definitions, slices and every case."""
        return {
            "model": self.model,
            "definition": {
                "flagged": "a category is predicted when its probability reaches the model's decision threshold "
                           "(model card, else policy); a must-flag case passes when an expected category is "
                           "predicted, a must-not-flag case when no category is",
                "caught_rate": "must-flag cases flagged or routed to review",
                "clean_review_rate": "must-not-flag cases routed to review",
                "severity_accuracy": "must-flag cases with min_severity whose most likely severity reaches it",
            },
            "cases_total": len(self.results),
            "slices": self.rows(),
            "cases": [asdict(r) for r in self.results],
        }

    def to_csv(self) -> str:
        """The slices as CSV (one row per group x language, per group, per language, overall)."""
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["group", "language"])
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def markdown(self) -> str:
        """Markdown tables for the README: per behaviour (all languages) with per-language and overall rows, then
        flagged / left alone per behaviour and language."""
        head = ("| behaviour | must flag | flagged | flagged or review | must not | left alone | clean to review "
                "| severity ok |\n|---|---:|---:|---:|---:|---:|---:|---:|")
        lines = [head]
        keys = [(g, ALL) for g in self.groups] + [(ALL, lang) for lang in self.languages] + [(ALL, ALL)]
        for g, lang in keys:
            s = self.slice(g, lang)
            name = g if lang == ALL else f"all, {lang}"
            name = "**all**" if (g, lang) == (ALL, ALL) else name
            sev = f"{_pct(s.severity_accuracy)} of {s.severity_cases}" if s.severity_cases else "-"
            lines.append(f"| {name} | {s.must_flag} | {_pct(s.flag_accuracy)} | {_pct(s.caught_rate)} | "
                         f"{s.must_not_flag} | {_pct(s.clean_accuracy)} | {_pct(s.clean_review_rate)} | {sev} |")
        lines += ["", "| behaviour | " + " | ".join(f"{lang}: flagged / left alone" for lang in self.languages) + " |",
                  "|---|" + "---|" * len(self.languages)]
        for g in self.groups:
            cells = [f"{_pct(s.flag_accuracy)} of {s.must_flag} / {_pct(s.clean_accuracy)} of {s.must_not_flag}"
                     for s in (self.slice(g, lang) for lang in self.languages)]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, directory: str | Path, stem: str = "behaviour_suite") -> tuple[Path, Path]:
        """Write `<stem>.json`, `<stem>.csv` and `<stem>.md` into `directory`; returns the JSON and CSV paths."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        js, cs = out / f"{stem}.json", out / f"{stem}.csv"
        js.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
        cs.write_text(self.to_csv(), encoding="utf-8")
        (out / f"{stem}.md").write_text(self.markdown(), encoding="utf-8")
        return js, cs


def comparison_markdown(reports: Sequence[SuiteReport]) -> str:
    """One Markdown table comparing models per behaviour: flagged (must flag) / left alone (must not) for each."""
    groups = [g for g in GROUPS if any(g in r.groups for r in reports)]
    lines = ["| behaviour | " + " | ".join(f"{r.model}: flagged / left alone" for r in reports) + " |",
             "|---|" + "---:|" * len(reports)]
    for g in [*groups, ALL]:
        cells = [f"{_pct(s.flag_accuracy)} / {_pct(s.clean_accuracy)}" for s in (r.slice(g) for r in reports)]
        lines.append(f"| {'**all**' if g == ALL else g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def run_suite(model: Classifier | LoadedModel, cases: Sequence[BehaviourCase], policy: Policy,
              batch_size: int = 64, name: str | None = None) -> SuiteReport:
    """Score every case through the service's Scorer and judge it against its expectation."""
    if isinstance(model, LoadedModel):
        classifier, label = model.classifier, name or f"{model.name} v{model.version} (@{model.alias})"
    else:
        classifier, label = model, name or model.card.kind
    scorer = Scorer(classifier, policy)
    card = classifier.card
    known = [c for c in card.categories if c in policy.category_names]
    thresholds = {c: card.thresholds.get(c, policy.category(c).threshold) for c in known}
    missing = sorted({c for case in cases for c in case.expected} - set(known))
    if missing:
        log.warning("the model does not predict %s: must-flag cases expecting only these cannot pass",
                    ", ".join(missing))
    results: list[CaseResult] = []
    for start in range(0, len(cases), batch_size):
        batch = cases[start : start + batch_size]
        scored = scorer.score([Ticket(c.id, c.text) for c in batch], validate=False)
        for case, st in zip(batch, scored, strict=True):
            probs = st.scores.categories
            predicted = tuple(sorted((c for c in known if probs[c] >= thresholds[c]), key=lambda c: -probs[c]))
            passed = bool(set(predicted) & set(case.expected)) if case.must_flag else not predicted
            sev = st.decision.severity
            sev_ok = None if case.min_severity is None else (
                policy.severity_rank(sev) >= policy.severity_rank(case.min_severity))
            shown = {c: probs[c] for c in known if c in case.expected or c in predicted}
            results.append(CaseResult(case.id, case.group, case.language, case.must_flag, case.expected, predicted,
                                      st.decision.route, sev, passed, st.decision.route == "review", sev_ok, shown))
    return SuiteReport(label, tuple(results))


def balance(cases: Sequence[BehaviourCase]) -> dict[str, Any]:
    """Counts the suite's authors check: per language, per group, and the must-flag share."""
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cases:
        by_group[c.group]["must_flag" if c.must_flag else "must_not_flag"] += 1
    return {
        "cases": len(cases),
        "must_flag_share": float(np.mean([c.must_flag for c in cases])) if cases else 0.0,
        "languages": dict(Counter(c.language for c in cases)),
        "groups": {g: dict(v) for g, v in by_group.items()},
    }
