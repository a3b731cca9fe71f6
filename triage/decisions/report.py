"""`triage report`: one self-contained HTML file (charts inlined as base64 PNG) and a CSV per table.

matplotlib, not plotly: static PNGs need no JavaScript and no network, open in any browser or mail client, and
matplotlib is already a dependency.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from triage.decisions.analytics import Period, report_tables
from triage.decisions.store import DecisionStore, utcnow
from triage.taxonomy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """One report section: a question, its table, its chart."""

    key: str
    title: str
    question: str
    chart: Callable[[pd.DataFrame, Any], bool]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _volume(df: pd.DataFrame, ax: Any) -> bool:
    if df.empty:
        return False
    t = df.pivot_table(index="day", columns="category", values="decisions", aggfunc="sum", fill_value=0)
    x = range(len(t.index))
    colours = matplotlib_colours(len(t.columns))
    ax.stackplot(x, t.T.to_numpy(), labels=[str(c) for c in t.columns], colors=colours)
    step = max(1, len(t.index) // 12)
    ax.set_xticks(list(x)[::step], [str(d) for d in t.index[::step]], rotation=45, fontsize=7, ha="right")
    ax.set_ylabel("decisions per day (stacked by category)")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return True


def matplotlib_colours(n: int) -> list[Any]:
    """`n` distinguishable colours."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _route(df: pd.DataFrame, ax: Any) -> bool:
    if df.empty:
        return False
    d = df.set_index("category")[["auto", "review"]]
    d.div(d.sum(axis=1), axis=0).plot(kind="barh", stacked=True, ax=ax, color=["#4c9f70", "#d95f02"])
    ax.set_xlabel("share of decisions")
    return True


def _review_time(df: pd.DataFrame, ax: Any) -> bool:
    if df.empty:
        return False
    df.set_index("severity")[["median_hours", "p90_hours"]].plot(kind="bar", ax=ax)
    ax.set_ylabel("hours to first expert label")
    return True


def _agreement(df: pd.DataFrame, ax: Any) -> bool:
    d = df.dropna(subset=["alpha"]) if not df.empty else df
    if d.empty:
        return False
    d.set_index("category")["alpha"].astype(float).plot(kind="barh", ax=ax, color="#7570b3")
    ax.axvline(0.667, color="grey", linestyle="--", label="0.667 (tentative conclusions)")
    ax.set_xlabel("Krippendorff's alpha")
    ax.legend(fontsize=7)
    return True


def _confusion(df: pd.DataFrame, ax: Any) -> bool:
    d = df[(df[["tp", "fp", "fn"]].sum(axis=1)) > 0] if not df.empty else df
    if d.empty:
        return False
    d.set_index("category")[["tp", "fp", "fn"]].plot(kind="barh", stacked=True, ax=ax,
                                                      color=["#1b9e77", "#d95f02", "#7570b3"])
    ax.set_xlabel("labelled decisions (model positive = decided category)")
    return True


def _precision(df: pd.DataFrame, ax: Any) -> bool:
    if df.empty:
        return False
    t = df.pivot_table(index="category", columns="measured_against", values="precision")
    t.plot(kind="barh", ax=ax)
    targets = df.drop_duplicates("category").set_index("category")["target_precision"].reindex(t.index)
    for i, target in enumerate(targets):
        if pd.notna(target):
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("precision of auto-routed decisions (black bar: policy target)")
    return True


def _rising(df: pd.DataFrame, ax: Any) -> bool:
    if df.empty:
        return False
    d = df.assign(label=df["kind"] + ": " + df["name"].astype(str)).set_index("label")["change"]
    d.sort_values().plot(kind="barh", ax=ax, color=["#d95f02" if v > 0 else "#1b9e77" for v in d.sort_values()])
    ax.set_xlabel("decisions, last 7 days minus the 7 days before")
    return True


SECTIONS = (
    Section("volume", "Volume", "How many tickets, of which category and severity, each day?", _volume),
    Section("route_share", "Auto vs review", "Which share of each category is routed automatically?", _route),
    Section("review_time", "Time to review", "How long do tickets wait for an expert, by severity (median, p90)?",
            _review_time),
    Section("expert_agreement", "Expert agreement",
            "How much do experts agree with each other (Krippendorff's alpha, tickets with 2+ experts)?", _agreement),
    Section("confusion", "Model vs expert", "Where does the model disagree with our experts, per category?",
            _confusion),
    Section("auto_precision", "Auto-route precision",
            "Is the auto-route as precise as the policy promises, against later expert labels and the audit "
            "sample?", _precision),
    Section("rising", "Rising", "Which categories and sources grew most, week over week?", _rising),
)


def _chart(section: Section, df: pd.DataFrame) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    try:
        drawn = section.chart(df, ax)
        ax.set_title(section.title)
        return _png(fig) if drawn else None
    finally:
        plt.close(fig)


def _table_html(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df.empty:
        return "<p class='empty'>no data in this period</p>"
    shown = df.head(max_rows)
    more = f"<p>{len(df) - max_rows} more rows in the CSV file</p>" if len(df) > max_rows else ""
    return shown.to_html(index=False, na_rep="", classes="data", border=0) + more


def drift_section(tables: Mapping[str, pd.DataFrame], notes: list[str], period: str) -> str:
    """The drift section: PSI per comparison (flag line at 0.25) and the far clusters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from triage.decisions.drift import PSI_FLAG

    df = tables.get("drift", pd.DataFrame())
    img = "<p class='empty chart-missing'>no chart: no drift reference or no decisions</p>"
    if not df.empty:
        fig, ax = plt.subplots(figsize=(9, 4))
        try:
            d = df.set_index("feature")["psi"]
            d.plot(kind="barh", ax=ax, color=["#d95f02" if v >= PSI_FLAG else "#1b9e77" for v in d])
            ax.axvline(PSI_FLAG, color="grey", linestyle="--", label=f"PSI {PSI_FLAG} (flag)")
            ax.set_xlabel("population stability index vs training data")
            ax.legend(fontsize=7)
            ax.set_title("Drift")
            img = f"<img class='chart' alt='Drift chart' src='data:image/png;base64,{_png(fig)}'>"
        finally:
            plt.close(fig)
    flagged = [] if df.empty else df.loc[df["flagged"].astype(bool), "feature"].tolist()
    clusters = tables.get("drift_clusters", pd.DataFrame())
    verdict = (f"<p class='verdict flagged'>Flagged: {html.escape(', '.join(flagged))}"
               f"{' and ' if flagged and len(clusters) else ''}"
               f"{f'{len(clusters)} cluster(s) far from the training data' if len(clusters) else ''}</p>"
               if flagged or len(clusters) else "<p class='verdict'>No drift flagged.</p>")
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<section id='drift'><h2>Drift</h2><p class='q'>Do recent inputs ({html.escape(period)}) still look "
            f"like the training data? New clusters of review tickets?</p>{verdict}{img}{_table_html(df)}"
            f"<h3>Far clusters of review tickets</h3>{_table_html(clusters)}<ul>{note_html}</ul>"
            f"<p class='csv'>CSV: drift.csv, drift_clusters.csv</p></section>")


def render_html(tables: Mapping[str, pd.DataFrame], period: Period, extra: Mapping[str, str] | None = None,
                sections: tuple[Section, ...] = SECTIONS) -> str:
    """The report page; `extra` adds ready-made HTML sections (drift) by title."""
    parts = []
    nav = []
    for s in sections:
        df = tables[s.key]
        png = _chart(s, df)
        img = (f"<img class='chart' alt='{html.escape(s.title)} chart' src='data:image/png;base64,{png}'>"
               if png else "<p class='empty chart-missing'>no chart: no data in this period</p>")
        nav.append(f"<a href='#{s.key}'>{html.escape(s.title)}</a>")
        parts.append(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2><p class='q'>{html.escape(s.question)}"
                     f"</p>{img}{_table_html(df)}<p class='csv'>CSV: {s.key}.csv</p></section>")
    for key, body in (extra or {}).items():
        nav.append(f"<a href='#{key}'>{html.escape(key.title())}</a>")
        parts.append(body)
    generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>triage report {period.since:%Y-%m-%d} to {period.until:%Y-%m-%d}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}} img.chart{{max-width:100%}}
table.data{{border-collapse:collapse;font-size:12px}} table.data td,table.data th{{padding:2px 6px;
border-bottom:1px solid #ddd}} .q{{color:#444}} nav a{{margin-right:1em}} .empty{{color:#999}}</style></head>
<body><h1>Escalation report</h1><p>Decisions from {period.since:%Y-%m-%d %H:%M} to {period.until:%Y-%m-%d %H:%M}
UTC (until exclusive); generated {generated}.</p><nav>{''.join(nav)}</nav>{''.join(parts)}</body></html>"""


def write_report(store: DecisionStore, period: Period, policy: Policy, out_dir: Path, drift: bool = True,
                 home: Path | None = None, reference: Any = None) -> Path:
    """Write report.html and one CSV per table into `out_dir`; returns the HTML file's path.

    Drift compares the period's last 7 days with the training data, using `reference` or the reference cached
    in `home` for the period's main model version.
    """
    from datetime import timedelta

    from triage.decisions.drift import drift_for_period, drift_tables

    out_dir.mkdir(parents=True, exist_ok=True)
    tables = report_tables(store, period, policy)
    extra: dict[str, str] = {}
    if drift:
        since = max(period.since, period.until - timedelta(days=7))
        result, notes = drift_for_period(store, since, period.until, home, reference)
        dt = drift_tables(result) if result is not None else {}
        tables.update(dt)
        extra["drift"] = drift_section(dt, notes, f"{since:%Y-%m-%d} to {period.until:%Y-%m-%d}")
    for name, df in tables.items():
        df.to_csv(out_dir / f"{name}.csv", index=False)
    page = out_dir / "report.html"
    page.write_text(render_html(tables, period, extra), encoding="utf-8")
    return page


def default_period(now: datetime | None = None, days: int = 28) -> Period:
    """The last `days` days up to now."""
    until = now or utcnow()
    return Period(until - pd.Timedelta(days=days).to_pytimedelta(), until)
