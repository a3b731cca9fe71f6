"""The decision log's tables (SQLAlchemy Core); the schema itself is created by the Alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per scored ticket (a ticket scored twice has two rows). Times are naive UTC.
decision_log = sa.Table(
    "decision_log", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.String(256), nullable=False, index=True),
    sa.Column("decided_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False, index=True),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("priority", sa.Float(), nullable=False),
    sa.Column("route", sa.String(16), nullable=False, index=True),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("category_scores", sa.JSON(), nullable=False),
    sa.Column("severity_scores", sa.JSON(), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("prediction_set", sa.JSON(), nullable=False),
    sa.Column("api_key_id", sa.String(128), nullable=True),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("text_length", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=True),
    sa.Column("script", sa.String(16), nullable=False),
    sa.Column("source", sa.String(128), nullable=True),
    sa.Column("audit_sample", sa.Boolean(), nullable=False),
)

# One row per expert annotation (latest version), joined to the decision it judged once that is known.
expert_label = sa.Table(
    "expert_label", metadata,
    sa.Column("annotation_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.String(256), nullable=True, index=True),
    sa.Column("annotator", sa.String(256), nullable=False),
    sa.Column("categories", sa.JSON(), nullable=False),
    sa.Column("severity", sa.String(32), nullable=True),
    sa.Column("labelled_at", sa.DateTime(), nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Column("via", sa.String(32), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    sa.Column("decision_id", sa.BigInteger(), nullable=True, index=True),
    sa.Column("category_correct", sa.Boolean(), nullable=True),
    sa.Column("severity_correct", sa.Boolean(), nullable=True),
    sa.Column("wait_seconds", sa.Float(), nullable=True),
)
