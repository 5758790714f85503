"""The local control plane starts even when a port it chose is taken before its binary binds it.

Ports are chosen by binding port 0 and letting go; another process (a second test run, a helper's
pip, any outbound connection from the ephemeral range) can take one before etcd or kube-apiserver
binds it. A CI run once failed every integration test that way. Here etcd is really handed a port
this test holds, really exits with "address already in use", and ``Cluster.up`` starts again on
fresh ports.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from zentinel_devcluster import cluster as devcluster
from zentinel_devcluster import tools
from zentinel_devcluster.cluster import Cluster, PortTakenError


def test_a_port_taken_after_it_was_chosen_is_retried_on_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tools.ensure(["k8s", "etcd", "kwok"])
    real_free_ports = devcluster._free_ports
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind((devcluster.LOOPBACK, 0))
    held.listen()
    taken = int(held.getsockname()[1])
    handed: list[list[int]] = []

    def first_with_a_taken_etcd_port(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not handed:
            ports[0] = taken  # the etcd client port
        handed.append(ports)
        return ports

    monkeypatch.setattr(devcluster, "_free_ports", first_with_a_taken_etcd_port)
    c = Cluster(tmp_path / "cluster")
    try:
        c.up(log=True)
        assert c.is_up()
        assert len(handed) == 2, handed
        assert str(taken) not in c.server
        assert "lost a port to another process" in capsys.readouterr().out
    finally:
        c.down(log=False)
        held.close()


def test_the_apiserver_port_the_user_asked_for_is_kept_on_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools.ensure(["k8s", "etcd", "kwok"])
    real_free_ports = devcluster._free_ports
    asked = real_free_ports(1)[0]
    # etcd never gets a free port: every attempt fails, and the last one's error is raised.
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind((devcluster.LOOPBACK, 0))
    held.listen()
    taken = int(held.getsockname()[1])
    apiserver_ports: list[int] = []
    real_start = Cluster._start

    def etcd_port_taken(count: int) -> list[int]:
        ports = real_free_ports(count)
        ports[0] = taken
        return ports

    def recording_start(self: Cluster, ports: devcluster.Ports, *args: Any) -> None:
        apiserver_ports.append(ports.apiserver)
        real_start(self, ports, *args)

    monkeypatch.setattr(devcluster, "_free_ports", etcd_port_taken)
    monkeypatch.setattr(Cluster, "_start", recording_start)
    c = Cluster(tmp_path / "cluster")
    try:
        with pytest.raises(PortTakenError, match="already in use"):
            c.up(apiserver_port=asked, log=False)
        assert apiserver_ports == [asked] * devcluster.PORT_ATTEMPTS
        assert not c.is_up()
    finally:
        c.down(log=False)
        held.close()
