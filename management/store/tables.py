"""The store's tables (SQLAlchemy Core). Times are ISO 8601 UTC strings for the wire
and integer milliseconds where the worker compares them (leases). Every listed
resource has an integer ``seq`` that orders it for keyset pagination."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TIME = sa.String(32)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.String(64), nullable=False),
    sa.Column("resource_group", sa.String(90), nullable=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),  # names image repositories
    sa.Column("created_at", TIME, nullable=False),
    sa.UniqueConstraint("subscription_id", "resource_group", "name"),
)

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),  # NULL: admin
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("revoked_at", TIME, nullable=True),
)

# The last version handed out per (account, kind, name): versions are gap-free because
# the counter moves in the same transaction as the insert that uses it.
name_versions = sa.Table(
    "name_versions", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_version", sa.Integer, nullable=False),
)

models = sa.Table(
    "models", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("unpack", sa.Boolean, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.UniqueConstraint("account_id", "name", "version"),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "account_id", "name", "seq"),
)

model_tags = sa.Table(
    "model_tags", metadata,
    sa.Column("model_seq", sa.Integer, sa.ForeignKey("models.seq"), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Index(None, "account_id", "tag", "model_seq"),
)

manifests = sa.Table(
    "manifests", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),  # the rest of the Manifest object, as registered
    sa.Column("created_time", TIME, nullable=False),
    sa.UniqueConstraint("account_id", "name", "version"),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "account_id", "name", "seq"),
)

manifest_models = sa.Table(
    "manifest_models", metadata,
    sa.Column("manifest_seq", sa.Integer, sa.ForeignKey("manifests.seq"), primary_key=True),
    sa.Column("model_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Index(None, "account_id", "model_id", "manifest_seq"),
)

operations = sa.Table(
    "operations", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("operation_type", sa.String(16), nullable=False),  # Image | Service
    sa.Column("resource_kind", sa.String(16), nullable=False),  # images | services
    sa.Column("resource_id", sa.String(36), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_time", TIME, nullable=False),
    sa.Column("end_time", TIME, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_ms", sa.BigInteger, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("payload", sa.JSON, nullable=True),  # what to do, for operations that need more than the resource
    sa.Index(None, "state", "seq"),
)

images = sa.Table(
    "images", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("manifest_id", sa.String(36), nullable=False),
    sa.Column("manifest_name", sa.String(64), nullable=False),
    sa.Column("image_type", sa.String(16), nullable=False),
    sa.Column("compute_resource_id", sa.String(256), nullable=True),
    sa.Column("creation_state", sa.String(16), nullable=False),
    sa.Column("created_time", TIME, nullable=False),
    sa.Column("image_location", sa.Text, nullable=True),
    sa.Column("image_build_log_uri", sa.Text, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("operation_id", sa.String(36), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.UniqueConstraint("account_id", "name", "version"),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "account_id", "manifest_id", "seq"),
    sa.Index(None, "account_id", "manifest_name", "seq"),
)

# Uploaded files (content-addressed, shared on disk) and the accounts that uploaded
# them: an account may only reference artifacts it uploaded itself.
artifacts = sa.Table(
    "artifacts", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
)

# Where services run: "local" (the engine of the worker) always exists implicitly;
# others are added with `moma compute add`.
computes = sa.Table(
    "computes", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # local | swarm
    sa.Column("docker_host", sa.String(512), nullable=False),  # "" = the worker's DOCKER_HOST
    sa.Column("created_at", TIME, nullable=False),
    # {"verify", "caCertPath", "clientCertPath", "clientKeyPath"}: PEM files on the worker's host
    sa.Column("tls", sa.JSON, nullable=True),
)

services = sa.Table(
    "services", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("image_id", sa.String(36), nullable=False),
    sa.Column("compute", sa.String(64), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),  # the desired settings (replicas, autoscaler, reservations ...)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("scoring_port", sa.Integer, nullable=True),
    sa.Column("scoring_host", sa.String(255), nullable=True),
    sa.Column("replicas", sa.Integer, nullable=True),  # what the autoscaler chose last
    sa.Column("primary_key", sa.Text, nullable=False),  # encrypted, see management/service_keys.py
    sa.Column("secondary_key", sa.Text, nullable=False),
    sa.Column("keys_version", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),  # bumps with every create/update
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index(None, "account_id", "seq"),
    sa.Index(None, "account_id", "name"),
)

deployments = sa.Table(
    "deployments", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("service_id", sa.String(36), nullable=False),
    sa.Column("service_name", sa.String(64), nullable=False),
    sa.Column("image_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("expired_at", TIME, nullable=True),
    sa.Index(None, "account_id", "service_id", "seq"),
)

# Facts about this installation, e.g. its id, which labels everything it runs on an
# engine so that two installations sharing an engine never touch each other's services.
meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Singleton jobs any worker may run but only one at a time (the reconciler).
leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)
