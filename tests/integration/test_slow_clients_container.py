"""Slow clients against a built image's container with 2 workers (the Hardening issue's
slowloris case as a service meets it): 200 connections that dribble their heads, dribble
their bodies or say nothing, through Docker's published port; health and scoring on new
connections answer within a second meanwhile, and each slow one is closed at its
deadline. The check is the one tests/runtime/test_slow_clients.py makes on a gunicorn of
the checkout."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from tests.integration.conftest import (  # noqa: F401
    RunningImage,
    build_driver_image,
    builder,
    builder_config,
    labels,
    moma_home,
    run_image,
)
from tests.runtime.conftest import FIXTURES
from tests.runtime.test_slow_clients import SLOW_ENV, two_hundred_slow_clients

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def image(builder, labels, tmp_path_factory) -> str:  # noqa: F811
    return build_driver_image(builder, labels, tmp_path_factory.mktemp("slowloris"), FIXTURES / "threads.py",
                              "slowloris")


def test_two_hundred_slow_clients_against_a_two_worker_container(run_image, image):  # noqa: F811
    service: RunningImage = run_image(image, WORKERS="2", **SLOW_ENV)
    assert service.wait_until_answering("/readyz").status_code == 200, service.logs()
    port = int(service.container.get_exposed_port(5001))
    two_hundred_slow_clients(SimpleNamespace(port=port),
                             lambda: requests.get(service.url + "/metrics", timeout=10).text)
