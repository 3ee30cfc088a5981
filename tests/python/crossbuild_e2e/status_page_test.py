"""The status page in a real browser while the embedded cluster builds and tests a small C
project: compiles and links on the x86-64 executor, three ARM64 shards on the ARM64 executor.
Debian's headless chromium loads the page (`up` serves it on its HTTP port); the timeline has
one lane per executor slot, x86-64 lanes holding the x86-64 executions and ARM64 lanes the
shards, with the counts the JSON API gives. A screenshot goes to dist/screenshots (CI keeps it).
"""

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from crossbuild_e2e.archive_shards_test import LIB_C, LIB_H, PLUGIN_ROOT, source_of_test
from pants_project import Cluster, open_temp_dir, remote_flags, run_pants, write_pants_project

CHROMIUM = shutil.which("chromium")
if os.environ.get("CROSSBUILD_REQUIRE_CHROMIUM") == "1" and CHROMIUM is None:
    raise RuntimeError("CROSSBUILD_REQUIRE_CHROMIUM=1 but no chromium: run .ci/install-deps")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (install Debian's chromium)")


def write_project(root: Path) -> None:
    files = {"proj/mylib/lib.h": LIB_H, "proj/mylib/lib.c": LIB_C}
    for name, n in (("alpha", 4), ("beta", 3)):
        files[f"proj/tests/{name}_test.c"] = source_of_test(name, n)
    files["proj/BUILD"] = textwrap.dedent(
        """\
        cc_sources(name="lib", sources=["mylib/*.c", "mylib/*.h"])
        crossbuild_test_archive(
            name="tests-arm64", sources=["tests/*_test.c"], dependencies=[":lib"],
            include_dirs=["proj"], platform="linux_arm64", environment="linux_x86_64",
        )
        crossbuild_sharded_tests(name="arm64", archive=":tests-arm64", shards=3, environment="linux_arm64")
        """
    )
    write_pants_project(
        root,
        backends=["pants.backend.experimental.cc", "crossbuild"],
        plugin_root=PLUGIN_ROOT,
        environments=["linux_x86_64", "linux_arm64"],
        sections='[source]\nroot_patterns = ["/"]\n',
        files=files,
    )


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lanes, self.executors, self.body = {}, set(), {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "div" and a.get("class") == "lane":
            self.lanes[a["data-lane"]] = (a["data-isa"], int(a["data-bars"]))
        elif tag == "tr" and "data-executor" in a:
            self.executors.add(a["data-executor"])


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--window-size=1400,900", "--virtual-time-budget=8000", *args],
            capture_output=True, text=True, timeout=180,
        )


@pytest.fixture
def cluster():
    c = Cluster(open_temp_dir("crossbuild-page-cluster-"), concurrency=2)
    yield c
    c.down()


def test_the_page_shows_x86_64_and_arm64_lanes_with_the_right_counts(cluster, tmp_path):
    address = cluster.up()
    http = json.loads((cluster.state / "cluster.json").read_text())["http_address"]
    assert http.startswith("http://127.0.0.1:")
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    result = run_pants(project, tmp_path / "store", *remote_flags(address), "test", "proj::")
    assert result.returncode == 0, result.stderr[-5000:]

    with urllib.request.urlopen(f"{http}/api/actions?since=0", timeout=30) as response:
        actions = [a for a in json.loads(response.read())["actions"] if not a["cached"]]
    expected = {}
    for a in actions:
        expected.setdefault(a["executor"], [a["isa"], 0])[1] += 1
    by_isa = {isa: sum(n for i, n in expected.values() if i == isa) for isa in ("x86-64", "arm-a64")}
    assert by_isa["x86-64"] >= 5, by_isa  # 3 compiles of the library and tests, links, the archive's runner
    assert by_isa["arm-a64"] >= 6, by_isa  # 3 shards x 2 binaries

    dom = chromium("--dump-dom", f"{http}/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Page()
    page.feed(dom.stdout)
    assert page.body.get("data-loaded") == "1", dom.stdout[:3000]
    assert page.executors == {"local-x86-64", "local-arm-a64"}
    drawn = {lane: [isa, bars] for lane, (isa, bars) in page.lanes.items() if lane != "cache hits"}
    assert drawn == expected
    assert all(lane.startswith("local-x86-64/") for lane, (isa, _) in drawn.items() if isa == "x86-64")
    assert all(lane.startswith("local-arm-a64/") for lane, (isa, _) in drawn.items() if isa == "arm-a64")

    shots = Path(os.environ.get("CROSSBUILD_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "status-page.png"
    made = chromium(f"--screenshot={shot}", f"{http}/")
    assert made.returncode == 0 and shot.stat().st_size > 10000, made.stderr[-2000:]
