"""The zig pins: the plugin's [zig] defaults and third_party/ziglang-requirements.txt agree, and
fetch_zig (with mocked engine calls) asks Pex for exactly the pinned wheel, on this machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pants.backend.python.target_types import PexLayout
from pants.backend.python.util_rules.pex import Pex, PexRequest
from pants.core.util_rules.environments import EnvironmentNameRequest
from pants.engine.environment import LOCAL_ENVIRONMENT_MATCHER, EnvironmentName
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, DigestSubset, RemovePrefix, Snapshot
from pants.engine.platform import Platform
from pants.testutil.option_util import create_subsystem
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from crossbuild.subsystems.zig import PEX_PLATFORMS, ZigSubsystem
from crossbuild.toolchain import fetch_zig, ziglang_requirement

REQUIREMENTS = Path("third_party/ziglang-requirements.txt")
DEFAULT_VERSION = ZigSubsystem.version.flag_options["default"]
DEFAULT_PINS = ZigSubsystem.known_versions.flag_options["default"]


def zig_subsystem(**options) -> ZigSubsystem:
    return create_subsystem(ZigSubsystem, **{"version": DEFAULT_VERSION, "known_versions": DEFAULT_PINS, **options})


def test_ziglang_requirements_pin_the_same_version_and_wheels_as_the_plugin():
    text = REQUIREMENTS.read_text()
    (version,) = re.findall(r"^ziglang==(\S+)", text, re.MULTILINE)
    hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", text))
    assert version == DEFAULT_VERSION
    zig = zig_subsystem()
    assert hashes == {zig.wheel_for(platform)[0] for platform in PEX_PLATFORMS}
    assert hashes == {entry.split("|")[2] for entry in DEFAULT_PINS if entry.startswith(f"{version}|")}


def test_every_default_pin_is_for_a_platform_the_rule_can_fetch_for():
    for entry in DEFAULT_PINS:
        version, platform, sha256, size = entry.split("|")
        assert platform in PEX_PLATFORMS and re.fullmatch(r"[0-9a-f]{64}", sha256) and int(size) > 0


def test_a_pin_with_a_url_is_refused_with_a_pointer_to_python_repos():
    zig = zig_subsystem(known_versions=[f"{DEFAULT_VERSION}|linux_x86_64|{'0' * 64}|1|file:///mirror/z.whl"])
    with pytest.raises(ValueError, match=r"VERSION\|PLATFORM\|SHA256\|SIZE.*python-repos"):
        zig.wheel_for("linux_x86_64")


def test_a_platform_without_a_pin_is_refused():
    with pytest.raises(ValueError, match="no ziglang 9.9.9 wheel for linux_arm64"):
        zig_subsystem(version="9.9.9").wheel_for("linux_arm64")


@pytest.mark.parametrize("platform", [Platform.linux_x86_64, Platform.linux_arm64])
def test_fetch_zig_installs_only_the_pinned_wheel_for_the_compiling_platform_on_this_machine(platform):
    zig = zig_subsystem()
    sha256, _ = zig.wheel_for(platform.value)
    seen = {}
    wheel_dir = f"ziglang.pex/.deps/ziglang-{DEFAULT_VERSION}-py3-none-some_platform.whl"

    def create_digest(request: CreateDigest) -> Digest:
        (entry,) = request
        seen["requirements"] = (entry.path, entry.content.decode())
        return EMPTY_DIGEST

    def environment(request: EnvironmentNameRequest) -> EnvironmentName:
        seen["environment"] = request.raw_value
        return EnvironmentName("local")

    def pex(request: PexRequest, env: EnvironmentName) -> Pex:
        seen["pex"], seen["pex_env"] = request, env
        return Pex(EMPTY_DIGEST, request.output_filename, None)

    def subset(request: DigestSubset):
        seen.setdefault("globs", []).append(request.globs.globs)
        return request

    def snapshot(request: DigestSubset) -> Snapshot:
        subset(request)
        return Snapshot.create_for_testing([f"{wheel_dir}/ziglang/zig"], [])

    def digest_subset(request: DigestSubset) -> Digest:
        subset(request)
        return EMPTY_DIGEST

    def remove_prefix(request: RemovePrefix) -> Digest:
        seen["prefix"] = request
        return EMPTY_DIGEST

    toolchain = run_rule_with_mocks(
        fetch_zig,
        rule_args=[zig, platform],
        mock_gets=[
            MockGet(output_type=Digest, input_types=(CreateDigest,), mock=create_digest),
            MockGet(output_type=EnvironmentName, input_types=(EnvironmentNameRequest,), mock=environment),
            MockGet(output_type=Pex, input_types=(PexRequest, EnvironmentName), mock=pex),
            MockGet(output_type=Snapshot, input_types=(DigestSubset,), mock=snapshot),
            MockGet(output_type=Digest, input_types=(DigestSubset,), mock=digest_subset),
            MockGet(output_type=Digest, input_types=(RemovePrefix,), mock=remove_prefix),
        ],
    )
    assert toolchain.env["CROSSBUILD_ZIG"] == f"{DEFAULT_VERSION}@{sha256}"
    path, line = seen["requirements"]
    assert line == ziglang_requirement(DEFAULT_VERSION, sha256) == f"ziglang=={DEFAULT_VERSION} --hash=sha256:{sha256}\n"
    request = seen["pex"]
    assert request.layout == PexLayout.LOOSE
    assert tuple(request.platforms) == (PEX_PLATFORMS[platform.value],)
    assert request.additional_args == ("--requirement", path, "--no-transitive")
    assert not tuple(request.requirements.req_strings_or_addrs)
    # Resolved on this machine whatever environment the compiles run in.
    assert seen["environment"] == LOCAL_ENVIRONMENT_MATCHER and seen["pex_env"] == EnvironmentName("local")
    assert seen["prefix"] == RemovePrefix(EMPTY_DIGEST, wheel_dir)
    assert {f"{wheel_dir}/ziglang/**", f"!{wheel_dir}/ziglang/**/__pycache__/**"} in [set(g) for g in seen["globs"]]
