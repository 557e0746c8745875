"""``dataloop bench --executor ray`` on a local Ray instance started once for the session."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import psutil
import pytest
from fakeserver import FakeOpenAI, few_shot_variations
from tinybench import tiny_experiment

from dataloop.bench import load_experiment, read_results, run_bench
from dataloop.bench.workers import RayTasks


def _listening(process: psutil.Process) -> list[str]:
    try:
        connections = process.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN]


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.mark.integration  # starts a real Ray (the floors venv has no [ray] extra)
def test_the_local_ray_listens_on_loopback_only_and_writes_no_token(local_ray) -> None:
    me = psutil.Process()
    ips = [ip for p in [me, *me.children(recursive=True)] for ip in _listening(p)]
    names = {p.name() for p in me.children(recursive=True)}
    assert {"gcs_server", "raylet"} <= names  # Ray's own processes, started from here
    assert len(ips) >= 3  # the GCS, the raylet, this driver's worker
    assert all(_loopback(ip) for ip in ips), ips
    assert not (Path.home() / ".ray" / "auth_token").exists()


@pytest.mark.integration
def test_each_run_is_a_ray_task_and_recorded_once(local_ray, tmp_path) -> None:
    """The real runs (tiny student, scripted loopback teacher), one Ray task of 1 CPU each."""
    progress: list[tuple[str, int, str]] = []
    with FakeOpenAI(latency=0.05, reply=few_shot_variations) as server:
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(tiny_experiment(server.base_url, iterations=1))
        spec, base = load_experiment(experiment)
        out = tmp_path / "bench"
        result = run_bench(
            spec,
            base,
            out,
            executor=RayTasks(experiment, out, cpus=1),
            on_run=lambda arm, seed, i, n, status: progress.append((arm, seed, status)),
        )
    assert sorted((r.arm, r.seed) for r in result.runs) == [
        ("seed-only", 0), ("seed-only", 1), ("uniform", 0), ("uniform", 1)
    ]  # fmt: skip
    assert [s for *_, s in progress].count("submitted") == 4
    assert [s for *_, s in progress].count("done") == 4
    assert len(read_results(tmp_path / "results" / "exp.jsonl")) == 4
