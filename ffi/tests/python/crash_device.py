"""A phone that is killed mid-sync, driven by tests/tests/bindings.rs
(`a_device_killed_mid_sync_loses_nothing_it_committed`), through the generated Python bindings.

    crash_device.py work DIR SERVER ORDERS TAG  open the store in DIR (signing in as kefu the first
                                                time), then loop: add a note (to ORDERS, comma-
                                                separated ids, in turn), print
                                                `committed <text>` once add_note returned, and
                                                sync every other note (between `sync start` and
                                                `sync end`); until killed
    crash_device.py check DIR SERVER ORDERS     open the store, sync until nothing is pending, and
                                                print one JSON line: the orders' notes on the
                                                device and the pending count

Not collected by pytest (its name does not start with test_).
"""

import json
import sys

import loopwork_ffi as lw
from transport import HttpTransport


def open_device(directory, server):
    app = lw.Loopwork.open(directory, HttpTransport())
    if app.session() is None:
        app.sign_in(server, "kefu", "loopwork-demo", "crash-test phone")
        app.sync()
    return app


def main():
    mode, directory, server, orders = sys.argv[1:5]
    orders = orders.split(",")
    app = open_device(directory, server)
    if mode == "work":
        tag = sys.argv[5]
        n = 0
        while True:
            text = f"{tag}-{n}"
            app.add_note(orders[n % len(orders)], text)
            print(f"committed {text}", flush=True)
            if n % 2 == 1:
                print("sync start", flush=True)
                app.sync()
                print("sync end", flush=True)
            n += 1
    else:
        for _ in range(20):
            app.sync()
            if app.sync_status().pending_uploads == 0:
                break
        notes = [n.text for order in orders for n in app.get_order(order).notes]
        print(json.dumps({"notes": notes, "pending": app.sync_status().pending_uploads}), flush=True)


if __name__ == "__main__":
    main()
