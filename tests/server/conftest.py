from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, numbered_config, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server per module, with the numbered test pipeline in every mode."""
    tmp: Path = tmp_path_factory.mktemp("server")
    with run_server(tmp, numbered_config(heartbeat_s=5.0)) as proc:
        yield proc
