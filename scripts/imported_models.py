#!/usr/bin/env python3
"""Trains the imported-model parity fixtures with the real Python libraries.

    python scripts/imported_models.py OUT_DIR [--rounds N] [--rows N] [--time]

makes seeded data (missing values, exact zeros, a categorical column) and trains four
models, each written beside the rows it must score and the library's own predictions:

    lgb_binary.txt   LightGBM objective=binary, sigmoid=0.7, categorical_feature=channel
    lgb_rank.txt     LightGBM lambdarank with zero_as_missing=True, categorical channel
    xgb_binary.json  XGBoost binary:logistic, tree_method=hist, enable_categorical
                     (a pandas category column)
    xgb_rank.json    XGBoost rank:ndcg with query groups, categorical channel

For each MODEL: MODEL + ".rows.csv" (header = feature names, in an order that differs
from the model's so the CLI must match columns by name; an empty field is missing) and
MODEL + ".expected.json" (a JSON array, the library's `predict`: probabilities for the
binary objectives, raw scores for the ranking ones). `versions.json` names the library
versions. Everything is a function of the seed: the same versions give the same files.

`scripts/check-imported-models.sh` runs this and compares `flywheel ranker predict`
with the expected arrays; `crates/flywheel-ranking/tests/fixtures/imported/` holds a
copy made with `--rounds 20 --rows 160` for `cargo test`.
"""

import argparse
import json
import os
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

SEED = 20261122
FEATURES = ["affinity", "ctr", "price", "age", "rank", "channel"]
CHANNELS = 8
# Columns in the rows CSV: not the model's order, so the CLI must match them by name.
CSV_ORDER = ["channel", "price", "affinity", "rank", "age", "ctr"]
TIMING = False


def make_features(rng, n):
    """Six features: NaN in ctr/age/channel, exact zeros in price, a category."""
    affinity = rng.normal(size=n)
    ctr = rng.normal(size=n)
    ctr[rng.random(n) < 0.2] = np.nan
    price = np.exp(rng.normal(size=n))
    price[rng.random(n) < 0.3] = 0.0
    age = rng.uniform(0, 100, size=n)
    age[rng.random(n) < 0.1] = np.nan
    rank = rng.integers(0, 20, size=n).astype(float)
    channel = rng.integers(0, CHANNELS, size=n).astype(float)
    channel[rng.random(n) < 0.05] = np.nan
    return np.column_stack([affinity, ctr, price, age, rank, channel])


def latent_score(rng, x):
    """What the labels depend on: every feature, missingness and the category."""
    channel_effect = np.array([0.9, -0.7, 0.4, -1.1, 1.3, 0.0, -0.3, 0.8])
    channel = x[:, 5]
    cat = np.where(np.isnan(channel), 0.5, channel_effect[np.nan_to_num(channel).astype(int)])
    ctr = np.where(np.isnan(x[:, 1]), -0.6, x[:, 1])
    age = np.where(np.isnan(x[:, 3]), 50.0, x[:, 3])
    price_zero = (x[:, 2] == 0.0) * 0.7
    return (
        0.8 * x[:, 0]
        + 0.6 * ctr
        - 0.3 * np.log1p(x[:, 2])
        + price_zero
        - 0.01 * age
        - 0.04 * x[:, 4]
        + cat
        + 0.5 * rng.normal(size=len(x))
    )


def special_rows(categorical_out_of_range):
    """Rows for the edge cases: all missing, zeros, tiny and signed zeros, odd categories."""
    nan = np.nan
    rows = [
        [nan, nan, nan, nan, nan, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [-0.0, -0.0, -0.0, -0.0, -0.0, 1.0],
        [1e-40, -1e-40, 1e-40, 1e-36, 0.0, 2.0],
        [1e-30, 1e-30, 1e-30, 1e-30, 3.0, 4.0],
        [5.0, -5.0, 1e6, 1e4, 100.0, 7.0],
        [-3.0, 3.0, 0.5, 20.0, 19.0, 6.0],
    ]
    if categorical_out_of_range:
        # LightGBM takes raw category values: negative, unseen, fractional and huge ones.
        rows += [
            [0.2, 0.1, 1.0, 30.0, 2.0, -1.0],
            [0.2, 0.1, 1.0, 30.0, 2.0, 9.0],
            [0.2, 0.1, 1.0, 30.0, 2.0, 2.5],
            [0.2, 0.1, 1.0, 30.0, 2.0, 1e10],
            [0.2, 0.1, 1.0, 30.0, 2.0, 40.0],
        ]
    return np.array(rows, dtype=float)


def scoring_rows(rng, n, categorical_out_of_range):
    return np.vstack([special_rows(categorical_out_of_range), make_features(rng, n)])


def write_rows_csv(path, x):
    """Header in CSV_ORDER, shortest round-trip floats, empty = missing."""
    index = [FEATURES.index(name) for name in CSV_ORDER]
    with open(path, "w", encoding="utf-8") as out:
        out.write(",".join(CSV_ORDER) + "\n")
        for row in x:
            fields = ["" if np.isnan(row[j]) else repr(float(row[j])) for j in index]
            out.write(",".join(fields) + "\n")


def write_expected(path, predictions):
    with open(path, "w", encoding="utf-8") as out:
        json.dump([float(p) for p in np.asarray(predictions, dtype=np.float64)], out)
        out.write("\n")


def groups_of(n, size):
    sizes = [size] * (n // size)
    if n % size:
        sizes.append(n % size)
    return sizes


def relevance(rng, x):
    score = latent_score(rng, x)
    return np.digitize(score, np.quantile(score, [0.5, 0.75, 0.9])).astype(int)


def lightgbm_models(out, rng, train_rows, score_rows, rounds):
    common = {
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 10,
        "min_data_per_group": 10,
        "cat_smooth": 1.0,
        "max_cat_to_onehot": 4,
        "verbose": -1,
        "seed": SEED,
        "deterministic": True,
        "num_threads": 1,
    }
    x = make_features(rng, train_rows)
    y = (latent_score(rng, x) > 0).astype(int)
    data = lgb.Dataset(x, y, feature_name=FEATURES, categorical_feature=[5])
    binary = lgb.train({**common, "objective": "binary", "sigmoid": 0.7}, data, rounds)
    save_lightgbm(out, "lgb_binary.txt", binary, scoring_rows(rng, score_rows, True))

    x = make_features(rng, train_rows)
    data = lgb.Dataset(
        x, relevance(rng, x), group=groups_of(train_rows, 20),
        feature_name=FEATURES, categorical_feature=[5],
    )
    params = {**common, "objective": "lambdarank", "zero_as_missing": True}
    ranker = lgb.train(params, data, rounds)
    save_lightgbm(out, "lgb_rank.txt", ranker, scoring_rows(rng, score_rows, True))


def timed(name, predict):
    """Runs predict(), printing its CPU time (all threads) when --time was given."""
    start = time.process_time()
    predictions = predict()
    if TIMING:
        seconds = time.process_time() - start
        print(f"{name}: library predict {len(predictions)} rows in {seconds:.3f} s CPU")
    return predictions


def save_lightgbm(out, name, booster, rows):
    path = os.path.join(out, name)
    booster.save_model(path)
    write_rows_csv(path + ".rows.csv", rows)
    predictions = timed(name, lambda: booster.predict(rows, num_threads=1))
    write_expected(path + ".expected.json", predictions)


def xgboost_frame(x):
    frame = pd.DataFrame(x[:, :5], columns=FEATURES[:5])
    codes = pd.array(x[:, 5], dtype="Float64").astype("Int64")
    frame["channel"] = pd.Categorical(codes, categories=list(range(CHANNELS)))
    return frame


def xgboost_models(out, rng, train_rows, score_rows, rounds):
    common = {
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.3,
        "max_cat_to_onehot": 1,
        "seed": SEED,
        "nthread": 1,
    }
    x = make_features(rng, train_rows)
    y = (latent_score(rng, x) > 0).astype(int)
    data = xgb.DMatrix(xgboost_frame(x), y, enable_categorical=True)
    binary = xgb.train({**common, "objective": "binary:logistic"}, data, rounds)
    save_xgboost(out, "xgb_binary.json", binary, scoring_rows(rng, score_rows, False))

    x = make_features(rng, train_rows)
    qid = np.repeat(np.arange(train_rows // 20 + 1), 20)[:train_rows]
    data = xgb.DMatrix(xgboost_frame(x), relevance(rng, x), qid=qid, enable_categorical=True)
    ranker = xgb.train({**common, "objective": "rank:ndcg"}, data, rounds)
    save_xgboost(out, "xgb_rank.json", ranker, scoring_rows(rng, score_rows, False))


def save_xgboost(out, name, booster, rows):
    path = os.path.join(out, name)
    booster.save_model(path)
    write_rows_csv(path + ".rows.csv", rows)
    predictions = timed(
        name,
        lambda: booster.predict(xgb.DMatrix(xgboost_frame(rows), enable_categorical=True)),
    )
    write_expected(path + ".expected.json", predictions)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--time", action="store_true", help="print each predict's CPU time")
    args = parser.parse_args()
    global TIMING
    TIMING = args.time
    os.makedirs(args.out, exist_ok=True)
    lightgbm_models(args.out, np.random.default_rng(SEED), args.train_rows, args.rows, args.rounds)
    xgboost_models(args.out, np.random.default_rng(SEED + 1), args.train_rows, args.rows, args.rounds)
    versions = {
        "python": sys.version.split()[0],
        "lightgbm": lgb.__version__,
        "xgboost": xgb.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "command": "python scripts/imported_models.py OUT " + " ".join(sys.argv[2:]),
    }
    with open(os.path.join(args.out, "versions.json"), "w", encoding="utf-8") as out:
        json.dump(versions, out, indent=1)
        out.write("\n")
    print(f"imported models: 4 models and their rows written to {args.out} ({versions})")


if __name__ == "__main__":
    main()
