"""deploy/ read by parsers, since this machine has no Docker or Kubernetes: the compose file, the container instance,
the Helm values and the Dockerfile name the services, variables, images and commands a deployment needs, and agree
with each other and with the project's own dagster.yaml (test_deploy_topology runs what the containers run)."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_pipelines.lib import project_files
from sync_pipelines.lib.integration.builders import INTEGRATION_TAG

ROOT = project_files.CHECKOUT_ROOT
DEPLOY = ROOT / "deploy"
# Shared with the project's dagster.yaml: a deployment queues and limits runs exactly as a developer's machine does,
# through the same run coordinator (the one that gives UI and backfill runs their integration's run tag).
SHARED_SECTIONS = ("run_coordinator", "concurrency", "run_retries", "run_monitoring", "retention", "telemetry")
# The one coordinator setting the container instances leave out (docs/deploy.md): it launches webhook runs on the
# sensor's thread, where a container or pod start would hold up every other sensor.
LOCAL_ONLY_COORDINATOR_SETTINGS = ("launch_at_once_tags",)


def _without_local_only(section: Any) -> Any:
    if not isinstance(section, dict) or "config" not in section:
        return section
    config = {k: v for k, v in section["config"].items() if k not in LOCAL_ONLY_COORDINATOR_SETTINGS}
    return {**section, "config": config}


COORDINATOR = ("sync_pipelines.lib.run_coordinator", "OpTagsRunCoordinator")
APP_SERVICES = ("migrate", "user_code", "webserver", "daemon", "webhooks")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yml")


@pytest.fixture(scope="module")
def instance() -> dict[str, Any]:
    return _yaml(DEPLOY / "dagster.yaml")


@pytest.fixture(scope="module")
def project_instance() -> dict[str, Any]:
    return _yaml(ROOT / "dagster.yaml")


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return _yaml(DEPLOY / "helm" / "values.yaml")


def _env_names(value: Any) -> set[str]:
    """Every `{env: NAME}` inside a Dagster config value."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(_env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_env_names(v) for v in value)) if value else set()
    return set()


def _example_variables() -> dict[str, str]:
    """deploy/env.example: what the operator sets, name to (empty, for a secret) value."""
    found = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def _integration_limit(limits: list[dict[str, Any]]) -> int:
    """The per-integration run limit among tag concurrency limits: one per value of the integration run tag."""
    (limit,) = [rule for rule in limits if rule["key"] == INTEGRATION_TAG]
    assert limit["value"] == {"applyLimitPerUniqueValue": True}, limit
    return int(limit["limit"])


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


# ----------------------------------------------------------------------------------------------
# docker-compose.yml
# ----------------------------------------------------------------------------------------------


def test_compose_runs_postgres_migrations_code_server_webserver_daemon_and_the_webhook_receiver(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *APP_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:")
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"sync-pipelines:${SYNC_IMAGE_TAG:-0.1.0}"}, "every app service runs the one user-code image"

    assert _command(services["user_code"])[:5] == ["dagster", "api", "grpc", "-m", "sync_pipelines.definitions"]
    assert _command(services["webserver"])[0] == "dagster-webserver"
    assert _command(services["daemon"])[:2] == ["dagster-daemon", "run"]
    assert _command(services["webhooks"])[:3] == ["sync-pipelines", "webhooks", "serve"]
    migrate = " ".join(_command(services["migrate"]))
    assert "sync-pipelines db upgrade" in migrate and "dagster instance migrate" in migrate
    # Migrations before code: nothing that runs code starts before they succeed.
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("user_code", "webhooks"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["user_code"]["condition"] == "service_healthy"
    assert "grpc-health-check" in services["user_code"]["healthcheck"]["test"]


def test_webserver_and_daemon_load_code_from_the_grpc_service_on_its_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    (entry,) = _yaml(DEPLOY / "workspace.yaml")["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["location_name"] == "sync_pipelines"
    assert grpc["host"] == "user_code"
    code = _command(services["user_code"])
    assert str(grpc["port"]) == code[code.index("-p") + 1]
    for name in ("webserver", "daemon"):
        command = _command(services[name])
        assert command[command.index("-w") + 1] == "/opt/dagster/dagster_home/workspace.yaml"


def test_every_variable_the_container_instance_reads_is_set_for_every_app_service(
    compose: dict[str, Any], instance: dict[str, Any]
) -> None:
    needed = _env_names(instance)
    assert needed >= {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB", "DAGSTER_COMPUTE_LOGS_DIR"}
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert needed <= set(environment), (name, needed - set(environment))
        assert environment["SYNC_MODE"] == "production"
        assert compose["services"][name]["env_file"] == [".env"]


def test_compose_holds_no_secret_only_references_to_the_operators_env_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    for line in text.splitlines():
        match = re.search(r"(PASSWORD|SECRET|_KEY)\w*:\s*(\S+)", line)
        if match and not line.lstrip().startswith("#"):
            assert match.group(2).startswith("${"), f"a literal secret in docker-compose.yml: {line.strip()}"
    assert all(not value for key, value in _example_variables().items() if "PASSWORD" in key or "SECRET" in key)


# ----------------------------------------------------------------------------------------------
# deploy/dagster.yaml
# ----------------------------------------------------------------------------------------------


def test_container_instance_is_valid_dagster_config_with_docker_launcher_postgres_and_shared_compute_logs(
    instance: dict[str, Any], compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    for name in _env_names(instance):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    config, _ = dagster_instance_config(str(DEPLOY))
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"

    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert launcher["config"]["network"] == compose["networks"]["sync_pipelines"]["name"]
    (volume,) = launcher["config"]["container_kwargs"]["volumes"]
    volume_name, mount = volume.split(":")
    assert volume_name == compose["volumes"]["compute_logs"]["name"]
    assert mount == "/opt/dagster/compute_logs"
    assert instance["compute_logs"]["class"] == "LocalComputeLogManager"
    for name in ("webserver", "daemon"):
        assert f"compute_logs:{mount}" in compose["services"][name]["volumes"]
        assert "/var/run/docker.sock:/var/run/docker.sock" in compose["services"][name]["volumes"]


def test_run_containers_get_every_variable_the_operator_sets_and_the_storage(instance: dict[str, Any]) -> None:
    forwarded = set(instance["run_launcher"]["config"]["env_vars"])
    operator = {k for k in _example_variables() if k.startswith("SYNC_") and k != "SYNC_IMAGE_TAG"}
    assert operator <= forwarded, operator - forwarded
    assert _env_names(instance) <= forwarded
    assert "SYNC_MODE" in forwarded


def test_container_instance_queues_and_limits_runs_exactly_as_the_project_instance(
    instance: dict[str, Any], project_instance: dict[str, Any]
) -> None:
    for section in SHARED_SECTIONS:
        expected = project_instance.get(section)
        if section == "run_coordinator":
            assert not set(LOCAL_ONLY_COORDINATOR_SETTINGS) & set(instance[section]["config"])
            expected = _without_local_only(expected)
        assert instance.get(section) == expected, section
    # `run_queue` configures Dagster's own QueuedRunCoordinator, which would leave UI and backfill runs untagged.
    assert "run_queue" not in instance
    coordinator = instance["run_coordinator"]
    assert (coordinator["module"], coordinator["class"]) == COORDINATOR
    assert INTEGRATION_TAG in coordinator["config"]["promote_op_tags"]
    limits = project_instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert _integration_limit(instance["concurrency"]["runs"]["tag_concurrency_limits"]) == _integration_limit(limits)


def test_the_coordinator_both_instances_name_loads_from_their_config_as_a_queued_run_coordinator(
    project_instance: dict[str, Any],
) -> None:
    """What the webserver and daemon do with the run_coordinator section (the same in both files, tested above)."""
    from dagster._config import process_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._serdes import ConfigurableClassData

    section = project_instance["run_coordinator"]
    module = importlib.import_module(section["module"])
    cls = getattr(module, section["class"])
    processed = process_config(cls.config_type(), section["config"])
    assert processed.success, processed.errors
    coordinator = cls.from_config_value(
        ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"])), processed.value
    )
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert coordinator.dequeue_interval_seconds == section["config"]["dequeue_interval_seconds"]


# ----------------------------------------------------------------------------------------------
# Helm values
# ----------------------------------------------------------------------------------------------


def test_helm_webserver_and_daemon_run_the_user_code_image_which_holds_the_run_coordinator(
    helm: dict[str, Any],
) -> None:
    """The webserver (UI launches, and the chart's instance-migrate Job) and the daemon (backfills, sensors) submit
    runs through the run coordinator, so they must import sync_pipelines: the chart's default image cannot."""
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert helm[service]["image"] == deployment["image"], service


def test_helm_values_run_the_code_location_by_module_and_each_run_as_a_k8s_job(helm: dict[str, Any]) -> None:
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    assert helm["dagster-user-deployments"]["enabled"] is True
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "sync_pipelines.definitions"]
    assert deployment["env"]["SYNC_MODE"] == "production"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    secret = {"name": "sync-pipelines-env"}
    assert secret in deployment["envSecrets"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert secret in helm["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    assert helm["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert helm["global"]["postgresqlSecretName"]
    assert helm["migrate"]["enabled"] is True


def test_helm_values_run_the_project_coordinator_and_limit_runs_per_integration_and_pools_as_the_project_instance(
    helm: dict[str, Any], project_instance: dict[str, Any]
) -> None:
    # The chart's custom coordinator (`type: CustomRunCoordinator`, `config.customRunCoordinator: {module, class,
    # config}`) is written into the instance's run_coordinator section as it is here.
    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert (custom["module"], custom["class"]) == COORDINATOR
    project = _without_local_only(project_instance["run_coordinator"])
    assert custom == {"module": project["module"], "class": project["class"], "config": project["config"]}
    # The chart renders queuedRunCoordinator settings only for its own QueuedRunCoordinator: limits left there would
    # silently not apply.
    assert not coordinator["config"].get("queuedRunCoordinator")

    # The limits, in the chart's top-level `concurrency` (written as the instance's `concurrency:` section).
    assert helm["concurrency"]["enabled"] is True
    runs = project_instance["concurrency"]["runs"]
    assert helm["concurrency"]["runs"]["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert _integration_limit(helm["concurrency"]["runs"]["tagConcurrencyLimits"]) == _integration_limit(
        runs["tag_concurrency_limits"]
    )
    assert helm["concurrency"]["runs"]["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert helm["concurrency"]["pools"]["defaultLimit"] == project_instance["concurrency"]["pools"]["default_limit"]
    monitoring = project_instance["run_monitoring"]
    assert helm["dagsterDaemon"]["runMonitoring"] == {
        "enabled": monitoring["enabled"],
        "startTimeoutSeconds": monitoring["start_timeout_seconds"],
        "pollIntervalSeconds": monitoring["poll_interval_seconds"],
        "maxResumeRunAttempts": monitoring["max_resume_run_attempts"],
        "freeSlotsAfterRunEndSeconds": monitoring["free_slots_after_run_end_seconds"],
    }
    assert helm["dagsterDaemon"]["runRetries"]["maxRetries"] == project_instance["run_retries"]["max_retries"]


# ----------------------------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------------------------


def test_dockerfile_builds_the_complete_wheel_and_serves_the_code_location_by_module() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    copied = " ".join(line for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "sync_pipelines/"):
        assert name in copied, name
    for name in project_files.FILES + project_files.TREES:
        assert name in copied, f"the image's wheel would lack {name}"
    assert "deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/dagster_home/" in copied
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1))[:5] == ["dagster", "api", "grpc", "-m", "sync_pipelines.definitions"]
    assert re.search(r"^ENV SYNC_MODE=production", text, re.MULTILINE)

    # The launchers move with the dagster libraries pinned in pyproject.toml.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (postgres_pin,) = [d for d in dependencies if d.startswith("dagster-postgres==")]
    version = postgres_pin.split("==")[1]
    assert f"dagster-docker=={version}" in text and f"dagster-k8s=={version}" in text


def test_every_source_setting_the_integrations_read_is_in_env_example_and_reaches_run_containers(
    instance: dict[str, Any],
) -> None:
    """A source added under defs/ whose URL or secret the operator cannot set, or its runs never see, would make
    production mode refuse to start (or a run fail) only once deployed."""
    read = set()
    for path in (ROOT / "sync_pipelines" / "defs").rglob("*.py"):
        read |= set(
            re.findall(r"\bSYNC_[A-Z]+_(?:[A-Z_]*_)?(?:URL|SECRET|SYSTEM|SYSTEM_KEY|CLIENT_ID)\b", path.read_text())
        )
    assert read, "no source setting found: the pattern no longer matches how defs/ names them"
    assert read <= set(_example_variables()), read - set(_example_variables())
    assert read <= set(instance["run_launcher"]["config"]["env_vars"])
