"""The composition root: adapters built once from settings, the worker derived at start."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import service.worker
from connectors.graph_http import GraphClient
from service.settings import Settings
from service.wiring import build_adapters
from tests.emulators.graph import GraphEmulator
from tests.graph_fixtures import outlook_settings


class TestSharedGraphClient:
    """Calendar and mail through Graph share one client: one token cache, one set of gates."""

    async def test_one_client_for_connector_and_mailer(self, emulator: GraphEmulator) -> None:
        settings = outlook_settings(
            emulator, email={"backend": "graph", "from": "kindly@example.org"}
        )
        adapters = build_adapters(settings)
        try:
            clients = {id(adapters.connector.client), id(adapters.mailer.client)}  # type: ignore[attr-defined]
            assert len(clients) == 1
            assert isinstance(adapters.connector.client, GraphClient)  # type: ignore[attr-defined]
        finally:
            await adapters.aclose()
            await adapters.aclose()  # closing twice is harmless: both parts close the client

    async def test_file_outbox_with_graph_calendar_builds_no_mail_client(
        self, emulator: GraphEmulator, tmp_path: Path
    ) -> None:
        adapters = build_adapters(outlook_settings(emulator, email={"outbox_dir": tmp_path}))
        try:
            assert not hasattr(adapters.mailer, "client")
        finally:
            await adapters.aclose()


class TestWorkerSettings:
    """``arq service.worker.WorkerSettings`` reads the settings when arq asks, not at import."""

    def test_derived_from_the_worker_section_when_looked_up(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KINDLY_WORKER__MAX_JOBS", "3")
        monkeypatch.setenv("KINDLY_WORKER__SHUTDOWN_GRACE_SECONDS", "7")
        derived = service.worker.WorkerSettings
        assert (derived.max_jobs, derived.job_completion_wait) == (3, 7)
        assert derived.max_tries == Settings().worker.max_tries

    def test_importing_reads_no_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_WORKER__MAX_JOBS", "not a number")
        importlib.reload(service.worker)  # no error: nothing is read at import

    def test_bad_settings_give_a_worker_that_reports_them_at_start(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KINDLY_WORKER__MAX_JOBS", "not a number")
        assert service.worker.WorkerSettings.on_startup is service.worker.on_startup
