"""Alembic environment of the routing service."""

from services.routing.models import Base
from shared.db.migrate import run_env

run_env(Base.metadata, version_table="alembic_version_routing")
