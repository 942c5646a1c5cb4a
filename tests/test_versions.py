"""Version ordering against the real tools, on generated pairs.

dpkg: `dpkg --compare-versions` (one shell loop for every pair). rpm: python3-rpm's
`labelCompare` (rpm's own C comparison) in the system Python, one subprocess for every pair.
The pairs are seeded, so a failure reproduces; half are random, half are one small edit apart
(the neighbourhood where ordering rules differ: `~`, `^`, leading zeros, separators, epochs).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.apkversion import apk_compare, apk_version_valid
from harness.snapshot.managers import compare_versions as compare_package_versions
from harness.versions import dpkg_compare, parse_dpkg_version, rpm_compare

PAIRS = 1200
SYSTEM_PYTHON = Path("/usr/bin/python3")

_DPKG_TOKENS = ["0", "1", "2", "9", "10", "01", "00", "100", "a", "b", "z", "A", "Z", "rc", "beta",
                "dfsg", "~", "~~", "+", ".", ".", "-", "~rc1", "+b1", "git20240101"]
_RPM_TOKENS = ["0", "1", "2", "9", "10", "01", "00", "007", "a", "b", "z", "A", "Z", "rc", "git",
               "el9", "~", "~~", "^", "^^", "+", ".", ".", "_", "~rc1", "^post1", "%", "é"]


def _tokens(rng: random.Random, pool: list[str], low: int, high: int) -> str:
    return "".join(rng.choice(pool) for _ in range(rng.randint(low, high)))


def _dpkg_upstream(rng: random.Random, hyphen_ok: bool) -> str:
    text = rng.choice("0123456789") + _tokens(rng, _DPKG_TOKENS, 0, 5)
    return text if hyphen_ok else text.replace("-", ".")


def _dpkg_version(rng: random.Random) -> str:
    epoch = rng.choice(["", "", "", "0:", "1:", "2:", "10:"])
    if rng.random() < 0.6:
        revision = _tokens(rng, _DPKG_TOKENS, 1, 3).replace("-", "+") or "1"
        return f"{epoch}{_dpkg_upstream(rng, True)}-{revision}"
    return f"{epoch}{_dpkg_upstream(rng, False)}"


def _mutate(rng: random.Random, text: str, pool: list[str], protect: int = 1) -> str:
    """One small edit: insert, delete or replace a token, or repeat the text."""
    pos = rng.randint(protect, len(text))
    choice = rng.random()
    if choice < 0.4:
        return text[:pos] + rng.choice(pool) + text[pos:]
    if choice < 0.7 and len(text) > protect + 1:
        return text[:pos] + text[pos + 1:]
    if choice < 0.95:
        return text[:pos] + rng.choice(pool) + text[pos + 1:]
    return text


def _valid_dpkg(version: str) -> bool:
    try:
        v = parse_dpkg_version(version)
    except ValueError:
        return False
    ok_up = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~-:")
    return (bool(v.upstream) and v.upstream[0].isdigit() and set(v.upstream) <= ok_up
            and set(v.revision) <= ok_up - {"-", ":"} and (":" not in version or
                                                          version.count(":") == 1)
            and not version.endswith("-"))


def dpkg_pairs(n: int, seed: int = 20240601) -> list[tuple[str, str]]:
    """`n` valid dpkg version pairs, half random, half one edit apart."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        a = _dpkg_version(rng)
        b = _dpkg_version(rng) if len(pairs) % 2 else _mutate(rng, a, _DPKG_TOKENS,
                                                               protect=a.find(":") + 2)
        if _valid_dpkg(a) and _valid_dpkg(b):
            pairs.append((a, b))
    return pairs


def _rpm_part(rng: random.Random) -> str:
    return _tokens(rng, _RPM_TOKENS, 1, 6)


def rpm_pairs(n: int, seed: int = 4180) -> list[tuple[list[str | None], list[str | None]]]:
    """`n` (epoch, version, release) pairs, as strings, half random, half one edit apart."""
    rng = random.Random(seed)
    pairs: list[tuple[list[str | None], list[str | None]]] = []
    while len(pairs) < n:
        a: list[str | None] = [rng.choice([None, None, "0", "1", "2", "10"]), _rpm_part(rng),
                               _rpm_part(rng)]
        if len(pairs) % 2:
            b: list[str | None] = [rng.choice([None, "0", "1", "10"]), _rpm_part(rng),
                                   _rpm_part(rng)]
        else:
            b = list(a)
            field = rng.choice([1, 1, 2, 2, 0])
            if field == 0:
                b[0] = rng.choice([None, "0", "1", "3"])
            else:
                b[field] = _mutate(rng, str(a[field]), _RPM_TOKENS, protect=0)
        pairs.append((a, b))
    return pairs


_RPM_ORACLE = """
import json, sys, rpm
out = []
for a, b in json.load(sys.stdin):
    out.append(rpm.labelCompare(tuple(a), tuple(b)))
json.dump(out, sys.stdout)
"""


def test_dpkg_order_agrees_with_dpkg_on_generated_pairs() -> None:
    """Every pair is ordered as `dpkg --compare-versions` orders it."""
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed")
    pairs = dpkg_pairs(PAIRS)
    script = ('while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; '
              'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done')
    proc = subprocess.run(["sh", "-c", script], input="".join(f"{a} {b}\n" for a, b in pairs),
                          capture_output=True, text=True, check=True)
    answers = [int(x) for x in proc.stdout.split()]
    assert len(answers) == len(pairs), proc.stderr[-2000:]
    wrong = [(a, b, want, dpkg_compare(a, b)) for (a, b), want in zip(pairs, answers)
             if dpkg_compare(a, b) != want]
    assert not wrong, f"{len(wrong)} of {len(pairs)} pairs ordered unlike dpkg: {wrong[:10]}"
    assert sorted(set(answers)) == [-1, 0, 1]  # the generator reaches every outcome


def test_rpm_order_agrees_with_rpm_label_compare_on_generated_pairs() -> None:
    """Every (epoch, version, release) pair is ordered as rpm's `labelCompare` orders it."""
    if not SYSTEM_PYTHON.exists() or subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import rpm"], capture_output=True).returncode:
        pytest.skip("python3-rpm is not importable by /usr/bin/python3")
    pairs = rpm_pairs(PAIRS)
    proc = subprocess.run([str(SYSTEM_PYTHON), "-c", _RPM_ORACLE], input=json.dumps(pairs),
                          capture_output=True, text=True, check=True)
    answers = json.loads(proc.stdout)
    assert len(answers) == len(pairs)

    def ours(evr: list[str | None]) -> tuple[int | None, str, str | None]:
        return (None if evr[0] is None else int(evr[0]), str(evr[1]), evr[2])

    wrong = [(a, b, want, rpm_compare(ours(a), ours(b))) for (a, b), want in zip(pairs, answers)
             if rpm_compare(ours(a), ours(b)) != want]
    assert not wrong, f"{len(wrong)} of {len(pairs)} pairs ordered unlike rpm: {wrong[:10]}"
    assert sorted(set(answers)) == [-1, 0, 1]


@pytest.mark.parametrize(("a", "b", "want"), [
    ("1.0~rc1", "1.0", -1), ("1.0^post1", "1.0", 1), ("1.0^post1", "1.0.1", -1),
    ("1.0~rc1^git", "1.0~rc1", 1), ("010", "10", 0), ("1.a", "1.1", -1), ("1_0", "1.0", 0),
])
def test_rpm_known_cases(a: str, b: str, want: int) -> None:
    """Documented rpm rules: `~` before the end, `^` after it, numbers beat letters."""
    assert rpm_compare((None, a, "1"), (None, b, "1")) == want


def test_rpm_missing_release_sorts_first() -> None:
    """labelCompare: a missing release sorts before a present one; the epoch still leads."""
    assert rpm_compare((None, "1.0", None), (None, "1.0", "5")) == -1
    assert rpm_compare((1, "1.0", None), (None, "9", "5")) == 1


@pytest.mark.parametrize(("a", "b", "want"), [
    ("1.0~rc1-1", "1.0-1", -1), ("1:0.1", "2.0", 1), ("1.0-1", "1.0-1~bpo1", 1),
    ("0:1.0", "1.0", 0), ("1.0+dfsg-1", "1.0-1", 1), ("1.0a", "1.0+", -1),
])
def test_dpkg_known_cases(a: str, b: str, want: int) -> None:
    """Documented dpkg rules: epoch first, `~` before everything, letters before symbols."""
    assert dpkg_compare(a, b) == want


# apk: no apk-tools in Debian, so the oracle is apk-tools' own documented rules; the cases
# below were checked against the comparison vectors of apk-tools' test suite.
@pytest.mark.parametrize(("a", "b", "want"), [
    ("1.2.3-r1", "1.2.3", 1), ("1.2.3-r10", "1.2.3-r9", 1), ("1.0_alpha", "1.0", -1),
    ("1.0_alpha2", "1.0_alpha", 1), ("1.0_beta", "1.0_alpha3", 1), ("1.0_rc1", "1.0_pre2", 1),
    ("1.0_p1", "1.0", 1), ("1.0_git20240101", "1.0", 1), ("1.05", "1.1", -1), ("1.0", "1.00", -1),
    ("1.0a", "1.0", 1), ("1.0a", "1.0b", -1), ("2.10", "2.9", 1), ("1.0.0", "1.0", 1),
    ("006", "1.0.0", 1), ("0.1.0_alpha_pre2", "0.1.0_alpha", -1), ("1.0", "1.0bc", -1),
    ("1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1), ("1.36.1-r2", "1.36.1-r2", 0),
])
def test_apk_order(a: str, b: str, want: int) -> None:
    """apk's token rules, both ways round."""
    assert apk_compare(a, b) == want
    assert apk_compare(b, a) == -want


def test_apk_validity() -> None:
    """apk accepts Gentoo-style versions only."""
    assert apk_version_valid("1.36.1-r2") and apk_version_valid("1.0_rc1_p2-r0")
    assert not apk_version_valid("1.0-1") and not apk_version_valid("1.0_foo")


def test_apk_compare_survives_any_string() -> None:
    """Hostile version strings never raise and stay antisymmetric."""
    rng = random.Random(7)
    pool = list("0123456789._-rabpz~^ ") + ["_alpha", "_p", "-r", "_rc"]
    for _ in range(2000):
        a, b = _tokens(rng, pool, 0, 8), _tokens(rng, pool, 0, 8)
        assert apk_compare(a, b) == -apk_compare(b, a)


def test_compare_package_versions_dispatches_by_manager() -> None:
    """The diff's entry point uses each manager's own rules."""
    assert compare_package_versions("rpm", {"epoch": None, "version": "1.0", "release": "1"},
                                    {"epoch": None, "version": "1.0~rc1", "release": "1"}) == 1
    assert compare_package_versions("dpkg", {"evr": "1:1.0"}, {"evr": "2.0"}) == 1
    assert compare_package_versions("apk", {"evr": "1.0-r1"}, {"evr": "1.0_rc1-r5"}) == 1


# The edge cases where a reading of dpkg's and rpm's C code is easy to get wrong; each is
# asked of the real tool, so the expected answers are theirs, not ours.
DPKG_EDGE_VERSIONS = ["", "1.0-", "1 0", " 1.0 ", "1.0-a b", ":1.0", "0:", "1:-1", "+1:1.0",
                      "2147483647:1", "2147483648:1", "99999999999:1", "x:1.0", "1:5.#",
                      "1.0--1", "a1.0", "1.0-1-", "1.0é", "0x10:1"]
DPKG_EDGE_PAIRS = [("", "0"), ("", "~"), ("", "0~"), ("", ""), ("<unknown>", "0:0"),
                   ("+1:1.0", "1:1.0"), ("1.0é", "1.0a"), ("1.0é", "1.0+"), ("1.0é", "1.0z"),
                   ("1.0é", "1.0~"), ("1.0é", "1.0"), ("1.0-é", "1.0-+"), ("1.0ÿ", "1.0é"),
                   ("2147483647:1", "1:9"), ("1.0--1", "1.0-1"), ("1.0-1~", "1.0-1")]


def _dpkg_accepts(version: str) -> bool:
    proc = subprocess.run(["dpkg", "--compare-versions", version, "eq", version],
                          capture_output=True, text=True)
    return "error:" not in proc.stderr


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@pytest.mark.parametrize("version", [v for v in DPKG_EDGE_VERSIONS if v])
def test_dpkg_parse_accepts_what_dpkg_accepts(version: str) -> None:
    """parse_dpkg_version rejects exactly what dpkg calls an error (warnings still parse)."""
    try:
        parse_dpkg_version(version)
        ours = True
    except ValueError:
        ours = False
    assert ours == _dpkg_accepts(version), version


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@pytest.mark.parametrize(("a", "b"), DPKG_EDGE_PAIRS)
def test_dpkg_edge_order_equals_dpkg(a: str, b: str) -> None:
    """The empty version, a `+` epoch, bytes >= 0x80 (signed chars in dpkg's C)."""
    def dpkg_says(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b],
                              capture_output=True).returncode == 0

    want = -1 if dpkg_says("lt") else 0 if dpkg_says("eq") else 1
    assert dpkg_says("gt") == (want == 1)
    assert dpkg_compare(a, b) == want
    assert dpkg_compare(b, a) == -want


_RPM_EDGE = [[["0", "1.0", None], ["0", "1.0", "5"]], [[None, "1.0", "5"], [None, "1.0", None]],
             [[None, "1.0", None], [None, "1.0", None]], [[None, "1.0", ""], [None, "1.0", None]],
             [[None, "1.0", None], [None, "0.9", "9"]], [["1", "1.0", None], [None, "9", "1"]],
             [[None, "1.0", "~rc"], [None, "1.0", None]]]


def test_rpm_edge_order_equals_label_compare() -> None:
    """A missing release sorts before a present one, as labelCompare sorts it."""
    if not SYSTEM_PYTHON.exists() or subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import rpm"], capture_output=True).returncode:
        pytest.skip("python3-rpm is not importable by /usr/bin/python3")
    proc = subprocess.run([str(SYSTEM_PYTHON), "-c", _RPM_ORACLE], input=json.dumps(_RPM_EDGE),
                          capture_output=True, text=True, check=True)
    answers = json.loads(proc.stdout)
    ours = [rpm_compare((None if a[0] is None else int(a[0]), a[1], a[2]),
                        (None if b[0] is None else int(b[0]), b[1], b[2])) for a, b in _RPM_EDGE]
    assert ours == answers
    assert -1 in answers and 1 in answers
