"""Staging files on a local disk: write next to the target, fsync, rename into place.

Every sink that writes a local file (the ``file`` connector's :class:`FileSink`, the
engine's ``parquet_sink``) writes a staging entry in the target's own directory and
publishes it with one rename once it is complete and durable: the file is fsynced,
renamed over the target (``os.replace``), then the directory is fsynced. A reader sees
the old file or the new one, never part of one; a failed, cancelled or killed write
leaves the previous target untouched.

Names. A staging entry is called ``.uzo-staging-<owner>-<random>-<target name>``
(hidden, so readers skip it); ``<owner>`` names the process that made it:
``<host>.<boot>.<pid>.<start>``, where ``host`` is a hash of the host name and the pid
namespace, ``boot`` the start of the kernel's boot id and ``start`` the process's start
time in clock ticks since boot (``/proc/<pid>/stat``; 0 where there is no ``/proc``).
``<random>`` makes every attempt's name unique, within a process too.

Cleanup rule. A write that stages in a directory first removes the staging entries of
*dead* writers found directly in that directory (:func:`sweep`). An entry is stale, and
removed (a directory with its contents, a symbolic link as the link), only when its
owner is known to be gone:

- it was made on this host, in this pid namespace (same ``host``), and
- either during an earlier boot (another ``boot``), or its pid is not running, or the
  pid now belongs to a process that started at another time (the pid was reused).

Everything else is kept: entries of live processes (another write in progress,
whatever its age), entries from other hosts or containers sharing the directory (their
pids mean nothing here), and names this module cannot parse (from older UZO versions,
or not ours). An ``.uzo-old`` entry is a directory dataset moved aside while its new
version is renamed in: a dead writer's is removed if the dataset exists, and renamed back
into place if it does not (the writer died between its two renames; its new version,
never published, is a stale entry of its own). Failures to clean up are logged, never
raised: they must not fail the write. Remote stores (object stores, SFTP, FTP) are not swept: their
staging objects carry no process that could be checked.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import uuid
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

PREFIX = ".uzo-staging-"
OLD_SUFFIX = ".uzo-old"  # a directory dataset moved aside while its new version moves in
FILE_MODE = 0o600

log = logging.getLogger(__name__)

_NAME = re.compile(
    r"^\.uzo-staging-(?P<host>[0-9a-f]{8})\.(?P<boot>[0-9a-f]{8})"
    r"\.(?P<pid>[1-9][0-9]{0,9})\.(?P<start>[0-9]{1,20})-[0-9a-f]{8}-(?P<name>.*)$",
    re.DOTALL,
)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass(frozen=True)
class Owner:
    """The process that made a staging entry."""

    host: str
    boot: str
    pid: int
    start: int

    def token(self) -> str:
        return f"{self.host}.{self.boot}.{self.pid}.{self.start}"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


@functools.cache
def _host() -> str:
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = os.readlink("/proc/self/ns/pid")
    digest = hashlib.sha256(f"{socket.gethostname()}\0{namespace}".encode())
    return digest.hexdigest()[:8]


@functools.cache
def _boot() -> str:
    boot_id = (_read("/proc/sys/kernel/random/boot_id") or "").strip().replace("-", "")
    return boot_id[:8].lower() if re.fullmatch(r"[0-9a-fA-F]{8,}", boot_id) else "0" * 8


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), 0 if it runs but its
    ``/proc`` entry cannot be read (no ``/proc``, or ``hidepid``); None if no such process
    runs (the kernel says so: an unreadable ``/proc`` entry is not proof)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the pid exists
        except ProcessLookupError:
            return None
        except (OSError, OverflowError):
            pass  # it exists, as another user's process (EPERM); or cannot be asked
        return 0
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and ')'
    try:
        return int(fields[19])  # field 22 of proc_pid_stat(5); fields[0] is field 3
    except (IndexError, ValueError):
        return 0


def owner(pid: int | None = None) -> Owner:
    """This process (or the running process ``pid``) as a staging entry's owner."""
    pid = os.getpid() if pid is None else pid
    start = start_time(pid)
    if start is None:
        raise ProcessLookupError(pid)
    return Owner(_host(), _boot(), pid, start)


def staging_name(name: str, suffix: str = "", by: Owner | None = None) -> str:
    """A new staging entry's name for target ``name`` (a base name), unique per call."""
    by = owner() if by is None else by
    return f"{PREFIX}{by.token()}-{uuid.uuid4().hex[:8]}-{name}{suffix}"


def parse(name: str) -> tuple[Owner, str] | None:
    """The owner of staging entry ``name`` and its target's name (with any suffix); None
    for a name this module did not make."""
    found = _NAME.match(name)
    if found is None:
        return None
    by = Owner(found["host"], found["boot"], int(found["pid"]), int(found["start"]))
    return by, found["name"]


def is_stale(by: Owner) -> bool:
    """Whether the writer ``by`` is known to be gone (see the module's cleanup rule)."""
    if by.host != _host():
        return False  # another host or pid namespace: its pids cannot be checked here
    if by.boot != _boot():
        return True
    now = start_time(by.pid)
    return now is None or (by.start != 0 and now != 0 and now != by.start)


def sweep(directory: str | int) -> list[str]:
    """Remove (or restore, for an ``.uzo-old`` one) the stale staging entries directly in
    ``directory`` (a path or an open directory descriptor); their names. Never raises
    for a cleanup failure."""
    removed: list[str] = []
    try:
        fd = directory if isinstance(directory, int) else _open_dir(directory)
    except OSError as exc:
        log.warning("cannot look for stale staging files in %s: %s", directory, exc)
        return removed
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX)]
        for name in names:
            parsed = parse(name)
            if parsed is None or not is_stale(parsed[0]):
                continue
            if _clean(fd, name, parsed[1]):
                removed.append(name)
    except Exception as exc:  # a cleanup failure must not fail the write
        log.warning("cleaning up stale staging files in %s failed: %s", directory, exc)
    finally:
        if not isinstance(directory, int):
            os.close(fd)
    if removed:
        log.info("cleaned up %d stale staging entr(ies) in %s", len(removed), directory)
    return removed


def _clean(fd: int, name: str, target: str) -> bool:
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        original = target.removesuffix(OLD_SUFFIX)
        moved_aside = target.endswith(OLD_SUFFIX) and stat.S_ISDIR(info.st_mode)
        if moved_aside and original and not _exists(fd, original):
            # killed between its two renames: roll back (the new version never published)
            os.rename(name, original, src_dir_fd=fd, dst_dir_fd=fd)
            _fsync_dir_fd(fd)
            log.warning("restored %r from %s, left by a writer that died", original, name)
            return True
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return False  # removed meanwhile (another sweep)
    except OSError as exc:
        log.warning("cannot remove stale staging entry %s: %s", name, exc)
        return False
    return True


def _exists(fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _open_dir(path: str, follow: bool = True) -> int:
    nofollow = 0 if follow else os.O_NOFOLLOW
    return os.open(path, os.O_RDONLY | _O_DIRECTORY | nofollow | _O_CLOEXEC)


def fsync_directory(path: str) -> None:
    """Make the entries of directory ``path`` (a rename, a new file) durable."""
    fd = _open_dir(path)
    try:
        _fsync_dir_fd(fd)
    finally:
        os.close(fd)


def _fsync_dir_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise


def fsync_file(fh: IO[bytes]) -> None:
    """Flush ``fh`` and make its contents durable (before it is renamed into place)."""
    fh.flush()
    os.fsync(fh.fileno())


def replace(src: str, dst: str) -> None:
    """Rename ``src`` over ``dst`` (same filesystem) and make the rename durable.

    A staging directory is fsynced first (its entries must be durable before it becomes
    the target), then both parent directories after the rename.
    """
    if os.path.isdir(src) and not os.path.islink(src):
        fsync_directory(src)
    os.replace(src, dst)
    parents = {os.path.dirname(os.path.abspath(dst)), os.path.dirname(os.path.abspath(src))}
    for parent in sorted(parents):
        fsync_directory(parent)


class StagedFile:
    """One attempt at writing file ``name`` in ``directory``, atomically.

    The directory is opened once (not through a symbolic link) and every step works
    relative to it: stale staging entries are swept, the staging file is created there
    (``O_EXCL | O_NOFOLLOW``), and :meth:`commit` fsyncs it, renames it over ``name`` and
    fsyncs the directory. :meth:`discard` (or leaving the ``with`` block with any
    exception, cancellation included) removes it.

    The new file's permission bits: ``mode`` exactly (0600 by default); ``None``, those
    of a plain new file (0666 less the umask). ``keep_mode``: an existing target's bits
    carry over instead, as a rewrite in place kept them.
    """

    def __init__(
        self,
        directory: str,
        name: str,
        *,
        mode: int | None = FILE_MODE,
        keep_mode: bool = False,
    ) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        self.directory = directory
        self.name = name
        self._dir = _open_dir(directory, follow=False)
        self._done = False
        try:
            sweep(self._dir)
            if keep_mode:
                with contextlib.suppress(FileNotFoundError):
                    old = os.stat(name, dir_fd=self._dir, follow_symlinks=False)
                    if stat.S_ISREG(old.st_mode):
                        mode = stat.S_IMODE(old.st_mode) & 0o777
            self.staging = staging_name(name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _O_CLOEXEC
            fd = os.open(self.staging, flags, 0o666 if mode is None else mode, dir_fd=self._dir)
        except BaseException:
            os.close(self._dir)
            raise
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # exactly: the umask narrows what O_CREAT sets
            self.file: IO[bytes] = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.discard()
            raise

    @property
    def path(self) -> str:
        """The staging file's path (for messages and tests)."""
        return os.path.join(self.directory, self.staging)

    def commit(self) -> None:
        """Publish the staging file as ``name``: fsync it, rename it, fsync the directory.
        On failure the staging file is removed and the target is as it was."""
        if self._done:
            raise RuntimeError(f"{self.staging} was already committed or discarded")
        try:
            fsync_file(self.file)
            self.file.close()
            os.replace(self.staging, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
            self._done = True
            _fsync_dir_fd(self._dir)
        except BaseException:
            self.discard()
            raise
        finally:
            self._close_dir()

    def discard(self) -> None:
        """Remove the staging file (the target is left as it was); idempotent."""
        with contextlib.suppress(Exception):
            self.file.close()
        if not self._done and self._dir >= 0:
            self._done = True
            try:
                os.unlink(self.staging, dir_fd=self._dir)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove staging file %s: %s", self.path, exc)
        self._done = True
        self._close_dir()

    def _close_dir(self) -> None:
        if self._dir >= 0:
            os.close(self._dir)
            self._dir = -1

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
        elif not self._done:
            self.commit()
