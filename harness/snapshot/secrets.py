"""Secrets baked into an image: private keys and well-known token files.

Only the path and the kind are kept; a secret's content is never stored or printed.
"""

from __future__ import annotations

import re

_KEY_HEAD = re.compile(rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")
_TOKEN_FILES = {
    ".aws/credentials": rb"aws_secret_access_key\s*=\s*\S",
    ".docker/config.json": rb'"auth"\s*:\s*"[^"]',
    ".npmrc": rb"_authToken\s*=\s*\S",
    ".pypirc": rb"password\s*[:=]\s*\S",
    ".git-credentials": rb"://[^:\s]+:[^@\s]+@",
    ".netrc": rb"password\s+\S",
}
_TOKEN_SUFFIXES = tuple("/" + name for name in _TOKEN_FILES)
_TOKEN_PATTERNS = {
    "github-token": rb"\bgh[pousr]_[A-Za-z0-9]{36}\b",
    "aws-access-key": rb"\bAKIA[0-9A-Z]{16}\b",
}
MAX_SCAN = 1 << 20


class SecretsCollector:
    """Looks at the first bytes of every file for key headers, and into known token files."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    def wants(self, path: str, head: bytes, size: int) -> bool:
        if size > MAX_SCAN:
            return False
        if _KEY_HEAD.search(head[:256]):
            self.found[path] = "private-key"
            self.noticed += 1
            return False
        if path.endswith(_TOKEN_SUFFIXES):
            self.noticed += 1
            return True
        return False

    def take(self, path: str, data: bytes) -> None:
        for name, pattern in _TOKEN_FILES.items():
            if path.endswith("/" + name) and re.search(pattern, data):
                self.found[path] = f"credentials ({name})"
                return
        for kind, pattern in _TOKEN_PATTERNS.items():
            if re.search(pattern, data):
                self.found[path] = kind
                return

    def result(self) -> dict[str, str]:
        """Path -> kind of secret."""
        return dict(sorted(self.found.items()))
