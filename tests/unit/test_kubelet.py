"""The process kubelet's pure parts: the config rewrite, the back-off, the log server's paths."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from zentinel_devcluster import kubelet
from zentinel_devcluster.cluster import (
    POD_RANGES,
    ClusterError,
    choose_pod_cidr,
    loopback_listeners,
    pod_cidr_for,
    pod_range,
    process_cidr_for,
)


def test_rewrite_binds_the_pod_ip_and_reads_mounts_locally(tmp_path: Path) -> None:
    mounts = {"/etc/zentinel": tmp_path / "config", "/etc/zentinel/tls": tmp_path / "tls"}
    text = """listeners {
    listener "http" { address "0.0.0.0:8080" }
    listener "v6" {
        address "[::]:8443"
        tls { cert-file "/etc/zentinel/tls/tls.crt"; key-file "/etc/zentinel/tls/tls.key"; }
    }
    listener "fixed" { address "127.0.0.1:9000" }
}
include "/etc/zentinel/extra.kdl"
upstream "api" { target "10.0.0.0:80" }
"""
    out = kubelet.rewrite(text, "127.192.0.7", mounts)
    assert 'address "127.192.0.7:8080"' in out and 'address "127.192.0.7:8443"' in out
    assert 'address "127.0.0.1:9000"' in out  # an explicit address is the user's
    assert f'cert-file "{tmp_path}/tls/tls.crt"' in out and f'key-file "{tmp_path}/tls/tls.key"' in out
    assert f'include "{tmp_path}/config/extra.kdl"' in out
    assert 'target "10.0.0.0:80"' in out  # "0.0.0.0:" inside another address is left alone


def test_rewrite_leaves_a_path_that_only_starts_like_a_mount(tmp_path: Path) -> None:
    out = kubelet.rewrite('file "/etc/zentinel-other/x"', "127.1.1.1", {"/etc/zentinel": tmp_path})
    assert out == 'file "/etc/zentinel-other/x"'
    assert kubelet.rewrite("-c /etc/zentinel/zentinel.kdl", "127.1.1.1", {"/etc/zentinel/": tmp_path}) == (
        f"-c {tmp_path}/zentinel.kdl"
    )


@pytest.mark.parametrize(
    ("crashes", "expected"),
    [(1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (20, 300.0)],
)
def test_backoff_doubles_from_ten_seconds_to_five_minutes(crashes: int, expected: float) -> None:
    assert kubelet.backoff_delay(crashes, 10.0, 300.0) == expected


def test_exit_reasons_follow_the_container_runtime() -> None:
    assert kubelet.exit_reason(0) == "Completed"
    assert kubelet.exit_reason(1) == "Error"


def test_process_range_is_loopback_and_apart_from_kwoks(tmp_path: Path) -> None:
    import ipaddress

    kwok = ipaddress.ip_network(pod_cidr_for(tmp_path))
    proc = ipaddress.ip_network(process_cidr_for(str(kwok)))
    assert proc.is_loopback and kwok.is_loopback and not proc.overlaps(kwok)
    assert proc.prefixlen == kwok.prefixlen == 20


def test_pod_ranges_are_distinct_loopback_slash_20s() -> None:
    import ipaddress

    nets = [ipaddress.ip_network(pod_range(i)) for i in range(POD_RANGES)]
    assert len(set(nets)) == POD_RANGES
    assert all(n.prefixlen == 20 and n.subnet_of(ipaddress.ip_network("127.128.0.0/10")) for n in nets)


def test_a_range_something_listens_in_is_not_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ipaddress

    monkeypatch.delenv("ZENTINEL_CLUSTER_POD_CIDR", raising=False)
    preferred = pod_cidr_for(tmp_path)
    first = ipaddress.ip_network(preferred)[1]
    assert choose_pod_cidr(preferred, [ipaddress.IPv4Address("127.0.0.1")]) == preferred
    # A leftover emulator on the preferred range's first pod IP, or a process on its process range:
    for ip in (first, ipaddress.ip_network(process_cidr_for(preferred))[5]):
        chosen = choose_pod_cidr(preferred, [ip], start=0)
        assert chosen != preferred and ip not in ipaddress.ip_network(chosen)
        assert ip not in ipaddress.ip_network(process_cidr_for(chosen))
    # The walk skips every taken range, starting where it is told.
    taken = [ipaddress.ip_network(pod_range(i))[1] for i in range(3)]
    assert choose_pod_cidr(pod_range(0), taken, start=0) == pod_range(3)
    everywhere = [ipaddress.ip_network(pod_range(i))[1] for i in range(POD_RANGES)]
    with pytest.raises(ClusterError, match="every pod range"):
        choose_pod_cidr(pod_range(0), everywhere, start=0)


def test_a_pod_range_given_by_the_user_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    monkeypatch.setenv("ZENTINEL_CLUSTER_POD_CIDR", "127.130.0.0/20")
    assert choose_pod_cidr("127.130.0.0/20", [ipaddress.IPv4Address("127.130.0.1")]) == "127.130.0.0/20"


def test_listeners_are_read_from_the_kernel() -> None:
    import ipaddress
    import socket

    with socket.socket() as s:
        s.bind(("127.131.0.7", 0))
        s.listen()
        assert ipaddress.IPv4Address("127.131.0.7") in loopback_listeners()
    assert ipaddress.IPv4Address("127.131.0.7") not in loopback_listeners()


def test_tail_text_is_the_end_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"x" * 5000 + b"\nFailed to load configuration file\n")
    tail = kubelet.tail_text(log, 100)
    assert tail.endswith("Failed to load configuration file") and len(tail) <= 100
    assert kubelet.tail_text(tmp_path / "missing.log") == ""


def test_listening_ips_sees_a_real_listener_and_not_a_closed_one() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.192.15.201", 0))
        assert "127.192.15.201" not in kubelet.listening_ips()  # bound, not listening
        s.listen()
        assert "127.192.15.201" in kubelet.listening_ips()
    assert "127.192.15.201" not in kubelet.listening_ips()


def test_listening_ips_of_a_table_that_is_not_there_is_empty(tmp_path: Path) -> None:
    assert kubelet.listening_ips(tmp_path / "missing") == set()


def test_allocation_skips_an_ip_a_leftover_process_listens_on_and_reuses_freed_ips_last() -> None:
    import socket
    import threading

    k = kubelet.Kubelet.__new__(kubelet.Kubelet)
    k.free_ips = ["127.192.15.210", "127.192.15.211", "127.192.15.212"]
    k.pods, k.terminating, k.lock, k.wake = {}, set(), threading.RLock(), threading.Event()
    with socket.socket() as s:
        s.bind(("127.192.15.210", 0))
        s.listen()
        assert k.allocate_ip() == "127.192.15.211"
    assert k.free_ips == ["127.192.15.212", "127.192.15.210"]
    assert k.allocate_ip() == "127.192.15.212"
    k.pods["uid-1"] = types.SimpleNamespace(ip="127.192.15.211", uid="uid-1", containers=[])  # type: ignore[assignment]
    k.forget("uid-1")
    assert k.free_ips == ["127.192.15.210", "127.192.15.211"]  # the freed IP goes last


def test_off_machine_targets_names_every_target_not_on_loopback() -> None:
    api = ["127.192.0.5:8000", "10.0.1.10:8000", "[::1]:8000"]
    web = ["localhost:9000", "192.168.1.4:80", "backend.example.com:80"]
    blocks = [
        f'upstream "{name}" {{ ' + " ".join(f'target "{t}" weight=1;' for t in targets) + " }"
        for name, targets in (("api", api), ("web", web))
    ]
    text = "upstreams {\n" + "\n".join(blocks) + "\n}\n"
    assert kubelet.off_machine_targets(text) == [
        "api/10.0.1.10:8000",
        "web/192.168.1.4:80",
        "web/backend.example.com:80",
    ]
    assert kubelet.off_machine_targets('upstreams { upstream "api" { target "127.0.0.1:8000"; }; }') == []
