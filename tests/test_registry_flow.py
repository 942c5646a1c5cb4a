"""End to end, the release flow of CI: images pushed to a private registry and gated by their
registry reference, so the gate has to pull them (no local tag is left to find).

The registry is Debian's `docker-registry` (distribution), served on 127.0.0.1 only, with its
storage in a temporary folder; the engine talks plain HTTP to it because it treats
127.0.0.0/8 registries as insecure by default.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

REGISTRY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    """A running registry: its `host:port`, its log, and the tags pushed to it."""

    host: str
    log: Path
    client: Any
    pushed: list[str] = field(default_factory=list)

    def push(self, local_tag: str, ref: str) -> str:
        """Tag a local image as `ref` in this registry, push it, and drop the local tag again
        (the gate must pull it). Returns the full reference."""
        full = f"{self.host}/{ref}"
        repo, tag = full.rsplit(":", 1)
        client = self.client
        client.images.get(local_tag).tag(repo, tag)
        for line in client.images.push(repo, tag=tag, stream=True, decode=True):
            assert "error" not in line, f"push of {full} failed: {line}"
        self.pushed.append(full)
        client.images.remove(full)
        return full

    def asked_for(self, path: str) -> bool:
        """True when the registry's access log shows a request of `path` (the engine resolves
        a tag with HEAD, then GETs the manifest by digest)."""
        return f" {path} HTTP/" in self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port with temporary storage; stopped at
    the end, and every tag the test pushed or pulled removed from the engine."""
    if not shutil.which(REGISTRY):
        pytest.fail("docker-registry is not installed (scripts/setup installs it)")
    root = tmp_path_factory.mktemp("registry")
    log = root / "registry.log"
    proc: subprocess.Popen[bytes] | None = None
    host = ""
    for _ in range(3):  # a free port can be taken between the probe and the bind
        host = f"127.0.0.1:{_free_port()}"
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {host}\n  secret: harness-test-only\n")
        with log.open("ab") as out:
            proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline and not _answers(host):
            time.sleep(0.1)
        if proc.poll() is None and _answers(host):
            break
        proc.kill()
        proc.wait()
        proc = None
    if proc is None:
        pytest.fail(f"docker-registry did not come up:\n{log.read_text(errors='replace')[-2000:]}")
    client = docker.from_env()
    try:
        yield Registry(host, log, client)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(host + "/"):
                    client.images.remove(tag)
        client.close()


def _is_local(registry: Registry, ref: str) -> bool:
    try:
        registry.client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_gate_pulls_release_and_candidates_from_a_registry(
        run_gate, tiny_images, registry: Registry, tmp_path: Path) -> None:
    release = registry.push(tiny_images["tiny-base"], "demo:rel")
    broken = registry.push(tiny_images["tiny-purged"], "demo:rc")
    rebuilt = registry.push(tiny_images["tiny-rebuild"], "demo:rc2")
    for ref in (release, broken, rebuilt):
        assert not _is_local(registry, ref), f"{ref} must only be in the registry"
    baselines = tmp_path / "baselines"

    # accept the release from the registry as the baseline
    accept = run_gate({"demo": release}, "--update-baselines", baselines=baselines)
    accept.result.assert_outcomes(passed=5)
    assert registry.asked_for("/v2/demo/manifests/rel"), "the release was not pulled"
    assert _is_local(registry, release), "the gate did not pull the release"
    assert accept.image("demo")["ref"] == release
    assert (baselines / "demo" / "x86_64" / "packages.json").is_file()

    # a candidate with a purged library package is blocked
    md, html = tmp_path / "report.md", tmp_path / "report.html"
    gate = run_gate({"demo": broken}, "--compat-report", str(md), "--compat-report", str(html),
                    baselines=baselines)
    assert gate.result.ret == 1
    assert registry.asked_for("/v2/demo/manifests/rc")
    entry = gate.image("demo")
    assert (entry["ref"], entry["verdict"]) == (broken, "fail")
    kinds = {(c["kind"], c["subject"], c["verdict"]) for c in entry["changes"]}
    assert ("package-removed", "libdemo1", "break") in kinds
    assert ("file-removed", "/usr/lib/libdemo.so.1", "break") in kinds
    assert "| demo | x86_64 | **fail** |" in md.read_text()
    page = html.read_text()
    assert "FAIL: " in page and "libdemo1" in page and broken in page

    # an untouched rebuild, pushed as another candidate tag, passes
    ok = run_gate({"demo": rebuilt}, baselines=baselines)
    ok.result.assert_outcomes(passed=5)
    assert ok.image("demo")["verdict"] == "pass"
    assert registry.asked_for("/v2/demo/manifests/rc2")


def test_missing_candidate_tag_is_an_error_not_a_pass(run_gate, registry: Registry,
                                                      tmp_path: Path) -> None:
    gate = run_gate({"demo": f"{registry.host}/demo:never-pushed"}, baselines=tmp_path / "b")
    assert gate.result.ret == 1
    assert gate.image("demo")["verdict"] == "error"
    gate.result.stdout.fnmatch_lines(["*never-pushed*"])
    assert "Traceback" not in gate.result.stdout.str()
