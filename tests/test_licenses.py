"""Licences: Debian copyright files read as SPDX expressions, the licence kinds and their
verdicts under `license_deny`, and the SBOM's licences (checked by CycloneDX's own
validator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import parse_config
from harness.diff.packages import diff_packages
from harness.licenses import denied, dep5_license, license_ids, spdx_name
from harness.policy import judge
from harness.snapshot import Snapshot

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 A
License: GPL-2+ or Artistic

Files: src/vendored/*
Copyright: 2019 B
License: Expat

Files: debian/*
License: GPL-2+

License: Expat
 Permission is hereby granted ...
"""


@pytest.mark.parametrize(("name", "spdx"), [
    ("GPL-2", "GPL-2.0-only"), ("GPL-2+", "GPL-2.0-or-later"), ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("AGPL-3", "AGPL-3.0-only"), ("Expat", "MIT"), ("BSD-3-clause", "BSD-3-Clause"),
    ("zlib", "Zlib"), ("public-domain", "public-domain"), ("Apache-2.0", "Apache-2.0"),
])
def test_debian_names_map_to_spdx_or_stay_as_written(name: str, spdx: str) -> None:
    assert spdx_name(name) == spdx


def test_machine_readable_copyright_is_an_expression() -> None:
    assert dep5_license(DEP5) == "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND MIT AND GPL-2.0-or-later"
    assert dep5_license("This is the Debian prepackaged version of ...\nLicense: GPL\n") is None
    # free text: only what it cites from /usr/share/common-licenses
    assert dep5_license("... see /usr/share/common-licenses/LGPL-2.1 and\n"
                        "/usr/share/common-licenses/GPL-2.\n") == "LGPL-2.1-only AND GPL-2.0-only"
    # a comma binds loosest; trailing punctuation is no part of a name
    assert dep5_license("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
                        "\n\nFiles: *\nLicense: GPL-1+ or Artistic, and BSD-3-clause\n\n"
                        "Files: z/*\nLicense: Zlib,\n") == \
        "((GPL-1.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause) AND Zlib"


def _record(name: str, licence: str | None) -> dict[str, object]:
    return {"manager": "rpm", "name": name, "arch": "x86_64", "epoch": None, "version": "1",
            "release": "1", "evr": "1-1", "license": licence}


def test_licence_kinds_and_verdicts() -> None:
    """A changed licence is review; a new package's licence breaks only when denied."""
    config = parse_config({"license_deny": ["AGPL-*", "SSPL-1.0"]})
    before = {"a:x86_64": _record("a", "GPL-2.0-only")}
    after = {"a:x86_64": _record("a", "AGPL-3.0-only"),
             "b:x86_64": _record("b", "MIT OR AGPL-3.0-or-later"),
             "c:x86_64": _record("c", "MIT"), "d:x86_64": _record("d", None)}
    judged = judge(diff_packages(before, after), config, "img", "x86_64")
    got = {(c.kind, c.subject, c.verdict) for c in judged if c.kind.startswith("license")}
    assert got == {("license-changed", "a", "review"), ("license-added", "b", "break"),
                   ("license-added", "c", "info")}
    assert denied("(MIT OR AGPL-3.0-or-later) AND Zlib", ("agpl-*",)) == ["AGPL-3.0-or-later"]
    assert denied("GPL-2.0-only WITH Linux-syscall-note", ("Linux-*",)) == []


def test_a_baseline_without_licences_gives_no_licence_change() -> None:
    """Baselines written before licences were read (dpkg's None) stay quiet."""
    before = {"a:x86_64": _record("a", None)}
    after = {"a:x86_64": _record("a", "GPL-2.0-only")}
    assert not [c for c in diff_packages(before, after) if c.kind.startswith("license")]


def test_license_deny_must_be_a_list_of_strings() -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="license_deny"):
        parse_config({"license_deny": "AGPL-3.0-only"})


def test_sbom_carries_licences(tmp_path: Path) -> None:
    """SPDX ids, SPDX expressions and raw text, each as CycloneDX has it; the document
    passes CycloneDX's schema validation."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from harness.outcome import sbom

    packages = {"a:x86_64": _record("a", "MIT"), "b:x86_64": _record("b", "GPL-2.0-or-later AND MIT"),
                "c:x86_64": _record("c", "GPLv2+ and Public Domain"), "d:x86_64": _record("d", None)}
    snap = Snapshot(image={"image_id": "sha256:1", "arch": "x86_64", "os": "linux"}, metadata={},
                    files={}, packages=packages)
    text = sbom.write(tmp_path, "img", snap).read_text()
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert errors is None, errors
    doc = {c["name"]: c.get("licenses") for c in json.loads(text)["components"]}
    assert doc["a"] == [{"license": {"id": "MIT"}}]
    assert doc["b"] == [{"expression": "GPL-2.0-or-later AND MIT"}]
    assert doc["c"] == [{"license": {"name": "GPLv2+ and Public Domain"}}]
    assert doc["d"] is None


HEADER = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"


@pytest.mark.parametrize("gap", [" \t" * 1500, "\u2003" * 3000], ids=["spaces-tabs", "em-spaces"])
def test_a_whitespace_run_reads_as_one_space(gap: str) -> None:
    """An image's copyright file is input: a `\\s+ ... \\s+` pattern over a long whitespace
    run backtracks quadratically (a 1 MiB line of spaces held a run for hours), so each run is
    read as the one space it means."""
    text = f"{HEADER}License: GPL-2+{gap}or{gap}Foo{gap}Bar with{gap}X{gap}exception\n"
    assert dep5_license(text) == "GPL-2.0-or-later OR Foo Bar WITH X"
    assert license_ids(f"MIT{gap}WITH{gap}X{gap}AND{gap}(Zlib)") == ["MIT", "Zlib"]


def test_a_copyright_file_of_a_mebibyte_of_spaces_reads() -> None:
    assert dep5_license(f"{HEADER}License: A{' ' * (1 << 20)}B\n") == "A B"


class _Counted(str):
    """A licence name that counts the comparisons made with it."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Counted.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("machine_readable", [True, False], ids=["dep5", "free-text"])
def test_distinct_names_are_kept_without_comparing_each_pair(
        monkeypatch: pytest.MonkeyPatch, machine_readable: bool) -> None:
    """A copyright file (up to the 1 MiB licence file cap) can name tens of thousands of
    distinct licences: keeping the distinct ones must not compare each with all before it
    (20,000 names took 3 s that way, a 1 MiB file of them about a minute)."""
    import harness.licenses as licenses

    names = [f"L{i}" for i in range(2000)]
    if machine_readable:
        monkeypatch.setattr(licenses, "_expression", lambda value: _Counted(value))
        text = HEADER + "".join(f"License: {n}\n" for n in names + names)
    else:
        monkeypatch.setattr(licenses, "spdx_name", lambda name: _Counted(name))
        text = "".join(f"see /usr/share/common-licenses/{n}\n" for n in names + names)
    _Counted.compared = 0
    assert licenses.dep5_license(text) == " AND ".join(names)
    assert _Counted.compared <= 2 * len(names), _Counted.compared


def test_licences_past_the_images_bound_are_named_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """The licence expressions an image's copyright files give are held up to a bound in all
    (an image of many huge copyright files must not make the gate hold them): past it a
    package's licence is not recorded, and that is a malformed entry naming its file, never
    silence."""
    import io
    import tarfile

    from harness.aspects.packages import database_findings
    from harness.rootfs.image import ImageInfo
    from harness.snapshot import packages, take_snapshot

    names = ("aaa", "bbb", "ccc")
    status = "".join(f"Package: {n}\nStatus: install ok installed\nVersion: 1.0\n"
                     f"Architecture: amd64\nMaintainer: m\n\n" for n in names).encode()
    copyright_text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                      "\nFiles: *\nLicense: {}\n")
    members = {"var/lib/dpkg/status": status}
    for n, licence in zip(names, ("MIT", "GPL-2+", "Apache-2.0")):
        members[f"usr/share/doc/{n}/copyright"] = copyright_text.format(licence).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folders = {"/".join(p.split("/")[:i]) for p in members for i in range(1, p.count("/") + 1)}
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    monkeypatch.setattr(packages, "MAX_LICENCE_TOTAL", len("MIT") + len("GPL-2.0-or-later"))
    snap = take_snapshot(ImageInfo("lic", "sha256:" + "0" * 64, "x86_64", "linux", None, {}), buf)
    licences = {r["name"]: r.get("license") for r in snap.packages.values()}
    assert licences == {"aaa": "MIT", "bbb": "GPL-2.0-or-later", "ccc": None}
    findings = [(c.kind, c.subject) for c in database_findings(snap)]
    assert findings == [("package-record-malformed", "/usr/share/doc/ccc/copyright")]
