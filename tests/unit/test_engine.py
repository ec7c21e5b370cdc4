"""The engine client: an engine that does not answer is one line that says where and what to do."""

import pytest

from swiftdeploy.engine import api as engine


def test_a_missing_engine_socket_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    engine.client.cache_clear()
    try:
        with pytest.raises(engine.EngineError) as caught:
            engine.client()
    finally:
        engine.client.cache_clear()
    message = str(caught.value)
    assert message.startswith(f"no container engine answers at unix://{tmp_path}/missing.sock")
    assert "scripts/test-engine up" in message and "\n" not in message
