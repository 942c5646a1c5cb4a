"""Language packages in runtime images, as their own records of the packages aspect:
Python distributions (`*.dist-info/METADATA`, `*.egg-info`), Node packages
(`node_modules/**/package.json`), PHP extensions (`.so` in the extension dir), and Java
modules (the JDK's `release` file) and jars (their manifest).

Records have the OS packages' shape; `manager` names the ecosystem and `arch` repeats it, so
keys (`name:arch`) never collide with an OS package of the same name.
"""

from __future__ import annotations

import email.parser
import io
import json
import re
import zipfile
from typing import Any

from harness.limits import LimitExceeded, Limits, read_bounded, size_text
from harness.snapshot.manager import Manager
from harness.versions import pep440_record_compare, semver_record_compare

#: the ecosystems of the language packages in the registry of managers
#: (harness.snapshot.managers); purl has no type for jars by file, Java modules or PHP extensions
MANAGERS = (Manager("pypi", pep440_record_compare, purl_type="pypi", library=True),
            Manager("npm", semver_record_compare, purl_type="npm", library=True,
                    scoped_names=True),
            Manager("jar", semver_record_compare, library=True),
            Manager("java-module", semver_record_compare),
            Manager("php-ext", semver_record_compare))

_PY_META = re.compile(r"/(?:site|dist)-packages/[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO|egg-info)$")
_NODE = re.compile(r"/node_modules/(?:@[^/]+/)?[^/]+/package\.json$")
_PHP_EXT = re.compile(r"^/usr/(?:local/)?lib/php/(?:extensions/)?([^/]+)/([^/]+)\.so$")
_JAVA_RELEASE = re.compile(r"^/usr/(?:lib/jvm/[^/]+|local/[^/]*(?:java|jdk|jre)[^/]*|java/[^/]+)/release$")
_JAR = re.compile(r"\.jar$")
MAX_JAR = 64 << 20


def _record(manager: str, name: str, version: str, license_: str | None = None,
            source: str | None = None, path: str | None = None) -> dict[str, Any]:
    return {"manager": manager, "name": name, "arch": manager, "epoch": None,
            "version": version, "release": None, "evr": version, "source": source or name,
            "license": license_ or None, "size": None, "path": path}


class LanguageCollector:
    """Takes the metadata files of language packages during the walk."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._limits = limits or Limits()
        #: metadata past its cap: the packages aspect cannot be judged (a package hidden
        #: behind an oversized manifest would go unseen)
        self.refused: list[str] = []
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    def cap(self, path: str) -> int:
        return MAX_JAR if _JAR.search(path) else self._limits.manifest_bytes

    def refuse(self, path: str, size: int, cap: int) -> None:
        self.refused.append(f"{path}: {size_text(size)} ({size:,} bytes), larger than "
                            f"{self._limits.describe('manifest_bytes')}")

    def wants(self, path: str, head: bytes, size: int) -> bool:
        # every pattern below needs one of these: most paths are turned away without a regex
        if not ("-packages/" in path or "/node_modules/" in path or "/lib/php/" in path
                or path.endswith(("/release", ".jar"))):
            return False
        if _PHP_EXT.match(path) and head.startswith(b"\x7fELF"):
            m = _PHP_EXT.match(path)
            assert m is not None
            self.records.append(_record("php-ext", m.group(2), m.group(1), path=path))
            self.noticed += 1
            return False
        if _JAR.search(path):
            wanted = size <= MAX_JAR and head.startswith(b"PK")
        else:
            wanted = bool(_PY_META.search(path) or _NODE.search(path)
                          or _JAVA_RELEASE.match(path))
        self.noticed += wanted
        return wanted

    def take(self, path: str, data: bytes) -> None:
        try:
            if _PY_META.search(path):
                self._python(path, data)
            elif _NODE.search(path):
                self._node(path, data)
            elif _JAVA_RELEASE.match(path):
                self._java_release(path, data)
            elif _JAR.search(path):
                self._jar(path, data)
        except LimitExceeded as exc:
            self.refused.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a damaged jar (zlib.error, an encrypted
            # member, a bad zip header) is that file's error, never the whole image's
            self.errors.append(f"{path}: {type(exc).__name__}: {str(exc)[:200]}")

    def _python(self, path: str, data: bytes) -> None:
        meta = email.parser.BytesParser().parsebytes(data, headersonly=True)
        name, version = meta.get("Name"), meta.get("Version")
        if name and version:
            license_ = meta.get("License-Expression") or meta.get("License")
            if license_ and len(license_) > 80:  # a whole licence text, not a name
                license_ = None
            self.records.append(_record("pypi", _pep503(name), version, license_, path=path))

    def _node(self, path: str, data: bytes) -> None:
        doc = json.loads(data)
        if isinstance(doc, dict) and isinstance(doc.get("name"), str) and isinstance(doc.get("version"), str):
            lic = doc.get("license")
            self.records.append(_record("npm", doc["name"], doc["version"],
                                        lic if isinstance(lic, str) else None, path=path))

    def _java_release(self, path: str, data: bytes) -> None:
        fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', data.decode("utf-8", "replace"), re.M))
        version = fields.get("JAVA_VERSION", "")
        for module in fields.get("MODULES", "").split():
            self.records.append(_record("java-module", module, version, path=path))

    def _jar(self, path: str, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            try:
                member = jar.open("META-INF/MANIFEST.MF")
            except KeyError:
                return
            with member:  # read by its inflated size, whatever its header claims
                manifest = read_bounded(member, self._limits.manifest_bytes,
                                        f"{path}!/META-INF/MANIFEST.MF", "manifest_bytes",
                                        self._limits).decode("utf-8", "replace")
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*?)\s*$", manifest, re.M))
        name = fields.get("Implementation-Title") or fields.get("Bundle-SymbolicName") or path.rsplit("/", 1)[-1][:-4]
        version = fields.get("Implementation-Version") or fields.get("Bundle-Version")
        if version:
            self.records.append(_record("jar", name.split(";")[0], version, path=path))


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
