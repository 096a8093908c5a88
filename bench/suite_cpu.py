"""What the test suite costs the machine: the CPU of `make test`, by kind of process (issue #23).

    .venv/bin/python bench/suite_cpu.py                       # make test, with TEST_DATABASE_URL as set
    .venv/bin/python bench/suite_cpu.py -- make test PYTEST_ARGS=-x

Runs the command in this checkout and reads /proc twice a second while it runs: the machine's busy and idle time
(/proc/stat, exact), and each process's CPU time, summed by what the process is (the pytest workers, Chromium's
renderers and browser, the servers the tests start, PostgreSQL, Redis, everything else on the machine). A process
that ends between two readings loses up to half a second of its time, so the kinds add up to a little less than
the machine's busy time. The floor is the machine's busy time over its cores: how long the suite must take at the
least, whatever the order of its tests, on this machine. Issue #23 asks `make test` from a fresh clone to finish
in under 5 minutes; the install comes on top.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine, publish
from bench.petition_page import code_version, load_average

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (
    ("Chromium renderers", re.compile(r"chrom.*--type=renderer")),
    ("Chromium, other processes", re.compile(r"chrom.*--type=")),
    ("Chromium browser", re.compile(r"chrom")),
    ("Playwright driver", re.compile(r"playwright/driver")),
    ("pytest workers", re.compile(r"import sys;exec\(eval\(sys\.stdin\.readline\(\)\)\)")),
    ("pytest", re.compile(r"-m pytest")),
    ("PostgreSQL", re.compile(r"^postgres")),  # before the servers: a backend names its database
    ("Redis", re.compile(r"redis-server")),
    ("servers and commands the tests start", re.compile(r"undersigned|uvicorn|multiprocessing")),
)
OTHER = "everything else on the machine"


def kind_of(command: str) -> str:
    return next((name for name, pattern in KINDS if pattern.search(command)), OTHER)


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _process_ticks() -> dict[str, int]:
    ticks = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def _machine_ticks() -> tuple[int, int]:
    """Busy and idle ticks of the whole machine, all cores."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values[:8]) - idle, idle


class Sampler:
    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self._kinds: dict[str, str] = {}
        self._last = _process_ticks()  # what ran before the command is not counted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        now = _process_ticks()
        for pid, ticks in now.items():
            if pid not in self._kinds:
                self._kinds[pid] = kind_of(_command_line(pid))
            self.by_kind[self._kinds[pid]] += ticks - self._last.get(pid, 0)
        self._last = now

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="Print the table only.")
    parser.add_argument("command", nargs="*", default=["make", "test"], help="The command (default: make test).")
    args = parser.parse_args()
    load = load_average()
    busy_before, idle_before = _machine_ticks()
    started = time.monotonic()
    with Sampler() as sampler:
        run = subprocess.run(args.command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    busy_after, idle_after = _machine_ticks()
    busy, idle = (busy_after - busy_before) / TICKS, (idle_after - idle_before) / TICKS
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        sys.exit(f"{' '.join(args.command)} failed (exit {run.returncode}): no figure recorded")
    summary = next((line.strip("= ") for line in reversed(run.stdout.splitlines()) if " passed" in line), "")
    cores = os.cpu_count() or 1
    rows = "\n".join(
        f"| {kind} | {ticks / TICKS:.0f} | {100 * ticks / TICKS / busy:.0f} % |"
        for kind, ticks in sampler.by_kind.most_common()
        if ticks
    )
    report = f"""### The suite's CPU, `{" ".join(args.command)}` ({date.today().isoformat()})

Command: `.venv/bin/python bench/suite_cpu.py{" -- " + " ".join(args.command) if args.command != ["make", "test"] else ""}`

Code: {code_version()}. Machine: {machine()}; 1-minute load average before it {load:.2f}. The suite: {summary}.

| measure | figure |
|---|---|
| wall time of the command | {wall:.0f} s |
| the machine busy (all processes, /proc/stat) | {busy:.0f} core-seconds, {100 * busy / (busy + idle):.0f} % of its {cores} cores |
| the floor: busy time over {cores} cores | {busy / cores:.0f} s |

| kind of process | CPU s | share of busy |
|---|---|---|
{rows}
"""
    publish(report, bench="suite_cpu", write=not args.no_write)


if __name__ == "__main__":
    main()
