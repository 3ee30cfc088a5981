"""The per-shard JUnit file: every binary's suite, and a clear error for a binary whose runner
wrote nothing (killed mid-shard) or wrote something unreadable."""

import xml.etree.ElementTree as ET

from crossbuild.junit import BinaryReport, merge_reports

RUNNER_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="bin/a_test" tests="2" failures="1" errors="0" skipped="0" time="0.010">
    <testcase classname="bin/a_test" name="ok" time="0.001000"/>
    <testcase classname="bin/a_test" name="bad" time="0.002000">
      <failure message="exit status 1" type="fail">line one
  indented line two</failure>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_suites_of_every_binary_in_order_and_missing_results_are_errors():
    merged = merge_reports(
        "shard-2-of-4",
        [
            BinaryReport("bin/a_test", RUNNER_XML),
            BinaryReport("bin/b_test", None, "exit status 143\nshard_runner: stopped by signal 15"),
            BinaryReport("bin/c_test", b"<testsuites><testsuite"),
        ],
    )
    root = ET.fromstring(merged)
    assert root.get("name") == "shard-2-of-4"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["bin/a_test", "bin/b_test", "bin/c_test"]
    failure = suites[0].find("testcase[@name='bad']/failure")
    assert failure.text == "line one\n  indented line two", "the captured output is kept as it was"
    error = suites[1].find("testcase/error")
    assert error.get("message") == "the shard runner wrote no results"
    assert "stopped by signal 15" in error.text and suites[1].get("errors") == "1"
    assert suites[2].find("testcase/error").get("message").startswith("the shard runner wrote invalid XML")
    assert merged.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
