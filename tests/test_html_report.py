"""The HTML review report: structure and escaping (parsed here), and in a real headless
Chromium: no console error, no request beyond the file itself, the filter narrows the rows,
render and filter times on a 10,000-change report, and the report of a real Debian upgrade
(bookworm -> trixie) with a screenshot in out/html-report.png."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.diff.change import Change
from harness.outcome.result import AspectResult
from harness.outcome.html import OPEN_LIMIT, to_html
from harness.outcome.model import ImageReport, build_reports, visible
from harness.outcome.report import write_report

OUT = Path(__file__).resolve().parent.parent / "out"
HOSTILE = ("/usr/bin/<script>window.__pwned=1</script>",
           '/etc/"><img src=x onerror="window.__pwned=2">',
           "/opt/\udcff\udcfename\x1b[31m\nline\u202etxt.exe")


def _results(name: str, changes: list[Change], errors: dict[str, str] | None = None,
             missing: tuple[str, ...] = ()) -> list[AspectResult]:
    aspects = sorted({"metadata", "files", "packages", "security", "abi"} | {c.aspect for c in changes})
    return [AspectResult(name, f"registry.example.com/{name}:rc", a, "x86_64", "sha256:" + "1" * 64,
                         f"baselines/{name}/x86_64/{a}.json", [c for c in changes if c.aspect == a],
                         error=(errors or {}).get(a), missing_baseline=a in missing)
            for a in aspects]


def synthetic_changes(n: int) -> list[Change]:
    """About `n` judged changes of every aspect, the shape of a large distribution upgrade:
    packages with sizes, removed libraries and symbols with their consumers, files with their
    owning package, waivers, and a few hostile file names."""
    out = [Change("metadata", "user-changed", "User", "", "nobody", verdict="break"),
           Change("metadata", "label-changed", "Labels.version", "1", "2"),
           Change("security", "setuid-added", "/usr/bin/newsu", None, "4755", verdict="break",
                  waived=True, reason="reviewed in SEC-9")]
    out += [Change("files", "file-removed", path, {"type": "file", "size": 10}, None, verdict="break")
            for path in HOSTILE]
    for i in range(300):
        pkg = f"lib{i}"
        kind = "package-removed" if i % 50 == 0 else "package-upgraded"
        after = None if kind == "package-removed" else {"evr": f"2.{i}", "size": 40_000 + 512 * i}
        out.append(Change("packages", kind, pkg, {"evr": f"1.{i}", "size": 40_000 + 256 * i}, after,
                          verdict="break" if kind == "package-removed" else "info"))
    for i in range(20):
        so = f"libgone{i}.so.1"
        out.append(Change("abi", "library-removed", so, {"paths": [f"/usr/lib/{so}"],
                                                         "packages": [f"libgone{i}"]}, verdict="break"))
        out += [Change("abi", "needed-unresolved", so, None, None, consumer=f"/usr/bin/tool{i}-{j}",
                       verdict="break") for j in range(i % 3)]
    for i in range(200):
        key = f"libkeep{i % 10}.so.2:sym_{i}@KEEP_2"
        out.append(Change("abi", "symbol-removed", key, {"type": "FUNC", "bind": "GLOBAL"},
                          verdict="break"))
        if i % 4 == 0:
            out.append(Change("abi", "symbol-unresolved", key, consumer=f"/usr/lib/libuser{i}.so.1",
                              verdict="break"))
    out += [Change("abi", "symbol-added", f"libkeep{i % 10}.so.2:new_{i}@KEEP_3", None,
                   {"type": "FUNC", "bind": "GLOBAL", "default": True}) for i in range(1500)]
    i = 0
    while len(out) < n:
        pkg = f"lib{i % 300}"
        path = f"/usr/share/{pkg}/data/file-{i:05d}.dat"
        if i % 9 == 0:
            out.append(Change("files", "file-removed", path, {"type": "file", "size": 100 + i,
                                                              "package": pkg}, verdict="review"))
        else:
            out.append(Change("files", "file-modified", path,
                              {"size": 100 + i, "sha256": "ab" * 32, "package": pkg},
                              {"size": 120 + i, "sha256": "cd" * 32, "package": pkg}))
        i += 1
    return out


def synthetic_reports(n: int = 10_000) -> list[ImageReport]:
    """A failing image with `n` changes, a passing one, and one that could not be judged."""
    return build_reports([
        *_results("big", synthetic_changes(n)),
        *_results("clean", [Change("files", "file-added", "/usr/share/doc/new", None, {"size": 1})]),
        *_results("broken", [], errors={"packages": "rpmdb: Packages.db is damaged\nsecond line"}),
    ])


class Node:
    """A parsed HTML element: tag, attributes, children (elements and text)."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Node | str] = []

    def text(self) -> str:
        """The text content, as a browser's textContent."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None, **attrs: str) -> Iterator[Node]:
        """Every descendant element (self included) of a tag and with attributes containing values."""
        if (tag is None or self.tag == tag) and all(
                v in (self.attrs.get(k.rstrip("_").replace("_", "-")) or "").split()
                for k, v in attrs.items()):
            yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter(tag, **attrs)


class _Tree(HTMLParser):
    VOID = {"meta", "input", "br", "img", "link", "hr", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    """The document as a tree of `Node`s."""
    tree = _Tree()
    tree.feed(text)
    tree.close()
    return tree.root


def test_hostile_names_are_text_and_the_file_is_self_contained(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    write_report(path, synthetic_reports(600))  # surrogate escapes in names must not break UTF-8
    text = path.read_text(encoding="utf-8")
    doc = parse(text)
    assert [s.text() for s in doc.iter("script")] and len(list(doc.iter("script"))) == 1
    assert not list(doc.iter("img")), "a file name became an element"
    subjects = {n.text() for n in doc.iter("td", class_="s")}
    for name in HOSTILE:
        assert visible(name) in subjects
    assert "\\xff\\xfename\\x1b[31m\\nline\\u202etxt.exe" in visible(HOSTILE[2])
    assert not any(ch in text for ch in ("\x1b", "\u202e")), "invisible characters leaked"
    for node in doc.iter():  # nothing that could fetch: no src, only in-page links
        assert "src" not in node.attrs and "style" not in node.attrs, node.attrs
        assert str(node.attrs.get("href", "#")).startswith("#"), node.attrs
    for code in [*doc.iter("script"), *doc.iter("style")]:
        assert not any(n in code.text() for n in ("http:", "https:", "url(", "@import", "fetch("))
    csp = next(doc.iter("meta", http_equiv="Content-Security-Policy"))
    assert "default-src 'none'" in str(csp.attrs["content"])


def test_banners_counts_and_breaks_first() -> None:
    doc = parse(to_html(synthetic_reports(3_000)))
    banners = {s.attrs["data-image"]: next(s.iter("div", class_="banner")) for s in doc.iter("section")}
    assert banners["big"].attrs["class"] == "banner fail"
    changes = build_reports(_results("big", synthetic_changes(3_000)))[0].changes
    breaks = sum(1 for c in changes if c.blocking)
    assert banners["big"].text().startswith(f"FAIL: {breaks:,} unwaived breaks block this image")
    assert banners["clean"].text().startswith("PASS")
    assert "never a pass" in banners["broken"].text()
    broken = next(s for s in doc.iter("section") if s.attrs["data-image"] == "broken")
    assert "Packages.db is damaged\nsecond line" in next(broken.iter("ul", class_="errors")).text()

    big = next(s for s in doc.iter("section") if s.attrs["data-image"] == "big")
    counts = {r.children[0].text(): [c.text() for c in r.children[1:]]  # type: ignore[union-attr]
              for r in next(big.iter("table", class_="counts")).iter("tr") if r.children}
    for aspect in ("abi", "packages", "security"):
        n = {g: sum(1 for c in changes if c.aspect == aspect and
                    ("waived" if c.waived else c.verdict) == g) for g in ("break", "review", "waived", "info")}
        assert counts[aspect][1:5] == [f"{n[g]:,}" for g in ("break", "review", "waived", "info")]
    assert counts["security"][0] == "pass" and counts["abi"][0] == "fail"
    groups = [d.attrs["data-v"] for d in big.iter("details", class_="grp")]
    assert groups == ["break", "review", "waived", "info"]
    opened = {d.attrs["data-v"]: "open" in d.attrs for d in big.iter("details", class_="grp")}
    assert opened == {"break": True, "review": True, "waived": True, "info": False}
    waived = next(d for d in big.iter("details", class_="grp") if d.attrs["data-v"] == "waived")
    assert "waived: reviewed in SEC-9" in waived.text()
    assert len(list(big.iter("tr", class_="c"))) == len(changes) + 300  # + the size table


def test_consumers_of_removed_libraries_and_symbols() -> None:
    changes = [
        Change("abi", "library-removed", "libgone.so.1", {"paths": ["/usr/lib/libgone.so.1"]}, verdict="break"),
        Change("abi", "needed-unresolved", "libgone.so.1", consumer="/usr/bin/b-user", verdict="break"),
        Change("abi", "needed-unresolved", "libgone.so.1", consumer="/usr/bin/a-user", verdict="break"),
        Change("abi", "library-removed", "libunused.so.3", {"paths": ["/usr/lib/libunused.so.3"]},
               verdict="break"),
        Change("abi", "symbol-removed", "libfoo.so.1:foo@FOO_1", {"type": "FUNC"}, verdict="break"),
        Change("abi", "symbol-unresolved", "libfoo.so.1:foo@FOO_1", consumer="/usr/lib/libbar.so.2",
               verdict="break"),
        Change("abi", "symbol-removed", "libfoo.so.1:bar@FOO_1",
               {"type": "FUNC", "consumers": ["/usr/bin/listed"]}, verdict="break"),
        Change("abi", "symbol-version-removed", "libfoo.so.1:@FOO_0", "FOO_0", verdict="break"),
        Change("abi", "symbol-unresolved", "libfoo.so.1:old@FOO_0", consumer="/usr/bin/old-user",
               verdict="break"),
    ]
    doc = parse(to_html(build_reports(_results("x", changes))))
    rows = {(r.children[1].text(), r.children[2].text()): r  # type: ignore[union-attr]
            for r in doc.iter("tr", class_="c")}

    def cell(kind: str, subject: str, column: int) -> Node:
        node = rows[kind, subject].children[column]
        assert isinstance(node, Node)
        return node

    def users(kind: str, subject: str) -> list[str]:
        return [li.text() for li in cell(kind, subject, 5).iter("li")]

    assert users("library-removed", "libgone.so.1") == ["/usr/bin/a-user", "/usr/bin/b-user"]
    assert users("symbol-removed", "libfoo.so.1:foo@FOO_1") == ["/usr/lib/libbar.so.2"]
    assert users("symbol-removed", "libfoo.so.1:bar@FOO_1") == ["/usr/bin/listed"]
    assert users("symbol-version-removed", "libfoo.so.1:@FOO_0") == ["/usr/bin/old-user"]
    assert cell("library-removed", "libunused.so.3", 5).text() == "no object in the image uses it"
    assert cell("symbol-removed", "libfoo.so.1:bar@FOO_1", 3).text() == "type: FUNC"
    # without a judged abi aspect nothing is known about users
    alone = parse(to_html(build_reports([AspectResult("y", "y", "abi", "x86_64", None, None,
                                                      [changes[3]], error="unreadable")])))
    assert "no object" not in alone.text()


def test_files_grouped_by_package_and_size_per_package() -> None:
    changes = [
        Change("packages", "package-upgraded", "libc6", {"evr": "2.36", "size": 12 << 20},
               {"evr": "2.41", "size": 13 << 20}),
        Change("packages", "package-removed", "oldpkg", {"evr": "1", "size": 1 << 20}, verdict="break"),
        Change("files", "file-modified", "/usr/lib/libc.so.6", {"size": 100, "package": "libc6"},
               {"size": 150, "package": "libc6"}),
        Change("files", "file-removed", "/usr/bin/old", {"size": 7, "package": "oldpkg"}, verdict="break"),
        Change("files", "file-added", "/usr/share/x/new", None, {"size": 2048, "package": "xdata"}),
        Change("files", "file-added", "/etc/unowned", None, {"size": 1}),
    ]
    doc = parse(to_html(build_reports(_results("x", changes))))
    groups = {g.attrs["data-p"]: [r.children[2].text() for r in g.iter("tr", class_="c")]  # type: ignore[union-attr]
              for g in doc.iter("details", class_="pkg")}
    assert groups == {"libc6": ["/usr/lib/libc.so.6"], "oldpkg": ["/usr/bin/old"],
                      "xdata": ["/usr/share/x/new"], "": ["/etc/unowned"]}
    libc = next(g for g in doc.iter("details", class_="pkg") if g.attrs["data-p"] == "libc6")
    assert "package-upgraded" in next(libc.iter("summary")).text()
    sizes = {r.children[0].text(): [c.text() for c in r.children[1:4]]  # type: ignore[union-attr]
             for r in next(doc.iter("table", class_="sz")).iter("tr", class_="c")}
    assert sizes["libc6"] == ["12.0 MiB", "13.0 MiB", "+1.0 MiB"]
    assert sizes["oldpkg"] == ["1.0 MiB", "-", "-1.0 MiB"]
    assert sizes["xdata"][2] == "+2.0 KiB"  # no package size: the sum of its files' changes
    assert list(sizes)[:2] == ["libc6", "oldpkg"], "largest change first"

    plain = parse(to_html(build_reports(_results("y", [
        Change("packages", "package-upgraded", "bash", "5.2 amd64", "5.3 amd64"),
        Change("files", "file-modified", "/usr/bin/bash", {"size": 1}, {"size": 2})]))))
    assert not list(plain.iter("details", class_="pkg"))
    assert "carry no package or file sizes" in next(plain.iter("p", class_="nosize")).text()


def test_ten_thousand_changes_fold() -> None:
    # how fast they render is bench/report_bench.py's to measure, not a test's
    text = to_html(synthetic_reports(10_000))
    doc = parse(text)
    big = next(s for s in doc.iter("section") if s.attrs["data-image"] == "big")
    assert sum(1 for _ in big.iter("tr", class_="c")) == 10_000 + 300
    for details in big.iter("details"):
        rows = sum(1 for _ in details.iter("tr", class_="c"))
        assert "open" not in details.attrs or rows <= OPEN_LIMIT


# --- in a real browser ------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")
APT_PACKAGES = ("chromium", "chromium-driver")
LONG_TASKS = ("window.__longTasks = [];"
              "new PerformanceObserver(l => l.getEntries().forEach(e => window.__longTasks.push("
              "Math.round(e.duration)))).observe({type: 'longtask'});")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium through chromedriver (installed with apt when missing), with a
    new empty profile; browser console and network events are logged for the tests."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[dev]' (or pip install selenium)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
        proc = subprocess.run(install, capture_output=True, text=True, env=env)
        if proc.returncode != 0:  # stale package lists: refresh once
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
            proc = subprocess.run(install, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            pytest.fail(f"apt-get install {' '.join(APT_PACKAGES)} failed:\n{proc.stderr[-2000:]}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))
    try:
        driver.execute_cdp_cmd("Performance.enable", {})
        # main-thread tasks over 50 ms (what a user feels as a freeze), from the first byte on
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, path: Path) -> float:
    """Load a file, drop earlier logs, and return the seconds `get` took (until `load`)."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")
    start = time.perf_counter()
    driver.get(path.as_uri())
    return time.perf_counter() - start


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


VISIBLE_ROWS = "return Array.from(document.querySelectorAll('tr.c')).filter(r => r.checkVisibility()).length"


def _type(driver: Any, text: str) -> float:
    """Type into the filter; return the seconds from the keystroke to the filtered rows."""
    from selenium.webdriver.common.by import By

    before = driver.execute_script("return harnessReport.lastFilter && harnessReport.lastFilter.at")
    start = time.perf_counter()
    driver.find_element(By.ID, "q").send_keys(text)
    deadline = start + 10
    while time.perf_counter() < deadline:
        now = driver.execute_script("document.body.offsetHeight;"  # the layout the filter caused
                                    "return harnessReport.lastFilter && harnessReport.lastFilter.at")
        if now and now != before:
            return time.perf_counter() - start
        time.sleep(0.01)
    raise AssertionError("the filter never ran")


def test_browser_ten_thousand_changes(chromium: Any, tmp_path: Path,
                                      record_property: Any) -> None:
    path = tmp_path / "big.html"
    write_report(path, synthetic_reports(10_000))
    m0 = {m["name"]: m["value"] for m in chromium.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    load = _open(chromium, path)
    nav = chromium.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, fcp: p ? p.startTime : null,"
        " ready: harnessReport.ready}")
    m1 = {m["name"]: m["value"] for m in chromium.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    assert nav["ready"] > 0, "the report's script did not run (CSP hash?)"
    assert _errors(chromium) == []
    assert all(u.startswith(("file:", "data:")) for u in _requests(chromium)), _requests(chromium)
    long_tasks = chromium.execute_script("return window.__longTasks.slice()")
    shown = chromium.execute_script(VISIBLE_ROWS)
    keystroke = _type(chromium, "lib42")
    filtered = chromium.execute_script(VISIBLE_ROWS)
    apply_ms = chromium.execute_script("return harnessReport.lastFilter.ms")
    sync = chromium.execute_script("const t = performance.now(); harnessReport.filter('lib4');"
                                   "document.body.offsetHeight; return performance.now() - t")
    clear = chromium.execute_script("const t = performance.now(); harnessReport.filter('');"
                                    "document.body.offsetHeight; return performance.now() - t")
    assert 0 < filtered < shown
    # a kind's button in a section summary filters on the kind and leaves the section open
    button = chromium.find_element("css selector", "details.grp.break button.kf[data-q=package-removed]")
    button.click()
    assert chromium.execute_script("return document.getElementById('q').value") == "package-removed"
    assert chromium.execute_script("return harnessReport.lastFilter.matched") == 6
    assert chromium.execute_script("return document.querySelector('details.grp.break').open")
    assert chromium.execute_script(VISIBLE_ROWS) == 6
    assert _errors(chromium) == []
    figures = {
        "bytes": path.stat().st_size, "get_s": round(load, 3),
        "first_contentful_paint_ms": nav["fcp"], "dom_content_loaded_ms": round(nav["dcl"]),
        "load_event_ms": round(nav["load"]),
        **{f"{k}_ms": round((m1[k] - m0.get(k, 0)) * 1000) for k in
           ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")},
        "long_tasks_during_load_ms": long_tasks,
        "rows_visible": shown, "rows_visible_filtered": filtered,
        "keystroke_to_filtered_s_incl_150ms_debounce": round(keystroke, 3),
        "filter_apply_ms": round(apply_ms, 1), "filter_plus_layout_ms": round(sync, 1),
        "clear_filter_plus_layout_ms": round(clear, 1)}
    for key, value in figures.items():
        record_property(key, value)
    print("html report, 10,000 changes:", json.dumps(figures))
    (tmp_path / "timing.json").write_text(json.dumps(figures, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "html-timing.json").write_text(json.dumps(figures, indent=1) + "\n")


def test_browser_hostile_names_do_not_run(chromium: Any, tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    write_report(path, synthetic_reports(100))
    _open(chromium, path)
    assert chromium.execute_script("return window.__pwned === undefined")
    cells = chromium.execute_script("return Array.from(document.querySelectorAll('td.s'), c => c.textContent)")
    assert HOSTILE[0] in cells and HOSTILE[1] in cells
    _type(chromium, "<script>")
    assert chromium.execute_script(VISIBLE_ROWS) == 1
    assert _errors(chromium) == []


@pytest.fixture(scope="session")
def upgrade_pair() -> Any:
    """bookworm minbase (release) and trixie minbase (candidate), built once and reused."""
    from testimages import upgrade

    return upgrade.pair()


def test_browser_report_of_a_real_upgrade(chromium: Any, run_gate: Any, upgrade_pair: Any,
                                          tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    accept = run_gate({"debian": upgrade_pair.baseline}, "--update-baselines", baselines=baselines)
    accept.result.assert_outcomes(passed=5)
    html_path = tmp_path / "report.html"
    gate = run_gate({"debian": upgrade_pair.candidate}, "--compat-report", str(html_path),
                    baselines=baselines)
    entry = gate.image("debian")
    changes = entry["changes"]
    assert len(changes) >= 200, f"{upgrade_pair.description}: only {len(changes)} changes"
    # trixie renames and drops packages (a fail); the fallback candidate only adds (a pass)
    assert entry["verdict"] == ("pass" if upgrade_pair.fallback else "fail"), upgrade_pair.description
    packages = sorted(c["subject"] for c in changes
                      if c["kind"] in ("package-upgraded", "package-added"))
    assert packages, upgrade_pair.description

    load = _open(chromium, html_path)
    assert chromium.execute_script("return harnessReport.ready") > 0
    assert _errors(chromium) == []
    assert all(u.startswith(("file:", "data:")) for u in _requests(chromium))
    # unfold everything: every change is a row, then the filter narrows them
    chromium.execute_script("document.querySelectorAll('details[data-g]').forEach(d => d.open = true)")
    shown = chromium.execute_script(VISIBLE_ROWS)
    assert shown >= len(changes)
    term = "libc6" if "libc6" in packages else packages[0]
    _type(chromium, term)
    texts = chromium.execute_script(
        "return Array.from(document.querySelectorAll('tr.c')).filter(r => r.checkVisibility())"
        ".map(r => r.textContent.toLowerCase())")
    assert 0 < len(texts) < shown, (term, len(texts), shown)
    assert all(term in t for t in texts)
    assert _errors(chromium) == []
    OUT.mkdir(exist_ok=True)
    assert chromium.save_screenshot(str(tmp_path / "html-report-filtered.png"))
    shutil.copy(tmp_path / "html-report-filtered.png", OUT / "html-report-filtered.png")
    chromium.find_element("id", "q").clear()
    _type(chromium, " ")  # back to every row (a blank filter), then the screenshot
    shot = tmp_path / "html-report.png"
    assert chromium.save_screenshot(str(shot))
    shutil.copy(shot, OUT / "html-report.png")
    assert shot.stat().st_size > 10_000
    print(f"{upgrade_pair.description}: {len(changes)} changes, {html_path.stat().st_size:,} bytes, "
          f"loaded in {load:.2f}s, screenshot {OUT / 'html-report.png'}")
