"""The fuzzing loop: batches of mutated inputs to every listener, each batch followed by checks.

After every batch: the gateway process is alive; a normal client of each
protocol round-trips within `probe_timeout` (fuzz.probes); its resident memory
stays under the start value plus `max_rss_growth`; and its log (stderr) since
the last batch holds no traceback and no ERROR line. A failed check writes
the batch's inputs to `out/failure-SEED-BATCH-TARGET.txt` (hex, one input a
line, replayable with `python -m fuzz --replay FILE`), and the gateway is
restarted when it died, stalled or grew. Targets take turns batch by batch
until the time is up; each target draws from its own `random.Random`
derived from the seed, so a seed reproduces each target's inputs in order.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from fuzz.probes import PROBES, ProbeFailed
from fuzz.process import GatewayProcess, log_problems
from fuzz.send import TCP_MODES, UDP_MODES, Input, send_tcp, send_udp
from fuzz.targets import TARGETS, CaseSource, Target

MiB = 1024 * 1024


@dataclass
class TargetStats:
    inputs: int = 0
    bytes: int = 0
    batches: int = 0
    failures: int = 0
    mutations: dict[str, int] = field(default_factory=dict)


@dataclass
class Failure:
    batch: int
    target: str
    reasons: list[str]
    path: str


@dataclass
class Report:
    seed: int
    seconds: float = 0.0
    targets: dict[str, TargetStats] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    checks: int = 0
    gateway_starts: int = 0
    rss_start: int = 0
    rss_peak: int = 0
    slowest_probe: dict[str, float] = field(default_factory=dict)
    log_path: str = ""

    @property
    def inputs(self) -> int:
        return sum(s.inputs for s in self.targets.values())

    def summary(self) -> str:
        lines = [f"seed {self.seed}: {self.inputs} inputs in {self.seconds:.0f} s, {self.checks} checks, "
                 f"{len(self.failures)} failures, gateway started {self.gateway_starts}x, "
                 f"RSS {self.rss_start / MiB:.0f} -> peak {self.rss_peak / MiB:.0f} MiB"]
        for name, stats in self.targets.items():
            lines.append(f"  {name:6} {stats.inputs:7} inputs {stats.bytes / MiB:8.1f} MiB "
                         f"{stats.batches:5} batches {stats.failures:3} failures")
        slowest = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.slowest_probe.items())
        lines.append(f"  slowest round trips: {slowest}")
        lines += [f"  FAILURE batch {f.batch} ({f.target}): {f.reasons[0]} -> {f.path}" for f in self.failures]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


class Checker:
    """The checks after a batch, against one gateway process."""

    def __init__(self, gateway: GatewayProcess, report: Report, probe_timeout: float, max_rss_growth: int) -> None:
        self.gateway = gateway
        self.report = report
        self.probe_timeout = probe_timeout
        self.max_rss_growth = max_rss_growth
        self.rss_limit = 0

    def start(self) -> dict[str, Any]:
        """(Re)start the gateway; it must pass the checks before any input is sent."""
        self.gateway.start()
        self.report.gateway_starts += 1
        self.rss_limit = 2**62
        reasons, context = self.check()
        if reasons:
            raise RuntimeError(f"the gateway fails its checks before any input: {reasons}")
        rss = self.gateway.rss()
        self.report.rss_start = self.report.rss_start or rss
        self.rss_limit = rss + self.max_rss_growth
        return context

    def check(self) -> tuple[list[str], dict[str, Any]]:
        """Why the gateway is not well (empty when it is), and what the probes learnt."""
        self.report.checks += 1
        reasons: list[str] = []
        context: dict[str, Any] = {}
        if self.gateway.alive():
            for name, probe in PROBES.items():
                started = time.monotonic()
                try:
                    context[name] = probe(self.gateway.ports, self.probe_timeout)
                except ProbeFailed as exc:
                    reasons.append(f"probe {exc}")
                took = time.monotonic() - started
                self.report.slowest_probe[name] = max(took, self.report.slowest_probe.get(name, 0.0))
            rss = self.gateway.rss()
            self.report.rss_peak = max(self.report.rss_peak, rss)
            if rss > self.rss_limit:
                reasons.append(f"memory: RSS {rss / MiB:.0f} MiB over the limit of {self.rss_limit / MiB:.0f} MiB")
        if not self.gateway.alive():
            reasons.insert(0, f"gateway exited with code {self.gateway.returncode}")
        reasons += [f"log: {problem}" for problem in log_problems(self.gateway.new_log())]
        return reasons, context

    def needs_restart(self, reasons: Sequence[str]) -> bool:
        return any(not r.startswith("log: ") for r in reasons)


def write_failure(out: Path, seed: int, batch: int, target: str, reasons: Sequence[str],
                  items: Sequence[Input]) -> Path:
    """The batch's inputs, one a line, under a header saying why: a regression test's bytes."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"failure-{seed}-{batch:05d}-{target}.txt"
    header = [f"# RosettaMQ fuzz failure: seed {seed}, batch {batch}, target {target}",
              "# replay: python -m fuzz --replay THIS_FILE", "# why:"]
    header += ["#   " + line for reason in reasons for line in reason.splitlines()]
    path.write_text("\n".join(header + [item.line() for item in items]) + "\n")
    return path


def read_inputs(path: Path) -> list[Input]:
    return [Input.parse(line) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def deliver(gateway: GatewayProcess, target: Target, items: Sequence[Input]) -> None:
    port = gateway.ports[target.listener]
    if target.transport == "udp":
        send_udp(port, items)
    else:
        send_tcp(port, items)


def run(seconds: float, seed: int, out: Path, targets: Sequence[str] = tuple(TARGETS), batch: int = 25,
        probe_timeout: float = 1.0, max_rss_growth: int = 256 * MiB,
        progress: Callable[[str], None] | None = None) -> Report:
    """Fuzz every target in turn for `seconds`; the report counts inputs and lists failures."""
    report = Report(seed)
    gateway = GatewayProcess(out / "gateway")
    report.log_path = str(gateway.log_path)
    checker = Checker(gateway, report, probe_timeout, max_rss_growth)
    sources: dict[str, CaseSource] = {name: TARGETS[name].source(random.Random(f"{seed}:{name}")) for name in targets}
    modes = {name: random.Random(f"{seed}:{name}:mode") for name in targets}
    for name in targets:
        report.targets[name] = TargetStats()
    started = time.monotonic()
    try:
        context = checker.start()
        number = 0
        while time.monotonic() - started < seconds:
            for name in targets:
                if time.monotonic() - started >= seconds:
                    break
                number += 1
                target, source, stats = TARGETS[name], sources[name], report.targets[name]
                prepare = getattr(source, "prepare", None)
                if prepare is not None:
                    prepare(context)
                choices = UDP_MODES if target.transport == "udp" else TCP_MODES
                items = [Input(name, modes[name].choice(choices), source.case()) for _ in range(batch)]
                deliver(gateway, target, items)
                stats.inputs += len(items)
                stats.bytes += sum(item.size for item in items)
                stats.batches += 1
                reasons, context = checker.check()
                if reasons:
                    stats.failures += 1
                    path = write_failure(out, seed, number, name, reasons, items)
                    report.failures.append(Failure(number, name, reasons, str(path)))
                    if progress:
                        progress(f"failure in batch {number} ({name}): {reasons[0].splitlines()[0]} -> {path}")
                    if checker.needs_restart(reasons):
                        context = checker.start()
    finally:
        report.seconds = time.monotonic() - started
        code = gateway.stop()
        late = log_problems(gateway.new_log())
        if code not in (0, None) or late:
            reasons = [f"gateway stopped with code {code}"] + [f"log: {p}" for p in late]
            report.failures.append(Failure(0, "shutdown", reasons, ""))
        for name, source in sources.items():
            report.targets[name].mutations = dict(source.counts)
    return report


def replay(path: Path, out: Path, probe_timeout: float = 1.0) -> list[str]:
    """Send a failure file's inputs to a fresh gateway, all then each alone; what failed, by line."""
    items = read_inputs(path)
    findings: list[str] = []
    groups = [items] + ([[item] for item in items] if len(items) > 1 else [])
    for group in groups:
        report = Report(0)
        gateway = GatewayProcess(out / "replay")
        checker = Checker(gateway, report, probe_timeout, 256 * MiB)
        try:
            checker.start()
            for item in group:
                deliver(gateway, TARGETS[item.target], [item])
            reasons, _ = checker.check()
        finally:
            gateway.stop()
        label = "all inputs together" if group is items else group[0].line()[:200]
        findings += [f"{label}: {reason}" for reason in reasons]
        if group is items and not reasons:
            break  # the batch alone does not fail: nothing to narrow down
    return findings
