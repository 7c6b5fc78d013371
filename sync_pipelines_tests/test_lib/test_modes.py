"""Local mode and production mode (lib/modes.py, sync_pipelines/settings.py): production refuses to start without
every setting it needs and names them all at once, never starts an embedded Postgres nor generates a key, never
points a source at the sandbox, and its webhook receiver never verifies with a sandbox demo key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import URL

from sync_pipelines import registry, settings
from sync_pipelines.defs.fub.client import SANDBOX_SYSTEM_KEY
from sync_pipelines.lib import accounts, crypto, db, modes
from sync_pipelines.webhooks_app import ReceiverServer

PRODUCTION_SYSTEM_KEY = "fub-system-key-registered-for-production"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a process on a fresh production host: none of our settings, only what we give."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_"))}
    env.update(extra)
    return env


def _child(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    # Run outside the checkout too: nothing about the refusal depends on where the command is started.
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def _every_setting_name() -> list[str]:
    names = [s.name for s in settings.production_settings()]
    # The list is built from the declarations: every registered integration contributes (none is forgotten).
    for integration in registry.INTEGRATIONS.values():
        assert integration.env_settings, f"{integration.name} declares no production settings (its base URL at least)"
    assert {"SYNC_DATABASE_URL", "SYNC_SECRET_KEY", "SYNC_ERP_DATABASE_URL"} <= set(names)
    return names


def production_env(database_url: URL | None = None) -> dict[str, str]:
    """Every production setting with a value that is not the sandbox's: real-looking hosts, our own secrets."""
    env: dict[str, str] = {}
    for setting in settings.production_settings():
        if setting.url:
            env[setting.name] = f"https://{setting.name.lower().replace('_', '-')}.example.com/api"
        else:
            env[setting.name] = f"production-{setting.name.lower()}"
    env["SYNC_SECRET_KEY"] = Fernet.generate_key().decode()
    env["SYNC_FUB_SYSTEM_KEY"] = PRODUCTION_SYSTEM_KEY
    if database_url is not None:
        env["SYNC_DATABASE_URL"] = db.render_secret_url(db._with_driver(database_url, None))
        env["SYNC_ERP_DATABASE_URL"] = env["SYNC_DATABASE_URL"]
    env[modes.MODE_ENV] = modes.PRODUCTION
    return env


def test_cli_in_production_with_nothing_set_names_every_missing_variable_in_one_line(tmp_path: Path) -> None:
    result = _child(["-m", "sync_pipelines.cli", "status"], _clean_env(SYNC_MODE="production"), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in _every_setting_name():
        assert name in lines[0], f"{name} missing from: {lines[0]}"
    # Nothing was started or generated on the way to the refusal.
    assert not (tmp_path / ".sync_pipelines").exists()


def test_cli_in_production_names_only_what_is_missing_and_a_malformed_url(tmp_path: Path) -> None:
    env = production_env()
    del env["SYNC_FUB_SYSTEM_KEY"]
    env["SYNC_SKYSLOPE_BASE_URL"] = "api.skyslope.com"  # no scheme
    result = _child(["-m", "sync_pipelines.cli", "accounts", "list"], _clean_env(**env), tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "2 setting(s)" in message, message
    assert "SYNC_FUB_SYSTEM_KEY" in message and "SYNC_SKYSLOPE_BASE_URL (expected an http" in message
    assert "SYNC_DATABASE_URL" not in message
    # A secret's value never reaches the message.
    assert env["SYNC_SECRET_KEY"] not in message and env["SYNC_DOTLOOP_CLIENT_SECRET"] not in message


def test_an_unknown_mode_is_refused_naming_sync_mode(tmp_path: Path) -> None:
    result = _child(["-m", "sync_pipelines.cli", "status"], _clean_env(SYNC_MODE="prod"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: SYNC_MODE: expected one of local, production, got 'prod'"


def test_the_sandbox_and_the_demo_are_local_only(tmp_path: Path) -> None:
    env = _clean_env(**production_env())
    for command in (["sandbox", "serve"], ["demo"]):
        result = _child(["-m", "sync_pipelines.cli", *command], env, tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "local-mode only" in result.stderr and "Traceback" not in result.stderr


def test_dagster_refuses_to_load_the_definitions_in_production_naming_every_missing_variable(tmp_path: Path) -> None:
    # What a code server, daemon, webserver or run worker does first: import the code location.
    result = _child(["-c", "import sync_pipelines.definitions"], _clean_env(SYNC_MODE="production"), tmp_path)
    assert result.returncode != 0
    assert "ProductionSettingsMissing" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for name in _every_setting_name():
        assert name in last


def test_production_never_starts_an_embedded_postgres_nor_generates_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_MODE", "production")
    monkeypatch.setenv("SYNC_HOME", str(tmp_path))
    monkeypatch.delenv("SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("SYNC_SECRET_KEY", raising=False)
    with pytest.raises(db.ConfigError, match="SYNC_DATABASE_URL"):
        db.warehouse_url()
    with pytest.raises(db.ConfigError, match="SYNC_DATABASE_URL"):
        db.start_embedded(tmp_path)
    with pytest.raises(db.ConfigError, match="SYNC_DATABASE_URL"):
        db.export_dagster_env({})
    with pytest.raises(db.ConfigError, match="SYNC_SECRET_KEY"):
        crypto.encrypt("a secret")
    from sync_pipelines.defs.erp.source import erp_url

    with pytest.raises(db.ConfigError, match="SYNC_ERP_DATABASE_URL"):
        erp_url()
    assert not crypto.key_file().exists()
    assert not db.embedded_pgdata(tmp_path).exists()
    assert not any(tmp_path.iterdir())


def _field_values(resource: object) -> list[object]:
    return [getattr(resource, name) for name in type(resource).model_fields]  # type: ignore[attr-defined]


def test_production_resources_read_every_setting_through_envvar_and_no_sandbox_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg

    for name, value in production_env().items():
        monkeypatch.setenv(name, value)
    for integration in registry.INTEGRATIONS.values():
        resource = integration.resource()
        values = _field_values(resource)
        env_vars = {v.env_var_name for v in values if isinstance(v, dg.EnvVar)}
        for setting in integration.env_settings:
            assert setting.name in env_vars, f"{integration.name}: {setting.name} is not read through EnvVar"
            if setting.local_default:
                assert setting.local_default not in [str.__str__(v) for v in values if isinstance(v, str)], (
                    f"{integration.name}: the sandbox's {setting.name} default is configured in production"
                )


def test_local_mode_falls_back_on_the_sandbox_only_for_what_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_pipelines.defs.fub.declaration import FUB

    monkeypatch.delenv("SYNC_MODE", raising=False)
    monkeypatch.delenv("SYNC_FUB_BASE_URL", raising=False)
    monkeypatch.setenv("SYNC_FUB_SYSTEM_KEY", "a-key-of-my-own")
    resource = FUB.resource()
    assert resource.base_url == "http://127.0.0.1:8900/fub"
    # A set secret is read through EnvVar even locally, so it never lands in a run's config.
    assert modes.resolve(resource.system_key) == "a-key-of-my-own"
    assert resource.system_key.env_var_name == "SYNC_FUB_SYSTEM_KEY"


# ----------------------------------------------------------------------------------------------
# The webhook receiver
# ----------------------------------------------------------------------------------------------


def fub_sign(body: bytes, key: str) -> str:
    # FUB's documented scheme, written independently of the product: hex HMAC-SHA256 of base64(body).
    return hmac.new(key.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()


def _event(event_id: str) -> bytes:
    return orjson.dumps({"eventId": event_id, "event": "peopleUpdated", "resourceIds": [12]})


def _stored(database_url: URL) -> list[str]:
    with db.get_engine(database_url).connect() as conn:
        return list(conn.execute(sa.text("SELECT event_id FROM bridge.webhook_events ORDER BY event_id")).scalars())


def _post(server: ReceiverServer, body: bytes, key: str) -> int:
    headers = {"Content-Type": "application/json", "FUB-Signature": fub_sign(body, key)}
    return requests.post(f"{server.url}/webhooks/fub/acme", data=body, headers=headers, timeout=10).status_code


@pytest.fixture
def production(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = production_env(database_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


def test_a_webhook_signed_with_the_sandbox_demo_key_is_refused_in_production(
    database_url: URL, production: dict[str, str]
) -> None:
    # An account with no webhook secret of its own: FUB signs with the system key, SYNC_FUB_SYSTEM_KEY in production.
    accounts.upsert_account(db.get_engine(database_url), "fub", "acme", {"api_key": "the-account-key"})
    with ReceiverServer(database_url) as server:
        assert _post(server, _event("signed-with-the-demo-key"), SANDBOX_SYSTEM_KEY) == 401
        assert _stored(database_url) == []
        assert _post(server, _event("signed-with-the-real-key"), PRODUCTION_SYSTEM_KEY) == 202
    assert _stored(database_url) == ["signed-with-the-real-key"]


def test_the_receiver_does_not_start_in_production_without_its_settings(
    database_url: URL, production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNC_FUB_SYSTEM_KEY")
    with pytest.raises(modes.ProductionSettingsMissing, match="SYNC_FUB_SYSTEM_KEY"):
        ReceiverServer(database_url)


def test_local_mode_still_verifies_with_the_sandbox_demo_key(
    database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNC_MODE", raising=False)
    monkeypatch.delenv("SYNC_FUB_SYSTEM_KEY", raising=False)
    accounts.upsert_account(db.get_engine(database_url), "fub", "acme", {"api_key": "the-account-key"})
    with ReceiverServer(database_url) as server:
        assert _post(server, _event("local-demo"), SANDBOX_SYSTEM_KEY) == 202
    assert _stored(database_url) == ["local-demo"]
