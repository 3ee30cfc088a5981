"""What `dist/reapi-bridge.pex` ships: the bridge's own modules, never a test or a harness."""

import zipfile
from pathlib import Path

PEX = Path("reapi-bridge.pex")


def shipped_modules():
    assert PEX.is_file(), "the reapi-bridge.pex runtime package is missing from the sandbox"
    with zipfile.ZipFile(PEX) as pex:
        names = pex.namelist()
    # The pex's own sources sit at the top level; its dependencies under .deps/ (pex's layout).
    return sorted(n for n in names if n.endswith(".py") and n.split("/")[0].startswith("reapi_bridge"))


def test_pex_holds_no_test_or_harness():
    modules = shipped_modules()
    offenders = [
        m
        for m in modules
        if m.startswith("reapi_bridge_testing/")
        or m.endswith("_test.py")
        or m.endswith("/conftest.py")
    ]
    assert offenders == [], f"test code in the pex: {offenders}"


def test_pex_holds_every_concern():
    modules = set(shipped_modules())
    for expected in [
        "reapi_bridge/cli.py",
        "reapi_bridge/server.py",
        "reapi_bridge/common/digests.py",
        "reapi_bridge/cas/store.py",
        "reapi_bridge/actioncache/store.py",
        "reapi_bridge/execution/service.py",
        "reapi_bridge/scheduler/scheduler.py",
        "reapi_bridge/bots/service.py",
        "reapi_bridge/status/service.py",
        "reapi_bridge/client/client.py",
        "reapi_bridge/executor/main.py",
        "reapi_bridge/protos/build/bazel/remote/execution/v2/remote_execution_pb2.py",
    ]:
        assert expected in modules, f"{expected} is missing from the pex ({len(modules)} modules)"
