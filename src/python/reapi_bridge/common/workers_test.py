"""Which actions are worker actions, and the keys derived for them."""

import pytest

from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.workers import (
    flagfile_of,
    matching_properties,
    tool_inputs_in,
    worker_spec,
)
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

TOOL = "a" * 64
OTHER_TOOL = "b" * 64


def command(argv, env=None, working_directory=""):
    return re_pb2.Command(
        arguments=argv,
        environment_variables=[re_pb2.Command.EnvironmentVariable(name=k, value=v) for k, v in sorted((env or {}).items())],
        working_directory=working_directory,
    )


def file_node(hash_, tool=False):
    node = re_pb2.FileNode(name="x", digest=re_pb2.Digest(hash=hash_, size_bytes=1))
    if tool:
        node.node_properties.properties.add(name="bazel_tool_input", value="")
    return node


def no_tools(startup):
    return ()


def test_flagfile_rules():
    assert flagfile_of(["tool", "@args"]) == "args"
    assert flagfile_of(["tool", "@@literal"]) is None
    assert flagfile_of(["@args"]) is None  # nothing to start
    assert flagfile_of(["tool", "@"]) is None
    assert flagfile_of(["tool", "plain"]) is None


def test_only_actions_with_a_worker_hint_and_a_flagfile_are_worker_actions():
    cmd = command(["gcc", "@response-file"])
    assert worker_spec(cmd, {"ISA": "x86-64"}, no_tools) is None  # a response file, not a worker
    assert worker_spec(command(["tool", "plain"]), {"persistentWorkerProtocol": "json"}, no_tools) is None
    spec = worker_spec(command(["tool", "--x", "@f"]), {"persistentWorkerProtocol": "json"}, no_tools)
    assert spec.protocol == "json" and spec.startup_args == ("tool", "--x") and spec.flagfile == "f"
    assert not spec.multiplex and not spec.key_given and len(spec.key) == 64


def test_a_given_key_is_used_and_proto_is_the_default_protocol():
    spec = worker_spec(command(["tool", "@f"]), {"persistentWorkerKey": "abc"}, no_tools)
    assert spec.key == "abc" and spec.key_given and spec.protocol == "proto"


@pytest.mark.parametrize(
    "props, message",
    [
        ({"persistentWorkerProtocol": "xml"}, "persistentWorkerProtocol='xml'"),
        ({"persistentWorkerProtocol": "proto", "persistentWorkerMultiplex": "maybe"}, "persistentWorkerMultiplex"),
    ],
)
def test_malformed_hints_are_invalid_argument(props, message):
    with pytest.raises(InvalidArgument, match=message):
        worker_spec(command(["tool", "@f"]), props, no_tools)


def test_derived_keys_follow_startup_environment_and_tool_digests():
    props = {"persistentWorkerProtocol": "proto"}

    def key(argv=("tool", "@f"), env=None, tools=((("tool", TOOL)),), wd=""):
        return worker_spec(command(list(argv), env, wd), props, lambda startup: tools).key

    base = key()
    assert key(argv=("tool", "@other-flagfile")) == base  # the request's flag file is not part of it
    assert key(argv=("tool", "--flag", "@f")) != base
    assert key(env={"A": "1"}) != base
    assert key(tools=(("tool", OTHER_TOOL),)) != base
    assert key(wd="sub") != base
    assert worker_spec(command(["tool", "@f"]), {**props, "persistentWorkerMultiplex": "true"}, lambda s: (("tool", TOOL),)).key != base


def test_tool_inputs_are_the_marked_files_else_the_files_startup_arguments_name():
    files = [("bin/tool", file_node(TOOL)), ("lib/script.py", file_node(OTHER_TOOL)), ("data", file_node(TOOL))]
    assert tool_inputs_in(files, ["/usr/bin/python3", "lib/script.py"], "") == (("lib/script.py", OTHER_TOOL),)
    assert tool_inputs_in(files, ["./tool", "--x"], "bin") == (("bin/tool", TOOL),)
    assert tool_inputs_in(files, ["{chroot}/bin/tool"], "elsewhere") == (("bin/tool", TOOL),)
    marked = [("data", file_node(TOOL, tool=True)), *files[:2]]
    assert tool_inputs_in(marked, ["bin/tool"], "") == (("data", TOOL),)


def test_worker_hints_never_take_part_in_matching():
    props = {"ISA": "arm-a64", "persistentWorkerKey": "k", "persistentWorkerProtocol": "json"}
    assert matching_properties(props) == {"ISA": "arm-a64"}
