"""All simulators under one port: `/fub/v1/...`, `/rezen/...`, `/stripe/v1/...`, plus `/_sandbox` admin."""

from __future__ import annotations

import importlib
import logging
import socket
import threading
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sync_pipelines.sandbox.base import SandboxClock, Simulator, json_response
from sync_pipelines.sandbox.webhooks import WebhookEmitter

log = logging.getLogger(__name__)

# name -> "module:Class"; a simulator whose module is missing is simply not served.
SIMULATORS: dict[str, str] = {
    "fub": "sync_pipelines.sandbox.fub:FollowUpBoss",
    "rezen": "sync_pipelines.sandbox.rezen:Rezen",
    "skyslope": "sync_pipelines.sandbox.skyslope:SkySlope",
    "dotloop": "sync_pipelines.sandbox.dotloop:DotLoop",
    "lofty": "sync_pipelines.sandbox.lofty:Lofty",
    "stripe": "sync_pipelines.sandbox.stripe:Stripe",
}

DEFAULT_SEED = 42
DEFAULT_SCALE = 200


def _load(spec: str) -> type[Simulator] | None:
    module_name, class_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, class_name)


class Sandbox:
    """Every simulator, one clock, one webhook emitter."""

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        scale: int = DEFAULT_SCALE,
        webhook_speed: float = 1.0,
        sources: list[str] | None = None,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.clock = SandboxClock()
        self.emitter = WebhookEmitter(speed=webhook_speed)
        self.base_url = "http://127.0.0.1"
        self.simulators: dict[str, Simulator] = {}
        for name, spec in SIMULATORS.items():
            if sources is not None and name not in sources:
                continue
            cls = _load(spec)
            if cls is not None:
                self.simulators[name] = cls(self, seed, scale)

    def __getitem__(self, name: str) -> Simulator:
        return self.simulators[name]

    def advance(self, seconds: float) -> dict[str, Any]:
        self.clock.advance(seconds)
        for simulator in self.simulators.values():
            simulator.advance(seconds)
        return {"now": self.clock.now().isoformat()}

    def info(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "scale": self.scale,
            "now": self.clock.now().isoformat(),
            "base_url": self.base_url,
            "sources": {
                name: {"base_url": sim.base_url, "credentials": sim.credentials(), "counts": sim.counts()}
                for name, sim in self.simulators.items()
            },
        }

    # -- admin API -----------------------------------------------------------------------------

    def _simulator(self, request: Request) -> Simulator | Response:
        name = request.path_params["source"]
        if name not in self.simulators:
            return json_response({"error": f"unknown source {name!r}; known: {sorted(self.simulators)}"}, 404)
        return self.simulators[name]

    async def _info(self, request: Request) -> Response:
        return json_response(self.info())

    async def _advance(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        return json_response(self.advance(float(body.get("seconds", 3600))))

    async def _faults(self, request: Request) -> Response:
        sim = self._simulator(request)
        if isinstance(sim, Response):
            return sim
        if request.method == "DELETE":
            sim.faults.reset()
        elif request.method == "POST":
            try:
                sim.faults.update(orjson.loads(await request.body() or b"{}"))
            except (ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(sim.faults.to_dict())

    async def _limits(self, request: Request) -> Response:
        sim = self._simulator(request)
        if isinstance(sim, Response):
            return sim
        if request.method == "POST":
            for context, value in orjson.loads(await request.body() or b"{}").items():
                limit, window = (
                    (value, sim.rate_limits.get(context, (0, 10.0))[1])
                    if isinstance(value, int)
                    else (int(value[0]), float(value[1]))
                )
                sim.rate_limits[context] = (limit, window)
            sim.limiter.reset()
        return json_response({k: list(v) for k, v in sim.rate_limits.items()})

    async def _counts(self, request: Request) -> Response:
        sim = self._simulator(request)
        if isinstance(sim, Response):
            return sim
        q = request.query_params
        return json_response(sim.counts(q.get("account") or None, q.get("period") or None))

    async def _mutate(self, request: Request) -> Response:
        sim = self._simulator(request)
        if isinstance(sim, Response):
            return sim
        body = orjson.loads(await request.body() or b"{}")
        try:
            result = sim.mutate(
                body["account"],
                body["entity"],
                int(body.get("creates", 0)),
                int(body.get("updates", 0)),
                int(body.get("deletes", 0)),
                body.get("update_ids"),
            )
        except KeyError as exc:
            return json_response({"error": f"missing or unknown {exc}"}, 400)
        return json_response(result)

    def app(self) -> Starlette:
        admin = [
            Route("/_sandbox/info", self._info),
            Route("/_sandbox/clock/advance", self._advance, methods=["POST"]),
            Route("/_sandbox/{source}/faults", self._faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/{source}/limits", self._limits, methods=["GET", "POST"]),
            Route("/_sandbox/{source}/counts", self._counts),
            Route("/_sandbox/{source}/mutate", self._mutate, methods=["POST"]),
        ]
        mounts = [Mount(f"/{name}", routes=sim.routes()) for name, sim in self.simulators.items()]
        return Starlette(routes=admin + mounts)


class SandboxServer:
    """Serves a Sandbox over real HTTP on 127.0.0.1 from a background thread (tests, demo, dev)."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        sandbox.base_url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            sandbox.app(), log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.sandbox.emitter.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
