"""Accounts from /etc/passwd and /etc/shadow, for the empty-password and root-user checks."""

from __future__ import annotations

from typing import Any

from harness.limits import Limits, size_text

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
GROUP = "/etc/group"


class AccountsCollector:
    """Takes /etc/passwd and /etc/shadow during the walk."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.data: dict[str, bytes] = {}
        self._limits = limits or Limits()
        #: account files larger than the cap: the security aspect cannot be judged
        self.errors: list[str] = []
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    def wants(self, path: str, head: bytes, size: int) -> bool:
        if path in (PASSWD, SHADOW, GROUP):
            self.noticed += 1
            return True
        return False

    def cap(self, path: str) -> int:
        return self._limits.account_file_bytes

    def refuse(self, path: str, size: int, cap: int) -> None:
        self.errors.append(f"{path}: {size_text(size)} ({size:,} bytes), larger than "
                           f"{self._limits.describe('account_file_bytes')}")

    def take(self, path: str, data: bytes) -> None:
        self.data[path] = data

    def result(self) -> dict[str, dict[str, Any]]:
        """Account name -> uid, shell, and whether its password field is empty."""
        accounts: dict[str, dict[str, Any]] = {}
        for line in self.data.get(PASSWD, b"").decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[0]:
                accounts[fields[0]] = {"uid": fields[2], "shell": fields[6],
                                       "empty_password": fields[1] == "", "source": PASSWD}
        for line in self.data.get(SHADOW, b"").decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 2 and fields[0]:
                entry = accounts.setdefault(fields[0], {"uid": None, "shell": None})
                # An empty shadow field logs in with no password; "x" in passwd defers here.
                entry["empty_password"] = fields[1] == ""
                entry["source"] = SHADOW
        return accounts

    def id_names(self) -> tuple[dict[int, str], dict[int, str]]:
        """(uid -> user name, gid -> group name), to compare with package databases that
        record owners by name."""
        maps: list[dict[int, str]] = []
        for path in (PASSWD, GROUP):
            names: dict[int, str] = {}
            for line in self.data.get(path, b"").decode("utf-8", "replace").splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[2].isascii() and fields[2].isdigit():
                    names.setdefault(int(fields[2]), fields[0])
            maps.append(names)
        return maps[0], maps[1]
