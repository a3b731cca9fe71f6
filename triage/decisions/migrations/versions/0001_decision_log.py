"""decision_log and expert_label tables

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(256), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
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
    op.create_index("ix_decision_log_ticket_id", "decision_log", ["ticket_id"])
    op.create_index("ix_decision_log_decided_at", "decision_log", ["decided_at"])
    op.create_index("ix_decision_log_category", "decision_log", ["category"])
    op.create_index("ix_decision_log_route", "decision_log", ["route"])
    op.create_table(
        "expert_label",
        sa.Column("annotation_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ticket_id", sa.String(256), nullable=True),
        sa.Column("annotator", sa.String(256), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(32), nullable=True),
        sa.Column("labelled_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=True),
        sa.Column("category_correct", sa.Boolean(), nullable=True),
        sa.Column("severity_correct", sa.Boolean(), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_expert_label_ticket_id", "expert_label", ["ticket_id"])
    op.create_index("ix_expert_label_decision_id", "expert_label", ["decision_id"])


def downgrade() -> None:
    op.drop_table("expert_label")
    op.drop_table("decision_log")
