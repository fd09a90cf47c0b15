"""Render the Dockerfile of an image from ``templates/``.

Every ``{{ value }}`` a template prints must come out of one of the escaping filters
below (or be an int): the environment's ``finalize`` hook refuses anything else, so a
template cannot put a manifest string into the Dockerfile unescaped by mistake.

What the image promises its engines (port, user, app root, variable names, health
check, command) comes from ``runtime.contract`` through the render context: the
templates name none of it themselves.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
from typing import Any

import jinja2
import jinja2.runtime

from runtime import contract

from .errors import TemplateError, UnsupportedRuntime

TEMPLATES = {"Python": "Python.Dockerfile.j2", "SparkPython": "SparkPython.Dockerfile.j2"}
PYTHON_PACKAGES = {"Python": "python-packages.sh.j2", "SparkPython": "SparkPython.python-packages.sh.j2"}
UV_DIRECTORY = "/tmp/moma-uv"  # where uv's wheel is put, in the python-deps stage or container
NOT_YET_SUPPORTED: dict[str, str] = {}

_IMAGE_REF = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
LABEL_KEY_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?"  # whole value: re.fullmatch
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"(?:/[A-Za-z0-9._-]+)+")


class Escaped(str):
    """A string a filter has made safe for the place it is printed in."""


@dataclass(frozen=True)
class DockerfileContext:
    """The flat, typed values a Dockerfile template may use; the image contract's by default."""

    moma_version: str
    runtime_type: str
    base_image: str
    uv_wheel: str  # the file name of uv's wheel
    driver: str
    labels: tuple[tuple[str, str], ...] = ()
    uid: int = contract.UID
    port: int = contract.PORT
    app_root: str = contract.APP_ROOT
    app_root_variable: str = contract.ENV_APP_ROOT
    runtime_type_variable: str = contract.ENV_RUNTIME_TYPE
    driver_variable: str = contract.ENV_DRIVER
    command: tuple[str, ...] = contract.COMMAND
    healthcheck: tuple[str, ...] = contract.HEALTHCHECK
    health_interval_s: int = contract.IMAGE_HEALTHCHECK.interval_s
    health_timeout_s: int = contract.IMAGE_HEALTHCHECK.timeout_s
    health_start_period_s: int = contract.IMAGE_HEALTHCHECK.start_period_s
    health_retries: int = contract.IMAGE_HEALTHCHECK.retries
    # The image (id) with the Python packages installed, which the image starts FROM;
    # '' installs them in a stage of the Dockerfile itself (a context to build elsewhere).
    deps_image: str = ""


def render_dockerfile(context: DockerfileContext) -> str:
    check_runtime_supported(context.runtime_type)
    script = render_python_packages(context.runtime_type, context.uv_wheel)
    return _render(TEMPLATES[context.runtime_type], **asdict(context), python_packages=Escaped(script))


def render_python_packages(runtime_type: str, uv_wheel: str) -> str:
    """The sh commands that install the wheel set into the image's venv
    (``templates/python-packages.sh.j2``, a variant per runtime type)."""
    check_runtime_supported(runtime_type)
    unpacked = f"{UV_DIRECTORY}/unpacked/{'-'.join(uv_wheel.split('-')[:2])}.data/scripts/uv"
    script = _render(PYTHON_PACKAGES[runtime_type], uv_wheel_path=f"{UV_DIRECTORY}/{uv_wheel}", uv_binary=unpacked)
    return script.strip("\n")


def _render(template_name: str, **values: Any) -> str:
    try:
        return _environment().get_template(template_name).render(**values)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"cannot render {template_name}: {exc}") from exc


def check_runtime_supported(runtime_type: str) -> None:
    if runtime_type not in TEMPLATES:
        raise UnsupportedRuntime(NOT_YET_SUPPORTED.get(runtime_type, f"unknown runtimeType {runtime_type!r}"))


def image_ref(value: str) -> Escaped:
    """A Docker image reference, validated (references cannot be quoted in FROM)."""
    if not isinstance(value, str) or not _IMAGE_REF.fullmatch(value):
        raise TemplateError(f"{value!r} is not a valid image reference")
    return Escaped(value)


def json_string(value: Any) -> Escaped:
    """A JSON string for exec-form instructions and JSON-form COPY. ``$`` is refused:
    COPY substitutes variables even in JSON form and JSON has no escape for it."""
    text = str(value)
    _refuse_control(text, "json")
    if "$" in text:
        raise TemplateError(f"{text!r}: '$' cannot appear in a JSON-form instruction")
    return Escaped(json.dumps(text))


def image_id(value: str) -> Escaped:
    """An image id, ``sha256:`` and 64 hex digits."""
    if not isinstance(value, str) or not _IMAGE_ID.fullmatch(value):
        raise TemplateError(f"{value!r} is not an image id")
    return Escaped(value)


def label_key(value: str) -> Escaped:
    """A label key: lower-case reverse-DNS style, validated (keys are not quoted)."""
    if not isinstance(value, str) or not _LABEL_KEY.fullmatch(value):
        raise TemplateError(f"{value!r} is not a valid label key")
    return Escaped(value)


def env_name(value: str) -> Escaped:
    """An environment variable's name, validated (names are not quoted in ENV)."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise TemplateError(f"{value!r} is not a valid environment variable name")
    return Escaped(value)


def path(value: str) -> Escaped:
    """An absolute path of plain characters, validated: printed bare (WORKDIR, ENV values)."""
    if not isinstance(value, str) or not _PATH.fullmatch(value) or "/../" in f"{value}/":
        raise TemplateError(f"{value!r} is not a plain absolute path")
    return Escaped(value)


def shell_word(value: Any) -> Escaped:
    """One word for a shell-form RUN line."""
    text = str(value)
    _refuse_control(text, "shell_word")
    return Escaped(shlex.quote(text))


def env_value(value: Any) -> Escaped:
    """A double-quoted value for ENV (and comments), with ``\\``, ``"`` and ``$`` escaped."""
    text = str(value)
    _refuse_control(text, "env_value")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return Escaped(f'"{escaped}"')


def fragment(macro: Any, *args: Any) -> Escaped:
    """Call a macro of ``_macros.j2``. Its own ``{{ }}`` values went through ``finalize``
    already, so its output is safe; only a Macro may be passed, never a string."""
    if not isinstance(macro, jinja2.runtime.Macro):
        raise TemplateError(f"fragment() takes a macro, got {type(macro).__name__}")
    return Escaped(macro(*args))


def _refuse_control(text: str, filter_name: str) -> None:
    if _CONTROL.search(text):
        raise TemplateError(f"{filter_name}: {text!r} contains a newline or control character")


def _finalize(value: Any) -> Any:
    if isinstance(value, Escaped) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TemplateError(
        f"template printed {value!r} without an escaping filter "
        "(image_ref, image_id, json, shell_word, env_value, env_name, path, label_key)"
    )


def _environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("templates", ""),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        env.filters.update(image_ref=image_ref, image_id=image_id, json=json_string, shell_word=shell_word,
                           env_value=env_value,
                           env_name=env_name, path=path, label_key=label_key)
        env.globals["fragment"] = fragment
        _ENV = env
    return _ENV


_ENV: jinja2.Environment | None = None
