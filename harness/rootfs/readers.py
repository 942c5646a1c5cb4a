"""What a snapshot reads, as every source gives it: a tar stream or a reader of members."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from typing import IO, Protocol, Union

from harness.rootfs.tarstream import Member
from harness.safepath import identity


class MemberReader(Protocol):
    """Entries of an image filesystem in the engine's export order (a tar stream's reader,
    or the engine's layer folders read in place): iterate members, and read each regular
    file's data through `chunks` before asking for the next member."""

    def __iter__(self) -> Iterator[Member]:
        """The entries, one at a time."""

    def chunks(self, head: int = 4096) -> Iterator[memoryview]:
        """The current member's data; the first view holds at least `head` bytes."""


class DetachableReader(MemberReader, Protocol):
    """A reader whose files lie on disk: a large file's digest can be computed beside the
    walk, in another thread (hashing and reading release the GIL)."""

    def peek(self, head: int) -> bytes:
        """The current file's first `head` bytes, without consuming it."""

    def detach(self) -> Callable[[], str]:
        """Consume the current file: a function computing its sha256 hex digest, callable
        from any thread, raising SourceError as `chunks` would."""

    def host_path(self) -> str | None:
        """Where the current file lies on the host, when its name is UTF-8 (a parser that
        opens files by name needs one); else None."""

    def host_stat(self) -> os.stat_result | None:
        """The current file's lstat as the reader took it (None when it took none)."""


#: what a snapshot reads: a filesystem tar stream, or a reader of its members
Rootfs = Union[IO[bytes], MemberReader]

#: opens the same filesystem again, for a second pass (a context manager giving a Rootfs)
Reopen = Callable[[], contextlib.AbstractContextManager[Rootfs]]


#: a file's identity as a reader of folders saw it: inode, size, mtime and ctime (ns),
#: packed (a walk keeps one per member: 65 bytes of memory, where a tuple of the four takes
#: 200). A folder's moves whenever a name in it is added, removed or renamed, or its
#: attributes change
STAMP = struct.Struct("<Qqqq")


def stamp(st: os.stat_result) -> bytes:
    """The identity of an lstat (`STAMP`)."""
    return STAMP.pack(*identity(st))
