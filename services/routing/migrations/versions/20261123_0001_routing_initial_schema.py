"""routing initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('assignments',
    sa.Column('complaint_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('journey_key', sa.String(length=100), nullable=False),
    sa.Column('journey_name', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=100), nullable=False),
    sa.Column('owner_key', sa.String(length=100), nullable=False),
    sa.Column('owner_name', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('rule_key', sa.String(length=100), nullable=True),
    sa.Column('catalog_version', sa.Integer(), nullable=False),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('assigned_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('loop_id', sa.Uuid(), nullable=True),
    sa.Column('history', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_assignments'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_assigned_at', ['assigned_at'], unique=False)
        batch_op.create_index('ix_assignments_customer_journey', ['customer_id', 'journey_key', 'open'], unique=False)
        batch_op.create_index('ix_assignments_owner_open', ['owner_key', 'open'], unique=False)

    op.create_table('catalog_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('applied_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('applied_by', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_catalog_versions'))
    )
    op.create_table('inbox',
    sa.Column('consumer_group', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=255), nullable=False),
    sa.Column('handled_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'event_id', name=op.f('pk_inbox'))
    )
    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=True),
    sa.Column('event_type', sa.String(length=255), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_sent_at', ['sent_at'], unique=False)
        batch_op.create_index('ix_outbox_unsent', ['seq'], unique=False, postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))

    op.create_table('owner_availability',
    sa.Column('owner_key', sa.String(length=100), nullable=False),
    sa.Column('away_from', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('away_until', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delegate', sa.String(length=100), nullable=True),
    sa.Column('updated_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('owner_key', name=op.f('pk_owner_availability'))
    )
    op.create_table('round_robin_cursors',
    sa.Column('journey_key', sa.String(length=100), nullable=False),
    sa.Column('last_owner', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('journey_key', name=op.f('pk_round_robin_cursors'))
    )
    


def downgrade() -> None:
    
    op.drop_table('round_robin_cursors')
    op.drop_table('owner_availability')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unsent', postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))
        batch_op.drop_index('ix_outbox_sent_at')

    op.drop_table('outbox')
    op.drop_table('inbox')
    op.drop_table('catalog_versions')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_owner_open')
        batch_op.drop_index('ix_assignments_customer_journey')
        batch_op.drop_index('ix_assignments_assigned_at')

    op.drop_table('assignments')
    
