"""The one guarded way moma unpacks an archive (registered model archives, dependency
tarballs).

Every member is checked before anything is written: its path, its type, where a link
points, and the declared sizes against :class:`UnpackLimits`. Extraction happens in a
staging directory next to ``dest`` and only a complete, validated tree is moved into
``dest``, so an archive that fails any check leaves ``dest`` as it was.

Archive bombs are refused by their inflation ratio, as Apache POI's ``ZipSecureFile``
does: past a grace size, a zip member (and a zip as a whole) may not declare more than
``max_inflation_ratio`` times its compressed size, and a compressed tar's stream may not
inflate past that ratio at any point while it is read. The tar stream is checked as it
is decompressed, while the headers are read and before anything is written, so a bomb
stops after a few MiB of its output, not after all of it.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Callable, Iterator, cast

from .errors import UnpackError

_CHUNK = 1024 * 1024
_ABSOLUTE = re.compile(r"^(?:[\\/]|[A-Za-z]:)")
_SEPARATORS = re.compile(r"[\\/]")
_LIBRARY_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error,
                   lzma.LZMAError, NotImplementedError)

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_TAR_MIME_TYPES = {"application/x-tar", "application/gzip", "application/x-gzip",
                   "application/x-gtar", "application/x-compressed-tar",
                   "application/x-bzip2", "application/x-xz"}
_ZIP_MIME_TYPES = {"application/zip", "application/x-zip", "application/x-zip-compressed"}

_TAR_SPECIAL_TYPES = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                      tarfile.FIFOTYPE: "FIFO"}
_ZIP_SPECIAL_TYPES = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                      stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket"}

_FILE, _DIR, _SYMLINK, _HARDLINK = "file", "directory", "symbolic link", "hard link"

# How each compressed tar starts, and how to read it as a stream of tar bytes.
_TAR_COMPRESSIONS: tuple[tuple[bytes, Callable[[BinaryIO], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(raw)),
    (b"\xfd7zXZ\x00", lambda raw: lzma.LZMAFile(raw)),
)


@dataclass(frozen=True)
class UnpackLimits:
    max_total_bytes: int = 10 * 1024**3   # sum of uncompressed member sizes
    max_members: int = 100_000
    max_inflation_ratio: int = 100        # uncompressed : compressed bytes
    inflation_grace_bytes: int = 1024**2  # outputs up to this size are not held to the ratio


@dataclass(frozen=True)
class _Entry:
    """One archive member, reduced to what the checks need; the same for tar and zip."""

    name: str                      # as stored in the archive, for messages
    path: PurePosixPath | None     # normalised; None for the archive root ("./")
    kind: str
    size: int = 0
    link: str = ""                 # symlink target as stored; hard link target normalised

    @property
    def located(self) -> PurePosixPath:
        """The path of a member other than the archive root, which is checked on its own."""
        if self.path is None:
            raise ValueError(f"{self.name!r} names the archive root")
        return self.path


def archive_format(path: Path, name_hint: str = "", mime_type: str = "") -> str:
    """Return ``"tar"`` or ``"zip"``, decided by content.

    The hints only break a tie: a tar whose last member is a zip file also passes
    ``zipfile.is_zipfile``, which looks for a zip trailer near the end of any file.
    Without a usable hint the tie goes to tar, the likelier reading.
    """
    path = Path(path)
    label = name_hint or path.name
    try:
        is_tar = tarfile.is_tarfile(path)
        is_zip = zipfile.is_zipfile(path)
    except _LIBRARY_ERRORS as exc:
        raise UnpackError(f"{label}: cannot read the archive: {exc}") from exc
    if is_tar and is_zip:
        return _format_from_hints(label, mime_type) or "tar"
    if is_tar:
        return "tar"
    if is_zip:
        return "zip"
    raise UnpackError(f"{label} is not a tar, tar.gz, tgz or zip archive")


def unpack(archive: Path, dest: Path, *, limits: UnpackLimits = UnpackLimits(),
           name_hint: str = "", mime_type: str = "") -> list[str]:
    """Extract ``archive`` into ``dest``, which may already exist and hold other files.

    Returns the sorted posix relative paths of the regular files written. Raises
    :class:`UnpackError` naming the member and the reason; ``dest`` is then unchanged.
    A path the archive would write that already exists in ``dest`` is an error too,
    except for directories, which are merged. Missing parents of ``dest`` are created.
    """
    archive, dest = Path(archive), Path(dest).absolute()
    label = name_hint or archive.name
    kind = archive_format(archive, name_hint, mime_type)
    staging = _make_staging(dest, label)
    try:
        root = (staging / "content").resolve()
        root.mkdir()
        if kind == "tar":
            _extract_tar(archive, root, limits, label)
        else:
            _extract_zip(archive, root, limits, label)
        _normalise_permissions(root)
        written = _regular_files(root)
        _move_into(root, dest, label)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _format_from_hints(name_hint: str, mime_type: str) -> str | None:
    name = name_hint.lower()
    mime = mime_type.split(";")[0].strip().lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if mime in _ZIP_MIME_TYPES:
        return "zip"
    if mime in _TAR_MIME_TYPES:
        return "tar"
    return None


def _make_staging(dest: Path, label: str) -> Path:
    """A fresh directory beside ``dest``, so the final moves are renames on one filesystem."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    except OSError as exc:
        raise UnpackError(f"{label}: cannot create a staging directory next to {dest}: "
                          f"{exc}") from exc


# --- limits ---------------------------------------------------------------------------

class _DeclaredTally:
    """Member count and declared uncompressed size, checked as each member is read, so a
    bomb is refused at its first header over the limit and before anything is written."""

    def __init__(self, limits: UnpackLimits, label: str) -> None:
        self.limits, self.label = limits, label
        self.members = self.total = 0

    def add(self, name: str, size: int) -> None:
        self.members += 1
        self.total += size
        if self.members > self.limits.max_members:
            raise _member_error(self.label, name, f"is member number {self.members}, over the "
                                f"limit of {self.limits.max_members} members")
        if self.total > self.limits.max_total_bytes:
            raise _member_error(self.label, name, f"brings the declared uncompressed size to "
                                f"{self.total} bytes, over the limit of "
                                f"{self.limits.max_total_bytes}")


def _check_inflation(limits: UnpackLimits, label: str, what: str, compressed: int, inflated: int) -> None:
    if inflated > limits.inflation_grace_bytes and inflated > limits.max_inflation_ratio * compressed:
        raise UnpackError(f"{label}: {what} inflates {compressed} bytes to {inflated}, more than "
                          f"{limits.max_inflation_ratio}:1; refused as a likely archive bomb")


class _InflationGuard:
    """The decompressed stream of a compressed tar, as tarfile reads it. Every read checks
    the output so far against the compressed input consumed so far. Seeking forward
    (tarfile skipping a member's data) is done by reading, so it is checked too; seeking
    back goes over bytes already checked."""

    def __init__(self, raw: BinaryIO, stream: io.BufferedIOBase, limits: UnpackLimits, label: str) -> None:
        self._raw, self._stream = raw, stream
        self._limits, self._label = limits, label

    def tell(self) -> int:
        return self._stream.tell()

    def read(self, size: int | None = -1) -> bytes:
        """Decompresses at most ``_CHUNK`` bytes between two checks."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        pieces = []
        while size > 0 and (piece := self._stream.read(min(size, _CHUNK))):
            _check_inflation(self._limits, self._label, "the compressed stream", self._raw.tell(), self.tell())
            pieces.append(piece)
            size -= len(piece)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence not in (os.SEEK_SET, os.SEEK_CUR):
            raise OSError(f"cannot seek from the end of a compressed stream (whence={whence})")
        target = offset if whence == os.SEEK_SET else self.tell() + offset
        if target < self.tell():
            self._stream.seek(target)
        while self.tell() < target and self.read(min(_CHUNK, target - self.tell())):
            pass
        return self.tell()


class _WrittenBudget:
    """Bytes actually written, which a lying archive could make exceed what it declared."""

    def __init__(self, limits: UnpackLimits, label: str) -> None:
        self.limit, self.label = limits.max_total_bytes, label
        self.written = 0

    def spend(self, name: str, size: int) -> None:
        self.written += size
        if self.written > self.limit:
            raise _member_error(self.label, name, f"takes the bytes written to {self.written}, "
                                f"over the limit of {self.limit}")


# --- member checks shared by tar and zip ----------------------------------------------

def _member_error(label: str, name: str, reason: str) -> UnpackError:
    return UnpackError(f"{label}: member {name!r} {reason}")


def _normalise(text: str) -> PurePosixPath | None:
    """The relative path ``text`` names, or None for the archive root.

    Raises ValueError for absolute paths (POSIX, Windows drive or UNC) and for ``..``
    components, looking at backslashes as separators too so that no form slips through.
    """
    if _ABSOLUTE.match(text):
        raise ValueError("is an absolute path")
    if ".." in _SEPARATORS.split(text):
        raise ValueError("has a '..' path component")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def _member_path(name: str, label: str) -> PurePosixPath | None:
    try:
        return _normalise(name)
    except ValueError as exc:
        raise _member_error(label, name, str(exc)) from None


def _check_entries(entries: list[_Entry], label: str) -> None:
    """Checks that need the whole member list, whatever order the members come in."""
    kinds = {entry.path: entry.kind for entry in entries if entry.path is not None}
    seen: dict[PurePosixPath, str] = {}
    for entry in entries:
        if entry.path is None:
            if entry.kind != _DIR:
                raise _member_error(label, entry.name, "does not name a file")
            continue
        _check_parents(entry, kinds, label)
        _check_unique(entry, seen, label)
        if entry.kind == _SYMLINK:
            _check_symlink_target(entry, kinds, label)
        if entry.kind == _HARDLINK:
            _check_hardlink_target(entry, seen, label)
        seen[entry.located] = entry.kind


def _check_parents(entry: _Entry, kinds: dict[PurePosixPath, str], label: str) -> None:
    """No member may be written through a link, even one that stays inside: following
    links while writing is how a member ends up outside the target."""
    for parent in entry.located.parents:
        if kinds.get(parent) == _SYMLINK:
            raise _member_error(label, entry.name,
                                f"is written through the symbolic link {parent.as_posix()!r}")
        if kinds.get(parent) in (_FILE, _HARDLINK):
            raise _member_error(label, entry.name, f"is below the file {parent.as_posix()!r}")


def _check_unique(entry: _Entry, seen: dict[PurePosixPath, str], label: str) -> None:
    previous = seen.get(entry.located)
    if previous is not None and not (previous == _DIR and entry.kind == _DIR):
        raise _member_error(label, entry.name, "appears more than once in the archive")


def _check_symlink_target(entry: _Entry, kinds: dict[PurePosixPath, str], label: str) -> None:
    """Resolve the target lexically from the link's directory; it must stay inside.

    Lexical resolution is only exact over real directories, so the target may not pass
    through another link (``d/up -> ..`` then ``x -> d/up/..`` would escape); it may end
    on one, as in ``lib.so -> lib.so.1``, because that link is checked in its own right.
    """
    target = entry.link
    if not target:
        raise _member_error(label, entry.name, "is a symbolic link with an empty target")
    if _ABSOLUTE.match(target):
        raise _member_error(label, entry.name,
                            f"is a symbolic link to the absolute path {target!r}")
    resolved = list(entry.located.parent.parts)
    steps = [part for part in target.split("/") if part not in ("", ".")]
    for index, step in enumerate(steps):
        if step == "..":
            if not resolved:
                raise _member_error(label, entry.name, f"is a symbolic link to {target!r}, "
                                    "which points outside the archive")
            resolved.pop()
            continue
        resolved.append(step)
        through = PurePosixPath(*resolved)
        if index < len(steps) - 1 and kinds.get(through) == _SYMLINK:
            raise _member_error(label, entry.name, f"is a symbolic link to {target!r}, which "
                                f"passes through the symbolic link {through.as_posix()!r}")


def _check_hardlink_target(entry: _Entry, seen: dict[PurePosixPath, str], label: str) -> None:
    if not entry.link or seen.get(PurePosixPath(entry.link)) not in (_FILE, _HARDLINK):
        raise _member_error(label, entry.name, f"is a hard link to {entry.link!r}, which is "
                            "not a regular file earlier in the archive")


def _writable_target(root: Path, entry: _Entry, label: str) -> Path:
    """Where ``entry`` goes, after making sure what is already on disk (links extracted
    earlier) does not redirect it outside ``root``; the entry itself is not followed."""
    target = root / entry.located
    if not target.parent.resolve().is_relative_to(root):
        raise _member_error(label, entry.name, "resolves to a path outside the target")
    return target


# --- tar ------------------------------------------------------------------------------

def _extract_tar(archive: Path, root: Path, limits: UnpackLimits, label: str) -> None:
    try:
        with _open_tar(archive, limits, label) as tar:
            members = _read_tar_members(tar, limits, label)
            entries = [_tar_entry(member, label) for member in members]
            _check_entries(entries, label)
            budget = _WrittenBudget(limits, label)
            for member, entry in zip(members, entries):
                _extract_tar_member(tar, member, entry, root, budget, label)
    except _LIBRARY_ERRORS as exc:
        raise UnpackError(f"{label}: corrupt or unreadable tar archive: {exc}") from exc


@contextlib.contextmanager
def _open_tar(archive: Path, limits: UnpackLimits, label: str) -> Iterator[tarfile.TarFile]:
    """The tar, read through an :class:`_InflationGuard` when it is compressed."""
    with open(archive, "rb") as raw:
        magic = raw.read(8)
        raw.seek(0)
        opener = next((opener for prefix, opener in _TAR_COMPRESSIONS if magic.startswith(prefix)), None)
        if opener is None:
            with tarfile.open(fileobj=raw, mode="r:", errorlevel=2) as tar:
                yield tar
            return
        with opener(raw) as stream:
            guard = _InflationGuard(raw, stream, limits, label)
            # tarfile only reads, tells and seeks in "r:" mode: the guard has no write or close
            with tarfile.open(fileobj=cast(IO[bytes], guard), mode="r:", errorlevel=2) as tar:
                yield tar


def _read_tar_members(tar: tarfile.TarFile, limits: UnpackLimits,
                      label: str) -> list[tarfile.TarInfo]:
    """Read the headers, stopping at the first over a limit rather than at the end: for
    a compressed tar, reading to the end means decompressing everything."""
    tally = _DeclaredTally(limits, label)
    members: list[tarfile.TarInfo] = []
    try:
        for member in tar:
            members.append(member)
            tally.add(member.name, member.size if member.isreg() else 0)
    except _LIBRARY_ERRORS as exc:
        after = f" after member {members[-1].name!r}" if members else ""
        raise UnpackError(f"{label}: corrupt or truncated tar archive{after}: {exc}") from exc
    return members


def _tar_entry(member: tarfile.TarInfo, label: str) -> _Entry:
    if member.issparse():
        raise _member_error(label, member.name, "is a sparse file, which is not supported (its holes "
                            "would inflate past what the archive holds); archive it without --sparse")
    if member.isreg():
        return _Entry(member.name, _member_path(member.name, label), _FILE, member.size)
    if member.isdir():
        return _Entry(member.name, _member_path(member.name, label), _DIR)
    if member.issym():
        return _Entry(member.name, _member_path(member.name, label), _SYMLINK,
                      link=member.linkname)
    if member.islnk():
        return _Entry(member.name, _member_path(member.name, label), _HARDLINK,
                      link=_hardlink_target(member, label))
    kind = _TAR_SPECIAL_TYPES.get(member.type, f"member of unsupported type {member.type!r}")
    raise _member_error(label, member.name, f"is a {kind}, which is not allowed")


def _hardlink_target(member: tarfile.TarInfo, label: str) -> str:
    try:
        target = _normalise(member.linkname)
    except ValueError as exc:
        raise _member_error(label, member.name,
                            f"is a hard link to {member.linkname!r}, which {exc}") from None
    return target.as_posix() if target else ""


def _extract_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: _Entry,
                        root: Path, budget: _WrittenBudget, label: str) -> None:
    """Extract through tarfile's ``data`` filter, which repeats the path and link checks
    against the disk as it is at that moment, under the name we validated."""
    if entry.path is None:
        return
    target = _writable_target(root, entry, label)
    member = member.replace(name=entry.located.as_posix(), linkname=entry.link, deep=False)
    try:
        tar.extract(member, root, filter="data")
        if entry.kind == _FILE:
            budget.spend(entry.name, target.lstat().st_size)
    except _LIBRARY_ERRORS as exc:
        raise _member_error(label, entry.name, f"cannot be extracted: {exc}") from exc


# --- zip ------------------------------------------------------------------------------

def _extract_zip(archive: Path, root: Path, limits: UnpackLimits, label: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            tally = _DeclaredTally(limits, label)
            for info in infos:
                tally.add(info.filename, info.file_size)
                _check_inflation(limits, label, f"member {info.filename!r}", info.compress_size, info.file_size)
            _check_inflation(limits, label, "the archive as a whole", archive.stat().st_size, tally.total)
            entries = [_zip_entry(info, label) for info in infos]
            _check_entries(entries, label)
            budget = _WrittenBudget(limits, label)
            for info, entry in zip(infos, entries):
                _extract_zip_member(zf, info, entry, root, budget, label)
    except _LIBRARY_ERRORS as exc:
        raise UnpackError(f"{label}: corrupt or unreadable zip archive: {exc}") from exc


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def _zip_entry(info: zipfile.ZipInfo, label: str) -> _Entry:
    file_type = stat.S_IFMT(_zip_mode(info))
    if file_type == stat.S_IFLNK:
        raise _member_error(label, info.filename, "is a symbolic link; zip symlinks are not "
                            "supported, use a tar archive")
    if file_type in _ZIP_SPECIAL_TYPES:
        raise _member_error(label, info.filename,
                            f"is a {_ZIP_SPECIAL_TYPES[file_type]}, which is not allowed")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _member_error(label, info.filename,
                            f"has the unsupported file type {oct(file_type)}")
    if info.flag_bits & 0x1:
        raise _member_error(label, info.filename, "is encrypted, which is not supported")
    path = _member_path(info.filename, label)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return _Entry(info.filename, path, _DIR)
    return _Entry(info.filename, path, _FILE, info.file_size)


def _extract_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: _Entry,
                        root: Path, budget: _WrittenBudget, label: str) -> None:
    if entry.path is None:
        return
    target = _writable_target(root, entry, label)
    try:
        if entry.kind == _DIR:
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as source, open(target, "xb") as sink:
            _copy_declared(source, sink, entry, budget, label)
        os.chmod(target, 0o755 if _zip_mode(info) & stat.S_IXUSR else 0o644)
    except _LIBRARY_ERRORS as exc:
        raise _member_error(label, entry.name, f"cannot be extracted: {exc}") from exc


def _copy_declared(source: IO[bytes], sink: IO[bytes], entry: _Entry,
                   budget: _WrittenBudget, label: str) -> None:
    """Copy like shutil.copyfileobj, but never more bytes than the member declared."""
    copied = 0
    while chunk := source.read(_CHUNK):
        copied += len(chunk)
        if copied > entry.size:
            raise _member_error(label, entry.name,
                                f"holds more than the {entry.size} bytes it declares")
        budget.spend(entry.name, len(chunk))
        sink.write(chunk)


# --- staging tree -> dest -------------------------------------------------------------

def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Everything below ``root`` with its lstat; links are listed, never followed."""
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            yield path, path.lstat()


def _normalise_permissions(root: Path) -> None:
    """Directories 0o755, files 0o644 or 0o755 if the owner could execute; this also
    drops setuid, setgid and sticky bits."""
    for path, status in _walk(root):
        if stat.S_ISDIR(status.st_mode):
            os.chmod(path, 0o755)
        elif stat.S_ISREG(status.st_mode):
            os.chmod(path, 0o755 if status.st_mode & stat.S_IXUSR else 0o644)


def _regular_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix()
                  for path, status in _walk(root) if stat.S_ISREG(status.st_mode))


def _move_into(root: Path, dest: Path, label: str) -> None:
    if not os.path.lexists(dest):
        os.chmod(root, 0o755)
        moves = [(root, dest)]
    elif dest.is_dir():
        moves = _plan_merge(root, dest, PurePosixPath(), label)
    else:
        raise UnpackError(f"{label}: the destination {dest} exists and is not a directory")
    _apply_moves(moves, label)


def _plan_merge(source_dir: Path, dest_dir: Path, relative: PurePosixPath,
                label: str) -> list[tuple[Path, Path]]:
    """The renames that put ``source_dir`` into ``dest_dir``: whole subtrees where
    ``dest_dir`` has nothing, descending into directories present on both sides. Anything
    else already in ``dest_dir`` (file, link, a file where we have a directory) conflicts,
    and is found before anything moves."""
    with os.scandir(source_dir) as scan:
        children = sorted(scan, key=lambda child: child.name)
    moves: list[tuple[Path, Path]] = []
    for child in children:
        source, target = Path(child.path), dest_dir / child.name
        if not os.path.lexists(target):
            moves.append((source, target))
        elif (child.is_dir(follow_symlinks=False) and target.is_dir()
              and not target.is_symlink()):
            moves.extend(_plan_merge(source, target, relative / child.name, label))
        else:
            raise UnpackError(f"{label}: {(relative / child.name).as_posix()!r} already "
                              f"exists in the destination ({target})")
    return moves


def _apply_moves(moves: list[tuple[Path, Path]], label: str) -> None:
    """Rename everything into place, undoing the renames already done if one fails."""
    done: list[tuple[Path, Path]] = []
    try:
        for source, target in moves:
            os.rename(source, target)
            done.append((source, target))
    except OSError as exc:
        for source, target in reversed(done):
            os.rename(target, source)
        raise UnpackError(f"{label}: cannot move the unpacked files into place: {exc}") from exc
