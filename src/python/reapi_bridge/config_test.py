"""The configuration: the generated reference is a valid file of the defaults, and every kind of
bad input is refused with a message naming the setting."""

from pathlib import Path

import pytest
import toml

from reapi_bridge.config import (
    SECTIONS,
    BridgeConfig,
    ConfigError,
    InstanceConfig,
    load_config,
    parse_config,
    reference_toml,
)


def test_reference_is_the_defaults_and_documents_every_setting():
    reference = reference_toml()
    assert parse_config(toml.loads(reference)) == BridgeConfig()
    for name, cls in SECTIONS:
        assert f"[{name}]" in reference
        for setting in cls.__dataclass_fields__:
            assert f"\n{setting} = " in reference, f"[{name}].{setting} is not in the reference"
    assert "[[instances]]" in reference and "allow_client_writes = true" in reference


def test_values_are_read():
    config = parse_config(
        toml.loads(
            '[server]\nlisten = "0.0.0.0:9000"\nstate_dir = "s"\n'
            "[cas]\nmax_bytes = 1000\nupload_expiry_seconds = 5\n"
            "[execution]\nmax_attempts = 2\n"
            '[[instances]]\nname = "ci/main"\nallow_client_writes = false\n'
        )
    )
    assert config.server.listen == "0.0.0.0:9000" and config.server.state_dir == Path("s")
    assert config.cas.max_bytes == 1000 and config.cas.upload_expiry_seconds == 5.0
    assert config.execution.max_attempts == 2
    assert config.instances == (InstanceConfig("ci/main", allow_client_writes=False),)


@pytest.mark.parametrize(
    "text, names",
    [
        ("[cas]\nmax_bytes = 'lots'\n", "[cas].max_bytes: expected int"),
        ("[cas]\nfsync = 1\n", "[cas].fsync: expected bool"),
        ("[execution]\nmax_attempts = true\n", "[execution].max_attempts: expected int"),
        ("[cas]\nmax_bytes = -1\n", "[cas].max_bytes: must not be negative"),
        ("[server]\nmax_workers = 0\n", "[server].max_workers: must be at least 1"),
        ("[server]\nread_chunk_bytes = 0\n", "[server].read_chunk_bytes: must be at least 1"),
        ("[execution]\nmax_attempts = 0\n", "[execution].max_attempts: must be at least 1"),
        ("[server]\nlisten = 'nowhere'\n", "[server].listen: expected host:port"),
        ("[server]\nlisten = 'h:99999'\n", "[server].listen: port"),
        ("[server]\nbogus = 1\n", "[server]: unknown setting(s) bogus"),
        ("[logging]\nlevel = 1\n", "config: unknown setting(s) logging"),
        (
            "[execution]\ndefault_timeout_seconds = 10\nmax_timeout_seconds = 5\n",
            "[execution].default_timeout_seconds: must not exceed max_timeout_seconds",
        ),
        ("instances = []\n", "[[instances]]: expected at least one"),
        ("[[instances]]\nname = 'a/'\n", "[[instances]] #1.name"),
        ("[[instances]]\nname = 'x/blobs'\n", "reserved path segment"),
        ("[[instances]]\nname = 'a'\n[[instances]]\nname = 'a'\n", "[[instances]] #2.name: instance 'a' is configured twice"),
        ("[[instances]]\nname = 'a'\nwrites = true\n", "[[instances]] #1: unknown setting(s) writes"),
    ],
)
def test_bad_input_names_the_setting(text, names):
    with pytest.raises(ConfigError) as exc:
        parse_config(toml.loads(text))
    assert names in str(exc.value)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match=f"{broken} is not valid TOML"):
        load_config(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[cas]\nmax_bytes = 'x'\n")
    with pytest.raises(ConfigError, match=f"{wrong}: \\[cas\\].max_bytes"):
        load_config(wrong)
