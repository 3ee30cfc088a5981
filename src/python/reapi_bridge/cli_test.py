"""Bad executor flags are refused before anything starts, naming the flag."""

import pytest

from reapi_bridge.cli import main


@pytest.mark.parametrize(
    "flag",
    ["--concurrency=0", "--max-workers=0", "--max-workers-per-key=0", "--worker-idle-timeout=0", "--worker-rss-limit-mib=0"],
)
def test_executor_refuses_flags_below_their_minimum(flag, capsys):
    assert main(["executor", "--bridge", "grpc://127.0.0.1:1", "--isa", "x86-64", flag]) == 2
    name = flag.split("=")[0]
    assert f"reapi-bridge executor: {name} must be at least 1" in capsys.readouterr().err


def test_executor_refuses_a_property_without_a_value(capsys):
    assert main(["executor", "--bridge", "grpc://127.0.0.1:1", "--isa", "x86-64", "--property", "ISA"]) == 2
    assert "--property 'ISA' is not KEY=VALUE" in capsys.readouterr().err
