"""The status page in a real browser (Debian's headless chromium) against a real bridge: 10,000
finished actions drawn in one lane per executor slot, by ISA, with the counts the JSON API
gives; the page's summary and executors table filled in."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest

from reapi_bridge.config import BridgeConfig, ObservabilityConfig, ServerConfig
from reapi_bridge.observability.browser import find_chromium, render
from reapi_bridge.observability.synthetic import SLOTS, fill
from reapi_bridge_testing.bridge import running_bridge

if os.environ.get("CROSSBUILD_REQUIRE_CHROMIUM") == "1" and find_chromium() is None:
    raise RuntimeError("CROSSBUILD_REQUIRE_CHROMIUM=1 but no chromium: run .ci/install-deps")
pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no chromium (install Debian's chromium)")


class Lanes(HTMLParser):
    """The page's lane index: <div class="lane" data-lane data-isa data-bars>, and #lanes' total."""

    def __init__(self) -> None:
        super().__init__()
        self.lanes = {}
        self.total = None
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "div" and a.get("id") == "lanes":
            self.total = int(a.get("data-total", "-1"))
        if tag == "div" and a.get("class") == "lane":
            self.lanes[a["data-lane"]] = (a["data-isa"], int(a["data-bars"]))


def lanes_of(dom: str) -> Lanes:
    parser = Lanes()
    parser.feed(dom)
    return parser


def test_ten_thousand_actions_are_drawn_in_slot_lanes_by_isa(tmp_path):
    config = BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=8),
        observability=ObservabilityConfig(http_listen="127.0.0.1:0"),
    )
    with running_bridge(config) as bridge:
        by_isa = fill(bridge.recorder, 10000)
        dom = render(bridge.http.address + "/", screenshot=tmp_path / "page.png")
    page = lanes_of(dom)
    assert page.body.get("data-loaded") == "1", dom[:2000]
    assert page.total == 10000
    assert {lane: isa for lane, (isa, _) in page.lanes.items()} == {slot: isa for isa, slot in SLOTS}
    drawn = {}
    for isa, bars in page.lanes.values():
        drawn[isa] = drawn.get(isa, 0) + bars
    assert drawn == by_isa == {"x86-64": 5000, "arm-a64": 5000}
    assert float(page.body["data-first-render-ms"]) > 0
    assert re.search(r"0 running, 0 completed", dom)
    assert (tmp_path / "page.png").stat().st_size > 10000
