"""The CLI's own logic and its usage errors, with no server: help texts, the request
bodies its flags make, following a log, names it derives from files."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from management.cli import cli
from management.cli.image_commands import in_registry
from management.cli.manifest_commands import input_args
from management.cli.service_commands import service_settings, setting_args, settings_body
from management.cli.service_scoring import new_lines
from management.cli.uploads import artifact_of, asset_id, model_name, pack_directory

from .conftest import Cli


def every_command(group: click.Group, path: tuple[str, ...] = ()):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from every_command(command, path + (name,))


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    commands = dict(every_command(cli))
    assert {("model", "register"), ("manifest", "create"), ("image", "usage"), ("service", "logs"),
            ("compute", "add"), ("operation", "show")} <= set(commands)
    for path in [(), *commands]:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, f"moma {' '.join(path)} --help has no example"


def test_output_option_after_the_command_too(tmp_path: Path):
    """Parsed before any request: the missing server shows the option was accepted."""
    moma = Cli(tmp_path, "http://127.0.0.1:1")
    for args in (("model", "list", "-o", "json"), ("-o", "json", "model", "list")):
        result = moma(*args, ok=False)
        assert result.returncode == 1 and "cannot reach the moma server at http://127.0.0.1:1" in result.stderr
    assert moma("model", "list", "-o", "yaml", ok=False).returncode == 2


def test_server_down_exits_1_with_cannot_reach(tmp_path: Path):
    result = Cli(tmp_path, "http://127.0.0.1:1")("service", "list", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the moma server at http://127.0.0.1:1")


@pytest.mark.parametrize("args, message", [
    (("model", "show"), "Missing option '-i' / '--id'"),
    (("model", "register", "-n", "m"), "Missing option '-m' / '--model'"),
    (("model", "register", "-n", "m", "-m", "no-such-file.pkl"), "no-such-file.pkl: no such file or directory"),
    (("manifest", "create", "-n", "m", "-f", "missing.py", "-r", "python", "-i", "x"), "does not exist"),
    (("service", "create", "realtime", "-n", "s"), "give --image-id, or -f, -r and -m to build the image"),
    (("service", "create", "batch", "-n", "s", "--image-id", "i"), "'batch' is not 'realtime'"),
    (("service", "create", "-n", "s", "--image-id", "i", "--collect-model-data", "maybe"), "not a valid boolean"),
    (("service", "run", "realtime", "-i", "x", "-d", "{not json"), "not valid JSON"),
    (("service", "keys", "-i", "x", "--regen"), "--regen needs -k Primary or -k Secondary"),
    (("service", "keys", "-i", "x", "--regen", "-k", "Tertiary"), "'Tertiary' is not one of"),
    (("image", "create", "-n", "i"), "give --manifest-id, or -f, -r and -m/-i"),
    (("nonsense",), "No such command 'nonsense'"),
])
def test_usage_errors_exit_2(tmp_path: Path, args, message):
    result = Cli(tmp_path, "http://127.0.0.1:1")(*args, ok=False)
    assert result.returncode == 2, result
    assert message in result.stderr, result


@pytest.mark.parametrize("args, message", [
    (("service", "create", "-n", "s", "--image-id", "i", "-f", "{driver}"), "give --image-id, or -f, -r and -m to "
                                                                            "build the image on the way, not both"),
    (("service", "update", "-i", "s", "--image-id", "i", "-m", "{driver}"), "give --image-id, or -f, -r and -m"),
    (("image", "create", "-n", "i", "--manifest-id", "m", "-f", "{driver}"), "give --manifest-id, or -f"),
    (("service", "create", "-n", "s", "-f", "{driver}", "-m", "{driver}"), "a target runtime is required: -r python"),
    (("service", "create", "-n", "s", "-f", "{driver}", "-r", "python"), "at least one model is required"),
    (("service", "update", "-i", "s", "-r", "python", "-m", "{driver}"), "a driver file is required: -f score.py"),
    (("service", "create", "-n", "s", "-f", "{driver}", "-r", "python", "-m", "gone.pkl"),
     "gone.pkl: no such file or directory"),
    (("service", "update", "-i", "s", "-f", "{driver}", "-r", "python"), "-m MODEL_FILE or --model-id MODEL_ID"),
])
def test_one_shot_usage_errors_exit_2_before_any_request(tmp_path: Path, args, message):
    """The server URL answers nothing: a request would exit 1, not 2."""
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    result = Cli(tmp_path, "http://127.0.0.1:1")(*(arg.format(driver=tmp_path / "score.py") for arg in args), ok=False)
    assert result.returncode == 2, result
    assert message in result.stderr, result


def test_setting_flags_given_back_are_the_options_themselves():
    """``setting_args`` spells each setting as its option: the command printed after Ctrl-C works."""
    command = service_settings(click.Command("probe", callback=lambda **kwargs: None))
    values = {param.name: {click.BOOL: False, click.STRING: "2"}.get(param.type, 2) for param in command.params}
    assert command.make_context("probe", setting_args(values)).params == values
    assert setting_args({"collect_model_data": True, "cpu": None, "memory": "1G"}) == [
        "--collect-model-data", "true", "--memory", "1G"]


def test_inputs_given_back_are_the_options_themselves(tmp_path: Path):
    """``input_args`` spells the project's files as the update command takes them: the
    command printed for a taken service name works."""
    for name in ("score.py", "schema.json", "utils.py", "requirements.txt", "conda.yml"):
        (tmp_path / name).write_text("")
    (tmp_path / "lookups").mkdir()
    inputs = {"driver_file": tmp_path / "score.py", "target_runtime": "spark-py",
              "schema_file": tmp_path / "schema.json",
              "dependencies": (tmp_path / "utils.py", tmp_path / "lookups"),
              "pip_requirements": tmp_path / "requirements.txt", "conda_env": tmp_path / "conda.yml",
              "model_ids": ("3f2b8c1d9e0a4b5c8d7e6f5a4b3c2d1e",), "model_files": ("model.pkl", "vocab")}
    update = cli.get_command(click.Context(cli), "service").get_command(click.Context(cli), "update")
    parsed = update.make_context("update", ["-i", "SERVICE_ID", *input_args(inputs)]).params
    assert {key: parsed[key] for key in inputs} == inputs
    assert input_args({**dict.fromkeys(inputs), "dependencies": (), "model_ids": (), "model_files": ("m.pkl",)}) == [
        "-m", "m.pkl"]


def test_create_body_is_the_original_minimal_one():
    assert settings_body({}) == {"autoScaler": {}, "containerResourceReservation": {}}
    body = settings_body({"num_replicas": 2, "cpu": "0.5", "memory": "1G", "collect_model_data": True,
                          "autoscale_enabled": False, "replica_max_concurrent_requests": 4,
                          "enable_app_insights": None})
    assert body == {"numReplicas": 2, "maxConcurrentRequestsPerContainer": 4,
                    "dataCollection": {"storageEnabled": True}, "autoScaler": {"autoscaleEnabled": False},
                    "containerResourceReservation": {"cpu": "0.5", "memory": "1G"}}


def test_update_body_names_only_what_changes_merged_over_the_current_objects():
    current = {"autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 10},
               "containerResourceReservation": {"cpu": "1", "memory": "2G"},
               "dataCollection": {"storageEnabled": False, "eventHubEnabled": False}}
    assert settings_body({"autoscale_max_replicas": 5}, current) == {
        "autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 5}}
    assert settings_body({"memory": "4G"}, current) == {"containerResourceReservation": {"cpu": "1", "memory": "4G"}}
    assert settings_body({}, current) == {}


def test_following_a_log_prints_each_line_once():
    first = [f"line {n}" for n in range(30)]
    assert new_lines(first, first) == []
    assert new_lines(first, first[5:] + ["line 30", "line 31"]) == ["line 30", "line 31"]
    assert new_lines([], ["a"]) == ["a"]
    assert new_lines(first, ["restarted"]) == ["restarted"], "a new container's log is new"


def test_names_derived_from_files():
    assert model_name("model.pkl") == "model"
    assert model_name("/x/my_model.v2.tar.gz") == "my-model"
    assert model_name("https://h/c/churn-model.tar.gz?sv=1&sig=x") == "churn-model"
    assert model_name("___.pkl") == "model"
    taken = {"driver", "schema"}
    assert asset_id(Path("utils.py"), taken) == "utils.py"
    assert asset_id(Path("other/utils.py"), taken) == "utils.py-2"
    assert asset_id(Path("my dir"), taken) == "my-dir"


def test_registry_locations():
    assert in_registry("127.0.0.1:5000/default/iris:1")
    assert in_registry("registry.example.com/default/iris:1")
    assert in_registry("localhost/iris:1")
    assert not in_registry("default/iris:1")
    assert not in_registry("iris:1")


def test_a_directory_packs_to_the_same_bytes_whatever_its_times(tmp_path: Path):
    """The one-shot commands find a model by its bytes: packing the same content again,
    after the files were touched or copied, must give the same tarball and name."""
    model = tmp_path / "iris_model"
    (model / "stages").mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"weights")
    (model / "stages" / "0").write_text("stage")
    first, second, third = (tmp_path / "a", tmp_path / "b", tmp_path / "c")
    for work in (first, second, third):
        work.mkdir()

    packed = pack_directory(model, first)
    os.utime(model / "model.pkl", (1, 1))
    os.utime(model / "stages", (2, 2))
    again = pack_directory(model, second)
    assert packed.read_bytes() == again.read_bytes() and packed.name == again.name
    assert packed.name.endswith(".tar.gz") and len(packed.name) == len("0" * 32 + ".tar.gz")
    with tarfile.open(again) as archive:
        assert archive.getnames() == ["iris_model", "iris_model/model.pkl", "iris_model/stages", "iris_model/stages/0"]

    (model / "model.pkl").write_bytes(b"other weights")
    assert pack_directory(model, third).name != packed.name


def test_artifact_urls_parsed():
    digest = "ab" * 32
    assert artifact_of(f"artifact://sha256/{digest}/my%20model.pkl") == (digest, "my model.pkl")
    assert artifact_of(f"https://example.com/sha256/{digest}/model.pkl") is None
    assert artifact_of("artifact://sha256/") is None
