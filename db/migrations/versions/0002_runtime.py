"""the runtime of profiling runs and fitted predictors

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 17:50:00.000000

Every row stored before runtimes existed was measured (or fitted) under PyTorch eager: the server default
labels them ``torch``. Predictors become unique per (device, runtime, space, kind, version).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('profiling_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runtime', sa.String(length=32), server_default='torch', nullable=False))

    with op.batch_alter_table('fitted_predictors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runtime', sa.String(length=32), server_default='torch', nullable=False))
        batch_op.drop_constraint('uq_predictor_version', type_='unique')
        batch_op.create_unique_constraint(
            'uq_predictor_version', ['device_id', 'runtime', 'space', 'kind', 'version']
        )


def downgrade() -> None:
    # Without the column, rows of other runtimes would pass for torch's: refuse rather than mislabel or delete them.
    connection = op.get_bind()
    for table in ('profiling_runs', 'fitted_predictors'):
        others = connection.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE runtime <> 'torch'")).scalar()
        if others:
            raise RuntimeError(
                f"cannot downgrade below 0002: {others} row(s) of {table} belong to a runtime other than torch; "
                "delete them first"
            )
    with op.batch_alter_table('fitted_predictors', schema=None) as batch_op:
        batch_op.drop_constraint('uq_predictor_version', type_='unique')
        batch_op.create_unique_constraint('uq_predictor_version', ['device_id', 'space', 'kind', 'version'])
        batch_op.drop_column('runtime')

    with op.batch_alter_table('profiling_runs', schema=None) as batch_op:
        batch_op.drop_column('runtime')
