"""build_logs: image build logs in the store, readable by every API replica

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'build_logs',
        sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('image_id', sa.String(length=36), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('written_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_build_logs_image_id_images')),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_build_logs')),
    )
    with op.batch_alter_table('build_logs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_build_logs_image_id_seq'), ['image_id', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('build_logs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_build_logs_image_id_seq'))
    op.drop_table('build_logs')
