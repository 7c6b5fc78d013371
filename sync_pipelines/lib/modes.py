"""Local mode and production mode, and the settings production cannot do without.

`SYNC_MODE` chooses. `local` (the default) is a developer's machine: an embedded Postgres when SYNC_DATABASE_URL
is unset, a generated key file when SYNC_SECRET_KEY is unset, the sandbox's URLs and demo secrets for every source
whose settings are unset. `production` has no fallback at all: every process (CLI, Dagster code server, daemon,
webserver, run worker, webhook receiver) refuses to start until the warehouse, the key and every registered
source's real URLs and secrets are set, and names all that is missing in one message. A demo key that anyone can
read in this repository must never be what a production process signs or verifies with.

Each source declares what it needs as `EnvSetting`s on its declaration; this module only checks and resolves them.
Nothing here imports Dagster at import time (declarations import it, and the sync engine must not load Dagster).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sync_pipelines.lib.db import ConfigError

MODE_ENV = "SYNC_MODE"
LOCAL = "local"
PRODUCTION = "production"
MODES = (LOCAL, PRODUCTION)


class ProductionSettingsMissing(ConfigError):
    """Production mode without settings it needs (or with values it cannot use); the message names every one."""


@dataclass(frozen=True)
class EnvSetting:
    """An environment variable a process needs in production. `local_default` is what local mode uses when it is
    unset (a sandbox URL, a demo secret); production never uses it. `url`: the value must be an http(s) URL, and
    `description` is then the real service's URL, as an example."""

    name: str
    description: str
    secret: bool = False
    url: bool = False
    local_default: str | None = None

    def raw(self) -> str:
        return os.environ.get(self.name, "").strip()

    def problem(self) -> str | None:
        """Why the current value cannot be used in production, or None."""
        value = self.raw()
        if not value:
            return f"{self.name} (a URL like {self.description})" if self.url else f"{self.name} ({self.description})"
        if self.url:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                # A URL's credentials never reach the message; the scheme and shape are enough to fix it.
                return f"{self.name} (expected an http:// or https:// URL, like {self.description})"
        return None


# What every production process needs whatever sources are registered.
DATABASE_URL = EnvSetting(
    "SYNC_DATABASE_URL", "the warehouse, postgresql://user:password@host:5432/database", secret=True
)
SECRET_KEY = EnvSetting(
    "SYNC_SECRET_KEY", "the Fernet key that encrypts bridge.credentials, the same in every process", secret=True
)
CORE_SETTINGS: tuple[EnvSetting, ...] = (DATABASE_URL, SECRET_KEY)


def mode() -> str:
    """The configured mode; a value that is neither mode is a ConfigError naming SYNC_MODE."""
    value = os.environ.get(MODE_ENV, "").strip().lower() or LOCAL
    if value not in MODES:
        raise ConfigError(f"{MODE_ENV}: expected one of {', '.join(MODES)}, got {os.environ[MODE_ENV].strip()!r}")
    return value


def is_production() -> bool:
    return mode() == PRODUCTION


def is_local() -> bool:
    return mode() == LOCAL


def problems(settings: Iterable[EnvSetting]) -> list[str]:
    """Every setting production cannot use as it stands, each named once, in the order given."""
    seen: set[str] = set()
    out: list[str] = []
    for setting in settings:
        if setting.name in seen:
            continue
        seen.add(setting.name)
        problem = setting.problem()
        if problem is not None:
            out.append(problem)
    return out


def require(settings: Iterable[EnvSetting], process: str = "this process") -> None:
    """In production mode, raise one ProductionSettingsMissing naming every unusable setting; in local mode, nothing
    (its defaults fill the gaps). The message is one line: the CLI prints it as is."""
    if not is_production():
        return
    found = problems([*CORE_SETTINGS, *settings])
    if found:
        raise ProductionSettingsMissing(
            f"{MODE_ENV}=production: {process} will not start without {len(found)} setting(s): " + "; ".join(found)
        )


def refuse_in_production(what: str) -> None:
    """For what exists only to run the sandbox or fall back on it (the demo, `sandbox serve`, generated data)."""
    if is_production():
        raise ConfigError(f"{MODE_ENV}=production: {what} is local-mode only (unset {MODE_ENV} or set it to local)")


def configured(setting: EnvSetting) -> Any:
    """The value to configure a Dagster resource field with: an `EnvVar` (resolved when a run starts, so a secret is
    never part of the run's config, the UI or its metadata) whenever the variable is set, and always in production;
    in local mode, when it is unset, the setting's local default."""
    import dagster as dg

    if is_production() or setting.raw() or setting.local_default is None:
        return dg.EnvVar(setting.name)
    return setting.local_default


def resolve(value: Any) -> str:
    """A resource field as a plain string: a resource built outside a Dagster run (the CLI's `dlq retry --refetch`,
    `accounts add`) still holds the `EnvVar` itself, which Dagster resolves only for runs."""
    get_value = getattr(value, "get_value", None)
    if callable(get_value):
        resolved = get_value()
        if resolved is None:
            raise ConfigError(f"{value.env_var_name}: not set")
        return str(resolved)
    return value
