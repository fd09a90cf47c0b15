"""Conda environment files: each mapping rule of conda → PyPI, the Python choice, the 2017
SDK, channels, and every error."""

from __future__ import annotations

import importlib.resources

import pytest
import yaml

from builder.conda import parse_conda_env
from builder.conda_names import TABLE_LOCATION, name_table
from builder.errors import RequirementsError


def requirements_of(*entries: str) -> tuple[str, ...]:
    return parse_conda_env(yaml.safe_dump({"dependencies": list(entries)})).requirements


FILE_2017 = """
name: project_environment
dependencies:
  # The python interpreter version.
  # Currently Azure ML Workbench only supports 3.5.2.
  - python=3.5.2
  - scikit-learn
  - numpy
  - pandas
  - pip:
    # Required packages for AzureML execution, history, and data preparation.
    - --index-url https://azuremldownloads.azureedge.net/python-repository/preview
    - --extra-index-url https://pypi.python.org/simple
    - azureml-requirements
    # The API for Azure Machine Learning Model Management Service.
    - azure-ml-api-sdk==0.1.0a11
"""


def test_the_2017_file_builds_on_311_from_pypi_without_the_sdk():
    deps = parse_conda_env(FILE_2017)

    assert deps.python_version == "3.11" and deps.python_requested == "3.5.2"
    assert deps.requirements == ("scikit-learn", "numpy", "pandas")
    assert deps.binary_only == ("scikit-learn", "numpy", "pandas")
    moved, installed, left_out, ignored = deps.notes
    assert moved.startswith("WARNING: conda.yml asks for Python 3.5.2, which no image can have today")
    assert "building on Python 3.11, the nearest supported" in moved
    assert installed == "conda.yml: conda packages installed from PyPI, as wheels: scikit-learn, numpy, pandas"
    assert left_out.startswith("WARNING: conda.yml: left out azureml-requirements, azure-ml-api-sdk==0.1.0a11: "
                               "the 2017 Azure ML SDK")
    assert "from azureml.datacollector import ModelDataCollector" in left_out
    assert ignored.startswith("WARNING: conda.yml: ignored --index-url https://azuremldownloads.azureedge.net/")


@pytest.mark.parametrize(
    "entry, requirement",
    [
        ("numpy", "numpy"),
        ("numpy=1.11", "numpy==1.11.*"),
        ("numpy=1.11.3", "numpy==1.11.3.*"),
        ("numpy==1.11", "numpy==1.11"),
        ("numpy 1.11.3", "numpy==1.11.3"),
        ("numpy 1.11*", "numpy==1.11.*"),
        ("numpy 1.11.*", "numpy==1.11.*"),
        ("numpy=1.11.*", "numpy==1.11.*"),
        ("numpy>=1.8,<2", "numpy<2,>=1.8"),
        ("numpy >=1.8, <2", "numpy<2,>=1.8"),
        ("numpy!=1.9.*", "numpy!=1.9.*"),
        ("numpy~=1.8", "numpy~=1.8"),
        ("numpy *", "numpy"),
        ("numpy=1.11=py35_0", "numpy==1.11"),
        ("numpy==1.11.3=py36_0", "numpy==1.11.3"),
        ("numpy 1.11.3 py36_0", "numpy==1.11.3"),
        ("numpy >=1.8 py36_0", "numpy>=1.8"),
        ("conda-forge::numpy", "numpy"),
        ("conda-forge::numpy=1.11", "numpy==1.11.*"),
        ("pytorch/label/nightly::pytorch", "torch"),
        ("NumPy=1.11", "numpy==1.11.*"),
    ],
)
def test_conda_version_syntax_becomes_pypi_syntax(entry, requirement):
    from packaging.requirements import Requirement

    (line,) = requirements_of(entry)
    assert Requirement(line) == Requirement(requirement)


@pytest.mark.parametrize(
    "entry, requirement",
    [
        ("numpy 1.11|1.12", "numpy==1.12"),
        ("numpy 1.12|1.11", "numpy==1.12"),
        ("numpy 1.11.*|1.11.3", "numpy==1.11.*"),
        ("numpy >=1.8,<2|1.9.3", "numpy<2,>=1.8"),
        ("numpy <1.9|>=1.10", "numpy>=1.10"),
    ],
)
def test_conda_alternatives_take_the_one_admitting_the_newest_versions(entry, requirement):
    from packaging.requirements import Requirement

    deps = parse_conda_env(yaml.safe_dump({"dependencies": [entry]}))
    assert [Requirement(line) for line in deps.requirements] == [Requirement(requirement)]
    assert f"'{entry}': PyPI has no 'or' of versions; took '{deps.requirements[0]}'" in " ".join(deps.notes)


@pytest.mark.parametrize(
    "conda, pypi",
    [
        ("pytorch=1.0", "torch==1.0.*"),
        ("py-xgboost", "xgboost"),
        ("tensorflow-gpu=1.4.1", "tensorflow==1.4.1.*"),
        ("pyyaml", "PyYAML"),
        ("matplotlib-base", "matplotlib"),
        ("msgpack-python", "msgpack"),
        ("python-graphviz", "graphviz"),
        ("psycopg2", "psycopg2-binary"),
        ("scikit-learn", "scikit-learn"),
        ("ipykernel=4.6.1", "ipykernel==4.6.1.*"),
    ],
)
def test_names_that_differ_map_through_the_table_and_the_rest_as_they_are(conda, pypi):
    deps = parse_conda_env(yaml.safe_dump({"dependencies": [conda]}))
    assert deps.requirements == (pypi,)
    assert deps.origins == ((pypi, conda),)


def test_conda_packages_are_wheels_only_pip_packages_are_not():
    deps = parse_conda_env("dependencies: [pyyaml=6.0, {pip: [joblib==1.6.0]}]")
    assert deps.binary_only == ("pyyaml",)
    assert set(deps.requirements) == {"PyYAML==6.0.*", "joblib==1.6.0"}


def test_conda_packages_without_pypi_counterpart_are_named_all_together():
    text = yaml.safe_dump({"dependencies": ["python=3.5.2", "numpy", "mkl=2017.0.3", "cudatoolkit=9.0",
                                            "libgcc", "libgfortran-ng=7.2.0=h9f7466a_2", "conda-forge::r-base",
                                            {"pip": ["joblib"]}]})
    with pytest.raises(RequirementsError) as caught:
        parse_conda_env(text)
    message = str(caught.value)
    assert message.startswith("conda.yml: these conda packages have no PyPI counterpart, and images install from "
                              "PyPI only: mkl=2017.0.3, cudatoolkit=9.0, libgcc, libgfortran-ng=7.2.0=h9f7466a_2, "
                              "conda-forge::r-base. ")
    assert TABLE_LOCATION in message and "'renamed'" in message
    assert "numpy" not in message and "joblib" not in message


@pytest.mark.parametrize(
    "requested, used, requested_label, moved",
    [
        ("python=3.5.2", "3.11", "3.5.2", True),
        ("python=3.6", "3.11", "3.6", True),
        ("python 3.6.2", "3.11", "3.6.2", True),
        ("python==3.5.2=0", "3.11", "3.5.2", True),
        ("python 3.10.*", "3.11", "3.10.*", True),
        ("python<3.9", "3.11", "<3.9", True),
        ("python>=3.5", "3.11", ">=3.5", False),
        ("python=3.11.4", "3.11", "3.11.4", False),
        ("python=3", "3.11", "3", False),
        ("python==3.12.1", "3.12", "3.12.1", False),
        ("python>=3.12", "3.12", ">=3.12", False),
        ("python", "3.11", "", False),
    ],
)
def test_python_versions(requested, used, requested_label, moved):
    deps = parse_conda_env(f"dependencies: ['{requested}']")
    assert (deps.python_version, deps.python_requested) == (used, requested_label)
    assert any("no image can have today" in note for note in deps.notes) is moved


@pytest.mark.parametrize(
    "requested, fragment",
    [
        ("python=2.7", "asks for Python 2, and a Python 2 driver does not run"),
        ("python<3", "asks for Python 2"),
        ("python=3.99", "'python=3.99' is no Python version there has been (known: 2.0 to 2.7, 3.0 to 3.15)"),
        ("python=4.0", "is no Python version there has been"),
        ("python>=3.16", "'python>=3.16' is no Python version there has been"),
        ("python=three", "cannot read the version"),
    ],
)
def test_unknown_and_python_2_versions_are_errors(requested, fragment):
    with pytest.raises(RequirementsError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_conda_env(f"dependencies: ['{requested}']")
    assert str(caught.value).startswith("conda.yml dependencies[0]: ")


@pytest.mark.parametrize(
    "entry",
    ["azureml-requirements", "azure-ml-api-sdk=0.1.0a11", "azureml.datacollector==0.1.0a13",
     "azureml-dataprep==0.1.1711.15263", "azure-cli-ml"],
)
def test_the_2017_sdk_is_left_out_from_the_conda_list_too(entry):
    deps = parse_conda_env(yaml.safe_dump({"dependencies": ["numpy", entry]}))
    assert deps.requirements == ("numpy",)
    assert any(note.startswith(f"WARNING: conda.yml: left out {entry}: the 2017 Azure ML SDK") for note in deps.notes)


def test_later_azureml_packages_install_as_usual():
    deps = parse_conda_env("dependencies: [{pip: [azureml-core==1.60.0, azureml-defaults]}]")
    assert deps.requirements == ("azureml-core==1.60.0", "azureml-defaults")
    assert deps.notes == ()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("channels: [https://conda.example.org/private]\ndependencies: [numpy]",
         r"channels\[0\]: channel 'https://conda.example.org/private' is a URL or a path, a private package source"),
        ("channels: [/srv/conda]\ndependencies: [numpy]", "channel '/srv/conda' is a URL or a path"),
        ("dependencies: ['https://conda.example.org/t/tok3n/private::numpy']",
         r"dependencies\[0\]: channel 'https://conda.example.org/t/tok3n/private' is a URL or a path"),
        ("dependencies: [{pip: ['--index-url https://pypi.example.org/simple']}]",
         r"pip\[0\]: '--index-url': images install only from the package index the moma server is configured"),
        ("dependencies: [{pip: ['--extra-index-url https://evil.example.org/simple']}]", "'--extra-index-url'"),
        ("dependencies: [{pip: ['-f https://example.org/wheels']}]", "'-f': images install only"),
        ("dependencies: [{pip: ['--index-url https://azuremldownloads.azureedge.net.evil.org/x']}]",
         "'--index-url': images install only"),
        ("dependencies: [{pip: ['--index-url https://pypi.org/simple --trusted-host evil']}]", "'--index-url'"),
    ],
)
def test_private_sources_are_refused_with_the_wheel_asset_advice(text, fragment):
    with pytest.raises(RequirementsError, match=fragment) as caught:
        parse_conda_env(text)
    assert "add the .whl file to the manifest as an asset (moma manifest create -d package.whl" in str(caught.value)


def test_named_channels_are_ignored():
    deps = parse_conda_env("channels: [defaults, conda-forge, conda-forge/label/dev, nodefaults]\n"
                           "dependencies: ['anaconda::numpy']")
    assert deps.requirements == ("numpy",)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2]", "is a mapping"),
        ("dependencies: {a: 1}", "must be a list"),
        ("channels: defaults\ndependencies: []", "'channels' must be a list"),
        ("dependencies: [{conda: [x]}]", "only a 'pip:' list"),
        ("dependencies: [{pip: ['-e git+https://x/y.git']}]", "option lines such as '-e'"),
        ("dependencies: [': bad']", "is not a conda package spec"),
        ("dependencies: ['numpy 1.11 py36_0 extra']", "is not a conda package spec"),
        ("dependencies: [\"numpy[version='>=1.8']\"]", "bracket options and parentheses of conda specs"),
        ("dependencies: ['numpy (>=1.8)']", "bracket options and parentheses"),
        ("dependencies: ['numpy=1.x.y']", r"cannot read the version '=1.x.y'"),
        ("dependencies: [[nested]]", "expected a package spec"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_bad_conda_files(text, fragment):
    with pytest.raises(RequirementsError, match=fragment):
        parse_conda_env(text)


def test_empty_conda_file_means_defaults():
    deps = parse_conda_env("")
    assert (deps.python_version, deps.requirements, deps.python_requested) == ("3.11", (), "")


@pytest.mark.parametrize("entry", ["numpy=${MOMA_DATABASE_URL}", "conda-forge::$HOME", "python=$PY"])
def test_dollar_signs_in_conda_entries_are_refused(entry):
    with pytest.raises(RequirementsError) as caught:
        parse_conda_env(yaml.safe_dump({"dependencies": [entry]}))
    assert str(caught.value) == (f"conda.yml dependencies[0]: {entry!r} contains '$': requirements are never "
                                 "expanded from environment variables here; write the value itself")


def test_dollar_signs_in_a_conda_pip_list_are_refused():
    text = "dependencies:\n  - pip:\n    - six @ https://example.org/${MOMA_DATA_COLLECTION_STORAGE}/six.whl\n"
    with pytest.raises(RequirementsError, match=r"conda.yml dependencies\[0\].pip\[0\]: .* contains '\$'"):
        parse_conda_env(text)


def test_a_pip_entry_naming_a_wheel_asset_is_that_asset():
    deps = parse_conda_env("dependencies: [{pip: [iris_labels-1.0-py3-none-any.whl, joblib]}]",
                           wheel_assets=frozenset({"iris_labels-1.0-py3-none-any.whl"}))
    assert deps.requirements == ("joblib",)
    with pytest.raises(RequirementsError, match="names a package file, and no asset of the manifest is that file"):
        parse_conda_env("dependencies: [{pip: [iris_labels-1.0-py3-none-any.whl]}]")


def test_the_table_file_has_its_documented_shape():
    text = importlib.resources.files("builder").joinpath("conda-to-pypi.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert set(data) == {"renamed", "no_pypi", "sdk_2017", "retired_indexes"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in data["renamed"].items())
    assert all(isinstance(entry, str) for key in ("no_pypi", "sdk_2017", "retired_indexes") for entry in data[key])
    table = name_table()
    assert not [name for name in data["renamed"] if table.pypi_name(name) is None], "renamed and no_pypi overlap"
    assert TABLE_LOCATION == "builder/conda-to-pypi.yml"


@pytest.mark.parametrize(
    "url, retired",
    [
        ("https://azuremldownloads.azureedge.net/python-repository/preview", True),
        ("https://azuremldownloads.azureedge.net/python-repository/preview/", True),
        ("http://pypi.python.org/simple", True),
        ("https://PyPI.org/simple/", True),
        ("https://pypi.org/simple?x=1", False),
        ("https://user:pw@pypi.org/simple", False),
        ("https://azuremldownloads.azureedge.net/other", False),
        ("file:///pypi.org/simple", False),
    ],
)
def test_retired_indexes_match_exactly(url, retired):
    assert name_table().is_retired_index(url) is retired
