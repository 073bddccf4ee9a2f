"""sweeps: a grid of searches, each cell one search job

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:00:00.000000

A job of a sweep names the sweep and its cell (the hash of the cell's settings); jobs stored before have neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('search_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cell', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('fk_search_jobs_sweep_id_sweeps', 'sweeps', ['sweep_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_index('ix_search_jobs_sweep_cell', ['sweep_id', 'cell'], unique=False)


def downgrade() -> None:
    # A downgrade below 0002 that 0002 refuses has already run this on SQLite, whose pysqlite driver commits
    # the batch's copy table but rolls the rest back: drop that leftover, and run only what is still to do.
    bind = op.get_bind()
    op.execute('DROP TABLE IF EXISTS _alembic_tmp_search_jobs')
    if 'sweep_id' in {column['name'] for column in sa.inspect(bind).get_columns('search_jobs')}:
        with op.batch_alter_table('search_jobs', schema=None) as batch_op:
            batch_op.drop_index('ix_search_jobs_sweep_cell')
            batch_op.drop_constraint('fk_search_jobs_sweep_id_sweeps', type_='foreignkey')
            batch_op.drop_column('cell')
            batch_op.drop_column('sweep_id')
    if sa.inspect(bind).has_table('sweeps'):
        op.drop_table('sweeps')
