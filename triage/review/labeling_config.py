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
ESCALATE = "escalate"
ANSWERS = "answers"  # adjudication tasks: what each reviewer answered


def _attrs(**kwargs: str) -> str:
    return " ".join(f"{k}={quoteattr(v)}" for k, v in kwargs.items())


def labeling_config(policy: Policy, adjudication: bool = False) -> str:
    """XML for a project: the ticket and the model's view of it (categories with scores, severity, priority,
    reasons, metadata, model version), categories (multiple, required), severity (one, required), escalate,
    rationale, the policy's definitions. With `adjudication`, also the reviewers' answers being settled.

    Context is shown with Header tags reading task fields: Header is not an object tag, so a task without
    those fields (imported by hand) is still valid.
    """
    lines = ["<View>"]
    if adjudication:
        lines += [
            f"  <Header {_attrs(value='Reviewers disagree: decide the final label', size='4')}/>",
            f"  <Header {_attrs(value='$' + ANSWERS, size='6')}/>",
        ]
    lines += [
        f"  <Text {_attrs(name=TEXT, value='$' + TEXT)}/>",
        "  <View style=\"background: #f4f6f8; padding: 6px 10px; border-radius: 4px\">",
        f"    <Header {_attrs(value='Model view (a guess, not a decision)', size='6')}/>",
        f"    <Header {_attrs(value='$model_view', size='6', style='font-weight: normal')}/>",
        f"    <Header {_attrs(value='$model_context', size='6', style='font-weight: normal')}/>",
        f"    <Header {_attrs(value='$reasons', size='6', style='font-weight: normal')}/>",
        f"    <Header {_attrs(value='$metadata_text', size='6', style='font-weight: normal')}/>",
        "  </View>",
        f"  <Header {_attrs(value=f'Policy categories: choose every one that applies, or only {NO_CATEGORY}', size='6')}/>",  # noqa: E501
        f"  <Choices {_attrs(name=CATEGORY, toName=TEXT, choice='multiple', showInline='false', required='true', requiredMessage=f'Choose the categories that apply, or {NO_CATEGORY}')}>",  # noqa: E501
    ]
    for c in policy.categories:
        lines.append(f"    <Choice {_attrs(value=c.name, hint=f'{c.title}: {c.definition}')}/>")
    lines += [
        f"    <Choice {_attrs(value=NO_CATEGORY, hint='No policy violation (choose it alone, with severity ' + policy.severity_names[0] + ')')}/>",  # noqa: E501
        "  </Choices>",
        f"  <Header {_attrs(value='Severity', size='6')}/>",
        f"  <Choices {_attrs(name=SEVERITY, toName=TEXT, choice='single-radio', showInline='true', required='true', requiredMessage='Choose a severity')}>",  # noqa: E501
    ]
    for s in policy.severity:
        lines.append(f"    <Choice {_attrs(value=s.name, hint=s.rubric)}/>")
    lines += [
        "  </Choices>",
        f"  <Choices {_attrs(name=ESCALATE, toName=TEXT, choice='multiple', showInline='true')}>",
        f"    <Choice {_attrs(value=ESCALATE, hint='Needs urgent handling (imminent harm, legal deadline)')}/>",
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


def instructions(policy: Policy) -> str:
    """The policy's definitions and severity rubric as HTML, for the project's labelling instructions."""
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    parts = [f"<h3>Policy {esc(policy.name)} {esc(policy.version)}</h3>",
             f"<p>Choose every category that applies, or only <b>{NO_CATEGORY}</b>; a category needs a severity "
             f"above <b>{esc(policy.severity_names[0])}</b>, and <b>{NO_CATEGORY}</b> goes with "
             f"<b>{esc(policy.severity_names[0])}</b>. Other answers are refused. Tick <b>escalate</b> when the "
             "ticket needs urgent handling.</p>", "<h4>Categories</h4><ul>"]
    parts += [f"<li><b>{esc(c.name)}</b> ({esc(c.title)}): {esc(c.definition)}</li>" for c in policy.categories]
    parts.append("</ul><h4>Severity</h4><ul>")
    parts += [f"<li><b>{esc(s.name)}</b>: {esc(s.rubric)}</li>" for s in policy.severity]
    parts.append("</ul>")
    return "".join(parts)
