"""Splits an `apply --output json` run into its steps' timings (stdin: the events).

Prints the run's wall time, each step's span (first node start to last node finish, seconds
from the run's start) and the sum of its nodes' durations, then the sum of every node's
duration against the wall time: what running the same nodes one after another would take,
and what the DAG's concurrency saved.
"""

import json
import sys


def main():
    started, finished, wall = {}, {}, None
    for line in sys.stdin:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "node_started":
            started.setdefault(event["node"], event["at_ms"])
        elif kind == "node_finished":
            finished[event["node"]] = event
        elif kind == "run_finished":
            wall = event["duration_ms"]
    if wall is None:
        sys.exit("no run_finished event: the run did not end")
    steps = {}
    for node, event in finished.items():
        end = event["at_ms"]
        start = started.get(node, end - event["duration_ms"])
        step = steps.setdefault(event["step"], {"start": start, "end": end, "busy": 0, "nodes": 0})
        step["start"] = min(step["start"], start)
        step["end"] = max(step["end"], end)
        step["busy"] += event["duration_ms"]
        step["nodes"] += 1
    print(f"{'step':<20} {'nodes':>5} {'start s':>8} {'end s':>8} {'node time s':>12}")
    for name, step in sorted(steps.items(), key=lambda item: item[1]["start"]):
        print(
            f"{name:<20} {step['nodes']:>5} {step['start'] / 1000:>8.1f} "
            f"{step['end'] / 1000:>8.1f} {step['busy'] / 1000:>12.1f}"
        )
    total = sum(step["busy"] for step in steps.values())
    print(f"wall time: {wall / 1000:.1f} s")
    print(f"sum of node durations (the same nodes in sequence): {total / 1000:.1f} s")
    print(f"saved by the DAG: {(total - wall) / 1000:.1f} s ({100 * (total - wall) / total:.0f} %)")


main()
