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
    with op.batch_alter_table('e2e_measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_e2e_measurements_job'), ['job'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('e2e_measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_e2e_measurements_job'))
    op.drop_table('e2e_measurements')
