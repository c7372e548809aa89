#!/usr/bin/env python3
"""The peers' side of `flywheel bench peers`: implicit's ALS and a popularity baseline.

Reads the split that flywheel wrote (train.tsv / test.tsv: user, item, rating, timestamp,
tab-separated, no header), so both sides score exactly the same pairs. Protocol and
metric definitions: shared/research/peers-ml100k.md (Microsoft Recommenders' at k = 10):
every rating is an implicit positive; candidates = items seen in train minus the user's
own train items; NDCG@10 with binary gain and IDCG over min(10, |rel|); P@10 (always /10);
R@10; MAP (AP@10 / |rel|) and MAP@10 (AP@10 / min(10, |rel|)), averaged over test users.

implicit's ALS gets the setting of the doc's honest row (chosen on validation there):
32 factors, regularization 30, 15 iterations, confidence 1 + alpha*x with alpha 10 fed as
the stored values (implicit treats the stored value as the confidence itself).

Writes {"rows": [{"system", "ndcg", "precision", "recall", "map", "map10",
"train_seconds"}], "versions": {...}} to --json and prints the rows.
"""
import os

# implicit wants single-threaded BLAS (it parallelises itself); must precede numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

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
ALS_FACTORS = 32
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


def score(system, train_seconds, truth, recommend):
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
        "train_seconds": train_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--seed", type=int, default=42)
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

    # implicit's ALS on the user x item matrix of confidences 1 + alpha * 1.
    rows = [user_index[u] for u, _ in train]
    cols = [item_index[i] for _, i in train]
    values = np.full(len(train), 1.0 + ALS_ALPHA, dtype=np.float32)
    user_items = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)))
    user_items.sum_duplicates()
    model = AlternatingLeastSquares(
        factors=ALS_FACTORS,
        regularization=ALS_REGULARIZATION,
        alpha=1.0,
        iterations=ALS_ITERATIONS,
        random_state=args.seed,
    )
    start = time.perf_counter()
    model.fit(user_items, show_progress=False)
    als_seconds = time.perf_counter() - start

    test_users = [u for u in truth if u in user_index]
    ids, _ = model.recommend(
        np.array([user_index[u] for u in test_users]),
        user_items[[user_index[u] for u in test_users]],
        N=K,
        filter_already_liked_items=True,
    )
    als_lists = {u: [items[j] for j in row if j >= 0] for u, row in zip(test_users, ids)}

    name = f"implicit ALS ({ALS_FACTORS} f, reg {ALS_REGULARIZATION:g}, α {ALS_ALPHA:g})"
    result = {
        "rows": [
            score(name, als_seconds, truth, lambda u: als_lists.get(u, [])),
            score("popularity (python)", popularity_seconds, truth, popular),
        ],
        "versions": {
            "python": sys.version.split()[0],
            "implicit": implicit.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    for row in result["rows"]:
        print(
            f"  {row['system']:<32} NDCG@10 {row['ndcg']:.4f}  P@10 {row['precision']:.4f}  "
            f"R@10 {row['recall']:.4f}  MAP {row['map']:.4f}  MAP@10 {row['map10']:.4f}  "
            f"train {row['train_seconds']:.3f} s"
        )
    print(f"  versions: {result['versions']}")


if __name__ == "__main__":
    main()
