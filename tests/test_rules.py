"""Diff and policy rules of docs/compat-rules.md, on plain records (no engine needed)."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.config import HarnessConfig, parse_config, parse_image_option
from harness.diff.files import diff_files, diff_security
from harness.diff.metadata import diff_metadata
from harness.diff.packages import diff_packages
from harness.errors import ConfigError
from harness.policy import WaiverUse, judge


def f(mode: str = "0644", **kw: object) -> dict[str, object]:
    return {"type": "file", "mode": mode, "uid": 0, "gid": 0, "size": 1, "sha256": "a", **kw}


def kinds(changes) -> set[tuple[str, str, str]]:
    return {(c.kind, c.subject, c.verdict) for c in changes}


CFG = HarnessConfig()


def test_file_rules() -> None:
    before = {"/usr/bin/a": f("0755"), "/opt/x": f(), "/etc/l": {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "a"},
              "/etc/d": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}, "/usr/bin/m": f("0755"),
              "/usr/bin/o": f(), "/usr/share/c": f()}
    after = {"/etc/l": {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "b"},
             "/etc/d": f(), "/usr/bin/m": f("0644"), "/usr/bin/o": f(uid=1), "/usr/share/c": f(sha256="b"),
             "/usr/bin/new": f()}
    got = kinds(judge(diff_files(before, after), CFG, "i", "x86_64"))
    assert got == {
        ("file-removed", "/usr/bin/a", "break"),          # public path
        ("file-removed", "/opt/x", "review"),             # elsewhere
        ("symlink-target-changed", "/etc/l", "review"),
        ("file-type-changed", "/etc/d", "break"),
        ("mode-changed", "/usr/bin/m", "break"),          # owner loses execute
        ("owner-changed", "/usr/bin/o", "review"),
        ("file-modified", "/usr/share/c", "info"),
        ("file-added", "/usr/bin/new", "info"),
    }


def test_mode_change_keeping_owner_rx_is_review() -> None:
    got = judge(diff_files({"/usr/bin/m": f("0755")}, {"/usr/bin/m": f("0750")}), CFG, "i", "x")
    assert kinds(got) == {("mode-changed", "/usr/bin/m", "review")}


def test_security_rules() -> None:
    before = {"/usr/bin/su": f("4755"), "/usr/bin/x": f("0755"), "/tmp": {"type": "dir", "mode": "1777", "uid": 0, "gid": 0}}
    after = {"/usr/bin/su": f("4755"), "/usr/bin/x": f("2755"), "/tmp": {"type": "dir", "mode": "1777", "uid": 0, "gid": 0},
             "/var/drop": {"type": "dir", "mode": "0777", "uid": 0, "gid": 0}, "/etc/conf": f("0666")}
    accounts = {"root": {"empty_password": True, "source": "/etc/shadow"}, "bin": {"empty_password": False}}
    got = kinds(judge(diff_security(before, after, accounts), CFG, "i", "x"))
    assert got == {("setuid-added", "/usr/bin/x", "break"), ("world-writable-added", "/var/drop", "break"),
                   ("world-writable-added", "/etc/conf", "break"), ("empty-password", "/etc/shadow", "break")}
    allow = parse_config({"setuid_allow": ["/usr/bin/x"]})
    assert ("setuid-added", "/usr/bin/x", "info") in kinds(judge(diff_security(before, after, {}), allow, "i", "x"))


def pkg(name: str, evr: str, arch: str = "amd64", manager: str = "dpkg", **kw: object) -> dict[str, object]:
    epoch = int(evr.split(":")[0]) if ":" in evr else None
    return {"manager": manager, "name": name, "arch": arch, "evr": evr, "epoch": epoch,
            "version": evr.split(":")[-1], "release": None, "license": None, **kw}


def test_package_rules_with_dpkg_ordering() -> None:
    before = {k: v for k, v in (("a:amd64", pkg("a", "1.0-1")), ("b:amd64", pkg("b", "1.0~rc1-1")),
                                  ("c:amd64", pkg("c", "2.0-1")), ("d:amd64", pkg("d", "1:1.0")),
                                  ("e:amd64", pkg("e", "1.0")), ("g:amd64", pkg("g", "1.0")),
                                  ("h:amd64", pkg("h", "1:1.0")))}
    after = {k: v for k, v in (("b:amd64", pkg("b", "1.0-1")), ("c:amd64", pkg("c", "2.0~beta-1")),
                                 ("d:amd64", pkg("d", "0:9.9")), ("e:all", pkg("e", "1.0", "all")),
                                 ("f:amd64", pkg("f", "1")), ("g:amd64", pkg("g", "1.0", license="MIT")),
                                 ("h:amd64", pkg("h", "2:0.1")))}
    got = kinds(judge(diff_packages(before, after), CFG, "i", "x"))
    assert got == {("package-removed", "a", "break"), ("package-upgraded", "b", "info"),
                   ("package-downgraded", "c", "break"), ("package-epoch-changed", "d", "break"),
                   ("package-arch-changed", "e", "break"), ("package-added", "f", "info"),
                   ("package-epoch-changed", "h", "review")}


def test_multilib_packages_are_separate_records() -> None:
    before = {"libc:x86_64": pkg("libc", "1", "x86_64", "rpm"), "libc:i686": pkg("libc", "1", "i686", "rpm")}
    after = {"libc:x86_64": pkg("libc", "1", "x86_64", "rpm")}
    changes = diff_packages(before, after)
    assert [(c.kind, c.subject, c.before) for c in changes] == [("package-removed", "libc", "1 i686")]


def test_metadata_rules() -> None:
    before = {"User": "", "Cmd": ["/bin/sh"], "WorkingDir": "/", "Env.PATH": "/bin", "Env.LANG": "C",
              "ExposedPorts.80/tcp": True, "Volumes./data": True, "Labels.version": "1"}
    after = {"User": "nobody", "Entrypoint": ["/init"], "Cmd": ["/bin/sh"], "WorkingDir": "/srv",
             "Env.PATH": "/usr/bin", "Labels.version": "2", "ExposedPorts.443/tcp": True}
    got = kinds(judge(diff_metadata(before, after), CFG, "i", "x"))
    assert got == {("user-changed", "User", "break"), ("entrypoint-changed", "Entrypoint", "break"),
                   ("workdir-changed", "WorkingDir", "break"), ("env-changed", "Env.PATH", "review"),
                   ("env-removed", "Env.LANG", "break"), ("port-removed", "ExposedPorts.80/tcp", "break"),
                   ("port-added", "ExposedPorts.443/tcp", "info"), ("volume-removed", "Volumes./data", "break"),
                   ("label-changed", "Labels.version", "info")}


def test_waivers_overrides_expiry_and_use() -> None:
    cfg = parse_config({
        "waivers": [
            {"image": "img-*", "kind": "file-removed", "subject": "/usr/bin/*", "reason": "split to pkg-x"},
            {"kind": "env-removed", "subject": "Env.LANG", "reason": "old", "expires": "2020-01-01"},
            {"kind": "port-removed", "subject": "*", "reason": "never matches", "arch": "aarch64"},
        ],
        "policy": [{"kind": "file-added", "subject": "/usr/bin/*", "verdict": "review"}],
    })
    changes = diff_files({"/usr/bin/a": f()}, {"/usr/bin/b": f()}) + diff_metadata({"Env.LANG": "C"}, {})
    use = WaiverUse()
    judged = {c.kind: c for c in judge(changes, cfg, "img-1", "x86_64", today=dt.date(2026, 1, 1), use=use)}
    assert judged["file-removed"].waived and judged["file-removed"].reason == "split to pkg-x"
    assert not judged["file-removed"].blocking
    assert judged["file-added"].verdict == "review"
    assert judged["env-removed"].blocking and "expired on 2020-01-01" in (judged["env-removed"].reason or "")
    assert use.matched == {0: 1, 1: 1} and use.expired == {1}


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"waivers\[0\].*reason"):
        parse_config({"waivers": [{"kind": "x", "subject": "y"}]})
    with pytest.raises(ConfigError, match="verdict"):
        parse_config({"policy": [{"kind": "x", "verdict": "maybe"}]})
    with pytest.raises(ConfigError, match="expires"):
        parse_config({"waivers": [{"kind": "x", "reason": "r", "expires": "soon"}]})


def test_image_option_uses_aliases() -> None:
    cfg = parse_config({"images": {"ocs": "registry.local/ocs:9", "rt": {"ref": "r/rt:1", "families": ["rt-python3.11"]}}})
    assert parse_image_option("ocs", cfg).ref == "registry.local/ocs:9"
    assert parse_image_option("rt", cfg).families == ("rt-python3.11",)
    assert parse_image_option("ocs=other:1", cfg).ref == "other:1"
    assert parse_image_option("plain", cfg).ref == "plain"
    with pytest.raises(ConfigError):
        parse_image_option("a/b", cfg)
