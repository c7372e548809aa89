#!/usr/bin/env python3
"""The peers' side of `flywheel bench peers`: implicit's ALS, EASE in numpy, popularity.

Reads the split that flywheel wrote (train.tsv / test.tsv: user, item, rating, timestamp,
tab-separated, no header), so both sides score exactly the same pairs. Protocol and
metric definitions: shared/research/peers-ml100k.md (Microsoft Recommenders' at k = 10):
every rating is an implicit positive; candidates = items seen in train minus the user's
own train items; NDCG@10 with binary gain and IDCG over min(10, |rel|); P@10 (always /10);
R@10; MAP (AP@10 / |rel|) and MAP@10 (AP@10 / min(10, |rel|)), averaged over test users.

implicit's ALS gets the setting of the doc's honest row (chosen on validation there):
32 factors, regularization 30, 15 iterations, confidence 1 + alpha*x with alpha 10 fed as
the stored values (implicit treats the stored value as the confidence itself); and the
same at 64 factors (the speed comparison's common setting). Each fit runs on every
thread count of --threads: implicit's num_threads, BLAS limited to 1 thread around it
(implicit parallelises itself); numpy's EASE (float64 closed form, Steck's
`G = XᵀX + λI; P = inv(G); B = −P / diag(P); diag(B) = 0`) with OpenBLAS limited to that
many threads by threadpoolctl. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from
the environment before numpy loads, so OpenBLAS picks its own kernel (printed).
Fit seconds are the median of --repeats fits, wall (perf_counter) and process CPU
(process_time: every thread's CPU).

Writes {"rows": [{"system", "threads", "ndcg", "precision", "recall", "map", "map10",
"train_seconds", "cpu_seconds"}], "versions": {...}, "blas": [...]} to --json and prints
the rows.
"""
import os

# Must precede numpy: let OpenBLAS choose its kernel for this CPU (see the docstring).
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.pop("OPENBLAS_L2_SIZE", None)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402

K = 10
ALS_TUNED_FACTORS = 32
ALS_COMMON_FACTORS = 64
ALS_REGULARIZATION = 30.0
ALS_ALPHA = 10.0
ALS_ITERATIONS = 15


def read_pairs(path):
    """(user, item) pairs of a user<TAB>item<TAB>rating<TAB>timestamp file."""
    pairs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                sys.exit(f"{path}:{n}: expected user<TAB>item<TAB>..., got {line!r}")
            pairs.append((int(fields[0]), int(fields[1])))
    return pairs


def user_metrics(ranked, relevant):
    """Recommenders' metrics at K for one user: (ndcg, precision, recall, map, map@k)."""
    hits, dcg, ap = 0, 0.0, 0.0
    for rank, item in enumerate(ranked[:K]):
        if item in relevant:
            hits += 1
            dcg += 1.0 / math.log2(rank + 2)
            ap += hits / (rank + 1)
    ideal = min(K, len(relevant))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(ideal))
    return (
        dcg / idcg,
        hits / K,
        hits / len(relevant),
        ap / len(relevant),
        ap / ideal,
    )


def score(system, fit, truth, recommend):
    sums = np.zeros(5)
    for user, relevant in truth.items():
        sums += user_metrics(recommend(user), relevant)
    means = sums / len(truth)
    return {
        "system": system,
        "ndcg": means[0],
        "precision": means[1],
        "recall": means[2],
        "map": means[3],
        "map10": means[4],
        "threads": fit["threads"],
        "train_seconds": fit["wall"],
        "cpu_seconds": fit["cpu"],
    }


def timed_fits(fit, repeats, threads):
    """Runs fit() `repeats` times; the last result and the median wall and CPU seconds."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fit()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, {
        "wall": float(np.median(walls)),
        "cpu": float(np.median(cpus)),
        "threads": threads,
    }


def top_k_lists(scores, user_items, users_in_order, items):
    """Top K item ids per row of a dense score matrix, the row's own train items excluded."""
    scores = np.array(scores, dtype=np.float64)
    scores[user_items.nonzero()] = -np.inf
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    return {u: [items[j] for j in row] for u, row in zip(users_in_order, top)}


def fit_ease(x, lam):
    """Steck's closed form in float64 numpy: returns B."""
    g = (x.T @ x).toarray()
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=lambda v: [int(t) for t in v.split(",")], default=[2, 1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ease-lambda", type=float, default=300.0)
    args = parser.parse_args()

    try:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as e:
        sys.exit(f"cannot import implicit ({e}); scripts/bench-peers.sh installs it in target/bench-venv")

    train, test = read_pairs(args.train), read_pairs(args.test)
    users = sorted({u for u, _ in train})
    items = sorted({i for _, i in train})
    user_index = {u: n for n, u in enumerate(users)}
    item_index = {i: n for n, i in enumerate(items)}
    seen = defaultdict(set)
    for u, i in train:
        seen[u].add(i)
    truth = defaultdict(set)
    for u, i in test:
        truth[u].add(i)

    # Popularity: distinct train users per item, most popular first.
    start = time.perf_counter()
    counts = defaultdict(int)
    for u, i in set(train):
        counts[i] += 1
    by_popularity = sorted(counts, key=lambda i: (-counts[i], i))
    popularity_seconds = time.perf_counter() - start

    def popular(user):
        own = seen.get(user, set())
        return [i for i in by_popularity if i not in own][:K]

    from threadpoolctl import threadpool_info, threadpool_limits

    rows_out = []
    test_users = [u for u in truth if u in user_index]
    test_rows = [user_index[u] for u in test_users]

    # implicit's ALS on the user x item matrix of confidences 1 + alpha * 1.
    rows = [user_index[u] for u, _ in train]
    cols = [item_index[i] for _, i in train]
    values = np.full(len(train), 1.0 + ALS_ALPHA, dtype=np.float32)
    user_items = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)))
    user_items.sum_duplicates()
    for factors in (ALS_COMMON_FACTORS, ALS_TUNED_FACTORS):
        for threads in args.threads:
            def fit():
                with threadpool_limits(limits=1, user_api="blas"):
                    model = AlternatingLeastSquares(
                        factors=factors,
                        regularization=ALS_REGULARIZATION,
                        alpha=1.0,
                        iterations=ALS_ITERATIONS,
                        random_state=args.seed,
                        num_threads=threads,
                    )
                    model.fit(user_items, show_progress=False)
                return model

            model, timing = timed_fits(fit, args.repeats, threads)
            ids, _ = model.recommend(
                np.array(test_rows),
                user_items[test_rows],
                N=K,
                filter_already_liked_items=True,
            )
            lists = {u: [items[j] for j in row if j >= 0] for u, row in zip(test_users, ids)}
            name = (
                f"implicit ALS ({factors} f, {ALS_ITERATIONS} it, reg {ALS_REGULARIZATION:g}, "
                f"α {ALS_ALPHA:g})"
            )
            rows_out.append(score(name, timing, truth, lambda u: lists.get(u, [])))

    # EASE in numpy float64 on the binary user x item matrix.
    binary = sp.csr_matrix(
        (np.ones(len(train)), (rows, cols)), shape=(len(users), len(items)), dtype=np.float64
    )
    binary.data[:] = 1.0
    for threads in args.threads:
        with threadpool_limits(limits=threads, user_api="blas"):
            b, timing = timed_fits(lambda: fit_ease(binary, args.ease_lambda), args.repeats, threads)
        lists = top_k_lists(binary[test_rows] @ b, binary[test_rows], test_users, items)
        rows_out.append(
            score(f"numpy EASE (λ {args.ease_lambda:g}, float64)", timing, truth, lambda u: lists.get(u, []))
        )
    rows_out.append(
        score("popularity (python)", {"wall": popularity_seconds, "cpu": None, "threads": 1}, truth, popular)
    )
    blas = [
        {key: info.get(key) for key in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    result = {
        "rows": rows_out,
        "versions": {
            "python": sys.version.split()[0],
            "implicit": implicit.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "blas": blas,
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    for row in result["rows"]:
        cpu = "" if row["cpu_seconds"] is None else f", CPU {row['cpu_seconds']:.3f} s"
        print(
            f"  {row['system']:<48} {row['threads']} thr  NDCG@10 {row['ndcg']:.4f}  "
            f"fit {row['train_seconds']:.3f} s{cpu}"
        )
    print(f"  versions: {result['versions']}")
    for info in blas:
        print(
            f"  BLAS: {info['internal_api']} {info['version']}, kernel {info['architecture']}, "
            f"{info['num_threads']} threads by default ({os.path.basename(info['filepath'])})"
        )
    print(
        "  OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: "
        f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')} / {os.environ.get('OPENBLAS_L2_SIZE', 'unset')}"
    )


if __name__ == "__main__":
    main()
