"""analyst views: decisions, reviews, daily_volume, review_times (documented in docs/decision-log.md)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = ("review_times", "daily_volume", "reviews", "decisions")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    day = "date(decided_at)" if sqlite else "CAST(decided_at AS DATE)"
    false = "0" if sqlite else "FALSE"
    # Every decision, without the text (which is kept only when the operator turns it on).
    op.execute(f"""CREATE VIEW decisions AS SELECT id AS decision_id, ticket_id, decided_at, {day} AS day,
        model_name, model_version, policy_version, category, severity, priority, route, confidence,
        category_scores, severity_scores, reasons, prediction_set, api_key_id, text_sha256, text_length,
        script, source, audit_sample FROM decision_log""")
    # Each live expert annotation with the decision it judged (model right or wrong, wait for review).
    op.execute(f"""CREATE VIEW reviews AS SELECT e.annotation_id, e.ticket_id, e.annotator,
        e.categories AS expert_categories, e.severity AS expert_severity, e.labelled_at, e.via,
        d.id AS decision_id, d.decided_at, d.model_version, d.policy_version, d.category AS model_category,
        d.severity AS model_severity, d.route, d.audit_sample, e.category_correct, e.severity_correct,
        e.wait_seconds
        FROM expert_label e LEFT JOIN decision_log d ON d.id = e.decision_id WHERE e.deleted = {false}""")
    op.execute(f"""CREATE VIEW daily_volume AS SELECT {day} AS day, category, severity, route,
        COUNT(*) AS decisions FROM decision_log GROUP BY {day}, category, severity, route""")
    # The first expert label each reviewed decision received: how long it waited.
    op.execute(f"""CREATE VIEW review_times AS SELECT d.id AS decision_id, d.ticket_id, d.severity, d.category,
        {day.replace('decided_at', 'd.decided_at')} AS day, MIN(e.wait_seconds) AS wait_seconds
        FROM decision_log d JOIN expert_label e ON e.decision_id = d.id AND e.deleted = {false}
        GROUP BY d.id, d.ticket_id, d.severity, d.category, {day.replace('decided_at', 'd.decided_at')}""")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
