"""computes.tls: the TLS settings of a compute on a remote Docker engine

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('computes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tls', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('computes', schema=None) as batch_op:
        batch_op.drop_column('tls')
