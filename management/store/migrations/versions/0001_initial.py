"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.String(length=64), nullable=False),
    sa.Column('resource_group', sa.String(length=90), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name')),
    sa.UniqueConstraint('subscription_id', 'resource_group', 'name', name=op.f('uq_accounts_subscription_id_resource_group_name'))
    )
    op.create_table('artifacts',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_artifacts_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'sha256', name=op.f('pk_artifacts'))
    )
    op.create_table('images',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('manifest_id', sa.String(length=36), nullable=False),
    sa.Column('manifest_name', sa.String(length=64), nullable=False),
    sa.Column('image_type', sa.String(length=16), nullable=False),
    sa.Column('compute_resource_id', sa.String(length=256), nullable=True),
    sa.Column('creation_state', sa.String(length=16), nullable=False),
    sa.Column('created_time', sa.String(length=32), nullable=False),
    sa.Column('image_location', sa.Text(), nullable=True),
    sa.Column('image_build_log_uri', sa.Text(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('operation_id', sa.String(length=36), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_images_account_id_accounts')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_images')),
    sa.UniqueConstraint('account_id', 'name', 'version', name=op.f('uq_images_account_id_name_version')),
    sa.UniqueConstraint('id', name=op.f('uq_images_id'))
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_images_account_id_manifest_id_seq'), ['account_id', 'manifest_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_images_account_id_manifest_name_seq'), ['account_id', 'manifest_name', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_images_account_id_seq'), ['account_id', 'seq'], unique=False)

    op.create_table('manifests',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_time', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_manifests_account_id_accounts')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_manifests')),
    sa.UniqueConstraint('account_id', 'name', 'version', name=op.f('uq_manifests_account_id_name_version')),
    sa.UniqueConstraint('id', name=op.f('uq_manifests_id'))
    )
    with op.batch_alter_table('manifests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manifests_account_id_name_seq'), ['account_id', 'name', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_manifests_account_id_seq'), ['account_id', 'seq'], unique=False)

    op.create_table('models',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('mime_type', sa.String(length=255), nullable=False),
    sa.Column('unpack', sa.Boolean(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_models_account_id_accounts')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_models')),
    sa.UniqueConstraint('account_id', 'name', 'version', name=op.f('uq_models_account_id_name_version')),
    sa.UniqueConstraint('id', name=op.f('uq_models_id'))
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_models_account_id_name_seq'), ['account_id', 'name', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_models_account_id_seq'), ['account_id', 'seq'], unique=False)

    op.create_table('name_versions',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('last_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_name_versions_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'kind', 'name', name=op.f('pk_name_versions'))
    )
    op.create_table('operations',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('operation_type', sa.String(length=16), nullable=False),
    sa.Column('resource_kind', sa.String(length=16), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_time', sa.String(length=32), nullable=False),
    sa.Column('end_time', sa.String(length=32), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_ms', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_operations_account_id_accounts')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_operations')),
    sa.UniqueConstraint('id', name=op.f('uq_operations_id'))
    )
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operations_state_seq'), ['state', 'seq'], unique=False)

    op.create_table('tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('revoked_at', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_tokens_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_tokens_token_hash'))
    )
    op.create_table('manifest_models',
    sa.Column('manifest_seq', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['manifest_seq'], ['manifests.seq'], name=op.f('fk_manifest_models_manifest_seq_manifests')),
    sa.PrimaryKeyConstraint('manifest_seq', 'model_id', name=op.f('pk_manifest_models'))
    )
    with op.batch_alter_table('manifest_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manifest_models_account_id_model_id_manifest_seq'), ['account_id', 'model_id', 'manifest_seq'], unique=False)

    op.create_table('model_tags',
    sa.Column('model_seq', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_seq'], ['models.seq'], name=op.f('fk_model_tags_model_seq_models')),
    sa.PrimaryKeyConstraint('model_seq', 'tag', name=op.f('pk_model_tags'))
    )
    with op.batch_alter_table('model_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_tags_account_id_tag_model_seq'), ['account_id', 'tag', 'model_seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('model_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_tags_account_id_tag_model_seq'))

    op.drop_table('model_tags')
    with op.batch_alter_table('manifest_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_manifest_models_account_id_model_id_manifest_seq'))

    op.drop_table('manifest_models')
    op.drop_table('tokens')
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operations_state_seq'))

    op.drop_table('operations')
    op.drop_table('name_versions')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_models_account_id_seq'))
        batch_op.drop_index(batch_op.f('ix_models_account_id_name_seq'))

    op.drop_table('models')
    with op.batch_alter_table('manifests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_manifests_account_id_seq'))
        batch_op.drop_index(batch_op.f('ix_manifests_account_id_name_seq'))

    op.drop_table('manifests')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_account_id_seq'))
        batch_op.drop_index(batch_op.f('ix_images_account_id_manifest_name_seq'))
        batch_op.drop_index(batch_op.f('ix_images_account_id_manifest_id_seq'))

    op.drop_table('images')
    op.drop_table('artifacts')
    op.drop_table('accounts')
