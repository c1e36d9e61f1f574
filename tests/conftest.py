from __future__ import annotations

from typing import Any

import pytest

from parallelworks_lab.service import JobService

from .support.api import MAX_TIME, SLOTS, Api, server_config
from .support.service import build_service

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the item (``item.rep_call``): fixtures can tell a passed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def local_cluster() -> dict[str, Any]:
    return {
        "id": "local",
        "kind": "local",
        "slots": SLOTS,
        "max_time_minutes": MAX_TIME,
        "kill_grace_seconds": 2,
    }


@pytest.fixture
def jp_server_config(tmp_path, local_cluster):
    return server_config(tmp_path, [local_cluster], poll_interval=0.2)


@pytest.fixture
def api(jp_fetch) -> Api:
    return Api(jp_fetch)


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, Any]:
    from .support.slurm_cluster import start_slurm

    return start_slurm()


@pytest.fixture(scope="session")
def pw_server(tmp_path_factory):
    """One real `jupyter server` (local cluster, 2 slots) shared by the notebook-side tests."""
    from .support.pw_live import start_live_server

    server = start_live_server(tmp_path_factory.mktemp("pw-live"))
    yield server
    server.stop()


@pytest.fixture
def ip(pw_client):
    """IPython's shell with our extension loaded, its magics on ``pw_client``."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("parallelworks_lab")
    magics = shell.magics_manager.registry["PWMagics"]
    magics.client = pw_client
    yield shell
    magics.client = None


@pytest.fixture
def pw_client(pw_server):
    """A parallelworks_lab.Client talking to ``pw_server`` over REST."""
    from parallelworks_lab.client import Client

    from .support.server_process import TOKEN

    client = Client(f"http://127.0.0.1:{pw_server.port}/", TOKEN)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sge_cluster(slurm_cluster) -> dict[str, Any]:
    # The SSH "login node" of the Slurm test cluster serves the Grid Engine tests too.
    from .support.sge_cluster import start_sge

    return start_sge()


@pytest.fixture
def job_service(tmp_path, jp_asyncio_loop):
    """Starts a JobService on a fresh database in ``tmp_path`` (the test's event loop runs it):
    ``service = await job_service([cluster entry], root_dir=..., poll_interval=...)``. Every
    service started is stopped after the test."""
    started: list[JobService] = []

    async def start(clusters: list[dict[str, Any]], **options: Any) -> JobService:
        service = build_service(tmp_path, clusters, **options)
        await service.start()
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        jp_asyncio_loop.run_until_complete(service.stop())
