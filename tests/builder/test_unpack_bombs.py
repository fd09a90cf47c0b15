"""builder.unpack against archive bombs: members and streams that inflate past the
configured ratio are refused early, before anything is written, and ``dest`` is left as
it was. The bombs are real archives built here, cheaply: a deflate block that compresses
1 MiB of zeros is computed once and repeated, so a 1 GiB member costs about 1 MB."""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from builder.errors import UnpackError
from builder.unpack import UnpackLimits, unpack
from tests.builder.test_unpack import snapshot, tar_file, write_tar, write_zip, zip_member

MB = 1024 * 1024
GB = 1024 * MB


def zeros_deflate_block() -> bytes:
    """Raw deflate of 1 MiB of zeros ending in a full flush: it does not depend on what
    came before, so N copies followed by an empty final block inflate to N MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(MB)) + compressor.flush(zlib.Z_FULL_FLUSH)


def final_deflate_block() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressor.flush(zlib.Z_FULL_FLUSH)
    return compressor.flush()


def zeros_crc32(mebibytes: int) -> int:
    crc, block = 0, bytes(MB)
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    return crc


def zip_of_zeros(path: Path, name: str, mebibytes: int) -> Path:
    """A zip with one deflated member of ``mebibytes`` MiB of zeros, written by hand."""
    data = zeros_deflate_block() * mebibytes + final_deflate_block()
    crc, size, raw_name = zeros_crc32(mebibytes), mebibytes * MB, name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw_name), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                          len(raw_name), 0, 0, 0, 0, 0o644 << 16, 0)
    directory_offset = len(local) + len(raw_name) + len(data)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(raw_name), directory_offset, 0)
    path.write_bytes(local + raw_name + data + central + raw_name + end)
    return path


def tar_gz_of_zeros(path: Path, name: str, mebibytes: int) -> Path:
    """A tar.gz with one member of ``mebibytes`` MiB of zeros: concatenated gzip members
    (one per MiB, all the same bytes) read as one stream."""
    info = tarfile.TarInfo(name)
    info.size = mebibytes * MB
    block = gzip.compress(bytes(MB), compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT)))
        for _ in range(mebibytes):
            out.write(block)
        out.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "workspace"
    (directory / "dest").mkdir(parents=True)
    (directory / "dest" / "existing.txt").write_text("keep me")
    return directory


def refused(archive: Path, workspace: Path, limits: UnpackLimits = UnpackLimits()) -> str:
    before = snapshot(workspace)
    with pytest.raises(UnpackError) as raised:
        unpack(archive, workspace / "dest", limits=limits)
    assert snapshot(workspace) == before, "something was left behind"
    return str(raised.value)


def inflated_bytes(message: str) -> int:
    found = re.search(r"inflates \d+ bytes to (\d+)", message)
    assert found, message
    return int(found.group(1))


def test_a_1_mb_zip_member_inflating_to_1_gib_is_refused_unopened(
        tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zip_of_zeros(tmp_path / "bomb.zip", "zeros.bin", 1024)
    assert bomb.stat().st_size < 2 * MB
    with zipfile.ZipFile(bomb) as check:
        assert check.getinfo("zeros.bin").file_size == GB

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    message = refused(bomb, workspace)
    assert "member 'zeros.bin' inflates" in message
    assert f"to {GB}, more than 100:1" in message


def test_many_small_zip_members_inflating_together_are_refused(tmp_path: Path, workspace: Path) -> None:
    members = [zip_member(f"part-{index}.bin", bytes(MB // 2)) for index in range(40)]
    bomb = write_zip(tmp_path / "parts.zip", members)
    message = refused(bomb, workspace)
    assert "the archive as a whole inflates" in message and "more than 100:1" in message


def test_the_ratio_and_the_grace_size_are_configurable(tmp_path: Path, workspace: Path) -> None:
    archive = zip_of_zeros(tmp_path / "zeros.zip", "zeros.bin", 4)
    assert "more than 100:1" in refused(archive, workspace)
    assert unpack(archive, tmp_path / "a", limits=UnpackLimits(max_inflation_ratio=2000)) == ["zeros.bin"]
    assert unpack(archive, tmp_path / "b", limits=UnpackLimits(inflation_grace_bytes=8 * MB)) == ["zeros.bin"]
    small = write_tar(tmp_path / "text.tar.gz", [tar_file("notes.txt", b"moma " * 400_000)])
    assert "more than 10:1" in refused(small, workspace, UnpackLimits(max_inflation_ratio=10))


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_a_compressed_tar_inflating_past_the_ratio_is_refused_early(
        compression: str, tmp_path: Path, workspace: Path) -> None:
    bomb = write_tar(tmp_path / f"bomb.tar.{compression}", [tar_file("zeros.bin", bytes(32 * MB))], compression)
    message = refused(bomb, workspace)
    assert "the compressed stream inflates" in message and "more than 100:1" in message
    assert inflated_bytes(message) < 4 * MB


def test_a_1_gib_tar_gz_bomb_is_refused_after_a_few_mib(tmp_path: Path, workspace: Path) -> None:
    bomb = tar_gz_of_zeros(tmp_path / "bomb.tar.gz", "zeros.bin", 1024)
    assert bomb.stat().st_size < 2 * MB
    message = refused(bomb, workspace)
    assert "bomb.tar.gz: the compressed stream inflates" in message
    assert inflated_bytes(message) < 4 * MB


def test_many_small_tar_members_inflating_together_are_refused(tmp_path: Path, workspace: Path) -> None:
    members = [tar_file(f"part-{index}.bin", bytes(MB // 4)) for index in range(40)]
    message = refused(write_tar(tmp_path / "parts.tar.gz", members), workspace)
    assert "the compressed stream inflates" in message


def test_a_sparse_tar_member_is_refused(tmp_path: Path, workspace: Path) -> None:
    sparse = tmp_path / "holes.bin"
    with sparse.open("wb") as out:
        out.truncate(64 * MB)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(tmp_path), "-cf", str(archive), "holes.bin"], check=True)
    assert archive.stat().st_size < MB
    message = refused(archive, workspace)
    assert "member 'holes.bin' is a sparse file" in message


def mixed_data(size: int) -> bytes:
    """Half random, half zeros: compresses about 2:1, like real model files."""
    chunks = [os.urandom(4096) + bytes(4096) for _ in range(size // 8192)]
    return b"".join(chunks)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_ordinary_compressed_tars_unpack(compression: str, tmp_path: Path, workspace: Path) -> None:
    payload = mixed_data(4 * MB)
    archive = write_tar(tmp_path / f"model.tar.{compression}",
                        [tar_file("weights.bin", payload), tar_file("small-zeros.bin", bytes(256 * 1024))],
                        compression)
    assert unpack(archive, workspace / "dest") == ["small-zeros.bin", "weights.bin"]
    assert (workspace / "dest" / "weights.bin").read_bytes() == payload


def test_ordinary_zips_unpack(tmp_path: Path, workspace: Path) -> None:
    payload = mixed_data(4 * MB)
    archive = write_zip(tmp_path / "model.zip", [zip_member("weights.bin", payload),
                                                 zip_member("small-zeros.bin", bytes(256 * 1024))])
    assert unpack(archive, workspace / "dest") == ["small-zeros.bin", "weights.bin"]
    assert (workspace / "dest" / "weights.bin").read_bytes() == payload
