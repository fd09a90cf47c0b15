"""Fuzz the management API from its own Swagger document (schemathesis strategies
driven by hypothesis): whatever the generated request, no 5xx, and every response
matches the document. (schemathesis' pytest plugin does not run on pytest 9, so the
operations are parametrized here and the strategies drawn by hand.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from management.api import create_app, swagger
from management.store import Store

ACCOUNT = {"subscriptionId": "default", "resourceGroupName": "default", "accountName": "default"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home: Path = tmp_path_factory.mktemp("fuzz-home")
    store = Store(f"sqlite:///{home / 'moma.db'}")
    store.migrate()
    store.accounts.ensure_default()
    secret, _ = store.tokens.create("fuzz", None)
    app = create_app({"home": home}, store=store)
    schema = schemathesis.openapi.from_wsgi("/swagger.json", app, headers={"Authorization": f"Bearer {secret}"})
    operations = {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in schema.get_all_operations())}
    yield operations, secret
    store.close()


OPERATIONS = [f"{method.upper()} {path}" for path, item in swagger.swagger_document()["paths"].items()
              for method in item if method != "parameters"]


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_never_fails_and_matches_its_document(service, label):
    operations, token = service
    operation = operations[label]

    @given(data=st.data())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(data):
        case = data.draw(operation.as_strategy())
        if case.path_parameters:
            case.path_parameters.update({k: v for k, v in ACCOUNT.items() if k in case.path_parameters})
        # A schema-valid body may still name a manifest or model that does not exist:
        # the document cannot express references, so a 400 for those is right.
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                               excluded_checks=[schemathesis.checks.positive_data_acceptance])

    run()
