"""The local stack of `make demo` and `make dev`: the sandbox the sources' resources point at, its accounts and webhook
subscriptions.

In local mode a source whose base URL is on this machine (its default, the sandbox's `http://127.0.0.1:8900/...`, or
any loopback URL a developer set) is served by the built-in sandbox, on the port those URLs name. The demo and
`make dev` both serve it there, with the same seed and scale, so the accounts the demo added are the accounts `make
dev` serves, and `sync`, `sandbox info` and the Dagster runs all reach the one sandbox. With real URLs configured (or
in production mode) there is no sandbox to serve.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sync_pipelines import registry
from sync_pipelines.lib import db
from sync_pipelines.lib.errors import OperatorError

DEFAULT_ROOT = "http://127.0.0.1:8900"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STATE_FILE = "sandbox.json"


@dataclass(frozen=True)
class SandboxState:
    """What the demo served, so that `make dev` serves the same data: seed, scale, and how far its clock moved."""

    seed: int = 42
    scale: int = 300
    advanced_seconds: float = 0.0


def _production() -> bool:
    try:
        from sync_pipelines.lib import modes
    except ImportError:  # before local/production modes existed every run was local
        return False
    return modes.is_production()


def _configured_urls(integration: Any) -> list[str]:
    """The base URLs the integration's resources use: its declared URL settings (their local default when unset),
    else the resource's own *_url fields."""
    settings = [s for s in getattr(integration, "env_settings", ()) if getattr(s, "url", False)]
    if settings:
        return [s.raw() or (s.local_default or "") for s in settings]
    resource = integration.resource()
    urls = []
    for name in type(resource).model_fields:
        if not name.endswith("url"):
            continue
        value = getattr(resource, name)
        if hasattr(value, "env_var_name"):  # an EnvVar, resolved when a run starts
            value = os.environ.get(value.env_var_name, "")
        if isinstance(value, str) and value:
            urls.append(value)
    return urls


def sandbox_root() -> str | None:
    """`http://host:port` of the sandbox the registered sources point at, or None when none points at this machine.
    Sources pointing at two different local ports are a configuration error naming them."""
    if _production():
        return None
    roots: dict[str, list[str]] = {}
    for integration in registry.INTEGRATIONS.values():
        for url in _configured_urls(integration):
            parts = urlsplit(url)
            if parts.hostname in LOOPBACK and parts.port:
                roots.setdefault(f"{parts.scheme}://{parts.netloc}", []).append(integration.name)
    if len(roots) > 1:
        listed = "; ".join(f"{root} ({', '.join(sorted(set(names)))})" for root, names in roots.items())
        raise OperatorError(f"the sources' base URLs point at more than one local sandbox: {listed}; "
                            "expected one host:port for all of them")  # fmt: skip
    return next(iter(roots), None)


def sandbox_env(root: str) -> dict[str, str]:
    """The settings that point every registered source at a sandbox served at `root` (another port than the default,
    e.g. beside a running `make dev`, or in a test): each declared URL setting whose local default is the sandbox's,
    moved to `root`; a source that declares none is taken to read SYNC_<NAME>_BASE_URL."""
    env: dict[str, str] = {}
    for integration in registry.INTEGRATIONS.values():
        settings = [s for s in getattr(integration, "env_settings", ()) if getattr(s, "url", False)]
        for setting in settings:
            parts = urlsplit(setting.local_default or "")
            if parts.hostname in LOOPBACK:
                env[setting.name] = root.rstrip("/") + parts.path
        if not settings:
            env[f"SYNC_{integration.name.upper()}_BASE_URL"] = f"{root.rstrip('/')}/{integration.name}"
    return env


def sandbox_url() -> str:
    """Where the `sandbox` commands look for a running sandbox: the one the sources point at, or the default."""
    return sandbox_root() or DEFAULT_ROOT


def _state_path() -> Any:
    return db.sync_home() / STATE_FILE


def load_state() -> SandboxState:
    try:
        raw = json.loads(_state_path().read_text())
        return SandboxState(int(raw["seed"]), int(raw["scale"]), float(raw["advanced_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return SandboxState(scale=demo_scale())


def save_state(state: SandboxState) -> None:
    path = _state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state)))


def demo_scale() -> int:
    raw = os.environ.get("SYNC_DEMO_SCALE", "300").strip()
    try:
        scale = int(raw)
    except ValueError:
        scale = 0
    if scale < 1:
        raise OperatorError(f"SYNC_DEMO_SCALE: expected a positive whole number of records, got {raw!r}")
    return scale


def port_in_use(root: str) -> bool:
    parts = urlsplit(root)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def serve_sandbox(root: str, state: SandboxState) -> Any:
    """The sandbox with every simulator, at `root`, started; its clock moved as far as the demo's had moved."""
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    if port_in_use(root):
        raise OperatorError(
            f"{root} is already taken (another `make dev`, `make demo` or `sync-pipelines sandbox serve`?): stop it, "
            "or point the sources' base URLs at another local port"
        )
    sandbox = Sandbox(seed=state.seed, scale=state.scale, webhook_speed=1.0)
    # The local stack shows our pipeline at work, not the sources' rate-limit windows.
    for simulator in sandbox.simulators.values():
        simulator.rate_limits.update({context: (0, 10.0) for context in simulator.rate_limits})
    if state.advanced_seconds:
        sandbox.advance(state.advanced_seconds)
    parts = urlsplit(root)
    return SandboxServer(sandbox, host=parts.hostname or "127.0.0.1", port=parts.port or 0).start()


def connect_accounts(
    instance: Any, sandbox: Any, root: str, receiver_url: str | None, echo: Callable[[str], Any] = print
) -> dict[str, list[str]]:
    """Every registered integration's sandbox accounts, stored (credentials encrypted, an OAuth code exchanged) with
    their partition rows, and subscribed to the receiver's webhooks where the source has webhooks. Returns the
    account names per integration."""
    from sync_pipelines import operations
    from sync_pipelines.sandbox import subscriptions

    added: dict[str, list[str]] = {}
    for integration in registry.INTEGRATIONS.values():
        if integration.name not in sandbox.simulators or integration.sandbox_resource is None:
            continue
        simulator = sandbox[integration.name]
        resource = integration.sandbox_resource(root)
        for name, given in simulator.credentials()["accounts"].items():
            secrets = dict(given) if isinstance(given, dict) else {"api_key": given}
            if receiver_url and integration.webhooks is not None:
                secrets.update(subscriptions.subscribe(simulator, receiver_url, name) or {})
            operations.add_account(instance, integration, name, secrets, resource=resource)
            added.setdefault(integration.name, []).append(name)
    return added


def _workspace() -> Path:
    try:
        from sync_pipelines.lib import project_files
    except ImportError:  # a checkout from before the wheel carried its project files
        return db.PROJECT_ROOT / "workspace.yaml"
    return project_files.path("workspace.yaml")


def _stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGINT first, as Ctrl-C would: `dg dev` then shuts its webserver, daemon and code servers down itself. What
    is left of its process group after that is terminated, then killed."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            if sig == signal.SIGINT:
                proc.send_signal(sig)
            else:
                os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGINT:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # a code server or run worker that outlived dg
        return


def _interruptible() -> None:
    # A `make dev` started in the background inherits an ignored SIGINT; Dagster's processes must still hear it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_dev(url: Any, port: int, webhook_port: int, echo: Callable[[str], Any] = print) -> int:
    """`make dev`: the sandbox (when the sources point at it), the webhook receiver with the sandbox's webhooks
    subscribed to it, and Dagster's UI and daemon (`dg dev`) on the project's instance; Ctrl-C stops them all.
    Returns the exit code."""
    import dagster as dg

    from sync_pipelines.webhooks_app import ReceiverServer

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    root = sandbox_root()
    proc: subprocess.Popen | None = None
    with ExitStack() as stack:
        try:
            try:
                receiver = stack.enter_context(ReceiverServer(url, port=webhook_port))
            except OSError as exc:
                raise OperatorError(f"webhook receiver: port {webhook_port} is taken ({exc.strerror}); stop what "
                                    "holds it or pass --webhook-port") from None  # fmt: skip
            sandbox_line = "none: the sources point at their real URLs"
            if root is not None:
                state = load_state()
                server = serve_sandbox(root, state)
                stack.callback(server.stop)
                with dg.DagsterInstance.get() as instance:
                    added = connect_accounts(instance, server.sandbox, root, receiver.url)
                accounts = sum(len(names) for names in added.values())
                sandbox_line = (f"{root} (seed {state.seed}, scale {state.scale}, clock +{state.advanced_seconds:g} s "
                                f"as the demo left it); {accounts} accounts of "
                                f"{', '.join(added) or 'no integration'}")  # fmt: skip
            home = Path(os.environ["DAGSTER_HOME"])
            # Run from DAGSTER_HOME: from the checkout, Dagster would warn that its dagster.yaml is not the one used.
            cmd = [str(Path(sys.executable).parent / "dg"), "dev", "-w", str(_workspace()), "-h", "127.0.0.1",
                   "-p", str(port), "--log-level", "warning"]  # fmt: skip
            # Its own process group, so that it is stopped in order (below), and its output (every run worker's
            # events included) in a log file: the terminal keeps the few lines a person reads.
            log_path = db.sync_home() / "logs" / "dagster-dev.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(log_path.open("ab"))
            proc = subprocess.Popen(
                cmd, cwd=home, env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_interruptible,
            )  # fmt: skip
            echo("sync_pipelines dev: Ctrl-C stops all of it")
            echo(f"  Dagster UI        http://127.0.0.1:{port} (storage: database {db.dagster_database_name()}; "
                 "schedules and sensors on)")  # fmt: skip
            echo(f"  sandbox           {sandbox_line}")
            echo(f"  webhook receiver  {receiver.url}/webhooks/{{integration}}/{{account}}"
                 + (" (the sandbox's webhooks go here)" if root else ""))  # fmt: skip
            echo("  status            .venv/bin/sync-pipelines status")
            echo(f"  Dagster's log     {log_path}")
            return proc.wait()
        except KeyboardInterrupt:
            echo("stopping Dagster, the receiver and the sandbox ...")
            return 0
        finally:
            if proc is not None:
                _stop(proc)
