"""HTML review report (`--compat-report report.html`): one self-contained file.

Nothing is fetched: the CSS and the script are inline, and the page's Content-Security-Policy
allows only those two (by hash). Per image: a verdict banner, counts per aspect and verdict,
then the changes in folding sections, breaks first; who uses each removed library or symbol;
file changes under their owning package; the size change per package.

Rows are static HTML (readable without the script, found by the browser's own search). The
script only filters, debounced, by toggling `hidden` on rows and sections. At 10,000+ rows
the first layout stays small: sections over `OPEN_LIMIT` rows start folded, and long tables
are blocks of `CHUNK` rows that the browser neither lays out nor paints while off screen
(`content-visibility: auto`).

Every text from an image (subjects are file names, and file names can be hostile) is escaped,
and characters that would hide or disguise a name (controls, bidi overrides, bytes that are
not UTF-8 kept as surrogate escapes) are shown as `\\xNN` / `\\uNNNN`."""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.aspects import REPORT_ORDER
from harness.outcome.causereport import CauseGroup, group_causes, headline, kinds_text
from harness.diff.change import VERDICTS, Change
from harness.outcome.model import CONSUMER_KEYS, ImageReport, brief, visible
from harness.kinds import WHY

#: verdict groups in the order a reviewer reads them: what blocks first
GROUPS = (("break", "Breaks"), ("review", "Review"), ("waived", "Waived"), ("info", "Info"))
#: what every `docker run` sees first, files (the bulkiest) last
ASPECT_ORDER = REPORT_ORDER
#: a section with more rows than this starts folded (its count is still in its summary)
OPEN_LIMIT = 2_000
#: a package's group of file changes starts open up to this many rows
PACKAGE_OPEN_LIMIT = 200
CELL_MAX = 240
#: aspects whose subjects are paths, grouped by owning package when the changes say it
PATH_ASPECTS = ("files", "security")
_USES_LIBRARY = ("library-removed", "soname-changed")


def esc(value: object) -> str:
    """HTML-escaped, visible text of any value (safe in element content and quoted attributes)."""
    return html.escape(visible(value if isinstance(value, str) else str(value)), quote=True)


def _lines(text: str) -> str:
    """Escaped text keeping its line breaks (error messages)."""
    return "\n".join(esc(line) for line in text.split("\n"))


def _td(value: Any, cls: str = "") -> str:
    text = brief(value)
    attr = f' class="{cls}"' if cls else ""
    if len(text) > CELL_MAX:
        return f'<td{attr} title="{esc(text[:4000])}">{esc(text[:CELL_MAX])}…</td>'
    return f"<td{attr}>{esc(text)}</td>"


def group_of(change: Change) -> str:
    """The verdict group a change is listed under (`waived` apart from its verdict)."""
    if change.waived:
        return "waived"
    return change.verdict if change.verdict in VERDICTS else "review"


def package_of(change: Change) -> str | None:
    """The package owning a changed path, when the change carries it (after, else before)."""
    for side in (change.after, change.before):
        if isinstance(side, Mapping) and isinstance(side.get("package"), str) and side["package"]:
            return str(side["package"])
    return None


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


class ConsumerIndex:
    """Which objects in the candidate use a soname, a symbol or a symbol version.

    Built from the report itself: every needed-unresolved / symbol-unresolved change names
    the object (`consumer`) that can no longer load because of a removal.
    """

    def __init__(self, changes: Iterable[Change]) -> None:
        self.by_library: dict[str, set[str]] = defaultdict(set)
        self.by_symbol: dict[str, set[str]] = defaultdict(set)
        self.by_version: dict[tuple[str, str], set[str]] = defaultdict(set)
        for c in changes:
            if not c.consumer:
                continue
            if c.kind == "needed-unresolved":
                self.by_library[c.subject].add(c.consumer)
            elif c.kind == "symbol-unresolved":
                library, _, symbol = c.subject.partition(":")
                self.by_library[library].add(c.consumer)
                self.by_symbol[c.subject].add(c.consumer)
                _, at, version = symbol.partition("@")
                if at:
                    self.by_version[(library, version)].add(c.consumer)

    def users(self, change: Change) -> list[str] | None:
        """The users of what the change removed; None when the kind removes nothing used."""
        if change.kind in _USES_LIBRARY:
            found = set(self.by_library.get(change.subject, ()))
        elif change.kind == "symbol-removed":
            found = set(self.by_symbol.get(change.subject, ()))
        elif change.kind == "symbol-version-removed":
            library, _, version = change.subject.partition(":@")
            found = set(self.by_version.get((library, version), ()))
        else:
            return None
        for side in (change.before, change.after):
            if isinstance(side, Mapping):
                for key in CONSUMER_KEYS:
                    found.update(_listed(side.get(key)))
        if change.consumer:
            found.add(change.consumer)
        return sorted(found)


def _note(change: Change, users: list[str] | None, linkage_known: bool) -> str:
    parts: list[str] = []
    if change.waived:
        parts.append(f"<b>waived:</b> {esc(change.reason or '')}")
    elif change.reason:
        parts.append(esc(change.reason))
    if change.consumer and change.kind not in _USES_LIBRARY + ("symbol-removed",):
        parts.append(f"consumer <span class=s>{esc(change.consumer)}</span>")
    if users:
        items = "".join(f"<li>{esc(u)}</li>" for u in users)
        parts.append(f'<details class=use{" open" if len(users) <= 5 else ""}><summary>used by '
                     f"{len(users)}</summary><ul>{items}</ul></details>")
    elif users is not None and linkage_known:
        parts.append("no object in the image uses it")
    return "<br>".join(parts)


def _row(change: Change, index: ConsumerIndex, linkage_known: bool) -> str:
    label = f"{change.verdict} (waived)" if change.waived else change.verdict
    return (f'<tr class=c><td class="v {esc(group_of(change))}">{esc(label)}</td>'
            f"<td>{esc(change.kind)}</td><td class=s>{esc(change.subject)}</td>"
            f"{_td(change.before)}{_td(change.after)}"
            f"<td>{_note(change, index.users(change), linkage_known)}</td></tr>")


_HEAD = ("<table class=ch><thead><tr><th>verdict</th><th>kind</th><th>subject</th><th>before"
         "</th><th>after</th><th>note</th></tr></thead><tbody>")
#: rows per block of a long table; blocks off screen are neither laid out nor painted
#: (`content-visibility: auto`), so a section of 10,000 open rows costs what is on screen
CHUNK = 100


def _table(rows: list[str]) -> list[str]:
    """A change table; a long one as blocks of `CHUNK` rows (one column layout: fixed)."""
    if len(rows) <= CHUNK // 2:
        return [_HEAD, *rows, "</tbody></table>"]
    out: list[str] = []
    for start in range(0, len(rows), CHUNK):
        block = rows[start:start + CHUNK]
        out += [f"<div class=cv data-g data-n={len(block)}>", _HEAD if start == 0 else
                "<table class=ch><tbody>", *block, "</tbody></table></div>"]
    return out


def _summary(title: str, count: int, extra: str = "") -> str:
    return (f"<summary>{title} <span class=n data-total={count}>{count:,}</span>"
            f"{extra}</summary>")


def rarest_first(changes: list[Change]) -> list[Change]:
    """The rarest kinds first (stable within a kind): 22 removed packages are not found
    behind 1,000 removed files."""
    kinds = Counter(c.kind for c in changes)
    return sorted(changes, key=lambda c: (kinds[c.kind], c.kind))


def _kinds(changes: list[Change]) -> str:
    """Each kind with its count, as a button that filters on it."""
    kinds = Counter(c.kind for c in changes)
    buttons = "".join(f'<button type=button class=kf data-q="{esc(k)}">{esc(k)} {n:,}</button>'
                      for k, n in sorted(kinds.items(), key=lambda i: (i[1], i[0])))
    return f" <span class=k>{buttons}</span>"


def human_size(n: float) -> str:
    """Bytes as B/KiB/MiB/GiB with a sign when asked by a negative value."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n:.1f} GiB"


def _signed(n: int) -> str:
    return ("+" if n > 0 else "") + human_size(n)


@dataclass
class PackageSize:
    """One package's size before and after, and where the figures came from."""

    name: str
    before: int | None = None
    after: int | None = None
    source: str = "package database"
    files: int = 0
    delta_files: int = 0

    @property
    def delta(self) -> int:
        """After minus before (a missing side counts as 0: added or removed)."""
        if self.before is None and self.after is None:
            return self.delta_files
        return (self.after or 0) - (self.before or 0)


def _size(value: Any) -> int | None:
    if isinstance(value, Mapping):
        for key in ("size", "installed_size", "installed-size"):
            if isinstance(value.get(key), int):
                return int(value[key])
    return None


def package_sizes(changes: Iterable[Change]) -> list[PackageSize]:
    """Size change per package: from the package changes' sizes where they carry them, else
    the sum of the size changes of the files each package owns. Largest change first."""
    sizes: dict[str, PackageSize] = {}
    by_files: dict[str, PackageSize] = {}
    for c in changes:
        if c.aspect == "packages" and c.kind.startswith("package-"):
            before, after = _size(c.before), _size(c.after)
            if before is not None or after is not None:
                entry = sizes.setdefault(c.subject, PackageSize(c.subject))
                entry.before = before if before is not None else entry.before
                entry.after = after if after is not None else entry.after
        elif c.aspect == "files" and (pkg := package_of(c)) is not None:
            entry = by_files.setdefault(pkg, PackageSize(pkg, source="sum of file changes"))
            entry.files += 1
            entry.delta_files += (_size(c.after) or 0) - (_size(c.before) or 0)
    for pkg, entry in by_files.items():
        sizes.setdefault(pkg, entry)  # the package database's own figures win
    return sorted(sizes.values(), key=lambda e: (-abs(e.delta), e.name))


@dataclass
class _View:
    """One image's changes, sorted once (the report model sorts on every access)."""

    rep: ImageReport
    changes: list[Change]
    aspects: list[str]
    counts: Counter[str]
    groups: dict[str, dict[str, list[Change]]] = field(default_factory=dict)
    #: the root causes that explain more than themselves (their changes are listed under
    #: them, the verdict sections list the rest), and the headline of all causes
    causes: list[CauseGroup] = field(default_factory=list)
    headline: str = ""

    @classmethod
    def of(cls, rep: ImageReport) -> _View:
        changes = rep.changes
        found = set(rep.aspects) | {c.aspect for c in changes}
        aspects = [a for a in ASPECT_ORDER if a in found] + sorted(found - set(ASPECT_ORDER))
        view = cls(rep, changes, aspects, Counter(group_of(c) for c in changes))
        every = group_causes(changes)
        view.headline = headline(every)
        view.causes = [g for g in every if len(g.changes) > 1]
        explained = {id(c) for g in view.causes for c in g.changes}
        for c in changes:
            if id(c) not in explained:
                view.groups.setdefault(group_of(c), {}).setdefault(c.aspect, []).append(c)
        for by_aspect in view.groups.values():
            for aspect, listed in by_aspect.items():
                by_aspect[aspect] = rarest_first(listed)
        return view


def _counts_table(view: _View) -> str:
    rep = view.rep
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for c in view.changes:
        per[c.aspect][group_of(c)] += 1
    out = ["<table class=counts><thead><tr><th>aspect</th><th>result</th>"]
    out += [f"<th>{g}</th>" for g, _ in GROUPS] + ["<th>total</th></tr></thead><tbody>"]
    total: Counter[str] = Counter()
    for aspect in view.aspects:
        result = rep.aspects[aspect].verdict if aspect in rep.aspects else ""
        out.append(f"<tr><td>{esc(aspect)}</td><td class=\"r {esc(result)}\">{esc(result)}</td>")
        for g, _ in GROUPS:
            n = per[aspect][g]
            total[g] += n
            out.append(f'<td class="num{" " + g if n else ""}">{n:,}</td>')
        out.append(f"<td class=num>{sum(per[aspect].values()):,}</td></tr>")
    out.append("<tr class=tot><td>all</td><td></td>")
    out += [f"<td class=num>{total[g]:,}</td>" for g, _ in GROUPS]
    out.append(f"<td class=num>{sum(total.values()):,}</td></tr></tbody></table>")
    return "".join(out)


def _banner(view: _View) -> str:
    rep, n = view.rep, view.counts
    missing = sorted(a for a, r in rep.aspects.items() if r.missing_baseline)
    if rep.verdict == "error":
        text = "ERROR: could not be judged (an error is never a pass)"
    elif rep.verdict == "fail":
        text = f"FAIL: {n['break']:,} unwaived break{'s' if n['break'] != 1 else ''} block this image"
        if missing:
            text += f"; no baseline for {', '.join(missing)}"
    else:
        text = "PASS: no unwaived break"
    tail = f"{n['review']:,} review, {n['info']:,} info, {n['waived']:,} waived"
    return (f'<div class="banner {esc(rep.verdict)}"><b>{esc(text)}</b>'
            f"<span>{esc(tail)}</span></div>")


def _package_groups(changes: list[Change], index: ConsumerIndex, linkage_known: bool,
                    open_default: bool, packages: Mapping[str, Change]) -> list[str]:
    by_pkg: dict[str, list[Change]] = defaultdict(list)
    for c in changes:
        by_pkg[package_of(c) or ""].append(c)
    out: list[str] = []
    for pkg in sorted(by_pkg, key=lambda p: (p == "", p)):
        rows = by_pkg[pkg]
        title = f"package <b>{esc(pkg)}</b>" if pkg else "no owning package"
        extra = ""
        change = packages.get(pkg)
        if change is not None:
            extra = (f" <span class=k>{esc(change.kind)} {esc(brief(change.before))} → "
                     f"{esc(brief(change.after))}</span>")
        is_open = " open" if open_default and len(rows) <= PACKAGE_OPEN_LIMIT else ""
        out.append(f"<details class=pkg data-g data-p=\"{esc(pkg)}\"{is_open}>"
                   + _summary(title, len(rows), extra))
        out += _table([_row(c, index, linkage_known) for c in rows])
        out.append("</details>")
    return out


def _image_section(i: int, view: _View) -> str:
    rep = view.rep
    index = ConsumerIndex(view.changes)
    linkage_known = "abi" in rep.aspects and not rep.aspects["abi"].error
    packages = {c.subject: c for c in view.changes if c.aspect == "packages"
                and c.kind in ("package-upgraded", "package-downgraded", "package-removed",
                               "package-added", "package-epoch-changed")}
    meta = [("ref", rep.ref), ("arch", rep.arch or "?"), ("image id", rep.image_id or "-"),
            ("baseline", rep.baseline or "-")]
    out = [f'<section class=img id="img-{i}" data-image="{esc(rep.name)}">',
           f"<h2>{esc(rep.name)}</h2>", _banner(view), "<dl class=meta>"]
    out += [f"<dt>{k}</dt><dd>{esc(v)}</dd>" for k, v in meta]
    out.append("</dl>")
    if rep.errors:
        out.append("<ul class=errors>" + "".join(f"<li><pre>{_lines(e)}</pre></li>" for e in rep.errors)
                   + "</ul>")
    out.append(_counts_table(view))
    out += _causes_section(view, index, linkage_known)
    for group, title in GROUPS:
        aspects = view.groups.get(group)
        if not aspects:
            continue
        count = sum(len(v) for v in aspects.values())
        group_open = group != "info" and count <= OPEN_LIMIT
        out.append(f'<details class="grp {group}" data-g data-v={group}{" open" if group_open else ""}>'
                   + _summary(title, count))
        if group == "break":
            kinds = sorted({c.kind for cs in aspects.values() for c in cs if c.kind in WHY})
            out.append("<ul class=why>" + "".join(f"<li><b>{esc(k)}</b>: {esc(WHY[k])}</li>"
                                                  for k in kinds) + "</ul>")
        for aspect in view.aspects:
            changes = aspects.get(aspect)
            if not changes:
                continue
            sub_open = " open" if len(changes) <= OPEN_LIMIT else ""
            out.append(f'<details class=asp data-g data-a="{esc(aspect)}"{sub_open}>'
                       + _summary(esc(aspect), len(changes), _kinds(changes)))
            if aspect in PATH_ASPECTS and any(package_of(c) for c in changes):
                out += _package_groups(changes, index, linkage_known, group != "info", packages)
            else:
                out += _table([_row(c, index, linkage_known) for c in changes])
            out.append("</details>")
        out.append("</details>")
    out.append(_sizes_section(view.changes))
    out.append("</section>")
    return "\n".join(out)


def _causes_section(view: _View, index: ConsumerIndex, linkage_known: bool) -> list[str]:
    """Each root cause that explains other changes, folded, with its verdict, why it matters,
    its changes counted by kind and the consumers it breaks; its changes inside, the cause
    itself first."""
    if not view.causes:
        return []
    out = [f"<h3 class=causes>Root causes: {esc(view.headline)}</h3>"]
    order = {g: i for i, (g, _) in enumerate(GROUPS)}
    for g in view.causes:
        group = "waived" if g.verdict == "waived" else g.verdict
        rows = sorted(g.changes, key=lambda c: (c is not g.root, order[group_of(c)], c.kind, c.subject))
        label = group if group not in ("break", "review") else f"{group} {g.count(group):,}"
        consumers = g.consumers
        used = (f" <span class=k>breaks {len(consumers):,} consumer{'s' if len(consumers) != 1 else ''}"
                f"</span>" if consumers else "")
        extra = (f" <span class=k>{esc(kinds_text(g.by_kind(), 4))}</span>{used}")
        title = (f'<span class="v {esc(group)}">{esc(label)}</span> {esc(g.kind)} '
                 f"<span class=s>{esc(g.subject)}</span>")
        # data-c names the cause (data-p would make the filter match every row under it)
        out.append(f'<details class="cause {esc(group)}" data-g data-v={esc(group)} '
                   f'data-c="{esc(g.subject)}">' + _summary(title, len(g.changes), extra))
        why = g.why
        if g.waiver_reason:
            why = f"waived: {g.waiver_reason}" + (f"; {why}" if why else "")
        if why:
            out.append(f"<p class=why>{esc(why)}</p>")
        out += _table([_row(c, index, linkage_known) for c in rows])
        out.append("</details>")
    return out


def _sizes_section(changes: list[Change]) -> str:
    sizes = package_sizes(changes)
    if not sizes:
        return ("<p class=nosize>Size change per package: the changes of this report carry no "
                "package or file sizes.</p>")
    rows = []
    for e in sizes:
        before, after = (human_size(v) if v is not None else "-" for v in (e.before, e.after))
        if e.files:  # only the sum of the owned files' changes is known
            before = after = ""
        source = f"{e.source} ({e.files:,} files)" if e.files else e.source
        trend = "up" if e.delta > 0 else "down" if e.delta < 0 else ""
        rows.append(f'<tr class=c data-p="{esc(e.name)}"><td>{esc(e.name)}</td>'
                    f"<td class=num>{before}</td><td class=num>{after}</td>"
                    f'<td class="num {trend}">{_signed(e.delta)}</td><td>{esc(source)}</td></tr>')
    total = sum(e.delta for e in sizes)
    is_open = " open" if len(sizes) <= 50 else ""
    return (f"<details class=sizes data-g{is_open}>"
            + _summary("Size change per package", len(sizes),
                       f" <span class=k>net {_signed(total)}</span>")
            + "<table class=sz><thead><tr><th>package</th><th>before</th><th>after</th><th>change"
            "</th><th>from</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></details>")


def _overview(views: list[_View]) -> str:
    out = ["<table class=overview><thead><tr><th>image</th><th>arch</th><th>verdict</th>"
           + "".join(f"<th>{g}</th>" for g, _ in GROUPS) + "</tr></thead><tbody>"]
    for i, view in enumerate(views):
        rep, n = view.rep, view.counts
        out.append(f'<tr><td><a href="#img-{i}">{esc(rep.name)}</a></td><td>{esc(rep.arch or "?")}</td>'
                   f'<td class="r {esc(rep.verdict)}">{esc(rep.verdict)}</td>'
                   + "".join(f"<td class=num>{n[g]:,}</td>" for g, _ in GROUPS) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _filters(views: list[_View]) -> str:
    aspects: list[str] = []
    for view in views:
        aspects += [a for a in view.aspects if a not in aspects]
    verdicts = "".join(f'<label><input type=checkbox name=v value={g} checked> {g}</label>'
                       for g, _ in GROUPS)
    boxes = "".join(f'<label><input type=checkbox name=a value="{esc(a)}" checked> {esc(a)}</label>'
                    for a in aspects)
    return ("<div class=bar role=search><input id=q type=search autocomplete=off spellcheck=false "
            'placeholder="filter: path, package, kind, symbol… (words are ANDed)" aria-label=filter>'
            f"<span class=f>{verdicts}</span><span class=f>{boxes}</span>"
            "<span id=shown aria-live=polite></span></div>")


def to_html(reports: list[ImageReport], title: str = "Compatibility gate") -> str:
    """The whole report as one HTML document (inline CSS and script, nothing fetched)."""
    worst = ("error" if any(r.verdict == "error" for r in reports)
             else "fail" if any(r.verdict == "fail" for r in reports) else "pass")
    views = [_View.of(rep) for rep in reports]
    body = [_overview(views), _filters(views)]
    body += [_image_section(i, view) for i, view in enumerate(views)]
    if not reports:
        body.append("<p>No image was gated.</p>")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<meta http-equiv=Content-Security-Policy content=\"{CSP}\">"
            f"<title>{esc(title)}: {worst}</title><style>{_CSS}</style></head><body>"
            f"<h1>{esc(title)}: <span class=\"r {worst}\">{worst}</span></h1>"
            "<noscript><p>Filtering needs the script; every change is listed below.</p></noscript>\n"
            + "\n".join(body) + f"\n<script>{_JS}</script></body></html>\n")


_CSS = """
:root{--fg:#1b1f24;--bg:#fff;--mut:#59636e;--line:#d1d9e0;--brk:#cf222e;--rev:#9a6700;
--inf:#0969da;--wav:#6e7781;--ok:#1a7f37;--err:#bc4c00}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mut:#9198a1;--line:#3d444d;
--brk:#ff7b72;--rev:#d29922;--inf:#58a6ff;--wav:#8b949e;--ok:#3fb950;--err:#f0883e}}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 1.5rem 4rem}
h1{font-size:1.5rem;margin:1rem 0 .5rem}h2{margin:2rem 0 .4rem;font-size:1.25rem}
table{border-collapse:collapse;margin:.4rem 0}th,td{border:1px solid var(--line);padding:2px 6px;
text-align:left;vertical-align:top}th{background:color-mix(in srgb,var(--line) 35%,transparent)}
.num{text-align:right;font-variant-numeric:tabular-nums}
table.ch{width:100%;table-layout:fixed;margin:0}
.cv,details.asp[open],details.pkg[open]{content-visibility:auto;contain-intrinsic-size:auto 400px}table.ch td{overflow-wrap:anywhere}
table.ch tr>:nth-child(1){width:7em}table.ch tr>:nth-child(2){width:12em}
table.ch tr>:nth-child(3){width:30%}
.s,td.s{font-family:ui-monospace,monospace;font-size:13px}
.r.pass,.banner.pass{color:var(--ok)}.r.fail,.banner.fail{color:var(--brk)}
.r.error,.banner.error{color:var(--err)}
.banner{border:2px solid currentColor;border-radius:6px;padding:.5rem .8rem;margin:.4rem 0;
display:flex;gap:1rem;flex-wrap:wrap}.banner span{color:var(--mut)}
td.break,.grp.break>summary{color:var(--brk)}td.review,.grp.review>summary{color:var(--rev)}
td.info,.grp.info>summary{color:var(--inf)}td.waived,.grp.waived>summary{color:var(--wav)}
td.v{font-weight:600}td.num.break{font-weight:700}
details{margin:.3rem 0}details>summary{cursor:pointer;font-weight:600}
details.grp{border-left:4px solid var(--line);padding-left:.6rem}
details.grp.break{border-color:var(--brk)}details.grp.review{border-color:var(--rev)}
details.asp,details.pkg{margin-left:.8rem}details.asp>summary,details.pkg>summary{font-weight:500}
.n{display:inline-block;min-width:2em;padding:0 .4em;border-radius:1em;text-align:center;
background:color-mix(in srgb,var(--line) 60%,transparent);font-size:12px}
.k{color:var(--mut);font-weight:400;font-size:12px;margin-left:.5em}
.kf{font:inherit;color:inherit;background:none;border:1px solid var(--line);border-radius:1em;
padding:0 .5em;margin-right:.3em;cursor:pointer}.kf:hover{color:var(--fg)}
details.use{display:inline}details.use ul{margin:0;padding-left:1.2em;font-family:ui-monospace,monospace;font-size:12px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:0 1rem;margin:.3rem 0}
dl.meta dt{color:var(--mut)}dl.meta dd{margin:0;font-family:ui-monospace,monospace;overflow-wrap:anywhere}
ul.errors pre{white-space:pre-wrap;margin:0;color:var(--err)}ul.why{color:var(--mut);margin:.2rem 0}
.bar{position:sticky;top:0;z-index:2;background:var(--bg);padding:.5rem 0;border-bottom:1px solid var(--line);
display:flex;gap:1rem;flex-wrap:wrap;align-items:center}
#q{flex:1 1 22rem;font:inherit;padding:.3rem .5rem}.f label{margin-right:.6rem;white-space:nowrap}
details.cause{border-left:4px solid var(--line);padding-left:.6rem;content-visibility:auto;
contain-intrinsic-size:auto 28px}details.cause.break{border-color:var(--brk)}
details.cause.review{border-color:var(--rev)}details.cause>summary{font-weight:500}
span.v.break{color:var(--brk);font-weight:600}span.v.review{color:var(--rev);font-weight:600}
span.v.waived{color:var(--wav)}p.why{color:var(--mut);margin:.2rem 0}h3.causes{margin:.8rem 0 .3rem}
#shown{color:var(--mut)}.up{color:var(--brk)}.down{color:var(--ok)}.nosize{color:var(--mut)}
"""

_JS_SOURCE = r"""
"use strict";
(() => {
  const q = document.getElementById("q"), shown = document.getElementById("shown");
  const groups = Array.from(document.querySelectorAll("[data-g]"));
  let rows = null, texts = null, owners = null, timer = 0, last = "";
  const api = window.harnessReport = {ready: 0, lastFilter: null, filter: apply};

  // Index once: each row's lowercased text (with its package) and the groups it sits in.
  function index() {
    if (rows) return;
    const gid = new Map(groups.map((g, i) => [g, i]));
    rows = Array.from(document.querySelectorAll("tr.c"));
    texts = new Array(rows.length); owners = new Array(rows.length);
    rows.forEach((r, i) => {
      const own = [];
      let pkg = r.dataset.p || "";
      for (let g = r.closest("[data-g]"); g; g = g.parentElement.closest("[data-g]")) {
        own.push(gid.get(g));
        if (g.dataset.p) pkg += " " + g.dataset.p;
      }
      owners[i] = own;
      texts[i] = (r.textContent + " " + pkg).toLowerCase();
    });
  }

  function checked(name) {
    return new Set(Array.from(document.querySelectorAll(`input[name=${name}]:checked`), b => b.value));
  }

  function apply(text) {
    const t0 = performance.now();
    index();
    const words = (text === undefined ? q.value : text).toLowerCase().split(/\s+/).filter(Boolean);
    const verdicts = checked("v"), aspects = checked("a");
    const hits = new Int32Array(groups.length);
    let total = 0;
    for (let i = 0; i < rows.length; i++) {
      const s = texts[i];
      let ok = true;
      for (const w of words) { if (!s.includes(w)) { ok = false; break; } }
      if (rows[i].hidden === ok) rows[i].hidden = !ok;
      if (ok) for (const g of owners[i]) hits[g]++;
    }
    groups.forEach((g, i) => {
      const off = (g.dataset.v && !verdicts.has(g.dataset.v)) || (g.dataset.a && !aspects.has(g.dataset.a));
      const n = g.querySelector(":scope>summary>.n");
      const all = n ? +n.dataset.total : 0;
      if (n) n.textContent = words.length ? `${hits[i].toLocaleString()} of ${all.toLocaleString()}` : all.toLocaleString();
      const hide = off || (words.length > 0 && hits[i] === 0);
      if (g.hidden !== hide) g.hidden = hide;
      size(g, words.length ? hits[i] : all || +g.dataset.n);
      if (!hide && g.dataset.v) total += hits[i];
    });
    // matches in folded sections are shown (up to a bounded number of rows); the sections
    // opened for a filter fold again when it is cleared
    const many = total > OPEN_LIMIT;
    groups.forEach((g, i) => {
      if (g.tagName !== "DETAILS") return;
      if (words.length && !many && hits[i] > 0 && !g.open) { g.open = true; g.dataset.auto = "1"; }
      else if (!words.length && g.dataset.auto) { g.open = false; delete g.dataset.auto; }
    });
    shown.textContent = `${total.toLocaleString()} ` + (!words.length ? "changes" :
      total === 1 ? "change matches" : "changes match");
    api.lastFilter = {ms: performance.now() - t0, words: words.length, matched: total, at: performance.now()};
    return total;
  }

  // The height a section takes while off screen (it is not laid out): rows x row height.
  function size(g, n) {
    if (g.classList.contains("grp") || g.classList.contains("sizes")) return;
    const px = `auto ${n * 23 + 28}px`;
    if (g.style.containIntrinsicSize !== px) g.style.containIntrinsicSize = px;
  }
  groups.forEach(g => { const n = g.querySelector(":scope>summary>.n"); size(g, n ? +n.dataset.total : +g.dataset.n); });

  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { if (q.value !== last) { last = q.value; apply(); } }, 150);
  });
  q.addEventListener("keydown", e => { if (e.key === "Enter") { clearTimeout(timer); last = q.value; apply(); } });
  document.querySelectorAll("input[type=checkbox]").forEach(b => b.addEventListener("change", () => apply()));
  document.addEventListener("click", e => {
    const b = e.target.closest("button.kf");
    if (!b) return;
    e.preventDefault();  // a button in a summary would fold its section
    q.value = last = b.dataset.q; apply(); q.focus();
  });
  api.ready = performance.now();
  (window.requestIdleCallback || setTimeout)(index);
})();
"""

_JS = _JS_SOURCE.replace("OPEN_LIMIT", str(OPEN_LIMIT))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: nothing may be fetched, and only this module's own style and script run: even a markup
#: injection that escaped `esc` could neither load nor execute anything
CSP = f"default-src 'none'; style-src {_sha256(_CSS)}; script-src {_sha256(_JS)}"
