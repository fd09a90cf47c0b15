"""Slow clients against a built image's container with 2 workers (the Hardening issue's
slowloris case as a service meets it): 200 connections that dribble their heads, dribble
their bodies or say nothing, through Docker's published port; health and scoring on new
connections answer within a second meanwhile, and each slow one is closed at its
deadline. The check is the one tests/runtime/test_slow_clients.py makes on a gunicorn of
the checkout."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import requests

from builder.manifest import load_manifest
from tests.integration.conftest import (  # noqa: F401
    RunningImage,
    builder,
    builder_config,
    driver_manifest,
    labels,
    moma_home,
    run_image,
)
from tests.runtime.conftest import FIXTURES
from tests.runtime.test_slow_clients import SLOW_ENV, two_hundred_slow_clients

pytestmark = [pytest.mark.docker, pytest.mark.slow]



@pytest.fixture(scope="module")
def image(builder, labels, tmp_path_factory) -> str:  # noqa: F811
    from builder.build import BuildOptions

    project = tmp_path_factory.mktemp("slowloris")
    shutil.copy(FIXTURES / "threads.py", project / "score.py")
    (project / "manifest.yml").write_text(driver_manifest("slowloris"))
    return builder.build(load_manifest(project / "manifest.yml"),
                         BuildOptions(labels=labels, name="slowloris", tag="1")).reference


def test_two_hundred_slow_clients_against_a_two_worker_container(run_image, image):  # noqa: F811
    service: RunningImage = run_image(image, WORKERS="2", **SLOW_ENV)
    assert service.wait_until_answering("/readyz").status_code == 200, service.logs()
    port = int(service.container.get_exposed_port(5001))
    two_hundred_slow_clients(SimpleNamespace(port=port),
                             lambda: requests.get(service.url + "/metrics", timeout=10).text)
