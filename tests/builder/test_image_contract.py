"""The Dockerfile states the image contract (``runtime/contract.py``) and takes every
value of it from the render context: the templates name none of it themselves."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from builder.dockerfile import DockerfileContext, render_dockerfile
from builder.errors import TemplateError
from runtime import contract

CONTEXT = DockerfileContext(moma_version="0.1.0", runtime_type="Python", base_image="python:3.11-slim",
                            uv_wheel="uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl", driver="score.py")
OTHER = replace(CONTEXT, uid=20002, port=6000, app_root="/srv/app", app_root_variable="APP_HOME",
                runtime_type_variable="KIND", driver_variable="ENTRY", command=("serve", "--now"),
                healthcheck=("probe", "-q"), health_interval_s=7, health_timeout_s=4, health_start_period_s=9,
                health_retries=2)


def test_the_dockerfile_states_the_contract():
    lines = render_dockerfile(CONTEXT).splitlines()
    assert f"USER {contract.UID}:{contract.UID}" in lines and f"EXPOSE {contract.PORT}" in lines
    assert f"WORKDIR {contract.APP_ROOT}" in lines
    assert f"    {contract.ENV_APP_ROOT}={contract.APP_ROOT} \\" in lines
    assert f'ENV {contract.ENV_DRIVER}="score.py"' in lines
    assert f"CMD {json.dumps(list(contract.COMMAND))}" in lines
    health = contract.IMAGE_HEALTHCHECK
    assert (f"HEALTHCHECK --interval={health.interval_s}s --timeout={health.timeout_s}s "
            f"--start-period={health.start_period_s}s --retries={health.retries} "
            f"CMD {json.dumps(list(contract.HEALTHCHECK))}") in lines
    assert f'COPY ["models/", "{contract.APP_ROOT}/"]' in lines


@pytest.mark.parametrize("runtime_type", ["Python", "SparkPython"])
def test_every_value_of_the_contract_comes_from_the_context(runtime_type):
    text = render_dockerfile(replace(OTHER, runtime_type=runtime_type))
    lines = text.splitlines()
    assert "USER 20002:20002" in lines and "EXPOSE 6000" in lines and "WORKDIR /srv/app" in lines
    assert 'CMD ["serve", "--now"]' in lines and 'ENV ENTRY="score.py"' in lines
    assert 'HEALTHCHECK --interval=7s --timeout=4s --start-period=9s --retries=2 CMD ["probe", "-q"]' in lines
    assert "    APP_HOME=/srv/app \\" in lines and f'    KIND="{runtime_type}"' in lines
    for value in (contract.APP_ROOT, str(contract.UID), str(contract.PORT), contract.ENV_APP_ROOT,
                  contract.ENV_DRIVER, contract.ENV_RUNTIME_TYPE, contract.GUNICORN_CONFIG, "runtime.healthcheck"):
        assert value not in text, f"{value} is written in a template"


@pytest.mark.parametrize("app_root", ["srv/app", "/srv/app x", "/srv/../etc", "/srv/$HOME", "/srv\n/app", "/"])
def test_app_roots_that_are_not_plain_absolute_paths_are_refused(app_root):
    with pytest.raises(TemplateError):
        render_dockerfile(replace(CONTEXT, app_root=app_root))


@pytest.mark.parametrize("name", ["A=B", "1A", "A B", "A\nRUN x", ""])
def test_bad_variable_names_are_refused(name):
    with pytest.raises(TemplateError, match="not a valid environment variable name"):
        render_dockerfile(replace(CONTEXT, driver_variable=name))


def test_commands_are_exec_form_json_with_no_variables():
    with pytest.raises(TemplateError, match="'\\$' cannot appear"):
        render_dockerfile(replace(CONTEXT, command=("gunicorn", "$HOME")))
    assert 'CMD ["a \\"b\\"", "c"]' in render_dockerfile(replace(CONTEXT, command=('a "b"', "c"))).splitlines()
