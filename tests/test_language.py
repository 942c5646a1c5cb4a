"""Language packages read from an image's files, judged by the packages rules."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

from harness.config import HarnessConfig
from harness.diff.packages import diff_packages
from harness.rootfs.image import ImageInfo
from harness.policy import judge
from harness.snapshot import take_snapshot

INFO = ImageInfo("t", "sha256:0", "x86_64", "linux", None, {})


def _jar(title: str, version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Title: {title}\n"
                                           f"Implementation-Version: {version}\n")
    return buf.getvalue()


def _image(requests: str = "2.31.0", lodash: str = "4.17.21", ctype: bool = True) -> io.BytesIO:
    files = {
        f"usr/lib/python3/dist-packages/requests-{requests}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: Requests\nVersion: {requests}\nLicense: Apache 2.0\n\nbody".encode(),
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info":
            b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n",
        "usr/lib/node_modules/lodash/package.json": json.dumps({"name": "lodash", "version": lodash, "license": "MIT"}).encode(),
        "usr/lib/node_modules/@types/node/package.json": json.dumps({"name": "@types/node", "version": "18.0.0"}).encode(),
        "usr/lib/node_modules/lodash/test/fixture/package.json": b"{not json",
        "usr/lib/jvm/java-17-openjdk-amd64/release": b'JAVA_VERSION="17.0.9"\nMODULES="java.base java.sql"\n',
        "usr/share/java/demo.jar": _jar("demo-lib", "1.2.3"),
    }
    if ctype:
        files["usr/lib/php/20220829/ctype.so"] = b"\x7fELF" + b"\0" * 60
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_language_packages_are_records() -> None:
    snap = take_snapshot(INFO, _image())
    got = {k: (r["manager"], r["version"], r["license"]) for k, r in snap.packages.items()}
    assert got == {
        "requests:pypi": ("pypi", "2.31.0", "Apache 2.0"), "six:pypi": ("pypi", "1.16.0", None),
        "lodash:npm": ("npm", "4.17.21", "MIT"), "@types/node:npm": ("npm", "18.0.0", None),
        "java.base:java-module": ("java-module", "17.0.9", None),
        "java.sql:java-module": ("java-module", "17.0.9", None),
        "demo-lib:jar": ("jar", "1.2.3", None), "ctype:php-ext": ("php-ext", "20220829", None),
    }
    # a package.json below a package's own folders (test fixtures) is not a package
    assert not [r for r in snap.packages.values() if "fixture" in (r.get("path") or "")]
    assert [db for db in snap.package_dbs if db["manager"] == "language"][0]["count"] == 8


def test_language_rules() -> None:
    before = take_snapshot(INFO, _image()).packages
    after = take_snapshot(INFO, _image(requests="2.31.0rc1", lodash="4.17.22", ctype=False)).packages
    got = {(c.kind, c.subject, c.verdict) for c in judge(diff_packages(before, after), HarnessConfig(), "i", "x")}
    assert got == {("package-downgraded", "requests", "break"),   # PEP 440: rc1 < final
                   ("package-upgraded", "lodash", "info"),
                   ("package-removed", "ctype", "break")}


def test_sbom_lists_every_package_with_its_purl(tmp_path) -> None:
    from harness.outcome import sbom

    snap = take_snapshot(INFO, _image())
    snap.packages["bash:amd64"] = {"manager": "dpkg", "name": "bash", "arch": "amd64", "epoch": None,
                                   "version": "5.2.15-2+b2", "release": None, "evr": "5.2.15-2+b2"}
    snap.image["os_release"] = {"ID": "debian"}
    doc = json.loads(sbom.write(tmp_path, "img", snap).read_text())
    purls = {c["purl"] for c in doc["components"] if "purl" in c}
    assert "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64" in purls
    assert "pkg:pypi/requests@2.31.0" in purls and "pkg:npm/%40types/node@18.0.0" in purls
    assert len(doc["components"]) == len(snap.packages)
