import pytest

from builder.conda import parse_conda_env
from builder.errors import RequirementsError
from builder.requirements import parse_pip_requirements, pip_dependencies


def test_pip_requirements_are_normalised_in_order():
    text = "# comment\nnumpy>=1.2  # inline\n\nscikit-learn \\\n  ==1.9.1\npandas; python_version > '3'\nnumpy>=1.2\n"
    assert parse_pip_requirements(text) == ("numpy>=1.2", "scikit-learn==1.9.1", 'pandas; python_version > "3"')


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("--index-url http://evil/simple\nnumpy", "line 1: '--index-url': images install only from the package index"),
        ("numpy\n-f https://evil/wheels/", "line 2: '-f': images install only from the package index"),
        ("--extra-index-url=https://evil/simple", "'--extra-index-url': images install only from the package index"),
        ("-ihttps://evil/simple", "'-ihttps://evil/simple': images install only from the package index"),
        ("--find-links /srv", "add the .whl file to the manifest as an asset"),
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


REQUIREMENTS_2017 = """\
--index-url https://azuremldownloads.azureedge.net/python-repository/preview
--extra-index-url https://pypi.python.org/simple
azureml-requirements
azure-ml-api-sdk==0.1.0a10
azureml.datacollector==0.1.0a13
pillow
"""


def test_a_2017_requirements_file_keeps_only_what_installs_and_says_what_it_left_out():
    deps = pip_dependencies(REQUIREMENTS_2017)
    assert deps.requirements == ("pillow",)
    assert deps.binary_only == () and deps.python_requested == ""
    left_out, ignored = deps.notes
    assert left_out == (
        "WARNING: requirements.txt: left out azureml-requirements, azure-ml-api-sdk==0.1.0a10, "
        "azureml.datacollector==0.1.0a13: the 2017 Azure ML SDK, which no longer installs; the runtime provides "
        "what scoring used of it, `from azureml.datacollector import ModelDataCollector` "
        "(its azureml.datacollector shim)")
    assert ignored.startswith("WARNING: requirements.txt: ignored --index-url https://azuremldownloads.azureedge.net"
                              "/python-repository/preview; --extra-index-url https://pypi.python.org/simple: ")


def test_the_strict_parser_of_the_runtime_files_accepts_no_index_line():
    with pytest.raises(RequirementsError, match="'--index-url': images install only"):
        parse_pip_requirements(REQUIREMENTS_2017)


@pytest.mark.parametrize("line", ["iris_labels-1.0-py3-none-any.whl", "model.zip", "pkg-1.0.tar.gz"])
def test_a_bare_file_name_is_refused_unless_it_is_a_wheel_asset(line):
    with pytest.raises(RequirementsError) as caught:
        pip_dependencies(f"numpy\n{line}\n")
    assert str(caught.value) == (
        f"requirements.txt line 2: {line!r} names a package file, and no asset of the manifest is that file; a "
        "package from another source comes as a wheel: add the .whl file to the manifest as an asset (moma "
        "manifest create -d package.whl, or an 'assets' entry of a manifest file) and moma installs it into the image")
    assert pip_dependencies(f"numpy\n{line}\n", wheel_assets=frozenset({line})).requirements == ("numpy",)


def test_dollar_signs_stay_refused_in_user_files():
    with pytest.raises(RequirementsError, match=r"line 1: 'six==\$\{SECRET\}' contains '\$'"):
        pip_dependencies("six==${SECRET}\n")
