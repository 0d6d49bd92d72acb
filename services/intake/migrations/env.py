"""Alembic environment of the intake service."""

from services.intake.models import Base
from shared.db.migrate import run_env

run_env(Base.metadata, version_table="alembic_version_intake")
