"""The security commands and settings, as a user meets them: `certs`, `token`, `signing-key`,
and refusals naming the offending setting, flag or file."""

from __future__ import annotations

import pytest
import toml

from reapi_bridge.cli import main
from reapi_bridge.config import ConfigError, parse_config
from reapi_bridge.executor.main import ExecutorOptions, ExecutorSetupError, Executor


def test_certs_token_and_signing_key_commands(tmp_path, capsys):
    assert main(["certs", "--out", str(tmp_path / "tls"), "--host", "localhost", "--client", "ci-runner"]) == 0
    for name in ("ca.pem", "server.pem", "server-key.pem", "ci-runner.pem", "ci-runner-key.pem"):
        assert (tmp_path / "tls" / name).exists(), name
    assert (tmp_path / "tls" / "server-key.pem").stat().st_mode & 0o077 == 0
    capsys.readouterr()
    state = str(tmp_path / "state")
    assert main(["token", "create", "--state-dir", state, "--name", "dev", "--permissions", "reader,cas-write",
                 "--out", str(tmp_path / "dev.token")]) == 0
    assert (tmp_path / "dev.token").read_text().startswith("xb1.")
    assert main(["token", "create", "--state-dir", state, "--name", "bad", "--permissions", "root"]) == 2
    assert "unknown permission 'root'" in capsys.readouterr().err
    assert main(["token", "list", "--state-dir", state]) == 0
    assert "dev" in capsys.readouterr().out
    assert main(["signing-key", "create", "--out", str(tmp_path / "k.pem"), "--executor", "arm"]) == 0
    table = toml.loads(capsys.readouterr().out)
    config = parse_config({"executor_keys": table["executor_keys"], "auth": {"require_signed_results": True}})
    assert config.executor_keys[0].executor == "arm"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"executor_keys": [{"id": "0" * 16, "public_key": "AAAA"}]}, "[[executor_keys]] #1.public_key"),
        ({"auth": {"require_signed_results": True}}, "needs at least one [[executor_keys]]"),
        ({"auth": {"anonymous_permissions": ["everything"]}}, "[auth].anonymous_permissions: unknown permission"),
        ({"identities": [{"name": "ci", "permissions": ["read"], "instances": []}]}, "[[identities]] #1.instances"),
        ({"tls": {"cert_chain": "a.pem"}}, "cert_chain and private_key go together"),
        ({"tls": {"client_ca": "ca.pem"}}, "client certificates need TLS"),
        ({"auth": {"anonymous_permissions": "read"}}, "expected a list of strings"),
    ],
)
def test_bad_security_settings_name_the_setting(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_serve_with_a_missing_certificate_names_the_file(tmp_path, capsys):
    config = tmp_path / "bridge.toml"
    config.write_text(f'[tls]\ncert_chain = "{tmp_path}/nope.pem"\nprivate_key = "{tmp_path}/nope-key.pem"\n')
    code = main(["serve", "--state-dir", str(tmp_path / "s"), "--listen", "127.0.0.1:0", "--config", str(config)])
    assert code == 1
    assert f"TLS private key {tmp_path}/nope-key.pem" in capsys.readouterr().err


def test_executor_with_a_missing_signing_key_names_it(tmp_path):
    with pytest.raises(ExecutorSetupError, match="signing key .*missing.pem"):
        Executor(ExecutorOptions(bridge="grpc://127.0.0.1:1", isa="x86-64", work_dir=tmp_path / "w", run_as=None,
                                 signing_key=tmp_path / "missing.pem"))
