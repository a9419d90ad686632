"""pytest plugin: one real SeaweedFS S3 server per test session (see tests/seaweedfs.py).
When it cannot start, the fixture fails with the end of its log."""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.seaweedfs import S3Server, S3ServerError, running_s3_server

__all__ = ["S3Server", "s3_server"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_s3_server(tmp_path_factory.mktemp("seaweedfs")))
        except S3ServerError as error:
            pytest.fail(str(error))
        yield server
