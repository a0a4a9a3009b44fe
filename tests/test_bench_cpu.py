"""The deploy benchmark's CPU accounting (T0): who spent the CPU, and the floor it sets."""

from __future__ import annotations

import subprocess
import sys
import time

from infra.bench.cpu import OTHER, CpuMeter, Snapshot, process_group, usage_between
from infra.bench.deploy import cpu_lines

# Spends at least 0.6 s of its own CPU, says so, then waits to be stopped (so the meter still sees
# it when it stops: a process that exits between samples loses its last ticks).
BURN = ("import time\n"
        "while time.process_time() < 0.6:\n"
        "    pass\n"
        "print('done', flush=True)\n"
        "time.sleep(60)\n")


def test_processes_are_grouped_by_name_and_python_ones_by_what_they_run() -> None:
    assert process_group("kube-apiserver", ["kube-apiserver", "--etcd-servers=x"]) == "API server"
    assert process_group("kube-controller", []) == "cluster controllers"
    assert process_group("pulumi-resource", []) == "Kubernetes provider"
    assert process_group("python3.11", ["/venv/bin/python", "/tools/bin/pulumi-language-python-exec",
                                        "--", "__main__.py"]) == "the Pulumi program"
    assert process_group("python", ["python", "-u", "-m", "pulumi.dynamic", "addr"]) == "dynamic providers"
    assert process_group("python3", ["python3", "-m", "pytest"]) == OTHER
    assert process_group("sshd", []) == OTHER


def test_usage_is_interpolated_between_the_snapshots_around_each_end() -> None:
    snapshots = [Snapshot(10.0, 100.0, {}),
                 Snapshot(10.5, 101.0, {"API server": 0.8}),
                 Snapshot(11.0, 102.0, {"API server": 1.5, "etcd": 0.02}),
                 Snapshot(11.5, 102.9, {"API server": 2.2, "etcd": 0.32})]
    usage = usage_between(snapshots, 10.25, 11.25)
    assert round(usage.seconds, 2) == 1.95 and usage.wall == 1.0  # 100.5 to 102.45
    assert {k: round(v, 2) for k, v in usage.groups.items()} == {"API server": 1.45, "etcd": 0.17}
    clipped = usage_between(snapshots, 9.0, 12.0)  # outside the samples: what they cover
    assert round(clipped.seconds, 2) == 2.9 and clipped.wall == 1.5
    assert usage_between([], 0, 1).seconds == 0.0


def test_the_meter_counts_a_busy_process_started_after_it() -> None:
    meter = CpuMeter(interval=0.1).start()
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        meter.stop()
    finally:
        child.kill()
        child.wait()
    usage = meter.between(started - 1, time.monotonic())
    assert usage.groups.get(OTHER, 0.0) >= 0.55, usage
    assert usage.seconds >= 0.55, usage


def test_a_span_that_ends_now_is_read_to_its_end_not_to_the_last_sample() -> None:
    meter = CpuMeter(interval=0.5).start()
    try:
        start = time.monotonic()
        time.sleep(0.1)
        end = time.monotonic()
        usage = meter.between(start, end)  # the last sample was taken before `start`
    finally:
        meter.stop()
    assert round(usage.wall, 3) == round(end - start, 3), usage


def test_the_floor_is_cpu_seconds_over_cpus_against_the_yardstick() -> None:
    results = {"cpus": 2, "upstream-single-pass": 20.0,
               "cpu-pulumi-up-kubeflow": {"cpu-seconds": 34.0, "wall-seconds": 18.0,
                                          "by-group": {"API server": 20.0, "the Pulumi program": 4.0}},
               "cpu-upstream-single-pass": {"cpu-seconds": 30.0, "wall-seconds": 20.0, "by-group": {}},
               "cpu-pulumi-up-noop": {"cpu-seconds": 6.0, "wall-seconds": 4.5, "by-group": {}}}
    lines = cpu_lines(results)
    assert lines[0] == ("(a) Kubeflow, once the cluster is ready: 34.0 CPU-s in 18.0s; on 2 CPUs nothing "
                        "ends before 17.0s = 0.85x of (b)")
    assert lines[1] == "    API server 20.0, the Pulumi program 4.0"
    assert lines[2].endswith("nothing ends before 15.0s = 0.75x of (b)")
    # The no-op's floor is in seconds only: against (b) it would compare nothing.
    assert lines[4] == "(c) no-op pulumi up: 6.0 CPU-s in 4.5s; on 2 CPUs nothing ends before 3.0s"
