"""Tokens at rest: only their hashes are stored."""

from __future__ import annotations

from management.store import Store


def test_tokens_are_stored_hashed(store: Store) -> None:
    secret, _ = store.tokens.create("hashed", None)

    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT token_hash FROM tokens").scalars().all()
    assert secret not in rows and all(secret not in row for row in rows)
