"""The shared HTTP client's session reads the environment once per host, with requests' outcome."""

from __future__ import annotations

import pytest
import requests

from sync_pipelines.lib import http
from sync_pipelines.lib.http import ApiClient

URLS = ("http://api.example.com/v1/people?limit=100", "https://api.example.com/v1/x", "http://internal.local/y")


def _settings(session: requests.Session, url: str) -> tuple[dict, object]:
    merged = session.merge_environment_settings(url, {}, None, None, None)
    prepared = session.prepare_request(requests.Request("GET", url, headers={"Authorization": "Basic ours"}))
    return {**merged, "proxies": dict(merged["proxies"])}, prepared.headers.get("Authorization")


@pytest.mark.parametrize("env", ["none", "proxies", "bundle"])
def test_session_settings_equal_requests_own(monkeypatch: pytest.MonkeyPatch, tmp_path, env: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    if env == "proxies":
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3129")
        monkeypatch.setenv("NO_PROXY", "internal.local")
    if env == "bundle":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    ours = ApiClient("http://api.example.com").session
    for url in URLS:
        assert _settings(ours, url) == _settings(requests.Session(), url)


def test_netrc_is_honoured_as_requests_does(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.example.com login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    ours = ApiClient("http://api.example.com").session
    for url in URLS:
        assert _settings(ours, url) == _settings(requests.Session(), url)


def test_environment_is_read_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = http.get_environ_proxies

    def counting(url: str, no_proxy: object = None) -> dict:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(http, "get_environ_proxies", counting)
    session = ApiClient("http://api.example.com").session
    for page in range(5):
        session.merge_environment_settings(f"http://api.example.com/v1/people?next={page}", {}, None, None, None)
    session.merge_environment_settings("http://other.example.com/", {}, None, None, None)
    assert len(calls) == 2
