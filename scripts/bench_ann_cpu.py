#!/usr/bin/env python3
"""CPU time per query of a saved hnswlib index (`ann_anchor.py bench --save`), measured
like `flywheel bench ann` measures its own: ONE query thread, k = 10, batch search of the
1,000 queries, each ef timed 3 times over >= 0.5 s of passes, and this thread's CPU time
(time.thread_time) over the same passes divided by the queries searched.

    python bench_ann_cpu.py --anchor ann_anchor.py --data DIR --index FILE --efs 32,80,320 --json OUT
"""
import argparse
import importlib.util
import json
import os
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--anchor", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--efs", required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("ann_anchor", args.anchor)
    anchor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchor)
    queries = np.load(os.path.join(args.data, "queries.npy"))
    gt = np.load(os.path.join(args.data, "gt10.npy"))
    lib = anchor.Hnswlib.load(args.index, anchor.DIM, anchor.N_BASE)
    rows = []
    for ef in (int(e) for e in args.efs.split(",")):
        rates, searched, found = [], 0, None
        cpu = time.thread_time()
        for _ in range(3):
            passes, t = 0, time.perf_counter()
            while True:
                found = lib.search(queries, ef)
                passes += 1
                if time.perf_counter() - t >= 0.5:
                    break
            searched += passes * len(queries)
            rates.append(passes * len(queries) / (time.perf_counter() - t))
        cpu_us = (time.thread_time() - cpu) * 1e6 / searched
        rows.append({"ef": ef, "recall10": anchor.recall(found, gt), "qps": sorted(rates)[1],
                     "cpu_us_per_query": cpu_us})
    text = json.dumps({"lib": "hnswlib", "version": lib.version, "rows": rows}, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
