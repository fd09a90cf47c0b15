import os
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest

from builder import dockerfile
from builder.dockerfile import DockerfileContext, render_dockerfile
from builder.errors import TemplateError, UnsupportedRuntime

GOLDEN = Path(__file__).parent / "golden"
CONTEXT = DockerfileContext(
    moma_version="0.1.0",
    runtime_type="Python",
    base_image="python:3.11-slim",
    pip_wheel="pip-26.3-py3-none-any.whl",
    driver="score.py",
    labels=(("moma.models", '[{"id": "cc6a", "name": "iris", "version": 1}]'),
            ("org.opencontainers.image.title", "iris")),
)


def test_python_dockerfile_matches_golden_file():
    rendered = render_dockerfile(CONTEXT)
    golden = GOLDEN / "Python.Dockerfile"
    if os.environ.get("MOMA_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_layers_are_ordered_by_how_often_they_change():
    lines = [line for line in render_dockerfile(CONTEXT).splitlines() if line.startswith(("FROM", "COPY", "RUN"))]
    final_stage = lines[lines.index("FROM python:3.11-slim") :]
    order = [line.split()[0] + " " + (line.split()[2] if line.startswith("COPY --from") else line.split()[1])
             for line in final_stage]
    assert order == [
        "FROM python:3.11-slim",
        "RUN groupadd",
        'COPY ["/opt/moma/venv",',
        'COPY ["runtime/",',
        'COPY ["app/",',
        'COPY ["models/",',
    ]


def test_runs_as_non_root_and_exposes_5001():
    text = render_dockerfile(CONTEXT)
    assert "\nUSER 10001:10001\n" in text
    assert "\nEXPOSE 5001\n" in text


@pytest.mark.parametrize(
    "driver, expected",
    [
        ('score".py', 'ENV MOMA_DRIVER="score\\".py"'),
        ("x$(touch p).py", 'ENV MOMA_DRIVER="x\\$(touch p).py"'),
        ("back\\slash.py", 'ENV MOMA_DRIVER="back\\\\slash.py"'),
    ],
)
def test_hostile_driver_names_are_escaped(driver, expected):
    assert expected in render_dockerfile(replace(CONTEXT, driver=driver)).splitlines()


@pytest.mark.parametrize("driver", ["a\nRUN touch /pwned", "a\rb", "a\x00b"])
def test_control_characters_are_refused(driver):
    with pytest.raises(TemplateError, match="newline or control character"):
        render_dockerfile(replace(CONTEXT, driver=driver))


@pytest.mark.parametrize(
    "base",
    ["python:3.11-slim\nRUN curl evil", "python:3.11 AS x", "Python:3.11", "../etc:1", "$(id):1", "a:b:c"],
)
def test_bad_base_image_references_are_refused(base):
    with pytest.raises(TemplateError, match="not a valid image reference"):
        render_dockerfile(replace(CONTEXT, base_image=base))


@pytest.mark.parametrize(
    "base", ["python:3.11-slim", "127.0.0.1:5000/team/python:3.11", "python@sha256:" + "a" * 64,
             "registry.example.org/x"]
)
def test_good_base_image_references(base):
    assert f"FROM {base}\n" in render_dockerfile(replace(CONTEXT, base_image=base))


def test_labels_are_one_escaped_instruction():
    text = render_dockerfile(replace(CONTEXT, labels=(("moma.manifest.name", 'a" $(id) \\'),)))
    assert text.splitlines()[-2:] == ["LABEL \\", '    moma.manifest.name="a\\" \\$(id) \\\\"']


@pytest.mark.parametrize("key", ["Moma.Upper", "moma key", "moma.x=y", "", "moma.\nRUN x"])
def test_bad_label_keys_are_refused(key):
    with pytest.raises(TemplateError):
        render_dockerfile(replace(CONTEXT, labels=((key, "v"),)))


def test_label_values_with_newlines_are_refused():
    with pytest.raises(TemplateError, match="newline"):
        render_dockerfile(replace(CONTEXT, labels=(("moma.description", "a\nRUN touch /p"),)))


def test_pip_wheel_name_is_one_shell_word():
    text = render_dockerfile(replace(CONTEXT, pip_wheel="pip x;rm -rf /.whl"))
    assert "'/tmp/moma-pip/pip x;rm -rf /.whl/pip' install" in text


def test_json_filter_refuses_dollar():
    with pytest.raises(TemplateError, match="'\\$' cannot appear"):
        dockerfile.json_string("$HOME")


def test_a_value_printed_without_a_filter_is_refused():
    template = dockerfile._environment().from_string("ENV X={{ value }}\n")
    with pytest.raises(TemplateError, match="without an escaping filter"):
        template.render(value="anything")


def test_fragment_takes_only_macros():
    template = dockerfile._environment().from_string("{{ fragment(value) }}")
    with pytest.raises(TemplateError, match="takes a macro"):
        template.render(value="RUN evil")


def test_undefined_values_fail_loudly():
    template = dockerfile._environment().from_string("{{ missing | env_value }}")
    with pytest.raises(jinja2.UndefinedError):
        template.render()


def test_spark_python_dockerfile_matches_golden_file():
    spark = replace(CONTEXT, runtime_type="SparkPython", base_image="moma/spark-python:3.11-java17")
    rendered = render_dockerfile(spark)
    golden = GOLDEN / "SparkPython.Dockerfile"
    if os.environ.get("MOMA_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_spark_python_overrides_only_its_environment():
    python = render_dockerfile(CONTEXT).splitlines()
    spark = render_dockerfile(replace(CONTEXT, runtime_type="SparkPython")).splitlines()
    added = [line for line in spark if line not in python and not line.startswith(("#", "RUN mkdir", " && "))]
    assert added == ['    MOMA_RUNTIME_TYPE="SparkPython"',
                     "ENV SPARK_LOCAL_DIRS=/tmp \\", "    HOME=/tmp \\",
                     "    PYSPARK_PYTHON=/opt/moma/venv/bin/python \\", "    JAVA_HOME=/usr/lib/jvm/default-java \\",
                     "    MOMA_SNAPPY_LIB=/opt/moma/venv/native/libsnappyjava.so"]


def test_unknown_runtime_types_are_refused():
    with pytest.raises(UnsupportedRuntime, match="unknown runtimeType 'R'"):
        render_dockerfile(replace(CONTEXT, runtime_type="R"))
