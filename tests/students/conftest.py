"""Student tests run offline: HF_HUB_OFFLINE=1 and no connection leaves the machine."""

from __future__ import annotations

import socket

import huggingface_hub.constants
import pytest


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Hub offline mode on, and any connection except to 127.0.0.1 fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    connect = socket.socket.connect

    def loopback_only(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"a student test tried to reach {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
