"""Alembic environment: runs on the connection `triage.decisions.store.migrate` hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from triage.decisions.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table="decision_log_version",
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
