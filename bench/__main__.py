"""`python -m bench compare`: RosettaMQ against mosquitto, interleaved, medians and ratios.

Each round runs every scenario against every broker of the group (A B A B ...),
each broker freshly started per scenario; the table shows medians over rounds
and the ratio gateway/mosquitto. Groups: `default` (memory store, mosquitto
without persistence), `persistent` (our SQLite store, our memory store,
mosquitto with persistence on), `protocols`, `cluster`, `workers`, and
`connect-floor` (connect + subscribe beside bench/floor_server.py, uvloop with
canned acks and no MQTT work: the floor any gateway on this event loop stands
on). Results are saved as JSON (and a PNG chart when matplotlib is installed)
under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

from bench.brokers import HOST, Broker, start_floor, start_mosquitto, start_rosettamq
from bench.cluster import CLUSTER, start_cluster_pair, start_single_node
from bench.scenarios import PERSISTENT, PROTOCOLS, THROUGHPUT, Params, idle_connections

RESULTS = Path(__file__).resolve().parent / "results"
Starters = dict[str, Callable[[], Broker]]
# group -> (brokers by name, default scenarios); "rosettamq" and "mosquitto" are the ratio's two sides.
GROUPS: dict[str, tuple[Starters, list[str]]] = {
    "default": ({"rosettamq": start_rosettamq, "mosquitto": start_mosquitto,
                 "mosquitto-nodelay": partial(start_mosquitto, nodelay=True)}, [*THROUGHPUT, "idle_10k"]),
    "persistent": (
        {
            "rosettamq": partial(start_rosettamq, store="sqlite"),
            "rosettamq-memory": start_rosettamq,
            "mosquitto": partial(start_mosquitto, persistence=True),
        },
        list(PERSISTENT),
    ),
    # Transports mosquitto is not run on here (its WebSocket listener binds every interface):
    # absolute figures for the gateway, to set beside its MQTT/TCP ones.
    "protocols": ({"rosettamq": start_rosettamq}, list(PROTOCOLS)),
    # Publisher on node A, subscriber on node B through nats-server, against one node in the same run.
    "cluster": ({"rosettamq": start_single_node, "rosettamq-cluster": start_cluster_pair}, list(CLUSTER)),
    # `run --workers 2` (two processes on one port, a local nats-server) beside one process and mosquitto.
    "workers": ({"rosettamq": start_rosettamq, "rosettamq-workers2": partial(start_rosettamq, ("--workers", "2")),
                 "mosquitto": start_mosquitto}, ["qos0_1to1", "fanout_1to50", "fanin_50to1", "qos1_window100"]),
    # The connect row's floor (bench/floor_server.py): uvloop answering with canned acks, no MQTT work.
    "connect-floor": ({"rosettamq": start_rosettamq, "mosquitto": start_mosquitto, "uvloop-floor": start_floor},
                      ["connect_subscribe"]),
}


def run_scenario(name: str, broker: Broker, params: Params) -> dict[str, float]:
    async def go() -> dict[str, float]:
        if name == "idle_10k":
            return await idle_connections(HOST, broker.port, params, broker.rss)
        if name in PROTOCOLS:
            return await PROTOCOLS[name](HOST, broker.ports, params)
        if name in CLUSTER:
            return await CLUSTER[name](HOST, broker.ports, params)
        return await {**THROUGHPUT, **PERSISTENT}[name](HOST, broker.port, params)

    try:
        import uvloop

        return uvloop.run(go())
    except ImportError:
        return asyncio.run(go())


def compare(scenarios: list[str], rounds: int, params: Params, starters: Starters) -> dict:
    raw: dict[str, dict[str, list[dict[str, float]]]] = {s: {b: [] for b in starters} for s in scenarios}
    for round_no in range(rounds):
        for scenario in scenarios:
            for name, start in starters.items():
                broker = start()
                try:
                    cpu, wall, own = broker.cpu_seconds(), time.monotonic(), time.process_time()
                    result = run_scenario(scenario, broker, params)
                    cpu, wall = broker.cpu_seconds() - cpu, time.monotonic() - wall
                    own = time.process_time() - own
                    # The load generator's own share of a core: near 1, it (not the broker) sets the rate.
                    result.update(broker_cpu_s=cpu, broker_cores=cpu / wall if wall else 0.0,
                                  loadgen_cores=own / wall if wall else 0.0)
                finally:
                    broker.stop()
                raw[scenario][name].append(result)
                print(f"round {round_no + 1} {scenario:15s} {name:16s} {_fmt(result)}", flush=True)
    return raw


def summarize(raw: dict) -> list[dict]:
    rows = []
    for scenario, by_broker in raw.items():
        metrics = by_broker["rosettamq"][0].keys()
        for metric in metrics:
            if metric == "delivered":
                continue
            ours = statistics.median(r[metric] for r in by_broker["rosettamq"])
            mosquitto_runs = by_broker.get("mosquitto")
            theirs = statistics.median(r[metric] for r in mosquitto_runs) if mosquitto_runs else float("nan")
            delivered = statistics.median(r.get("delivered", 1.0) for r in by_broker["rosettamq"])
            row = {
                "scenario": scenario, "metric": metric, "rosettamq": ours, "mosquitto": theirs,
                "ratio": ours / theirs if mosquitto_runs and theirs else float("nan"), "rosettamq_delivered": delivered,
            }
            for other in by_broker.keys() - {"rosettamq", "mosquitto"}:  # further variants, ours or theirs
                value = statistics.median(r[metric] for r in by_broker[other])
                row[other] = value
                if other.startswith("mosquitto"):  # a tuned mosquitto: the ratio is still ours / theirs
                    row[f"{other}_ratio"] = ours / value if value else float("nan")
                elif not mosquitto_runs:  # no mosquitto in the group: a variant of ours against our default
                    row[f"{other}_ratio"] = value / ours if ours else float("nan")
                else:
                    row[f"{other}_ratio"] = value / theirs if theirs else float("nan")
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\n{'scenario':16s} {'metric':12s} {'rosettamq':>12s} {'mosquitto':>12s} {'ratio':>7s}  delivered")
    for r in rows:
        print(
            f"{r['scenario']:16s} {r['metric']:12s} {r['rosettamq']:12.1f} {r['mosquitto']:12.1f} "
            f"{r['ratio']:7.2f}  {r['rosettamq_delivered']:.3f}"
        )
        for key in sorted(k for k in r if k.endswith("_ratio")):
            other = key.removesuffix("_ratio")
            print(f"{'':16s} {other:>12s} {r[other]:12.1f} {'':12s} {r[key]:7.2f}")


def save(rows: list[dict], raw: dict, params: Params) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"compare-{stamp}.json"
    path.write_text(json.dumps({"date": stamp, "params": params.__dict__, "rows": rows, "raw": raw}, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return path
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{r['scenario']}\n{r['metric']}" for r in rows]
    ax.bar(labels, [r["ratio"] for r in rows])
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("rosettamq / mosquitto")
    ax.set_title(f"RosettaMQ vs mosquitto ({stamp})")
    plt.setp(ax.get_xticklabels(), fontsize=7)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"))
    return path


def _fmt(result: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.1f}" if v >= 10 else f"{k}={v:.3f}" for k, v in result.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="RosettaMQ vs mosquitto, interleaved rounds")
    cmp_.add_argument("--rounds", type=int, default=3)
    cmp_.add_argument("--group", choices=sorted(GROUPS), default="default", help="brokers and default scenarios")
    cmp_.add_argument("--scenarios", nargs="*", help="default: the group's scenarios")
    cmp_.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    params = Params.quick() if args.quick else Params()
    starters, scenarios = GROUPS[args.group]
    raw = compare(args.scenarios or scenarios, args.rounds, params, starters)
    rows = summarize(raw)
    print_table(rows)
    print(f"\nsaved {save(rows, raw, params)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
