"""Atomic file writes: a reader sees the old file or the new one, never a torn mix."""

import os
import stat
import tempfile
from pathlib import Path

from .errors import SwiftDeployError


class FileWriteError(SwiftDeployError):
    """A file could not be written; the message names the path and the OS's reason."""


def write_atomic(path: str | Path, text: str, mode: int = 0o644) -> bool:
    """Write text to path via a temp file + fsync + rename, with the given mode.

    Returns False (and leaves the file and its mtime alone) when the content was already text.
    """
    path = Path(path)
    try:
        return _replace(path, text.encode(), mode=mode, owner=None, create_parent=True)
    except OSError as err:
        raise FileWriteError(f"cannot write {path}: {_reason(err)}") from None


def install_file(source: Path, path: str | Path, mode: int = 0o644) -> bool:
    """Copy source to path atomically (nothing happens when path already holds the same bytes)."""
    path = Path(path)
    try:
        data = Path(source).read_bytes()
    except OSError as err:
        raise FileWriteError(f"cannot read {source}: {_reason(err)}") from None
    try:
        return _replace(path, data, mode=mode, owner=None, create_parent=True)
    except OSError as err:
        raise FileWriteError(f"cannot write {path}: {_reason(err)}") from None


def replace_file(path: str | Path, text: str) -> bool:
    """Replace an existing file's content atomically, keeping its mode, owner and symlinks.

    When path is a symlink, the file it points to is replaced (the temp file sits in that file's
    directory, so the rename stays on one filesystem) and the link is left as it is. Returns False
    when the content was already text. A file that does not exist yet is created with mode 0644.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        try:
            info = target.stat()
            mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
        except FileNotFoundError:
            mode, owner = 0o644, None
        return _replace(target, text.encode(), mode=mode, owner=owner, create_parent=False)
    except OSError as err:
        where = f"{path} (a symlink to {target})" if path.is_symlink() else f"{path}"
        raise FileWriteError(f"cannot write {where}: {_reason(err)}") from None


def _replace(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None, create_parent: bool) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if owner is not None:
                _keep_owner(handle.fileno(), *owner)
            os.fchmod(handle.fileno(), mode)  # after any chown, which clears set-id bits
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return True


def _keep_owner(fd: int, uid: int, gid: int) -> None:
    info = os.fstat(fd)
    if (info.st_uid, info.st_gid) == (uid, gid):
        return
    try:
        os.fchown(fd, uid, gid)
    except PermissionError:
        # Only root may give a file away; anyone else who can replace the file ends up owning the new one,
        # which is what an editor's save does too.
        pass


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: some filesystems refuse fsync on a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(err: OSError) -> str:
    return err.strerror or str(err)
