"""A bad value on the command line is one line naming it and what was expected, and a non-zero exit, for every
integration: never a silent exit 0 that did nothing, never a traceback."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from sync_pipelines import registry
from sync_pipelines.lib import accounts, db
from sync_pipelines_tests.helpers import run_cli

NAMES = sorted(registry.INTEGRATIONS)


def _one_line_error(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def with_account(database_url: URL) -> None:
    engine = db.get_engine(database_url)
    for name in NAMES:
        accounts.upsert_account(engine, name, "acme", {"api_key": "k"})


@pytest.mark.parametrize("name", NAMES)
def test_a_month_that_does_not_exist_is_refused(name: str, with_account: None) -> None:
    _one_line_error(run_cli("sync", name, "--period", "2025-13"), "'2025-13'", "YYYY-MM")
    _one_line_error(run_cli("sync", name, "--period", "1999-01"), "'1999-01'", "from")


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_account_is_refused(name: str, with_account: None) -> None:
    _one_line_error(run_cli("sync", name, "--account", "nosuch", "--period", "2025-01"), "'nosuch'", "acme")


def test_an_unknown_integration_is_refused(database_url: URL) -> None:
    _one_line_error(run_cli("sync", "nosuch"), "'nosuch'", *NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_credential_is_refused_and_nothing_is_saved(name: str, database_url: URL) -> None:
    fields = registry.INTEGRATIONS[name].credential_fields
    args = ["--api-key", ""] if "api_key" in fields else []
    for field in fields:
        if field != "api_key":
            args += ["--secret", f"{field}="]
    result = run_cli("accounts", "add", name, "--name", "acme", *args)
    if fields:
        _one_line_error(result, fields[0], "empty")
    else:  # what it needs is exchanged at connect (an OAuth code): it names what to give
        _one_line_error(result, "expected")
    assert accounts.list_accounts(db.get_engine(database_url), name, active_only=False) == []


def test_resolving_an_unknown_dlq_record_is_refused(database_url: URL) -> None:
    _one_line_error(run_cli("dlq", "resolve", "99999"), "'99999'", "UUID")
    _one_line_error(run_cli("dlq", "resolve", "0190d2a4-0000-7000-8000-000000000000"), "no open DLQ record")
