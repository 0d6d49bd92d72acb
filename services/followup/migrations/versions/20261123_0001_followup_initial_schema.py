"""followup initial schema

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
    op.create_table('inbox',
    sa.Column('consumer_group', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=255), nullable=False),
    sa.Column('handled_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'event_id', name=op.f('pk_inbox'))
    )
    op.create_table('loops',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('complaint_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('journey_key', sa.String(length=100), nullable=False),
    sa.Column('journey_name', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=100), nullable=False),
    sa.Column('owner_key', sa.String(length=100), nullable=False),
    sa.Column('owner_name', sa.String(length=200), nullable=False),
    sa.Column('journey_manager', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('opened_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_code', sa.String(length=100), nullable=True),
    sa.Column('root_cause', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('next_due_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loops'))
    )
    with op.batch_alter_table('loops', schema=None) as batch_op:
        batch_op.create_index('ix_loops_customer_journey', ['customer_id', 'journey_key', 'status'], unique=False)
        batch_op.create_index('ix_loops_journey_status', ['journey_key', 'status'], unique=False)
        batch_op.create_index('ix_loops_next_due_at', ['next_due_at', 'id'], unique=False)
        batch_op.create_index('ix_loops_owner_status', ['owner_key', 'status'], unique=False)

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

    op.create_table('loop_complaints',
    sa.Column('complaint_id', sa.Uuid(), nullable=False),
    sa.Column('loop_id', sa.Uuid(), nullable=False),
    sa.Column('joined_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loop_id'], ['loops.id'], name=op.f('fk_loop_complaints_loop_id_loops')),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_loop_complaints'))
    )
    with op.batch_alter_table('loop_complaints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loop_complaints_loop_id'), ['loop_id'], unique=False)

    op.create_table('notes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('loop_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loop_id'], ['loops.id'], name=op.f('fk_notes_loop_id_loops')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_loop_id'), ['loop_id'], unique=False)

    op.create_table('promises',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('loop_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('due_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('made_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kept_at', shared.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['loop_id'], ['loops.id'], name=op.f('fk_promises_loop_id_loops')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promises'))
    )
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promises_loop_id'), ['loop_id'], unique=False)

    op.create_table('timeline',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('loop_id', sa.Uuid(), nullable=False),
    sa.Column('at', shared.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['loop_id'], ['loops.id'], name=op.f('fk_timeline_loop_id_loops')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline'))
    )
    with op.batch_alter_table('timeline', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_loop_at', ['loop_id', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('timeline', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_loop_at')

    op.drop_table('timeline')
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promises_loop_id'))

    op.drop_table('promises')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notes_loop_id'))

    op.drop_table('notes')
    with op.batch_alter_table('loop_complaints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loop_complaints_loop_id'))

    op.drop_table('loop_complaints')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unsent', postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))
        batch_op.drop_index('ix_outbox_sent_at')

    op.drop_table('outbox')
    with op.batch_alter_table('loops', schema=None) as batch_op:
        batch_op.drop_index('ix_loops_owner_status')
        batch_op.drop_index('ix_loops_next_due_at')
        batch_op.drop_index('ix_loops_journey_status')
        batch_op.drop_index('ix_loops_customer_journey')

    op.drop_table('loops')
    op.drop_table('inbox')
