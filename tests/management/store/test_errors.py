"""The store's own error tree: it knows nothing of HTTP (no Flask, no API errors) and
says what went wrong in its own terms; the API alone turns that into a status code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from management.store import Store
from management.store.errors import AlreadyExists, MissingReferences, NotStored, StoreError

from ..helpers import DEFAULT_SCOPE


def test_the_store_imports_neither_flask_nor_the_api_errors():
    probe = ("import sys, management.store\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug') "
             "or m in ('management.errors', 'management.api')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def _service(store: Store, account_id: int, name: str = "svc", service_id: str = "s1") -> str:
    return store.services.create(account_id, service_id=service_id, name=name, image_id="img", compute="local",
                                 settings={}, primary_key="p", secondary_key="s")


def test_a_taken_name_is_already_exists(store: Store):
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    store.computes.add(account.id, "cluster", "swarm", "")
    _service(store, account.id)
    with pytest.raises(AlreadyExists, match="a compute named cluster exists"):
        store.computes.add(account.id, "cluster", "swarm", "")
    with pytest.raises(AlreadyExists, match="the compute 'local' always exists"):
        store.computes.add(account.id, "local", "local", "")
    with pytest.raises(AlreadyExists, match="a service named svc exists in this account"):
        _service(store, account.id, service_id="s2")
    with pytest.raises(AlreadyExists, match="account default/default/default exists"):
        store.accounts.create(*DEFAULT_SCOPE)
    with pytest.raises(AlreadyExists, match="account names are unique"):
        store.accounts.create("other-sub", "rg", "default")


def test_changing_a_service_that_is_not_there_is_not_stored(store: Store):
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    with pytest.raises(NotStored, match="service absent not found"):
        store.services.update(account.id, "absent", image_id="img", settings={})
    with pytest.raises(NotStored, match="service absent not found"):
        store.services.set_keys(account.id, "absent", primary_key="p")


def test_a_manifest_of_unregistered_models_names_each_missing_one(store: Store):
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    with pytest.raises(MissingReferences) as caught:
        store.manifests.register(account.id, {"name": "m", "modelIds": ["m1", "m2"]})
    assert caught.value.message == "model m1, m2 is not registered in this account"
    assert caught.value.details == [("ModelNotFound", "modelIds: m1 is not a registered model"),
                                    ("ModelNotFound", "modelIds: m2 is not a registered model")]
    assert isinstance(caught.value, StoreError)
