"""The worker-memory figure of bench/rescore.py counts what it claims: the resident set of a process
and its children (psutil), and the kernel's high-water mark of one process (VmHWM)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.rescore import _rss_bytes, _vm_hwm_bytes

MB = 2**20
# A child that holds 64 MB, says so, and waits to be stopped.
HOLDER = (
    "import time; block = bytearray(64 * 2**20); block[::4096] = b'x' * len(block[::4096]); "
    "print('ready', flush=True); time.sleep(60)"
)


def test_the_peak_counts_the_children_and_the_high_water_mark_of_a_process():
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLDER!r}])"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        process = psutil.Process(parent.pid)
        children = process.children(recursive=True)
        assert len(children) == 1
        own = process.memory_info().rss
        assert _rss_bytes(process) >= own + 64 * MB
        assert _vm_hwm_bytes(children[0].pid) >= 64 * MB
        assert _vm_hwm_bytes(parent.pid) < 64 * MB  # the parent itself never held the block
    finally:
        for member in psutil.Process(parent.pid).children(recursive=True):
            member.kill()
        parent.kill()
        parent.wait(timeout=10)
    time.sleep(0.1)
    assert _rss_bytes(process) == 0  # gone: nothing to count
    assert _vm_hwm_bytes(parent.pid) == 0
