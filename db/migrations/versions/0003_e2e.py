"""end-to-end measurements of exported split networks

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 07:00:00.000000

One row per ``splitnas-edge run``: what ran where, over which transport, measured beside its prediction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('e2e_measurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('space', sa.String(length=64), nullable=False),
    sa.Column('devices', sa.JSON(), nullable=False),
    sa.Column('runtime', sa.String(length=32), nullable=False),
    sa.Column('architecture', sa.JSON(), nullable=False),
    sa.Column('splits', sa.JSON(), nullable=False),
    sa.Column('codec', sa.String(length=32), nullable=False),
    sa.Column('transport', sa.String(length=16), nullable=False),
    sa.Column('loss', sa.Float(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('payload_bytes', sa.BigInteger(), nullable=False),
    sa.Column('throughput_mbps', sa.Float(), nullable=False),
    sa.Column('p50_ms', sa.Float(), nullable=False),
    sa.Column('p90_ms', sa.Float(), nullable=False),
    sa.Column('predicted_ms', sa.Float(), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('load', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_e2e_measurements_job'), 'e2e_measurements', ['job'], unique=False)


def downgrade() -> None:
    # Dropping the table drops its index. A downgrade below 0002 that 0002 refuses has already run this on
    # SQLite, where the DDL is not rolled back: the table may be gone already.
    if sa.inspect(op.get_bind()).has_table('e2e_measurements'):
        op.drop_table('e2e_measurements')
