"""Fuzz the management API from its own Swagger document (schemathesis strategies
driven by hypothesis), administration routes included: whatever the generated request,
no 5xx, and every response matches the document. Operation by operation, then
statefully: sequences that follow the document's links (a new account, its models,
manifests, images, operations, tokens) with the values earlier answers gave.
(schemathesis' pytest plugin does not run on pytest 9, so the operations are
parametrized here and the strategies drawn by hand.)"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from management.api import create_app, swagger
from management.store import Store
from management.store.tables import metadata

ACCOUNT = {"subscriptionId": "default", "resourceGroupName": "default", "accountName": "default"}
# A schema-valid body may still name a manifest or model that does not exist: the
# document cannot express references, so a 400 for those is right.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@dataclass
class Service:
    schema: Any
    store: Store
    secret: str

    def reset(self) -> None:
        """An empty store: the default account and a new admin token only."""
        with self.store.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
        self.store.accounts.ensure_default()
        self.secret, _ = self.store.tokens.create("fuzz", None)

    def token(self) -> str:
        """A live admin token: a fuzzed request may revoke the one in use (schemathesis
        infers a link from the token list to the revoke route), and the next must get in."""
        if self.store.tokens.authenticate(self.secret) is None:
            self.secret, _ = self.store.tokens.create("fuzz", None)
        return self.secret


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    home: Path = tmp_path_factory.mktemp("fuzz-home")
    store = Store(f"sqlite:///{home / 'moma.db'}")
    store.migrate()
    store.accounts.ensure_default()
    secret, _ = store.tokens.create("fuzz", None)
    app = create_app({"home": home}, store=store)
    yield Service(schemathesis.openapi.from_wsgi("/swagger.json", app, headers={"Authorization": f"Bearer {secret}"}),
                  store, secret)
    store.close()


OPERATION_IDS = {f"{method.upper()} {path}": operation["operationId"]
                 for path, item in swagger.swagger_document()["paths"].items()
                 for method, operation in item.items() if method != "parameters"}
OPERATIONS = list(OPERATION_IDS)


def test_the_fuzz_reaches_the_admin_routes() -> None:
    assert {"GET /api/admin/accounts", "POST /api/admin/accounts", "GET /api/admin/tokens", "POST /api/admin/tokens",
            "DELETE /api/admin/tokens/{tokenId}"} <= set(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS, ids=OPERATION_IDS.values())
def test_api_never_fails_and_matches_its_document(service: Service, label: str) -> None:
    operations = {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in service.schema.get_all_operations())}
    operation = operations[label]

    @given(data=st.data())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(data):
        case = data.draw(operation.as_strategy())
        if case.path_parameters:
            case.path_parameters.update({k: v for k, v in ACCOUNT.items() if k in case.path_parameters})
        case.call_and_validate(headers={"Authorization": f"Bearer {service.token()}"}, excluded_checks=EXCLUDED)

    run()


WALKS = {
    # Accounts and tokens alone: few operations, so the links' chains (a new account, a
    # token for it, its revocation) come up in most scenarios.
    "administration": ({"CreateToken", "Revoke"}, 2, 60),
    # Everything: any sequence the links (ours and those schemathesis infers) allow.
    "whole": (set(), 5, 150),
}


@pytest.mark.slow
@pytest.mark.parametrize("walk", WALKS)
def test_api_walks_its_links_without_failing(service: Service, walk: str) -> None:
    must_follow, at_least, scenarios = WALKS[walk]
    followed: Counter[str] = Counter()
    answered: Counter[tuple[str, int]] = Counter()
    # Valid requests only: a link fills in a valid body and the token over a negative
    # case's broken ones, and the server then rightly accepts it.
    service.schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    schema = service.schema.include(tag="administration") if walk == "administration" else service.schema

    class Walk(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            """Each scenario on an empty store: hypothesis replays scenarios and expects the
            same answers, which a store left from earlier scenarios would not give."""
            service.reset()

        def step(self, input: Any) -> Any:
            if input.transition is None and input.case.path_parameters:  # a first step: in an account that exists
                input.case.path_parameters.update({k: v for k, v in ACCOUNT.items() if k in input.case.path_parameters})
            output = super().step(input)
            answered[(input.case.operation.definition.raw["operationId"], output.response.status_code)] += 1
            if input.transition is not None and output.response.status_code < 300:
                followed[input.transition.id.rsplit(" -> ", 2)[1].split("] ")[1]] += 1
            return output

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {service.token()}"}}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, additional_checks=additional_checks, excluded_checks=EXCLUDED,
                                   headers=kwargs.get("headers"), transport_kwargs=kwargs)

    Walk.run(settings=settings(max_examples=scenarios, stateful_step_count=10, deadline=None,
                               suppress_health_check=list(HealthCheck), database=None))

    assert not [key for key in answered if key[1] >= 500], answered
    assert must_follow <= set(followed) and len(followed) >= at_least, followed
