"""`python -m bench compare`: RosettaMQ against mosquitto, interleaved, medians and ratios.

Each round runs every scenario against both brokers (A B A B ...), each broker
freshly started per scenario; the table shows medians over rounds and the
ratio gateway/mosquitto. Results are saved as JSON (and a PNG chart when
matplotlib is installed) under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import statistics
import sys
from pathlib import Path

from bench.brokers import HOST, Broker, start_mosquitto, start_rosettamq
from bench.scenarios import THROUGHPUT, Params, idle_connections

RESULTS = Path(__file__).resolve().parent / "results"
STARTERS = {"rosettamq": start_rosettamq, "mosquitto": start_mosquitto}


def run_scenario(name: str, broker: Broker, params: Params) -> dict[str, float]:
    async def go() -> dict[str, float]:
        if name == "idle_10k":
            return await idle_connections(HOST, broker.port, params, broker.rss)
        return await THROUGHPUT[name](HOST, broker.port, params)

    try:
        import uvloop

        return uvloop.run(go())
    except ImportError:
        return asyncio.run(go())


def compare(scenarios: list[str], rounds: int, params: Params) -> dict:
    raw: dict[str, dict[str, list[dict[str, float]]]] = {s: {b: [] for b in STARTERS} for s in scenarios}
    for round_no in range(rounds):
        for scenario in scenarios:
            for name, start in STARTERS.items():
                broker = start()
                try:
                    result = run_scenario(scenario, broker, params)
                finally:
                    broker.stop()
                raw[scenario][name].append(result)
                print(f"round {round_no + 1} {scenario:15s} {name:10s} {_fmt(result)}", flush=True)
    return raw


def summarize(raw: dict) -> list[dict]:
    rows = []
    for scenario, by_broker in raw.items():
        metrics = by_broker["rosettamq"][0].keys()
        for metric in metrics:
            if metric == "delivered":
                continue
            ours = statistics.median(r[metric] for r in by_broker["rosettamq"])
            theirs = statistics.median(r[metric] for r in by_broker["mosquitto"])
            delivered = statistics.median(r.get("delivered", 1.0) for r in by_broker["rosettamq"])
            rows.append({
                "scenario": scenario, "metric": metric, "rosettamq": ours, "mosquitto": theirs,
                "ratio": ours / theirs if theirs else float("nan"), "rosettamq_delivered": delivered,
            })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\n{'scenario':16s} {'metric':12s} {'rosettamq':>12s} {'mosquitto':>12s} {'ratio':>7s}  delivered")
    for r in rows:
        print(
            f"{r['scenario']:16s} {r['metric']:12s} {r['rosettamq']:12.1f} {r['mosquitto']:12.1f} "
            f"{r['ratio']:7.2f}  {r['rosettamq_delivered']:.3f}"
        )


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
    cmp_.add_argument("--scenarios", nargs="*", default=[*THROUGHPUT, "idle_10k"])
    cmp_.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    params = Params.quick() if args.quick else Params()
    raw = compare(args.scenarios, args.rounds, params)
    rows = summarize(raw)
    print_table(rows)
    print(f"\nsaved {save(rows, raw, params)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
