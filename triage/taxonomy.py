"""The policy taxonomy: categories, severity levels and routing rules, loaded from one YAML file."""

from __future__ import annotations

import hashlib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from triage.errors import PolicyError

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
MIN_SEED_EXAMPLES = 3


def seed_key(text: str) -> str:
    """How seed examples are compared for duplicates: case and runs of whitespace do not count."""
    return " ".join(text.casefold().split())


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityLevel(_Strict):
    """One step of the ordered severity scale."""

    name: Name
    rubric: str = Field(min_length=1)
    always_review: bool = False


class Category(_Strict):
    """One policy-violation category with its routing rule."""

    name: Name
    title: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    weight: float = Field(default=0.5, ge=0.0, le=1.0)
    threshold: Probability = 0.5
    min_confidence: float = Field(default=0.75, ge=0.5, lt=1.0)
    always_review: bool = False
    target_precision: Probability = 0.9
    # The largest share of this category's violating tickets that may be auto-cleared (routed with no person).
    max_auto_clear_miss: Probability = 0.05
    # Seed texts: a category without a trained head is scored by similarity to these (see triage/models/examples.py).
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _seeds_are_usable(self) -> Category:
        for field_name, texts in (("examples", self.examples), ("counter_examples", self.counter_examples)):
            for k, text in enumerate(texts):
                if not text.strip():
                    raise ValueError(f"category {self.name!r}: {field_name}[{k}] is empty")
            keys = [seed_key(t) for t in texts]
            dupes = [t for k, t in enumerate(texts) if keys.index(seed_key(t)) != k]
            if dupes:
                raise ValueError(f"category {self.name!r}: {field_name} lists {_short(dupes[0])} twice")
        if self.counter_examples and not self.examples:
            raise ValueError(f"category {self.name!r}: counter_examples need examples too")
        if self.examples and len(self.examples) < MIN_SEED_EXAMPLES:
            raise ValueError(f"category {self.name!r}: {len(self.examples)} example(s); at least "
                             f"{MIN_SEED_EXAMPLES} are needed to score a category from its examples")
        counter = {seed_key(t) for t in self.counter_examples}
        both = [t for t in self.examples if seed_key(t) in counter]
        if both:
            raise ValueError(f"category {self.name!r}: {_short(both[0])} is both an example and a counter-example")
        return self


class Routing(_Strict):
    """Ticket-level routing knobs that are not tied to one category."""

    ambiguity_margin: float = Field(default=0.1, ge=0.0, lt=1.0)
    severity_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # The largest share of tickets at an always-reviewed severity (high, critical) that may skip review.
    max_severe_miss: Probability = 0.02
    # Confidence of the finite-sample bounds behind both promises (1 - delta).
    guarantee_delta: Probability = 0.1


class Promotion(_Strict):
    """Rules a challenger must pass to replace the champion (differences in points, 0..100)."""

    max_macro_f1_drop: float = Field(default=0.5, ge=0.0)
    max_category_recall_drop: float = Field(default=2.0, ge=0.0)
    max_critical_recall_drop: float = Field(default=0.0, ge=0.0)
    # Each rule is judged with an interval on the challenger-minus-champion difference (triage.promotion).
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="two-sided interval level")
    replicates: int = Field(default=2000, ge=100, le=100_000, description="macro-F1 randomization replicates")
    seed: int = Field(default=0, ge=0, description="replicate seed: the same inputs give the same verdicts")


class ReviewRules(_Strict):
    """Expert review: how many reviewers a ticket gets, and what a model change does to the queue."""

    reviewers: int = Field(default=1, ge=1, le=5, description="reviewers per ticket")
    high_stakes_reviewers: int = Field(default=2, ge=1, le=5, description="reviewers for a ticket whose predicted "
                                       "severity or category is always_review")
    withdraw_auto_routed: bool = Field(default=True, description="after a model change, tickets still waiting "
                                       "that the new model routes automatically leave the review queue")


class NewCategories(_Strict):
    """How categories that start from seed examples grow a trained head."""

    # Expert labels (tickets reviewed since the category was added) before `triage retrain --heads-only` fits a head.
    min_labels_for_head: int = Field(default=30, ge=1, le=100_000)
    # Positives among them the head needs at the least (seed examples count).
    min_positives_for_head: int = Field(default=5, ge=1, le=100_000)


class Policy(_Strict):
    """A team's whole policy; the one source of category and severity names."""

    name: Name
    version: str = Field(min_length=1, max_length=64)
    severity: tuple[SeverityLevel, ...] = Field(min_length=2)
    categories: tuple[Category, ...] = Field(min_length=1)
    routing: Routing = Routing()
    promotion: Promotion = Promotion()
    review: ReviewRules = ReviewRules()
    new_categories: NewCategories = NewCategories()

    @field_validator("severity", "categories")
    @classmethod
    def _unique_names(cls, items: tuple[SeverityLevel | Category, ...]) -> tuple:
        names = [item.name for item in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate names: {', '.join(dupes)}")
        return items

    @model_validator(mode="after")
    def _none_is_not_a_category(self) -> Policy:
        if "none" in self.category_names:
            raise ValueError("'none' is reserved for 'no violation' and cannot be a category name")
        return self

    @model_validator(mode="after")
    def _seeds_belong_to_one_category(self) -> Policy:
        owner: dict[str, str] = {}
        for c in self.categories:
            for text in c.examples:
                first = owner.setdefault(seed_key(text), c.name)
                if first != c.name:
                    raise ValueError(f"example {_short(text)} is listed under both {first!r} and {c.name!r}; "
                                     "a seed example belongs to one category")
        return self

    @cached_property
    def seeded_categories(self) -> tuple[str, ...]:
        """Categories that list seed examples, in policy order."""
        return tuple(c.name for c in self.categories if c.examples)

    @cached_property
    def category_names(self) -> tuple[str, ...]:
        """Category names in policy order."""
        return tuple(c.name for c in self.categories)

    @cached_property
    def severity_names(self) -> tuple[str, ...]:
        """Severity level names from least to most severe."""
        return tuple(s.name for s in self.severity)

    @cached_property
    def _by_name(self) -> tuple[tuple[Category, ...], dict[str, Category]]:
        return self.categories, {c.name: c for c in self.categories}

    def category(self, name: str) -> Category:
        """The category called `name`; KeyError names the known ones. A dict lookup (routing asks dozens of times
        per ticket), rebuilt when a copy of the policy has other categories."""
        of, by_name = self._by_name
        if of is not self.categories:
            self.__dict__.pop("_by_name", None)
            of, by_name = self._by_name
        found = by_name.get(name)
        if found is not None:
            return found
        raise KeyError(f"unknown category {name!r}; the policy has {', '.join(self.category_names)}")

    def severity_rank(self, name: str) -> int:
        """Position of a severity level on the scale (0 = least severe)."""
        return self.severity_names.index(name)

    @cached_property
    def digest(self) -> str:
        """Short content hash, so a model can say exactly which policy it was trained for."""
        payload = self.model_dump_json().encode()
        return hashlib.sha256(payload).hexdigest()[:12]


def default_policy_path() -> Path:
    """Path of the policy file shipped with the package."""
    return Path(str(resources.files("triage") / "policies" / "default.yaml"))


def _format_validation(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"{loc}: {e['msg']}")
    return "; ".join(lines)


def parse_policy(raw: object, source: str = "<policy>") -> Policy:
    """Validate a parsed YAML document as a policy; PolicyError names each bad field."""
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Policy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"{source}: invalid policy: {_format_validation(err)}") from err


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file (the shipped default when `path` is None)."""
    p = Path(path) if path else default_policy_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{p}: cannot read policy file: {err.strerror or err}") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"{p}: not valid YAML: {err}") from err
    return parse_policy(raw, str(p))
