"""SYNC_INTEGRATIONS: a deployment that runs only some sources names them, and gets their assets, schedules, webhook
routes and production settings only; a name that is not a source is refused in one line, in any mode."""

from __future__ import annotations

import json
from pathlib import Path

from sync_pipelines_tests.test_lib.test_modes import _child, _clean_env

SHOW = """
import json
from sync_pipelines import settings, webhooks_app
from sync_pipelines.definitions import defs
print(json.dumps({
    "groups": sorted({k.path[0] for k in defs.resolve_asset_graph().get_all_asset_keys()}),
    "schedules": sorted(s.name for s in defs.schedules or []),
    "routes": sorted(webhooks_app.INTEGRATIONS),
    "settings": [s.name for s in settings.production_settings()],
}))
"""


def test_only_the_enabled_sources_have_assets_schedules_routes_and_production_settings(tmp_path: Path) -> None:
    result = _child(["-c", SHOW], _clean_env(SYNC_INTEGRATIONS="fub, stripe"), tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["groups"] == ["core", "fub", "platform", "stripe"]  # no ERP either: `erp` was not named
    assert shown["schedules"] == [
        "fub_delta_every_5_minutes",
        "platform_bridge_health_every_15_minutes",
        "stripe_delta_every_5_minutes",
        "stripe_full_rewalk_monthly",
    ]
    assert shown["routes"] == ["fub", "stripe"]
    assert "SYNC_FUB_SYSTEM_KEY" in shown["settings"] and "SYNC_STRIPE_BASE_URL" in shown["settings"]
    assert not [s for s in shown["settings"] if s.startswith(("SYNC_DOTLOOP", "SYNC_REZEN", "SYNC_ERP"))]


def test_production_with_a_subset_asks_only_for_that_subsets_settings(tmp_path: Path) -> None:
    env = _clean_env(SYNC_MODE="production", SYNC_INTEGRATIONS="fub,erp")
    result = _child(["-m", "sync_pipelines.cli", "status"], env, tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "5 setting(s)" in message, message
    assert "SYNC_FUB_BASE_URL" in message and "SYNC_ERP_DATABASE_URL" in message
    assert "SYNC_STRIPE" not in message and "SYNC_DOTLOOP" not in message


def test_a_name_that_is_not_a_source_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _child(["-m", "sync_pipelines.cli", "status"], _clean_env(SYNC_INTEGRATIONS="fub,strpe"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: SYNC_INTEGRATIONS: unknown 'strpe'; expected"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_source_that_is_not_enabled_is_named_as_such(tmp_path: Path) -> None:
    result = _child(["-m", "sync_pipelines.cli", "sync", "stripe"], _clean_env(SYNC_INTEGRATIONS="fub"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: integration 'stripe' is not enabled: SYNC_INTEGRATIONS='fub'"
