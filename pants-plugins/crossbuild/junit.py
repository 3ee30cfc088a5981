"""One JUnit XML file per shard target from the shard runner's per-binary files.

Each test binary of a shard runs in its own action (so its result is cached on its own) and
writes a `<testsuites>` with one `<testsuite>` named after the binary. A shard's report holds
all of them, in binary order, under one `<testsuites>`. A binary whose runner wrote no XML
(killed, or it could not start) becomes a suite with one `<error>` testcase saying so, so a
report never silently lacks a binary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class BinaryReport:
    binary: str  # path in the archive, e.g. bin/foo_test
    xml: Optional[bytes]  # what the runner wrote, if anything
    problem: str = ""  # why there is no XML (exit status, stderr), when xml is None


def _error_suite(binary: str, message: str, detail: str) -> ET.Element:
    suite = ET.Element(
        "testsuite", name=binary, tests="1", failures="0", errors="1", skipped="0", time="0.000"
    )
    case = ET.SubElement(suite, "testcase", classname=binary, name="shard_runner", time="0.000")
    error = ET.SubElement(case, "error", message=message, type="runner")
    error.text = detail
    return suite


def merge_reports(shard: str, reports: Sequence[BinaryReport]) -> bytes:
    root = ET.Element("testsuites", name=shard)
    for report in reports:
        suites = []
        if report.xml is not None:
            try:
                parsed = ET.fromstring(report.xml)
                suites = [parsed] if parsed.tag == "testsuite" else list(parsed.findall("testsuite"))
            except ET.ParseError as exc:
                suites = [_error_suite(report.binary, f"the shard runner wrote invalid XML: {exc}", "")]
        else:
            suites = [_error_suite(report.binary, "the shard runner wrote no results", report.problem)]
        root.extend(suites)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"
