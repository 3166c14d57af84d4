"""The calls a list screen makes, across the real FFI boundary, on a store kept by
`loopwork-sim ffi --keep-store DIR` (see scripts/bench-ffi). Prints one JSON object.

    PYTHONPATH=<generated python bindings> python3 ffi/bench/list_screen.py DIR
"""

import json
import statistics
import sys
import time

import loopwork_ffi as lw


class NoNetwork(lw.Transport):
    def send(self, request):
        raise lw.TransportError.Failed("the benchmark is offline")


def timed(n, f):
    ms = []
    for i in range(n):
        started = time.perf_counter()
        f(i)
        ms.append((time.perf_counter() - started) * 1000)
    ms.sort()
    return {"median": round(statistics.median(ms), 3), "p99": round(ms[min(n - 1, n * 99 // 100)], 3)}


def main(directory):
    app = lw.Loopwork.open(directory, NoNetwork())
    assert app.session() is not None, "the store has no session: run loopwork-sim ffi --keep-store first"
    ids = [o.id for o in app.list_orders(lw.ListFilter(limit=10_000))]
    pick = lambda i: ids[(i * 7919) % len(ids)]
    mine = lw.ListFilter(assigned_to_me=True, open_only=True, limit=50)
    print(
        json.dumps(
            {
                "orders_held": app.order_count(),
                "list_orders_mine_50_ms": timed(200, lambda i: app.list_orders(mine)),
                "list_orders_all_50_ms": timed(200, lambda i: app.list_orders(lw.ListFilter())),
                "get_order_ms": timed(200, lambda i: app.get_order(pick(i))),
                "countdown_ms": timed(200, lambda i: app.countdown(pick(i))),
                "timeline_ms": timed(200, lambda i: app.timeline(pick(i))),
                "sync_status_ms": timed(200, lambda i: app.sync_status()),
                "order_count_ms": timed(200, lambda i: app.order_count()),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
