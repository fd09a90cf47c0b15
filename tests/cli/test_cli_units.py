"""The CLI's own logic and its usage errors, with no server: help texts, the request
bodies its flags make, following a log, names it derives from files."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from management.cli import cli
from management.cli.image_commands import in_registry
from management.cli.service_commands import settings_body
from management.cli.service_scoring import new_lines
from management.cli.uploads import asset_id, model_name

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
    (("service", "create", "realtime", "-n", "s"), "Missing option '--image-id'"),
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
