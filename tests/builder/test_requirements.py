import pytest

from builder.errors import RequirementsError
from builder.requirements import parse_conda_env, parse_pip_requirements


def test_pip_requirements_are_normalised_in_order():
    text = "# comment\nnumpy>=1.2  # inline\n\nscikit-learn \\\n  ==1.9.1\npandas; python_version > '3'\nnumpy>=1.2\n"
    assert parse_pip_requirements(text) == ("numpy>=1.2", "scikit-learn==1.9.1", 'pandas; python_version > "3"')


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("--index-url http://evil/simple\nnumpy", "line 1: option lines such as '--index-url'"),
        ("numpy\n-e git+https://x/y.git", "line 2: option lines such as '-e'"),
        ("-r /etc/passwd", "option lines"),
        ("numpy\nnot a requirement!!", "line 2: 'not a requirement!!' is not a valid requirement"),
        ("pkg @ file:///etc/passwd", "direct references must be https://"),
        ("pkg @ http://plain/x.whl", "direct references must be https://"),
    ],
)
def test_pip_requirements_refuse_options_and_garbage(text, fragment):
    with pytest.raises(RequirementsError, match=fragment.replace("(", r"\(").replace("*", r"\*")) as caught:
        parse_pip_requirements(text)
    assert "requirements.txt" in str(caught.value)


def test_https_direct_reference_is_allowed():
    assert parse_pip_requirements("pkg @ https://example.org/pkg-1.0-py3-none-any.whl") == (
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
    )


def test_conda_file_gives_python_version_and_pip_list():
    text = """
name: project_environment
channels: [conda-forge]
dependencies:
  - python=3.11.4
  - pip
  - pip:
    - scikit-learn==1.9.1
    - joblib
"""
    deps = parse_conda_env(text)
    assert deps.python_version == "3.11"
    assert deps.requirements == ("scikit-learn==1.9.1", "joblib")


@pytest.mark.parametrize(
    "python, expected",
    [("python=3.6", "3.6"), ("python==3.12.1", "3.12"), ("python 3.10.*", "3.10"), ("python>=3.8", "3.11"), ("python", "3.11")],
)
def test_python_versions(python, expected):
    assert parse_conda_env(f"dependencies: ['{python}']").python_version == expected


def test_a_range_excluding_the_default_is_refused():
    with pytest.raises(RequirementsError, match="excludes Python 3.11"):
        parse_conda_env("dependencies: ['python<3.9']")


def test_conda_only_packages_are_named():
    with pytest.raises(RequirementsError) as caught:
        parse_conda_env("dependencies: [python=3.11, numpy=1.26, 'conda-forge::mkl', {pip: [joblib]}]")
    message = str(caught.value)
    assert "numpy=1.26" in message and "conda-forge::mkl" in message
    assert "joblib" not in message
    assert "under 'pip:'" in message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2]", "is a mapping"),
        ("dependencies: {a: 1}", "must be a list"),
        ("dependencies: [{conda: [x]}]", "only a 'pip:' list"),
        ("dependencies: [{pip: ['--extra-index-url http://x']}]", "option lines"),
        ("dependencies: [': bad']", "conda packages are not supported"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_bad_conda_files(text, fragment):
    with pytest.raises(RequirementsError, match=fragment):
        parse_conda_env(text)


def test_empty_conda_file_means_defaults():
    deps = parse_conda_env("")
    assert (deps.python_version, deps.requirements) == ("3.11", ())


def test_requirement_name_is_canonical():
    from builder.requirements import requirement_name

    assert requirement_name("Charset_Normalizer>=3; python_version>'3'") == "charset-normalizer"


def test_image_requirements_keep_the_runtime_pins_and_the_blob_stack():
    from builder.build import image_requirements, runtime_requirements

    merged = image_requirements("Python", ("scikit-learn==1.9.1",))
    assert merged[:len(runtime_requirements("Python"))] == runtime_requirements("Python")
    assert "scikit-learn==1.9.1" in merged
    assert any(line.startswith("azure-storage-blob==") for line in merged)
    assert any(line.startswith("requests==") for line in merged)


def test_a_user_pin_replaces_the_yielding_pin_of_the_same_package():
    from builder.build import image_requirements

    merged = image_requirements("Python", ("Requests==2.31.0", "URLLIB3<2"))
    assert [line for line in merged if line.lower().startswith("requests")] == ["Requests==2.31.0"]
    assert [line for line in merged if line.lower().startswith("urllib3")] == ["URLLIB3<2"]
    assert any(line.startswith("azure-core==") for line in merged), "what the user does not name stays pinned"


def test_runtime_pins_do_not_yield():
    from builder.build import image_requirements

    merged = image_requirements("Python", ("flask==2.0.0",))
    assert "flask==3.1.3" in merged and "flask==2.0.0" in merged, "a conflict pip reports, not a silent swap"


@pytest.mark.parametrize(
    "line",
    [
        "six @ https://example.org/${MOMA_DATABASE_URL}/six-1.16.0-py2.py3-none-any.whl",
        "six==${SECRET}",
        'six==1.16.0; python_version == "${SECRET}"',
        "six @ https://example.org/$HOME/six-1.16.0-py2.py3-none-any.whl",
    ],
)
def test_dollar_signs_are_refused_before_any_tool_can_expand_them(line):
    with pytest.raises(RequirementsError) as caught:
        parse_pip_requirements(f"numpy\n{line}\n")
    assert str(caught.value) == (
        f"requirements.txt line 2: {line!r} contains '$': requirements are never expanded from "
        "environment variables here; write the value itself"
    )


def test_dollar_signs_in_a_conda_pip_list_are_refused():
    text = "dependencies:\n  - pip:\n    - six @ https://example.org/${MOMA_DATA_COLLECTION_STORAGE}/six.whl\n"
    with pytest.raises(RequirementsError, match=r"conda.yml dependencies\[0\].pip\[0\]: .* contains '\$'"):
        parse_conda_env(text)
