#!/usr/bin/env python3
"""The HTTP parts of scripts/cluster.sh: bootstrap a shop through a replica's API, measure
propagation between two replicas, load a replica until it is killed, and check that
every acknowledged event is in the log. Standard library only.

    cluster_checks.py bootstrap URL SIM_DIR
    cluster_checks.py propagation URL_A URL_B USERS_FILE N BOUND_S
    cluster_checks.py kill-load URL_A URL_B USERS_FILE ITEM KILL_AFTER_S AFTER_S ACKED_FILE PID_A
    cluster_checks.py verify ACKED_FILE DUMP_FILE

Each prints `ok:`/`FAIL:` lines and exits non-zero on a failure.
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse


def connect(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


class Client:
    """One keep-alive connection that reconnects after an error."""

    def __init__(self, url):
        self.url = url
        self.conn = connect(url)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            reply = self.conn.getresponse()
            payload = reply.read()
            return reply.status, payload
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = connect(self.url)
            raise

    def recommendations(self, user):
        status, payload = self.request("GET", f"/v1/recommendations?user_id={urllib.parse.quote(user)}&count=10")
        if status != 200:
            raise RuntimeError(f"GET recommendations for {user}: {status} {payload[:200]!r}")
        return [item["item_id"] for item in json.loads(payload)["items"]]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def bootstrap(url, sim_dir):
    """Items, users and events of a simulated shop, through replica `url`'s API."""
    client = Client(url)
    for kind, path_of in (("items", "/v1/items/"), ("users", "/v1/users/")):
        rows = read_jsonl(os.path.join(sim_dir, f"{kind}.jsonl"))
        for row in rows:
            status, payload = client.request("PUT", path_of + urllib.parse.quote(str(row["id"])), row)
            if status != 200:
                sys.exit(f"FAIL: PUT {kind} {row['id']}: {status} {payload[:300]!r}")
        print(f"bootstrap: {len(rows)} {kind}")
    events = read_jsonl(os.path.join(sim_dir, "events.jsonl"))
    for start in range(0, len(events), 1000):
        status, payload = client.request("POST", "/v1/events:batch", events[start:start + 1000])
        if status != 200:
            sys.exit(f"FAIL: POST events {start}..: {status} {payload[:300]!r}")
    print(f"bootstrap: {len(events)} events")


def percentile(sorted_values, q):
    """numpy.percentile's default (linear) definition."""
    if not sorted_values:
        return 0.0
    rank = q * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def propagation(url_a, url_b, users_file, n, bound_s):
    """N single events, alternating the replica they are sent to, each for a user whose
    list on the *other* replica holds the item; the time until the item has left that
    list there."""
    users = [u for u in open(users_file).read().split() if u]
    clients = {"a": Client(url_a), "b": Client(url_b)}
    times, late = [], []
    for k in range(n):
        target, other = ("a", "b") if k % 2 == 0 else ("b", "a")
        user = users[(k * 7) % len(users)]
        listed = clients[other].recommendations(user)
        if not listed:
            sys.exit(f"FAIL: replica {other} recommends nothing to {user}")
        item = listed[0]
        event = {"user_id": user, "item_id": item, "action": "click"}
        started = time.monotonic()
        status, payload = clients[target].request("POST", "/v1/events", event)
        if status != 200:
            sys.exit(f"FAIL: POST /v1/events to replica {target}: {status} {payload[:300]!r}")
        while item in clients[other].recommendations(user):
            if time.monotonic() - started > bound_s:
                late.append((user, item, target))
                break
        times.append(time.monotonic() - started)
    times.sort()
    within_1s = sum(1 for t in times if t <= 1.0)
    print(f"propagation: {n} events (half sent to each replica), item gone from the other replica's list:")
    print(f"  p50 {percentile(times, 0.5) * 1000:.0f} ms, p99 {percentile(times, 0.99) * 1000:.0f} ms, "
          f"max {times[-1] * 1000:.0f} ms; within 1 s: {within_1s}/{n}")
    print("json: " + json.dumps({"propagation_p50_ms": percentile(times, 0.5) * 1000,
                                 "propagation_p99_ms": percentile(times, 0.99) * 1000,
                                 "propagation_max_ms": times[-1] * 1000,
                                 "within_1s": within_1s, "events": n}))
    if late:
        sys.exit(f"FAIL: {len(late)} events did not propagate within {bound_s} s, e.g. {late[:3]}")
    print(f"ok: every event propagated within {bound_s} s")


def kill_load(url_a, url_b, users_file, item, kill_after_s, after_s, acked_file, pid_a):
    """Batches of events with distinctive users posted to replica A (each acknowledged
    batch's users recorded), recommendations asked of replica B, A killed with SIGKILL
    mid-load; counts B's non-200 answers."""
    users = [u for u in open(users_file).read().split() if u]
    run = f"kill{os.getpid()}"
    acked, stop = [], threading.Event()
    loader_errors = [0]
    b_answers = {"ok": 0, "bad": 0, "failed": 0}
    b_bad_examples = []

    def loader(worker):
        client = Client(url_a)
        batch_no = 0
        while not stop.is_set():
            ids = [f"{run}-w{worker}-b{batch_no}-e{i}" for i in range(50)]
            body = [{"user_id": u, "item_id": item, "action": "view"} for u in ids]
            batch_no += 1
            try:
                status, _ = client.request("POST", "/v1/events:batch", body)
            except (OSError, http.client.HTTPException):
                loader_errors[0] += 1
                time.sleep(0.05)
                continue
            if status == 200:
                acked.extend(ids)
            else:
                loader_errors[0] += 1

    def reader():
        client = Client(url_b)
        k = 0
        while not stop.is_set():
            k += 1
            try:
                status, payload = client.request(
                    "GET", f"/v1/recommendations?user_id={users[(k * 7) % len(users)]}&count=10")
            except (OSError, http.client.HTTPException) as error:
                b_answers["failed"] += 1
                b_bad_examples.append(repr(error))
                continue
            if 200 <= status < 300:
                b_answers["ok"] += 1
            else:
                b_answers["bad"] += 1
                b_bad_examples.append(f"{status} {payload[:200]!r}")

    threads = [threading.Thread(target=loader, args=(w,)) for w in range(2)] + [threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    time.sleep(kill_after_s)
    acked_at_kill = len(acked)
    os.kill(pid_a, signal.SIGKILL)
    print(f"kill: SIGKILL to replica A (pid {pid_a}) after {kill_after_s} s, {acked_at_kill} events acknowledged so far")
    time.sleep(after_s)
    stop.set()
    for thread in threads:
        thread.join()
    with open(acked_file, "w") as f:
        f.write("\n".join(acked) + "\n")
    print(f"kill: {len(acked)} events acknowledged by A in all; {loader_errors[0]} batches failed (A dead)")
    print(f"kill: replica B answered {b_answers['ok']} recommendations with 2xx, {b_answers['bad']} non-2xx, "
          f"{b_answers['failed']} connection failures")
    if not acked:
        sys.exit("FAIL: replica A acknowledged nothing before the kill")
    if b_answers["bad"] or b_answers["failed"]:
        sys.exit(f"FAIL: replica B did not keep serving: {b_bad_examples[:3]}")
    if b_answers["ok"] == 0:
        sys.exit("FAIL: replica B answered nothing")
    print("ok: replica B kept serving while A was killed (0 non-2xx)")


def verify(acked_file, dump_file):
    """Every acknowledged event's user is among the event records of the log dump."""
    acked = [line for line in open(acked_file).read().split() if line]
    found = set()
    for line in open(dump_file):
        _, _, record = line.strip().partition(": ")
        if '"user_id"' not in record:
            continue
        try:
            value = json.loads(record)
        except ValueError:
            continue
        if value.get("type") == "event" and isinstance(value.get("user_id"), str):
            found.add(value["user_id"])
    missing = [e for e in acked if e not in found]
    print(f"verify: {len(acked)} acknowledged events, {len(acked) - len(missing)} found in the log")
    if missing:
        sys.exit(f"FAIL: {len(missing)} acknowledged events are missing from the log, e.g. {missing[:3]}")
    print("ok: no acknowledged event lost")


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "bootstrap" and len(argv) == 4:
        bootstrap(argv[2], argv[3])
    elif command == "propagation" and len(argv) == 7:
        propagation(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]))
    elif command == "kill-load" and len(argv) == 10:
        kill_load(argv[2], argv[3], argv[4], argv[5], float(argv[6]), float(argv[7]), argv[8], int(argv[9]))
    elif command == "verify" and len(argv) == 4:
        verify(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
