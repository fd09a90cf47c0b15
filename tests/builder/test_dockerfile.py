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
    uv_wheel="uv-0.13.8-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
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
        'COPY ["/opt/moma/venv",',
        "RUN groupadd",
        'COPY ["runtime/",',
        'COPY ["app/",',
        'COPY ["models/",',
    ]


def test_an_image_starts_from_its_python_packages_image_in_the_same_order():
    deps = "sha256:" + "d" * 64
    lines = [line for line in render_dockerfile(replace(CONTEXT, deps_image=deps)).splitlines()
             if line.startswith(("FROM", "COPY", "RUN"))]
    assert [" ".join(line.split()[:2]) for line in lines] == [
        f"FROM {deps}", "RUN groupadd", 'COPY ["runtime/",', 'COPY ["app/",', 'COPY ["models/",']


@pytest.mark.parametrize("deps", ["python:3.11-slim", "sha256:" + "D" * 64, "sha256:abc",
                                  "sha256:" + "d" * 64 + "\nRUN x"])
def test_a_python_packages_image_is_named_by_its_id_only(deps):
    with pytest.raises(TemplateError, match="is not an image id"):
        render_dockerfile(replace(CONTEXT, deps_image=deps))


def test_the_python_packages_script_is_the_stage_s_run_line():
    script = dockerfile.render_python_packages("Python", CONTEXT.uv_wheel)
    assert f"RUN {script}\n" in render_dockerfile(CONTEXT)
    assert script.startswith("python3 -m zipfile -e /tmp/moma-uv/uv-0.13.8-py3-none-manylinux_2_17_x86_64.")
    assert " && /tmp/moma-uv/unpacked/uv-0.13.8.data/scripts/uv --no-config pip check " in script
    assert script.endswith(" && rm -rf /tmp/moma-uv /tmp/moma-wheels")


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


def test_uv_wheel_name_is_one_shell_word():
    text = render_dockerfile(replace(CONTEXT, uv_wheel="uv-1;rm -rf /.whl"))
    assert "python3 -m zipfile -e '/tmp/moma-uv/uv-1;rm -rf /.whl' /tmp/moma-uv/unpacked" in text


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


def test_spark_python_overrides_only_its_environment_and_adds_a_step_to_the_packages():
    python = render_dockerfile(CONTEXT).splitlines()
    spark = render_dockerfile(replace(CONTEXT, runtime_type="SparkPython")).splitlines()
    added = [line for line in spark if line not in python and not line.startswith(("#", " && "))]
    assert added == ['    MOMA_RUNTIME_TYPE="SparkPython"',
                     "ENV SPARK_LOCAL_DIRS=/tmp \\", "    HOME=/tmp \\",
                     "    PYSPARK_PYTHON=/opt/moma/venv/bin/python \\", "    JAVA_HOME=/usr/lib/jvm/default-java \\",
                     "    MOMA_SPARK_NATIVE_DIR=/opt/moma/venv/native"]
    steps = [line for line in spark if line.startswith(" && ") and line not in python]
    assert [step.split()[1:3] for step in steps] == [["mkdir", "-p"], ["/opt/moma/venv/bin/python", "-c"]]


def test_unknown_runtime_types_are_refused():
    with pytest.raises(UnsupportedRuntime, match="unknown runtimeType 'R'"):
        render_dockerfile(replace(CONTEXT, runtime_type="R"))
