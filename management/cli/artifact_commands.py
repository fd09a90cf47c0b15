"""``moma artifacts migrate``: an installation's local artifact store into blob storage.
It runs on the server's host (it reads ``$MOMA_HOME/artifacts``), not over the API."""

from __future__ import annotations

import click

from ..artifacts import LocalArtifacts
from ..blob_artifacts import BlobArtifacts
from ..blob_artifacts import migrate as migrate_artifacts
from ..config import Settings


@click.group()
def artifacts() -> None:
    """The artifact store of this installation (uploaded models and files), on the
    server's host.

    \b
    Example (a one-machine installation's artifacts into blob storage):
      MOMA_ARTIFACT_STORAGE='DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=KEY' moma artifacts migrate
    """


@artifacts.command()
def migrate() -> None:
    """Copy every artifact of $MOMA_HOME/artifacts into the Azure Blob Storage that
    MOMA_ARTIFACT_STORAGE names (its container moma-artifacts), checking each against its
    sha256. Local files stay where they are.

    Run it again at any time: what is there already is left alone, and a run that was
    interrupted carries on where it stopped (blocks staged before are not sent again).
    Switch the servers and workers over by setting MOMA_ARTIFACT_STORAGE on them, then
    run it once more for what was uploaded in between.

    \b
    Example:
      MOMA_ARTIFACT_STORAGE='DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=KEY' moma artifacts migrate
    """
    settings = Settings.load()
    if not settings.artifact_storage:
        raise click.UsageError("set MOMA_ARTIFACT_STORAGE to the storage account's connection string first")
    done = migrate_artifacts(LocalArtifacts(settings.artifact_dir), BlobArtifacts(settings.artifact_storage),
                             say=lambda line: click.echo(line, err=True))
    resumed = f" ({done.resumed_blocks} blocks staged by an earlier run not sent again)" if done.resumed_blocks else ""
    click.echo(f"{len(done.copied)} copied{resumed}, {len(done.present)} already there, {len(done.failed)} failed")
    if done.failed:
        raise click.ClickException(f"{len(done.failed)} artifacts were not copied (above: why); fix them and run "
                                   "this again")
