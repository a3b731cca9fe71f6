"""Between tickets and Label Studio results: tasks with pre-annotations out, reviewers' choices back in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from triage.review.backend import Prediction, TaskDraft
from triage.review.labeling_config import CATEGORY, ESCALATE, RATIONALE, SEVERITY, TEXT
from triage.taxonomy import Policy
from triage.tickets import NO_CATEGORY, ScoredTicket


def result_for(categories: Sequence[str], severity: str | None, rationale: str | None = None) -> list[dict[str, Any]]:
    """A Label Studio result (the same shape for a prediction and for an annotation)."""
    out: list[dict[str, Any]] = [{
        "from_name": CATEGORY, "to_name": TEXT, "type": "choices",
        "value": {"choices": list(categories) or [NO_CATEGORY]},
    }]
    if severity is not None:
        out.append({"from_name": SEVERITY, "to_name": TEXT, "type": "choices", "value": {"choices": [severity]}})
    if rationale:
        out.append({"from_name": RATIONALE, "to_name": TEXT, "type": "textarea", "value": {"text": [rationale]}})
    return out


def text_sha(text: str) -> str:
    """The hash that, with its id, identifies a ticket: the same id with another text is another ticket."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def reviewers_needed(item: ScoredTicket, policy: Policy) -> int:
    """Reviewers the policy wants for a ticket: more for a predicted always_review severity or category."""
    d = item.decision
    high = policy.review.high_stakes_reviewers
    if d.severity in policy.severity_names and policy.severity[policy.severity_rank(d.severity)].always_review:
        return high
    names = set(policy.category_names)
    if any(policy.category(c).always_review for c in predicted_categories(item, policy) if c in names):
        return high
    return policy.review.reviewers


def model_view(item: ScoredTicket, policy: Policy) -> str:
    """The model's guess as a reviewer reads it: each category with its score (highest first), then severity."""
    cats = sorted(item.scores.categories.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{c} {p:.0%}" for c, p in cats[:5])
    sev = ", ".join(f"{s} {item.scores.severity.get(s, 0.0):.0%}" for s in policy.severity_names)
    return f"categories: {shown} | severity: {sev}"


def predicted_categories(item: ScoredTicket, policy: Policy) -> list[str]:
    """The categories the model says apply: its top category plus any other over the policy threshold."""
    top = item.decision.category
    if top == NO_CATEGORY:
        return [NO_CATEGORY]
    others = [c for c, p in item.scores.categories.items() if c != top and p >= policy.category(c).threshold]
    others.sort(key=lambda c: -item.scores.categories[c])
    return [top, *others]


def prediction_result(item: ScoredTicket, policy: Policy) -> list[dict[str, Any]]:
    """The model's answer as a pre-annotation. Only a consistent one is pre-filled: a severity that contradicts
    the categories (a category with the lowest severity, or "none" with a higher one) is left for the reviewer
    to choose (the model view shows the severity scores)."""
    cats = predicted_categories(item, policy)
    consistent = annotation_problem(cats, item.decision.severity, policy) is None
    return result_for(cats, item.decision.severity if consistent else None)


def task_draft(item: ScoredTicket, policy: Policy, model_name: str, model_version: str,
               score: float | None = None, extra: Mapping[str, Any] | None = None) -> TaskDraft:
    """A scored ticket as a task: text, ticket metadata, priority, the model's view, plus any `extra` data; its
    prediction scored `score`, by default the decision's confidence (the lowest is the least certain, served
    first by uncertainty sampling)."""
    d = item.decision
    meta = item.ticket.metadata
    data: dict[str, Any] = {
        TEXT: item.ticket.text,
        "ticket_id": item.ticket.id,
        "text_sha": text_sha(item.ticket.text),
        "reviewers": reviewers_needed(item, policy),
        "model_view": model_view(item, policy),
        "priority": round(float(d.priority), 6),
        "confidence": round(float(d.confidence), 6),
        "model_category": d.category,
        "model_severity": d.severity,
        "reasons": " | ".join(d.reasons) or "(no reason given)",
        "model": f"{model_name}:{model_version}",
        "policy_version": policy.version,
        "metadata": json.loads(json.dumps(dict(meta), default=str)) if meta else {},
        "model_context": (f"model {model_name}:{model_version} says {d.category}, severity {d.severity}, "
                          f"confidence {d.confidence:.0%}; priority {d.priority:.2f}; policy {policy.version}"),
        "metadata_text": ", ".join(f"{k}: {v}" for k, v in sorted(meta.items())) or "(none)",
    }
    if extra:
        data.update(extra)
    prediction = Prediction(
        result=prediction_result(item, policy),
        score=float(d.confidence) if score is None else score,
        model_version=model_version,
    )
    return TaskDraft(ticket_id=item.ticket.id, data=data, prediction=prediction)


def draft_to_json(draft: TaskDraft) -> str:
    """Serialise a draft for the outbox."""
    p = draft.prediction
    return json.dumps({
        "ticket_id": draft.ticket_id,
        "data": dict(draft.data),
        "prediction": None if p is None else
        {"result": [dict(r) for r in p.result], "score": p.score, "model_version": p.model_version},
    }, ensure_ascii=False, default=str)


def draft_from_json(text: str) -> TaskDraft:
    """Read a draft back from the outbox."""
    raw = json.loads(text)
    p = raw.get("prediction")
    return TaskDraft(
        ticket_id=str(raw["ticket_id"]),
        data=raw["data"],
        prediction=None if p is None else Prediction(result=p["result"], score=float(p["score"]),
                                                     model_version=str(p["model_version"])),
    )


def _choices(result: Sequence[Mapping[str, Any]], control: str) -> list[str] | None:
    picked: list[str] | None = None
    for item in result:
        if isinstance(item, Mapping) and item.get("from_name") == control:
            value = item.get("value") or {}
            choices = value.get("choices") if isinstance(value, Mapping) else None
            if isinstance(choices, list):
                picked = [*(picked or []), *(str(c) for c in choices)]
    return picked


def escalated(result: Sequence[Mapping[str, Any]]) -> bool:
    """True when the reviewer ticked "escalate" (urgent handling)."""
    return bool(_choices(result, ESCALATE))


def annotation_problem(categories: Sequence[str], severity: str | None, policy: Policy) -> str | None:
    """Why an annotation is not a usable label (None when it is): nothing chosen, an unknown name, "none"
    with a category, a category with the lowest severity, or "none" with a higher one."""
    lowest = policy.severity_names[0]
    unknown = sorted(set(categories) - {*policy.category_names, NO_CATEGORY})
    if not categories:
        return "no category chosen (choose the categories that apply, or none)"
    if unknown:
        return f"unknown categories: {', '.join(unknown)}"
    if severity is None:
        return "no severity chosen"
    if severity not in policy.severity_names:
        return f"unknown severity {severity!r}"
    real = [c for c in categories if c != NO_CATEGORY]
    if NO_CATEGORY in categories and real:
        return f"'{NO_CATEGORY}' chosen together with {', '.join(real)}"
    if real and severity == lowest:
        return f"{', '.join(real)} chosen with severity {lowest}"
    if not real and severity != lowest:
        return f"no violation ('{NO_CATEGORY}') with severity {severity}"
    return None


def parse_result(result: Sequence[Mapping[str, Any]]) -> tuple[list[str], str | None, str | None]:
    """(categories chosen, severity or None, rationale or None) from an annotation result."""
    cats = _choices(result, CATEGORY) or []
    sev = _choices(result, SEVERITY)
    rationale = None
    for item in result:
        if isinstance(item, Mapping) and item.get("from_name") == RATIONALE:
            texts = (item.get("value") or {}).get("text") or []
            rationale = "\n".join(str(t) for t in texts) or None
    return cats, (sev[0] if sev else None), rationale
