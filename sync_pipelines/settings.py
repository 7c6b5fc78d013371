"""What production mode needs from the environment, over every registered integration and the ERP, checked in one
place by every entry point: the CLI, the Dagster definitions (code server, daemon, webserver, each run worker) and
the webhook receiver. The machinery (the modes, `EnvSetting`) is lib/modes.py; this module only gathers."""

from __future__ import annotations

from sync_pipelines.lib import modes
from sync_pipelines.lib.db import ConfigError
from sync_pipelines.lib.modes import EnvSetting


def production_settings() -> list[EnvSetting]:
    """The core settings, then each registered integration's in registry order, then the ERP's."""
    from sync_pipelines import registry
    from sync_pipelines.defs.erp.source import DATABASE_URL as ERP_DATABASE_URL

    out = list(modes.CORE_SETTINGS)
    for integration in registry.INTEGRATIONS.values():
        out.extend(integration.env_settings)
    if registry.erp_enabled():
        out.append(ERP_DATABASE_URL)
    return out


def check(process: str = "this process") -> None:
    """Refuse to go on when SYNC_INTEGRATIONS names what does not exist (any mode: a typo must not silently drop a
    source); in production mode, also when a setting it needs is missing (one ProductionSettingsMissing naming every
    one); in local mode nothing else."""
    from sync_pipelines import registry

    unknown = registry.unknown_enabled()
    if unknown:
        raise ConfigError(
            f"{registry.ENABLED_ENV}: unknown {', '.join(map(repr, unknown))}; expected a comma-separated list of "
            f"{', '.join([*registry.ALL, registry.ERP])}"
        )
    if modes.is_production():
        modes.require(production_settings(), process)
