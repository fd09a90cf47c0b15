"""The ``moma`` command line."""

from __future__ import annotations

import click

from .base_commands import base
from .build_command import build
from .errors import run_main
from .server_commands import serve, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="moma")
def cli() -> None:
    """moma: register models, build images from manifests, run scoring services.

    \b
    Build an image from a manifest file, with no server:
      moma build examples/iris/manifest.yml --name iris --tag 1
    """


cli.add_command(build)
cli.add_command(base)
cli.add_command(serve)
cli.add_command(worker)


def main() -> None:
    run_main(cli)
