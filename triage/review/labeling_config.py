"""The Label Studio labeling config, generated from the policy so labels are never listed twice."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from triage.taxonomy import Policy
from triage.tickets import NO_CATEGORY

# Names the config, the tasks, the predictions and the annotation parser agree on.
TEXT = "text"
CATEGORY = "category"
SEVERITY = "severity"
RATIONALE = "rationale"


def _attrs(**kwargs: str) -> str:
    return " ".join(f"{k}={quoteattr(v)}" for k, v in kwargs.items())


def labeling_config(policy: Policy) -> str:
    """XML for a project: the ticket, categories (multiple), severity (one), rationale, the definitions."""
    lines = [
        "<View>",
        f"  <Text {_attrs(name=TEXT, value='$' + TEXT)}/>",
        f"  <Header {_attrs(value='Policy categories: choose every one that applies', size='6')}/>",
        f"  <Choices {_attrs(name=CATEGORY, toName=TEXT, choice='multiple', showInline='false')}>",
    ]
    for c in policy.categories:
        lines.append(f"    <Choice {_attrs(value=c.name, hint=f'{c.title}: {c.definition}')}/>")
    lines += [
        f"    <Choice {_attrs(value=NO_CATEGORY, hint='No policy violation')}/>",
        "  </Choices>",
        f"  <Header {_attrs(value='Severity', size='6')}/>",
        f"  <Choices {_attrs(name=SEVERITY, toName=TEXT, choice='single-radio', showInline='true')}>",
    ]
    for s in policy.severity:
        lines.append(f"    <Choice {_attrs(value=s.name, hint=s.rubric)}/>")
    lines += [
        "  </Choices>",
        f"  <TextArea {_attrs(name=RATIONALE, toName=TEXT, rows='2', maxSubmissions='1', editable='true', placeholder='Why? (optional)')}/>",  # noqa: E501
        f"  <Collapse><Panel {_attrs(value=f'Policy {policy.name} {policy.version}: definitions')}>",
    ]
    for c in policy.categories:
        lines.append(f"    <Header {_attrs(value=f'{c.name}: {c.title}', size='6')}/>")
        lines.append(f"    <Text {_attrs(name=f'definition_{c.name}', value=c.definition)}/>")
    lines.append(f"    <Header {_attrs(value='Severity levels', size='6')}/>")
    for s in policy.severity:
        lines.append(f"    <Text {_attrs(name=f'rubric_{s.name}', value=f'{s.name}: {s.rubric}')}/>")
    lines += ["  </Panel></Collapse>", "</View>"]
    return "\n".join(lines) + "\n"
