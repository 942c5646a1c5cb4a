"""Runtime suites: candidates are started hardened, probes catch planted runtime breaks, and
no container outlives the run."""

from __future__ import annotations

import os


import testimages
from harness import runtime
from harness.source.engine import RUN_LABEL
from testimages import tiny



def test_started_candidate_has_no_network_and_no_capabilities(docker_engine, tiny_images) -> None:
    info = docker_engine.find_or_pull(tiny_images["tiny-base"])
    container = runtime.start(docker_engine, info.image_id, "test-hardening")
    try:
        attrs = container.attrs()["HostConfig"]
        assert attrs["NetworkMode"] == "none"
        assert attrs["CapDrop"] == ["ALL"] and not attrs["CapAdd"]
        assert "no-new-privileges:true" in attrs["SecurityOpt"]
        assert attrs["ReadonlyRootfs"] is True and container.read_only
        assert attrs["PidsLimit"] == 256 and attrs["Memory"] == 1 << 30
        assert not attrs["Binds"] and not attrs["Privileged"]
        host = container.host
        # inside: no capability at all, and no interface but loopback
        caps = host.run("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status").stdout.split()
        assert caps[1::2] == ["0000000000000000"] * 3, caps
        assert host.run("ls /sys/class/net").stdout.split() == ["lo"]
        assert host.run("echo x > /etc/probe").rc != 0, "the root filesystem must be read-only"
        assert host.run("echo x > /tmp/probe").rc == 0, "/tmp is a writable tmpfs"
    finally:
        container.stop()
    assert not docker_engine.client.api.containers(all=True, filters={"id": container.id})


def test_busybox_applet_removed_fails_runtime_suite(runtime_suite, tiny_images, docker_engine, tmp_path) -> None:
    removed = testimages.build(tiny.APPLET_REMOVED)
    base = tiny_images["tiny-base"]
    record = runtime_suite(base, tmp_path, "--update-baselines")
    record.assert_outcomes(passed=3, skipped=11)
    assert (tmp_path / "img/x86_64/probes.busybox.json").exists()
    again = runtime_suite(tiny_images["tiny-rebuild"], tmp_path)
    again.assert_outcomes(passed=3, skipped=11)
    broken = runtime_suite(removed, tmp_path, "-n", "2")
    broken.assert_outcomes(passed=2, failed=1, skipped=11)
    broken.stdout.fnmatch_lines(["*probes.busybox: 1 unwaived break*",
                                 "*probe-item-removed*ls*"])
    run_id = os.environ["HARNESS_RUN_ID"]
    left = docker_engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == [], "every container of a run is removed at its end"
