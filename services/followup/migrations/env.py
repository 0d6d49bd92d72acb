"""Alembic environment of the followup service."""

from services.followup.models import Base
from shared.db.migrate import run_env

run_env(Base.metadata, version_table="alembic_version_followup")
