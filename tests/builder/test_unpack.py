"""builder.unpack: a corpus of hostile archives that must be refused without touching
``dest``, and good archives that must land intact. Every archive is built here."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

import builder.unpack as unpack_module
from builder.errors import UnpackError
from builder.unpack import UnpackLimits, archive_format, unpack

MB = 1024 * 1024

TarMember = tuple[tarfile.TarInfo, bytes | None]
ZipMember = tuple[zipfile.ZipInfo, bytes]


# --- building archives ----------------------------------------------------------------

def tar_file(name: str, data: bytes = b"", mode: int = 0o644) -> TarMember:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def tar_dir(name: str, mode: int = 0o755) -> TarMember:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> TarMember:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def tar_special(name: str, kind: bytes) -> TarMember:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, None


def write_tar(path: Path, members: list[TarMember], compression: str = "gz") -> Path:
    with tarfile.open(path, f"w:{compression}") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def zip_member(name: str, data: bytes = b"", mode: int = 0) -> ZipMember:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = mode << 16
    return info, data


def write_zip(path: Path, members: list[ZipMember]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            archive.writestr(info, data)
    return path


def patch_zip(path: Path, *, local_offset: int, central_offset: int, value: bytes) -> Path:
    """Overwrite one field of the first local header and of the last central record."""
    data = bytearray(path.read_bytes())
    local, central = data.find(b"PK\x03\x04"), data.rfind(b"PK\x01\x02")
    data[local + local_offset:local + local_offset + len(value)] = value
    data[central + central_offset:central + central_offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def tar_of(*members: TarMember, name: str = "bad.tar.gz") -> Callable[[Path], Path]:
    return lambda directory: write_tar(directory / name, list(members))


def zip_of(*members: ZipMember, name: str = "bad.zip") -> Callable[[Path], Path]:
    return lambda directory: write_zip(directory / name, list(members))


def zip_bomb(directory: Path) -> Path:
    path = directory / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("zeros.bin", "w") as member:
            for _ in range(200):
                member.write(bytes(MB))
    assert path.stat().st_size < 2 * MB
    return path


def zip_lying_about_size(directory: Path) -> Path:
    path = write_zip(directory / "lying.zip", [zip_member("payload.bin", bytes(MB))])
    return patch_zip(path, local_offset=22, central_offset=24, value=(10).to_bytes(4, "little"))


def zip_encrypted(directory: Path) -> Path:
    path = write_zip(directory / "secret.zip", [zip_member("secret.txt", b"x")])
    return patch_zip(path, local_offset=6, central_offset=8, value=(1).to_bytes(2, "little"))


def truncated_tar_gz(directory: Path, keep: float) -> Path:
    payload = os.urandom(256 * 1024)
    path = write_tar(directory / "truncated.tar.gz",
                     [tar_file("a.txt", b"a"), tar_file("weights.bin", payload)])
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def not_an_archive(directory: Path) -> Path:
    path = directory / "notes.txt"
    path.write_text("just some notes, not an archive\n" * 100)
    return path


# --- looking at directories -----------------------------------------------------------

def snapshot(root: Path) -> dict[str, tuple] | None:
    """Everything below ``root`` (kind, content or link target, mode), or None if absent."""
    if not os.path.lexists(root):
        return None
    found: dict[str, tuple] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                found[relative] = ("dir", stat.S_IMODE(mode))
            else:
                found[relative] = ("file", path.read_bytes(), stat.S_IMODE(mode))
    return found


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    directory = tmp_path / "archives"
    directory.mkdir()
    return directory


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The directory holding ``dest``; staging directories appear here, and must go."""
    directory = tmp_path / "workspace"
    directory.mkdir()
    return directory


@pytest.fixture
def dest(workspace: Path) -> Path:
    """A destination that already holds another asset's files."""
    directory = workspace / "dest"
    (directory / "sub").mkdir(parents=True)
    (directory / "existing.txt").write_text("keep me")
    (directory / "sub" / "keep.txt").write_text("keep me too")
    return directory


# --- the hostile corpus ---------------------------------------------------------------

@dataclass(frozen=True)
class Hostile:
    build: Callable[[Path], Path]
    member: str | None                  # None: the archive as a whole is at fault
    reason: str
    limits: UnpackLimits = field(default_factory=UnpackLimits)


OK = tar_file("ok.txt", b"fine")
OK_ZIP = zip_member("ok.txt", b"fine")

HOSTILE = {
    "tar-dotdot": Hostile(tar_of(OK, tar_file("../evil.txt", b"x")),
                          "../evil.txt", "'..' path component"),
    "tar-dotdot-nested": Hostile(tar_of(OK, tar_file("a/../../x", b"x")),
                                 "a/../../x", "'..' path component"),
    "tar-absolute": Hostile(tar_of(OK, tar_file("/etc/evil", b"x")),
                            "/etc/evil", "absolute path"),
    "tar-windows-drive": Hostile(tar_of(OK, tar_file("C:\\evil.txt", b"x")),
                                 "C:\\evil.txt", "absolute path"),
    "tar-windows-unc": Hostile(tar_of(OK, tar_file("\\\\server\\share\\evil.txt", b"x")),
                               "\\\\server\\share\\evil.txt", "absolute path"),
    "tar-windows-dotdot": Hostile(tar_of(OK, tar_file("a\\..\\..\\evil.txt", b"x")),
                                  "a\\..\\..\\evil.txt", "'..' path component"),
    "zip-dotdot": Hostile(zip_of(OK_ZIP, zip_member("../evil.txt", b"x")),
                          "../evil.txt", "'..' path component"),
    "zip-absolute": Hostile(zip_of(OK_ZIP, zip_member("/etc/evil", b"x")),
                            "/etc/evil", "absolute path"),
    "zip-windows-drive": Hostile(zip_of(OK_ZIP, zip_member("C:\\evil.txt", b"x")),
                                 "C:\\evil.txt", "absolute path"),
    "zip-windows-unc": Hostile(zip_of(OK_ZIP, zip_member("\\\\server\\share\\evil.txt")),
                               "\\\\server\\share\\evil.txt", "absolute path"),
    "symlink-absolute": Hostile(tar_of(OK, tar_link("link", "/etc/passwd")),
                                "link", "absolute path '/etc/passwd'"),
    "symlink-relative-escape": Hostile(
        tar_of(OK, tar_dir("sub"), tar_link("sub/link", "../../etc")),
        "sub/link", "points outside the archive"),
    "symlink-chain-escape": Hostile(tar_of(tar_dir("d"), tar_link("x", "d/up/.."),
                                           tar_link("d/up", "..")),
                                    "x", "passes through the symbolic link 'd/up'"),
    "hardlink-relative-escape": Hostile(
        tar_of(OK, tar_link("h", "../../etc/passwd", tarfile.LNKTYPE)),
        "h", "'..' path component"),
    "hardlink-absolute": Hostile(tar_of(OK, tar_link("h", "/etc/passwd", tarfile.LNKTYPE)),
                                 "h", "absolute path"),
    "hardlink-not-in-archive": Hostile(tar_of(OK, tar_link("h", "nowhere.txt", tarfile.LNKTYPE)),
                                       "h", "not a regular file earlier in the archive"),
    "symlink-then-write-through": Hostile(tar_of(OK, tar_link("link", "/tmp"),
                                                 tar_file("link/evil", b"x")),
                                          "link", "absolute path '/tmp'"),
    "write-through-then-symlink": Hostile(tar_of(OK, tar_file("link/evil", b"x"),
                                                 tar_link("link", "/tmp")),
                                          "link/evil", "written through the symbolic link"),
    "write-through-inside-symlink": Hostile(
        tar_of(tar_dir("real"), tar_link("link", "real"), tar_file("link/evil", b"x")),
        "link/evil", "written through the symbolic link 'link'"),
    "tar-duplicate-member": Hostile(tar_of(OK, tar_file("ok.txt", b"again")),
                                    "ok.txt", "appears more than once"),
    "tar-member-below-file": Hostile(tar_of(OK, tar_file("ok.txt/x", b"x")),
                                     "ok.txt/x", "below the file 'ok.txt'"),
    "tar-char-device": Hostile(tar_of(OK, tar_special("dev/null0", tarfile.CHRTYPE)),
                               "dev/null0", "character device"),
    "tar-block-device": Hostile(tar_of(OK, tar_special("dev/sda9", tarfile.BLKTYPE)),
                                "dev/sda9", "block device"),
    "tar-fifo": Hostile(tar_of(OK, tar_special("pipe", tarfile.FIFOTYPE)), "pipe", "FIFO"),
    "zip-symlink": Hostile(
        zip_of(OK_ZIP, zip_member("link", b"/etc/passwd", stat.S_IFLNK | 0o777)),
        "link", "zip symlinks are not supported, use a tar archive"),
    "zip-char-device": Hostile(zip_of(OK_ZIP, zip_member("dev", b"", stat.S_IFCHR | 0o644)),
                               "dev", "character device"),
    "zip-fifo": Hostile(zip_of(OK_ZIP, zip_member("pipe", b"", stat.S_IFIFO | 0o644)),
                        "pipe", "FIFO"),
    "zip-encrypted": Hostile(zip_encrypted, "secret.txt", "encrypted"),
    "zip-bomb": Hostile(zip_bomb, "zeros.bin", "over the limit of 52428800",
                        UnpackLimits(max_total_bytes=50 * MB)),
    "zip-lying-about-size": Hostile(zip_lying_about_size, "payload.bin", "cannot be extracted"),
    "tar-over-total-size": Hostile(
        tar_of(tar_file("a.bin", bytes(600)), tar_file("b.bin", bytes(600))),
        "b.bin", "declared uncompressed size to 1200 bytes", UnpackLimits(max_total_bytes=1000)),
    "tar-too-many-members": Hostile(tar_of(*(tar_file(f"f{i}.txt", b"x") for i in range(6))),
                                    "f5.txt", "over the limit of 5 members",
                                    UnpackLimits(max_members=5)),
    "zip-too-many-members": Hostile(zip_of(*(zip_member(f"f{i}.txt", b"x") for i in range(6))),
                                    "f5.txt", "over the limit of 5 members",
                                    UnpackLimits(max_members=5)),
    "truncated-tar-gz": Hostile(lambda directory: truncated_tar_gz(directory, keep=0.5),
                                "weights.bin", "truncated"),
    "truncated-tar-gz-header": Hostile(lambda directory: truncated_tar_gz(directory, keep=0.0001),
                                       None, "truncated.tar.gz"),
    "not-an-archive": Hostile(not_an_archive, None,
                              "notes.txt is not a tar, tar.gz, tgz or zip archive"),
}


@pytest.mark.parametrize("dest_exists", [True, False], ids=["dest-exists", "no-dest"])
@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_archive_is_refused_and_leaves_dest_unchanged(
        case: Hostile, dest_exists: bool, archives: Path, workspace: Path, dest: Path) -> None:
    archive = case.build(archives)
    target = dest if dest_exists else workspace / "fresh"
    before = snapshot(workspace)

    with pytest.raises(UnpackError) as raised:
        unpack(archive, target, limits=case.limits)

    message = str(raised.value)
    if case.member is not None:
        assert f"member {case.member!r}" in message
    assert case.reason in message
    assert snapshot(workspace) == before


def test_zip_bomb_is_refused_before_decompressing(archives: Path, dest: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zip_bomb(archives)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(UnpackError, match="over the limit"):
        unpack(bomb, dest, limits=UnpackLimits(max_total_bytes=50 * MB))


def test_zip_member_yielding_more_than_declared_is_cut_off(
        archives: Path, workspace: Path, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_zip(archives / "a.zip", [zip_member("model.pkl", b"12345")])
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: io.BytesIO(bytes(MB)))
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match=r"member 'model.pkl' holds more than the 5 bytes"):
        unpack(archive, dest)
    assert snapshot(workspace) == before


def test_tar_writing_more_than_the_limit_is_stopped(
        archives: Path, workspace: Path, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_tar(archives / "a.tar.gz", [tar_file("big.bin", bytes(100))])

    def makefile_too_much(self: tarfile.TarFile, tarinfo: tarfile.TarInfo,
                          targetpath: str) -> None:
        Path(targetpath).write_bytes(bytes(tarinfo.size + 10_000))

    monkeypatch.setattr(tarfile.TarFile, "makefile", makefile_too_much)
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match=r"member 'big.bin' takes the bytes written to 10100"):
        unpack(archive, dest, limits=UnpackLimits(max_total_bytes=1000))
    assert snapshot(workspace) == before


def escapes_without_our_checks(outside: Path) -> dict[str, list[TarMember]]:
    """Archives that get past pre-validation once it is switched off; the staging tree
    sits at <tmp>/workspace/.unpack-*/content, so four '..' reach <tmp>."""
    return {
        "absolute-symlink-write-through": [tar_link("link", str(outside)),
                                           tar_file("link/evil", b"x")],
        "relative-symlink-write-through": [tar_dir("sub"),
                                           tar_link("sub/link", "../../../../outside"),
                                           tar_file("sub/link/evil", b"x")],
        "symlink-chain-write-through": [tar_dir("d"), tar_link("x", "d/up/../.."),
                                        tar_link("d/up", ".."), tar_file("x/evil", b"x")],
    }


@pytest.mark.parametrize("layers_off",
                         [["_check_entries"], ["_check_entries", "_writable_target"]],
                         ids=["no-prevalidation", "data-filter-only"])
@pytest.mark.parametrize("case", ["absolute-symlink-write-through",
                                  "relative-symlink-write-through",
                                  "symlink-chain-write-through"])
def test_extraction_refuses_escapes_even_without_prevalidation(
        case: str, layers_off: list[str], tmp_path: Path, archives: Path, workspace: Path,
        dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = write_tar(archives / "escape.tar.gz", escapes_without_our_checks(outside)[case])
    replacements = {"_check_entries": lambda entries, label: None,
                    "_writable_target": lambda root, entry, label: root / entry.path}
    for name in layers_off:
        monkeypatch.setattr(unpack_module, name, replacements[name])
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match="member '(sub/)?(link|x)"):
        unpack(archive, dest)
    assert snapshot(workspace) == before
    assert list(outside.iterdir()) == []


# --- good archives --------------------------------------------------------------------

MODEL = b"\x80\x04 pickled model"
INIT = b"from .sub import data\n"
DATA = bytes(range(256)) * 64
EXPECTED_FILES = ["model.pkl", "pkg/__init__.py", "pkg/sub/data.bin"]


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_tar_keeps_relative_paths(compression: str, archives: Path, workspace: Path,
                                  dest: Path) -> None:
    archive = write_tar(archives / "model.tar", [
        tar_dir("./"), tar_file("./model.pkl", MODEL), tar_dir("./pkg"),
        tar_file("./pkg/__init__.py", INIT), tar_file("./pkg/sub/data.bin", DATA),
        tar_dir("./empty"),
    ], compression)

    written = unpack(archive, dest)

    assert written == EXPECTED_FILES
    assert (dest / "model.pkl").read_bytes() == MODEL
    assert (dest / "pkg" / "__init__.py").read_bytes() == INIT
    assert (dest / "pkg" / "sub" / "data.bin").read_bytes() == DATA
    assert (dest / "empty").is_dir() and not any((dest / "empty").iterdir())
    assert (dest / "existing.txt").read_text() == "keep me"
    assert (dest / "sub" / "keep.txt").read_text() == "keep me too"
    assert sorted(path.name for path in workspace.iterdir()) == ["dest"]


def test_zip_keeps_relative_paths(archives: Path, workspace: Path, dest: Path) -> None:
    archive = write_zip(archives / "model.zip", [
        zip_member("./model.pkl", MODEL), zip_member("pkg/"),
        zip_member("pkg/__init__.py", INIT), zip_member("pkg/sub/data.bin", DATA),
        zip_member("empty/"),
    ])

    written = unpack(archive, dest)

    assert written == EXPECTED_FILES
    assert (dest / "model.pkl").read_bytes() == MODEL
    assert (dest / "pkg" / "__init__.py").read_bytes() == INIT
    assert (dest / "pkg" / "sub" / "data.bin").read_bytes() == DATA
    assert (dest / "empty").is_dir() and not any((dest / "empty").iterdir())
    assert (dest / "existing.txt").read_text() == "keep me"
    assert sorted(path.name for path in workspace.iterdir()) == ["dest"]


def test_missing_dest_is_created(archives: Path, workspace: Path) -> None:
    archive = write_tar(archives / "m.tgz", [tar_file("model.pkl", MODEL)])
    target = workspace / "new" / "dest"

    assert unpack(archive, target) == ["model.pkl"]
    assert (target / "model.pkl").read_bytes() == MODEL
    assert mode_of(target) == 0o755
    assert sorted(path.name for path in (workspace / "new").iterdir()) == ["dest"]


def test_links_that_stay_inside_are_kept(archives: Path, dest: Path) -> None:
    archive = write_tar(archives / "links.tar.gz", [
        tar_file("models/v1.pkl", MODEL),
        tar_link("latest.pkl", "models/v1.pkl"),
        tar_link("models/current.pkl", "v1.pkl"),
        tar_link("tools/models", "../models"),
        tar_link("copy.pkl", "models/v1.pkl", tarfile.LNKTYPE),
    ])

    written = unpack(archive, dest)

    assert written == ["copy.pkl", "models/v1.pkl"]
    assert os.readlink(dest / "latest.pkl") == "models/v1.pkl"
    assert os.readlink(dest / "models" / "current.pkl") == "v1.pkl"
    assert os.readlink(dest / "tools" / "models") == "../models"
    assert (dest / "tools" / "models" / "v1.pkl").read_bytes() == MODEL
    assert (dest / "copy.pkl").read_bytes() == MODEL
    assert (dest / "copy.pkl").stat().st_ino == (dest / "models" / "v1.pkl").stat().st_ino


def test_tar_permissions_are_normalised(archives: Path, dest: Path) -> None:
    archive = write_tar(archives / "modes.tar.gz", [
        tar_dir("shared", 0o1777), tar_dir("private", 0o700),
        tar_file("setuid", b"x", 0o4755), tar_file("setgid", b"x", 0o2640),
        tar_file("sticky", b"x", 0o1644), tar_file("world-writable", b"x", 0o666),
        tar_file("owner-only-exec", b"x", 0o700), tar_file("unreadable", b"x", 0o000),
        tar_file("private/run.sh", b"x", 0o777),
    ])

    unpack(archive, dest)

    assert {name: mode_of(dest / name) for name in [
        "shared", "private", "setuid", "setgid", "sticky", "world-writable",
        "owner-only-exec", "unreadable", "private/run.sh"]} == {
        "shared": 0o755, "private": 0o755, "setuid": 0o755, "setgid": 0o644,
        "sticky": 0o644, "world-writable": 0o644, "owner-only-exec": 0o755,
        "unreadable": 0o644, "private/run.sh": 0o755}


def test_zip_permissions_are_normalised(archives: Path, dest: Path) -> None:
    archive = write_zip(archives / "modes.zip", [
        zip_member("bin/", mode=stat.S_IFDIR | 0o1777),
        zip_member("bin/setuid", b"x", stat.S_IFREG | 0o4755),
        zip_member("bin/group-writable", b"x", stat.S_IFREG | 0o2664),
        zip_member("dos-made.txt", b"x"),
    ])

    unpack(archive, dest)

    assert {name: mode_of(dest / name) for name in [
        "bin", "bin/setuid", "bin/group-writable", "dos-made.txt"]} == {
        "bin": 0o755, "bin/setuid": 0o755, "bin/group-writable": 0o644,
        "dos-made.txt": 0o644}


def test_directories_merge_with_existing_ones(archives: Path, dest: Path) -> None:
    archive = write_tar(archives / "more.tar.gz", [tar_file("sub/new.txt", b"new")])

    assert unpack(archive, dest) == ["sub/new.txt"]
    assert (dest / "sub" / "new.txt").read_bytes() == b"new"
    assert (dest / "sub" / "keep.txt").read_text() == "keep me too"


def _prepare_file_conflict(dest: Path) -> None:
    (dest / "zzz").mkdir()
    (dest / "zzz" / "model.pkl").write_bytes(b"another asset")


def _prepare_file_over_directory(dest: Path) -> None:
    (dest / "zzz").write_text("a file where the archive has a directory")


def _prepare_link_over_directory(dest: Path) -> None:
    (dest / "zzz").symlink_to(dest / "sub")


CONFLICTS = {
    "same-file": (_prepare_file_conflict, "'zzz/model.pkl' already exists"),
    "file-over-directory": (_prepare_file_over_directory, "'zzz' already exists"),
    "symlink-over-directory": (_prepare_link_over_directory, "'zzz' already exists"),
}


@pytest.mark.parametrize("prepare, reason", CONFLICTS.values(), ids=CONFLICTS.keys())
def test_conflict_with_existing_file_leaves_dest_unchanged(
        prepare: Callable[[Path], None], reason: str, archives: Path, workspace: Path,
        dest: Path) -> None:
    prepare(dest)
    archive = write_tar(archives / "model.tar.gz", [
        tar_file("aaa.txt", b"would be moved first"),
        tar_file("sub/also-new.txt", b"also new"),
        tar_file("zzz/model.pkl", MODEL),
    ])
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match=reason):
        unpack(archive, dest)
    assert snapshot(workspace) == before


def test_failed_move_is_rolled_back(archives: Path, workspace: Path, dest: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_tar(archives / "m.tar.gz", [tar_file("aaa.txt", b"a"),
                                               tar_file("zzz.txt", b"z")])
    real_rename = os.rename
    calls: list[str] = []

    def rename_failing_second_time(source: str, target: str) -> None:
        calls.append(str(target))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(source, target)

    monkeypatch.setattr(unpack_module.os, "rename", rename_failing_second_time)
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match="cannot move the unpacked files into place"):
        unpack(archive, dest)
    assert calls[:2] == [str(dest / "aaa.txt"), str(dest / "zzz.txt")]
    assert snapshot(workspace) == before


def test_dest_that_is_a_file_is_refused(archives: Path, workspace: Path) -> None:
    archive = write_zip(archives / "m.zip", [zip_member("model.pkl", MODEL)])
    target = workspace / "dest"
    target.write_text("not a directory")
    before = snapshot(workspace)

    with pytest.raises(UnpackError, match="is not a directory"):
        unpack(archive, target)
    assert snapshot(workspace) == before


# --- archive_format -------------------------------------------------------------------

def tar_holding_a_zip(directory: Path) -> Path:
    """A tar whose last member is a zip: both is_tarfile and is_zipfile say yes."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("a.txt", "a")
    path = write_tar(directory / "bundle", [tar_file("inner.zip", inner.getvalue())], "")
    assert tarfile.is_tarfile(path) and zipfile.is_zipfile(path)
    return path


def test_archive_format_goes_by_content_not_name(archives: Path) -> None:
    tar = write_tar(archives / "really-a-tar.zip", [tar_file("a", b"a")])
    zip_ = write_zip(archives / "really-a-zip.tar.gz", [zip_member("a", b"a")])

    assert archive_format(tar, "model.zip", "application/zip") == "tar"
    assert archive_format(zip_, "model.tgz", "application/gzip") == "zip"


@pytest.mark.parametrize("name_hint, mime_type, expected", [
    ("", "", "tar"),
    ("bundle.zip", "", "zip"),
    ("", "application/zip", "zip"),
    ("bundle.tar", "application/zip", "tar"),
])
def test_archive_format_hints_break_ties(name_hint: str, mime_type: str, expected: str,
                                         archives: Path) -> None:
    assert archive_format(tar_holding_a_zip(archives), name_hint, mime_type) == expected


def test_archive_format_refuses_other_files(archives: Path) -> None:
    with pytest.raises(UnpackError, match=r"^notes.txt is not a tar, tar.gz, tgz or zip"):
        archive_format(not_an_archive(archives))
