"""What production mode needs from the environment, over every registered integration and the ERP, checked in one
place by every entry point: the CLI, the Dagster definitions (code server, daemon, webserver, each run worker) and
the webhook receiver. The machinery (the modes, `EnvSetting`) is lib/modes.py; this module only gathers."""

from __future__ import annotations

from sync_pipelines.lib import modes
from sync_pipelines.lib.modes import EnvSetting


def production_settings() -> list[EnvSetting]:
    """The core settings, then each registered integration's in registry order, then the ERP's."""
    from sync_pipelines import registry
    from sync_pipelines.defs.erp.source import DATABASE_URL as ERP_DATABASE_URL

    out = list(modes.CORE_SETTINGS)
    for integration in registry.INTEGRATIONS.values():
        out.extend(integration.env_settings)
    out.append(ERP_DATABASE_URL)
    return out


def check(process: str = "this process") -> None:
    """In production mode, refuse to go on (one ProductionSettingsMissing naming every missing setting); in local
    mode, nothing."""
    if modes.is_production():
        modes.require(production_settings(), process)
