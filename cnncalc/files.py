"""Every file cnncalc writes goes through ``write``: whole or not at all. A regular file is
replaced only once its new content is complete on disk (a temporary file beside it,
renamed over it), so a full disk or a file-size limit leaves what was there as it was. A
symbolic link is written through, to the file it points at; a device or a pipe is written
to, never replaced by a file. Every failure is a CnnCalcError naming the path and why."""

from __future__ import annotations

import os
import stat
import tempfile

from .errors import CnnCalcError


def _fail(what: str, path: str, e: OSError, kept: bool):
    reason = e.strerror or str(e)
    tail = "; what was there is unchanged" if kept else ""
    raise CnnCalcError(f"{what} {path}: cannot write it ({reason}){tail}") from None


def write(path: str, data: bytes | str, what: str = "-o") -> None:
    """Write ``data`` to ``path`` (text is written as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.fspath(path)
    try:
        st = os.stat(path)  # follows a link: what matters is what it points at
    except FileNotFoundError:
        st = None
    except OSError as e:
        _fail(what, path, e, False)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise CnnCalcError(f"{what} {path}: is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(path, data, what)  # /dev/null, /dev/stdout, a named pipe
        return
    real = os.path.realpath(path)
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        raise CnnCalcError(f"{what} {path}: the folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".part",
                                   dir=folder)
    except OSError as e:
        _fail(what, path, e, st is not None)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        os.replace(tmp, real)
    except OSError as e:
        _discard(tmp)
        _fail(what, path, e, st is not None)
    except BaseException:  # Ctrl-C mid-write: leave no half file behind
        _discard(tmp)
        raise


def _write_through(path: str, data: bytes, what: str) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as e:
        _fail(what, path, e, False)


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def folder(path: str, what: str) -> None:
    """Make the folder ``path`` (and its parents), or say clearly why not."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CnnCalcError(f"{what} {path}: is a file; give a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        _fail(what, path, e, False)
    if not os.access(path, os.W_OK):
        raise CnnCalcError(f"{what} {path}: cannot write in it (Permission denied)")
