"""The OpenAI-compatible HTTP backend against a real local server serving a tiny Qwen2.5-VL model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

torch.set_num_threads(1)  # tiny models gain nothing from threads; the machine is shared

import requests

from coda_agent import BackendError, Cerebellum, Message, OpenAIBackend, TransformersBackend
from coda_agent.images import model_image
from coda_agent.tiny import cached_tiny_qwen25vl

PIXELS = 112 * 112 * 4
SERVED_NAME = "tiny-qwen25vl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return cached_tiny_qwen25vl()


@pytest.fixture(scope="module")
def server(checkpoint: Path, tmp_path_factory):
    """``python -m coda_agent.server`` on a free loopback port; yields its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "coda_agent.server", "--model", str(checkpoint), "--served-model-name", SERVED_NAME,
         "--port", str(port), "--dtype", "float32"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, f"server exited: {Path(log.name).read_text()[-2000:]}"
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def screen(seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).rand(400, 640, 3) * 255).astype(np.uint8)


def conversation(seed: int) -> list[Message]:
    return [Message.of("system", "Answer briefly."), Message.of("user", model_image(screen(seed), PIXELS), "Next?")]


def test_models_endpoint(server: str) -> None:
    listing = requests.get(f"{server}/models", timeout=10).json()
    assert [m["id"] for m in listing["data"]] == [SERVED_NAME]


def test_http_replies_equal_local_greedy_replies(server: str, checkpoint: Path) -> None:
    remote = OpenAIBackend(server, SERVED_NAME).generate([conversation(0), conversation(1)], max_new_tokens=10)
    local = TransformersBackend(str(checkpoint), dtype="float32")
    expected = [local.generate([conversation(seed)], max_new_tokens=10)[0] for seed in (0, 1)]
    assert remote == expected
    assert remote[0] != remote[1]  # the images reached the model


def test_sampled_group_over_http(server: str) -> None:
    group = OpenAIBackend(server, SERVED_NAME, concurrency=3).generate([conversation(2)] * 3, max_new_tokens=8,
                                                                       temperature=1.0)
    assert len(group) == 3 and len(set(group)) > 1


def test_cerebellum_over_http_never_raises_for_bad_output(server: str) -> None:
    executor = Cerebellum(OpenAIBackend(server, SERVED_NAME), max_pixels=PIXELS, max_new_tokens=12)
    results = executor.ground_many(["Click the Plot tab", "done()"], {"screenshot": screen(3)})
    assert results[1].action == "done()"
    assert (results[0].action is None) != (results[0].error is None)


def test_refused_requests_raise_backend_errors(server: str) -> None:
    response = requests.post(f"{server}/chat/completions", timeout=10, json={
        "model": SERVED_NAME, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/remote.png"}}]}]})
    assert response.status_code == 400 and "data URL" in response.json()["detail"]
    response = requests.post(f"{server}/chat/completions", timeout=10,
                             json={"model": SERVED_NAME, "messages": [{"role": "user", "content": "hi"}], "n": 0})
    assert response.status_code == 400
    with pytest.raises(BackendError, match="refused"):
        OpenAIBackend(server, SERVED_NAME).generate([[Message.of("tool", "x")]])
    with pytest.raises(BackendError, match="cannot reach"):
        OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", SERVED_NAME, retries=0).generate([conversation(0)])
