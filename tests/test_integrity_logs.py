"""Credentials in logs (issue 18, case 7): with `-v`, botocore's debug lines carry the endpoint
URL (with a password in it), access key ids, signed headers and tokens; one filter on every
handler takes them out of every record."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.log_redaction import RedactingFilter, install_redaction
from facefusion_ray.storage.filesystem import redact

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

PASSWORD = "Hunter2Pass"


def test_verbose_logs_of_an_s3_command_hold_no_credential(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket("logs")
    endpoint = s3_server.endpoint_url.replace("http://", f"http://operator:{PASSWORD}@")
    environment = {**os.environ, **s3_server.environment(), "AWS_ENDPOINT_URL": endpoint}
    command = [sys.executable, "-m", "facefusion_ray", "-v", "cache", "stats"]
    command += ["--cache", f"s3://{bucket}/cache"]
    command += [f"--storage-option=client_kwargs.endpoint_url={endpoint}"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    logs = result.stdout + result.stderr
    assert "botocore" in logs, logs[-2000:]  # third-party debug lines were logged
    for secret in (PASSWORD, s3_server.access_key, s3_server.secret_key):
        assert secret not in logs


def test_every_record_is_redacted_whatever_its_logger(caplog: pytest.LogCaptureFixture) -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    root = logging.getLogger()
    handler = Collect()
    root.addHandler(handler)
    try:
        install_redaction()
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        install_redaction()  # idempotent
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logger = logging.getLogger("botocore.endpoint")
        logger.setLevel(logging.DEBUG)
        logger.debug("Making request %s", {"url": f"http://u:{PASSWORD}@h/b?X-Amz-Signature=ab12"})
        logger.debug(
            "headers {'X-Amz-Security-Token': b'Tok3nValue', 'aws_access_key_id': 'AKIA9'}"
        )
        try:
            raise ValueError(f"cannot reach http://u:{PASSWORD}@host")
        except ValueError:
            logging.getLogger("facefusion_ray.x").exception("failed with secret=%s", "s3cr3tv")
    finally:
        root.removeHandler(handler)
    text = "\n".join(records)
    for secret in (PASSWORD, "ab12", "Tok3nValue", "AKIA9", "s3cr3tv"):
        assert secret not in text
    assert text.count("***") >= 5 and "ValueError" in text


@pytest.mark.parametrize("signature", ["b842e6fb4d", "0b42e6fb4d"])
def test_a_signature_is_redacted_whole_whatever_its_first_character(signature: str) -> None:
    """A `b` at the start is part of the value, not a bytes prefix as in b'...'."""
    url = f"http://host/key?X-Amz-Signature={signature}&X-Amz-Date=1"
    assert redact(url) == "http://host/key?X-Amz-Signature=***&X-Amz-Date=1"


@pytest.mark.usefixtures("local_ray")
def test_render_actors_redact_what_they_log() -> None:
    """An actor's records go through Ray's handlers in the actor's own process."""
    import ray

    from facefusion_ray.engine.render_actor import RenderActor
    from facefusion_ray.inference.execution import ExecutionConfig

    actor = ray.remote(RenderActor).remote(ExecutionConfig(), 1)

    def handler_filters(_actor: object) -> list[list[str]]:
        return [
            [type(item).__name__ for item in handler.filters]
            for handler in logging.getLogger().handlers
        ]

    filters = ray.get(actor.__ray_call__.remote(handler_filters))
    ray.kill(actor)
    assert filters and all("RedactingFilter" in names for names in filters)
