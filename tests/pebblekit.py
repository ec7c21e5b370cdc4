"""Debian's pebble (Let's Encrypt's ACME test server) on loopback, one per test: its own https certificate from
a test CA, HTTP-01 checked on the port the test's nginx answers plain http on."""

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tlskit import TestCA


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pebble:
    directory: str  # the ACME directory URL
    ca_bundle: Path  # what signs pebble's own https certificate
    management: str

    def root_pem(self) -> str:
        """The root pebble signs the certificates it issues with (made fresh at each start)."""
        return requests.get(f"{self.management}/roots/0", verify=str(self.ca_bundle), timeout=10).text


@pytest.fixture
def pebble(tmp_path):
    """start(http_port) -> a running Pebble that validates HTTP-01 on http_port; stopped after the test."""
    binary = shutil.which("pebble") or "/usr/bin/pebble"
    assert os.path.exists(binary), "pebble is missing: scripts/setup installs Debian's pebble"
    started = []

    def start(http_port: int) -> Pebble:
        folder = tmp_path / "pebble"
        ca = TestCA(folder)
        served = ca.issue("pebble", names=("localhost", "127.0.0.1"))
        port, management = _free_port(), _free_port()
        config = {"pebble": {"listenAddress": f"127.0.0.1:{port}", "managementListenAddress": f"127.0.0.1:{management}",
                             "certificate": str(served.cert), "privateKey": str(served.key),
                             "httpPort": http_port, "tlsPort": _free_port(), "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        (folder / "config.json").write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        log = open(folder / "pebble.log", "w")
        process = subprocess.Popen([binary, "-config", str(folder / "config.json")], stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=folder)
        started.append((process, log))
        server = Pebble(f"https://localhost:{port}/dir", ca.ca_file, f"https://localhost:{management}")
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(server.directory, verify=str(ca.ca_file), timeout=2).raise_for_status()
                return server
            except requests.RequestException:
                assert process.poll() is None and time.monotonic() < deadline, (folder / "pebble.log").read_text()
                time.sleep(0.1)

    yield start
    for process, log in started:
        process.terminate()
        process.wait(timeout=10)
        log.close()
