"""What the engine does to an image's merged filesystem when it creates a container of it.

Before anything runs, the engine's create makes the config's WorkingDir (moby's
`container.SetupWorkingDirectory`): the path made absolute and cleaned (`..` stops at the
root), each symlink met followed inside the root (`symlink.FollowSymlinkInScope`), the missing
folders made as 0755 root folders (`idtools.MkdirAllAndChownNew`); then it refuses a config
volume that lands on a non-folder. What makes the engine refuse to create the container (the
WorkingDir or a volume on a non-folder, a non-folder inside the path, a component over 255
bytes, over 255 path steps) raises SourceError.

This is the container's step, not the layers': it sees only the paths the merge showed (the
folders, and the non-folders with their symlink targets), so it lives apart from
`harness.source.layermerge`, which runs it at the end of its stream. `clean_path`, the engine's way of
applying a name inside a chroot, is shared by both.
"""

from __future__ import annotations

from harness.errors import SourceError

NAME_MAX = 255   # a longer path component: ENAMETOOLONG
MAX_STEPS = 255  # moby's evalSymlinksInScope gives up after this many path steps


def clean_path(name: str) -> str:
    """A member name as the engine applies it, in a chroot: `..` stops at the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def parent_path(path: str) -> str:
    """The folder holding a clean absolute path (the root for the root)."""
    return path[:path.rfind("/")] or "/"


class RootView:
    """The merged view, as the engine's create looks paths up in it (moby's
    `container.SetupWorkingDirectory` through `symlink.FollowSymlinkInScope` and
    `idtools.MkdirAllAndChownNew`, then its check of the config's volumes)."""

    def __init__(self, dirs: set[str], others: dict[str, str | None], ref: str) -> None:
        self._dirs, self._others, self._ref = dirs, others, ref

    def _refused(self, what: str, why: str) -> SourceError:
        return SourceError(f"{self._ref}: the engine refuses to create a container of this "
                           f"image: {what}: {why}")

    def lstat(self, path: str, what: str) -> tuple[str, str | None] | None:
        """("dir"|"other", None) or ("symlink", target) of a clean absolute path; None when it
        is missing; the lookup's errors (a non-folder inside the path, a name too long)."""
        if path == "/":
            return "dir", None
        prefix, parts = "", path[1:].split("/")
        found: tuple[str, str | None] | None = None
        for part in parts:
            if found is not None and found[0] != "dir":
                raise self._refused(what, f"lstat {path}: not a directory")
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise self._refused(what, f"lstat {path}: file name too long")
            prefix += "/" + part
            if prefix in self._dirs:
                found = "dir", None
            elif prefix in self._others:
                target = self._others[prefix]
                found = ("other", None) if target is None else ("symlink", target)
            else:
                return None
        return found

    def follow_in_scope(self, name: str, what: str) -> str:
        """A config path as the engine follows it in the root (`FollowSymlinkInScope`): made
        absolute and cleaned, each symlink met replaced by its target, never leaving the
        root."""
        rest, built, steps = clean_path(name), "", 0
        while rest:
            if steps > MAX_STEPS:  # each step counts, a symlink or not
                raise self._refused(what, "evalSymlinksInScope: too many links")
            steps += 1
            part, _, rest = rest.partition("/")
            if not part:
                continue
            here = clean_path("/" + built + part)  # `..` is lexical, as in the engine
            if here == "/":
                built = ""
                continue
            found = self.lstat(here, what)
            if found is None or found[1] is None:
                built += part + "/"
                continue
            if found[1].startswith("/"):
                built = ""
            rest = found[1] + "/" + rest
        return clean_path("/" + built)

    def create(self, workdir: str, volumes: list[str]) -> list[str]:
        """The folders the engine makes for the WorkingDir (0755 root), top first."""
        made: list[str] = []
        if workdir:
            what = f"its WorkingDir {workdir!r}"
            path = self.follow_in_scope(workdir, what)
            found = self.lstat(path, what)
            if found is not None and found[0] != "dir":
                raise self._refused(what, f"Cannot mkdir: {workdir} is not a directory")
            while found is None:  # MkdirAll: the missing folders, bottom up
                if len(path[path.rfind("/") + 1:].encode("utf-8", "surrogateescape")) > NAME_MAX:
                    raise self._refused(what, f"mkdir {path}: file name too long")
                made.append(path)
                path = parent_path(path)
                found = self.lstat(path, what)
            made.reverse()
            self._dirs.update(made)
        for volume in volumes:
            what = f"its volume {volume!r}"
            found = self.lstat(self.follow_in_scope(volume, what), what)
            if found is not None and found[0] != "dir":
                raise self._refused(what, "cannot mount volume over existing file")
        return made
