"""Compare model choices on the validation split (never the test split).

    DETECTION_CACHE=~/.cache/securityguard/detection OMP_NUM_THREADS=1 \
        $DETECTION_CACHE/venv/bin/python detection/explore.py [EXPERIMENT...]
        $DETECTION_CACHE/venv/bin/python detection/explore.py sources   # the fourth round
        $DETECTION_CACHE/venv/bin/python detection/explore.py ceiling   # no time split

Not part of `train.sh`: this is how the settings in `config.json` were chosen. Every experiment
trains on the training split and reports, on the validation split, the recall at the threshold
that flags at most 0.5 % of the validation legitimate names, the ROC-AUC, and the share of the
validation names of the MetaMask allowlist (legitimate crypto sites) flagged at that threshold.

The hashed tokens of every host are computed once (all namespaces, 2**20 buckets) and cached in
the cache directory; an experiment keeps the namespaces it wants and folds the buckets to its
number of hash bits, which gives the same matrix `train.py` builds for those settings.
"""

import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pipeline"))
from features import DENSE, Extractor  # noqa: E402
from psl import Psl  # noqa: E402

RAW_BITS = 20
V1_NAMESPACES = b"STGHWVLPB"
V1_DENSE = len(DENSE) - 1  # brand_and_lure is new
DAY = 86400


def load(cache, config):
    rows = {"train": [], "validation": [], "test": []}
    for line in open(os.path.join(cache, "dataset.tsv"), encoding="utf-8"):
        host, label, split, ts, srcs = line.rstrip("\n").split("\t")
        rows[split].append((host, int(label), int(ts), srcs))
    del rows["test"]  # never looked at here
    return rows


def tokens(cache, config, rows):
    key = hashlib.sha256(open(os.path.join(HERE, "pipeline", "features.py"), "rb").read()
                         + json.dumps([config[k] for k in ("lure_words", "platforms", "brands")]).encode()
                         + open(os.path.join(cache, "dataset.tsv"), "rb").read()).hexdigest()[:12]
    path = os.path.join(cache, f"explore-tokens-{key}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {s: (z[s + "_r"], z[s + "_c"], z[s + "_n"], z[s + "_d"]) for s in rows}
    psl = Psl(open(os.path.join(cache, "raw", "psl.txt"), encoding="utf-8").read())
    ex = Extractor(psl, config)
    out = {}
    t0 = time.time()
    for split, rs in rows.items():
        r, c, n = [], [], []
        d = np.zeros((len(rs), len(DENSE)))
        for i, (h, *_) in enumerate(rs):
            toks, dense = ex.tokens(h)
            for ns, hv in toks:
                r.append(i)
                c.append(hv & ((1 << RAW_BITS) - 1))
                n.append(ns)
            d[i] = dense
        out[split] = (np.array(r, np.int32), np.array(c, np.int32), np.array(n, np.uint8), d)
        print(f"tokens {split}: {len(rs)} hosts, {len(r)} tokens, {time.time() - t0:.0f} s", file=sys.stderr)
    np.savez(path, **{f"{s}_{k}": v for s, t in out.items() for k, v in zip("rcnd", t)})
    return out


def matrix(tok, n_rows, bits, namespaces, n_dense):
    r, c, n, d = tok
    keep = np.isin(n, np.frombuffer(namespaces, np.uint8))
    x = sp.csr_matrix((np.ones(keep.sum()), (r[keep], c[keep] & ((1 << bits) - 1))), shape=(n_rows, 1 << bits))
    return sp.hstack([x, sp.csr_matrix(d[:, :n_dense])], format="csr")


def at_fpr(z, y, max_fpr):
    zb = np.sort(z[y == 0])[::-1]
    t = np.nextafter(zb[int(math.floor(max_fpr * len(zb)))], np.inf)
    return t, float((z[y == 1] >= t).mean())


def report(name, z, yv, mm, seconds, by_source=()):
    t, rec = at_fpr(z, yv, 0.005)
    _, rec2 = at_fpr(z, yv, 0.002)
    _, rec4 = at_fpr(z, yv, 0.004)
    auc = roc_auc_score(yv, z)
    mm_fpr = float((z[mm] >= t).mean())
    line = (f"{name:58s} recall@0.5% {rec:.4f}  @0.4% {rec4:.4f}  @0.2% {rec2:.4f}  AUC {auc:.4f}  "
            f"MetaMask-allowlist flagged {mm_fpr * 100:.1f} % ({int((z[mm] >= t).sum())}/{int(mm.sum())})")
    for src, sel in by_source:
        if sel.any():
            line += f"  {src} {int((z[sel] >= t).sum())}/{int(sel.sum())}"
    print(line + f"  {seconds:.0f} s", flush=True)
    return {"name": name, "recall": rec, "auc": auc}


def recall_where_crypto_flagged(z, y, crypto, t, q):
    """Recall at the stricter of threshold t and the one that flags at most q of the crypto names."""
    tc, _ = at_fpr(z, np.where(crypto, 0, np.where(y == 1, 1, -1)), q)
    return float((z[y == 1] >= max(t, tc)).mean())


def served_matrices(cache, config):
    """The training and validation rows with train.py's matrix for the served settings (cached in
    the cache directory, keyed by the dataset and features.py)."""
    import pickle

    import train as T

    ex = Extractor(Psl(open(os.path.join(cache, "raw", "psl.txt"), encoding="utf-8").read()), config)
    data = {"train": [], "validation": []}
    for line in open(os.path.join(cache, "dataset.tsv"), encoding="utf-8"):
        host, label, split, ts, srcs = line.rstrip("\n").split("\t")
        if split in data:
            data[split].append((host, int(label), int(ts), srcs))
    key = hashlib.sha256(open(os.path.join(cache, "dataset.tsv"), "rb").read()
                         + open(os.path.join(HERE, "pipeline", "features.py"), "rb").read()).hexdigest()[:12]
    path = os.path.join(cache, f"explore-matrix-{key}.pkl")
    if os.path.exists(path):
        X = pickle.load(open(path, "rb"))
    else:
        X = {s: T.matrix(ex, [r[0] for r in rows], config["hash_bits"]) for s, rows in data.items()}
        pickle.dump(X, open(path, "wb"))
    return data, X


def sources_round(cache, config):
    """Fourth round (`explore.py sources`): which sources to train on, with the served settings
    (train.py's matrix and sample weights, the current config.json). Trains on the training split
    with a group of rows left out, and compares on the validation split of the current dataset:
    the official domains as training rows, the crypto project lists as hard negatives (and their
    weight), the wallets' block lists and the scam feed as phishing; then C and recency again."""
    import train as T

    tr = config["training"]
    data, X = served_matrices(cache, config)
    yv = np.array([r[1] for r in data["validation"]])
    crypto = np.array([r[1] == 0 and T.is_crypto_legitimate(tr, r[3]) for r in data["validation"]])

    def fit(name, leave_out=lambda r: False, C=1.0, **settings):
        idx = [i for i, r in enumerate(data["train"]) if not leave_out(r)]
        rows = [data["train"][i] for i in idx]
        m = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, solver="lbfgs")
        m.fit(X["train"][idx], np.array([r[1] for r in rows]), sample_weight=T.sample_weights(dict(tr, **settings), rows))
        z = m.decision_function(X["validation"])
        t, rec = at_fpr(z, yv, 0.005)
        line = f"{name:60s} recall@0.5% {rec:.4f}  AUC {roc_auc_score(yv, z):.4f}  crypto flagged {(z[crypto] >= t).mean() * 100:.2f} %"
        for q in (0.03, 0.02, 0.01):
            line += f"  recall where {q * 100:.0f} % of crypto flagged {recall_where_crypto_flagged(z, yv, crypto, t, q):.4f}"
        print(line, flush=True)

    projects = {"ethereum-lists-tokens", "oss-directory-crypto", "base-ecosystem", "superchain-token-list",
                "sonarwatch-platforms", "cardano-showcase", "walletconnect-registry"}
    feeds = {"solflare-blocklist", "keplr-blocklist", "spmedia-crypto-scam-feed"}

    def only(group, label):
        return lambda r: r[1] == label and set(r[3].split(",")) <= group

    fit("served settings")
    fit("without the official domains", only({"official-domains"}, 0))
    fit("without the crypto project lists", only(projects, 0))
    fit("without the new phishing sources", only(feeds, 1))
    fit("without the scam feed", only({"spmedia-crypto-scam-feed"}, 1))
    hard = tr["hard_negative_weights"]
    for k in (1.0, 3.0, 10.0):
        fit(f"crypto project lists weighted {k:g}", hard_negative_weights=dict(hard, **{s: k for s in projects}))
    fit("every crypto source weighted 10", hard_negative_weights={s: 10.0 for s in hard})
    for days in (90, 365):
        fit(f"recency {days} days", recency_days=days)
    for C in (0.5, 2.0):
        fit(f"C = {C:g}", C=C)


def ceiling_round(cache, config):
    """How far the name alone can go (`explore.py ceiling`): the served features and
    model trained without a time split, on phishing of every period (random 5-fold cross-validation
    over the training and validation rows, no recency weights), against the time split (training
    rows, then the validation months). The pooled figure is an upper bound for these features: it
    has no drift to new campaigns, which the product always meets. Then less regularization (C = 10),
    as a check that the model's capacity is not what limits it."""
    import train as T

    tr = config["training"]
    data, X = served_matrices(cache, config)
    rows = data["train"] + data["validation"]
    x = sp.vstack([X["train"], X["validation"]], format="csr")
    y = np.array([r[1] for r in rows])
    crypto = np.array([r[1] == 0 and T.is_crypto_legitimate(tr, r[3]) for r in rows])
    period = np.array([0] * len(data["train"]) + [1] * len(data["validation"]))

    def line(name, z, sel):
        yy, zz, cc = y[sel], z[sel], crypto[sel]
        out = f"{name:62s} AUC {roc_auc_score(yy, zz):.4f}"
        for q in (0.005, 0.01, 0.02):
            out += f"  recall@{q * 100:g}% {at_fpr(zz, yy, q)[1]:.3f}"
        t, _ = at_fpr(zz, yy, 0.005)
        out += (f"  crypto flagged {(zz[cc] >= t).mean() * 100:.2f} %  recall where 1 % of crypto flagged "
                f"{recall_where_crypto_flagged(zz, yy, cc, t, 0.01):.3f}")
        print(out, flush=True)

    def lr(C):
        return LogisticRegression(C=C, class_weight="balanced", max_iter=tr["max_iter"], solver="lbfgs")

    # Names shared outright: validation phishing whose label (the registrable domain without its
    # suffix) a legitimate row of either split also has.
    psl = Psl(open(os.path.join(cache, "raw", "psl.txt"), encoding="utf-8").read())

    def label(host):
        suffix = psl.suffix(host)
        return host[: -len(suffix) - 1].split(".")[-1] if len(host) > len(suffix) else host

    legitimate = {label(r[0]) for r in rows if r[1] == 0}
    shared = [r[0] for r in data["validation"] if r[1] == 1 and label(r[0]) in legitimate]
    n = sum(r[1] for r in data["validation"])
    print(f"validation phishing whose label a legitimate row also has: {len(shared)} of {n} "
          f"({len(shared) / n * 100:.1f} %), e.g. {', '.join(shared[:8])}", flush=True)

    m = lr(1.0).fit(X["train"], y[period == 0], sample_weight=T.sample_weights(tr, data["train"]))
    z = np.zeros(len(rows))
    z[period == 1] = m.decision_function(X["validation"])
    line("time split: training rows, scored on the validation months", z, period == 1)
    w = T.sample_weights(dict(tr, recency_days=0), rows)
    fold = np.random.RandomState(0).randint(0, 5, len(rows))
    for C in (1.0, 10.0):
        z = np.zeros(len(rows))
        for k in range(5):
            fit = fold != k
            z[~fit] = lr(C).fit(x[fit], y[fit], sample_weight=w[fit]).decision_function(x[~fit])
        line(f"no time split (5-fold), C = {C:g}, every row", z, np.ones(len(rows), bool))
        line(f"no time split (5-fold), C = {C:g}, validation months", z, period == 1)


def main():
    cache = os.environ["DETECTION_CACHE"]
    config = json.load(open(os.path.join(HERE, "config.json")))
    if sys.argv[1:] == ["sources"]:
        return sources_round(cache, config)
    if sys.argv[1:] == ["ceiling"]:
        return ceiling_round(cache, config)
    rows = load(cache, config)
    tok = tokens(cache, config, rows)
    y = {s: np.array([r[1] for r in rs]) for s, rs in rows.items()}
    yv = y["validation"]
    mm = np.array([r[1] == 0 and "metamask-allowlist" in r[3] for r in rows["validation"]])
    ts = np.array([r[2] for r in rows["train"]])
    src_mm = np.array([r[1] == 0 and "metamask-allowlist" in r[3] for r in rows["train"]])
    src_chains = np.array([r[1] == 0 and "ethereum-chains" in r[3] for r in rows["train"]])
    by_source = [(src, np.array([r[1] == 0 and src in r[3].split(",") for r in rows["validation"]]))
                 for src in ("ethereum-chains", "simple-icons")]
    val_from = max(ts)  # the newest training phishing
    all_ns = b"STGJHWVAKLXPB"
    wanted = sys.argv[1:]

    def fit(name, bits=15, ns=all_ns, n_dense=len(DENSE), C=1.0, weight=None, train_mask=None):
        if wanted and not any(w in name for w in wanted):
            return None
        t0 = time.time()
        xt = matrix(tok["train"], len(rows["train"]), bits, ns, n_dense)
        xv = matrix(tok["validation"], len(rows["validation"]), bits, ns, n_dense)
        yt = y["train"]
        w = np.ones(len(yt)) if weight is None else weight.copy()
        if train_mask is not None:
            xt, yt, w = xt[train_mask], yt[train_mask], w[train_mask]
        # Balanced class weights, as class_weight="balanced" computes them, times the sample weights.
        for cls in (0, 1):
            w[yt == cls] *= len(yt) / (2.0 * (yt == cls).sum())
        m = LogisticRegression(C=C, max_iter=2000, solver="lbfgs")
        m.fit(xt, yt, sample_weight=w)
        z = m.decision_function(xv)
        return report(name, z, yv, mm, time.time() - t0, by_source), m, z

    # In order of what they tell: the new token kinds, more hash bits, recency, whether the newest
    # phishing matters, hard negatives; then the served model's settings and finer variants.
    fit("v2 features, 15 bits, C=1")
    fit("v2 features, 17 bits, C=1", bits=17)
    recency = {tau: np.where(y["train"] == 1, np.exp(-(val_from - ts) / (tau * DAY)), 1.0) for tau in (180, 365)}
    fit("v2, 17 bits, C=1, recency 365 d", bits=17, weight=recency[365])
    # Does newer phishing help? Without the last four months of training phishing.
    old = (y["train"] == 0) | (ts < val_from - 120 * DAY)
    fit("v2, 17 bits, C=1, training phishing minus its newest 120 days", bits=17, train_mask=old)
    # Hard negatives: the MetaMask allowlist's legitimate crypto sites weigh more.
    fit("v2, 17 bits, C=1, MetaMask allowlist x3", bits=17, weight=np.where(src_mm, 3.0, 1.0))
    fit("v1 features, 15 bits, C=1", ns=V1_NAMESPACES, n_dense=V1_DENSE)
    fit("v2 features, 17 bits, C=0.3", bits=17, C=0.3)
    fit("v2 features, 18 bits, C=1", bits=18)
    fit("v2, 17 bits, C=1, recency 180 d", bits=17, weight=recency[180])
    fit("v2, 17 bits, C=1, MetaMask allowlist x10", bits=17, weight=np.where(src_mm, 10.0, 1.0))
    # Second round, from what the first showed: more buckets, recency and hard negatives together.
    for bits in (18, 19, 20):
        for tau in (90, 180):
            for k in (1.0, 5.0):
                for C in (1.0, 3.0):
                    w = np.where(y["train"] == 1, np.exp(-(val_from - ts) / (tau * DAY)), np.where(src_mm, k, 1.0))
                    fit(f"round2: {bits} bits, C={C:g}, recency {tau} d, MetaMask allowlist x{k:g}", bits=bits, C=C,
                        weight=w)
    # Third round, with the chain list and Simple Icons among the legitimate names: the chain
    # list's crypto sites as hard negatives too, and their weight.
    for C in (1.0, 3.0):
        for k_mm, k_ch in ((5.0, 1.0), (5.0, 3.0), (5.0, 5.0), (5.0, 10.0)):
            w = np.where(y["train"] == 1, np.exp(-(val_from - ts) / (180 * DAY)),
                         np.where(src_mm, k_mm, np.where(src_chains, k_ch, 1.0)))
            fit(f"round3: 18 bits, C={C:g}, recency 180 d, MetaMask x{k_mm:g}, chains x{k_ch:g}", bits=18, C=C,
                weight=w)
    # What the served settings miss, and the legitimate names they flag (validation only).
    if "misses" in wanted:
        w = np.where(y["train"] == 1, np.exp(-(val_from - ts) / (180 * DAY)), np.where(src_mm, 5.0, 1.0))
        _, _, z = fit("misses: 18 bits, C=1, recency 180 d, MetaMask x5", bits=18, weight=w)
        t, _ = at_fpr(z, yv, 0.005)
        hosts = [r[0] for r in rows["validation"]]
        missed = [hosts[i] for i in np.flatnonzero((yv == 1) & (z < t))]
        flagged = sorted(((z[i], hosts[i], rows["validation"][i][3]) for i in np.flatnonzero((yv == 0) & (z >= t))),
                         reverse=True)
        rng = np.random.default_rng(0)
        print("missed phishing (a sample):", *sorted(rng.choice(missed, min(150, len(missed)), replace=False)))
        print("flagged legitimate:", *[f"{h}({s})" for _, h, s in flagged])
    # A stronger model on top: gradient-boosted trees over the logistic regression's score
    # (out of fold on the training split) and the dense features. Only when asked for by name.
    if "stack" in wanted:
        from sklearn.ensemble import HistGradientBoostingClassifier
        t0 = time.time()
        xt = matrix(tok["train"], len(rows["train"]), 18, all_ns, len(DENSE))
        xv = matrix(tok["validation"], len(rows["validation"]), 18, all_ns, len(DENSE))
        yt = y["train"]
        fold = np.arange(len(yt)) % 3
        oof = np.zeros(len(yt))
        for f in range(3):
            m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(xt[fold != f], yt[fold != f])
            oof[fold == f] = m.decision_function(xt[fold == f])
        m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(xt, yt)
        zv = m.decision_function(xv)
        report("stack: the regression alone", zv, yv, mm, time.time() - t0)
        ft = np.column_stack([oof, tok["train"][3]])
        fv = np.column_stack([zv, tok["validation"][3]])
        for depth, iters in ((3, 100), (4, 200)):
            g = HistGradientBoostingClassifier(max_iter=iters, max_depth=depth, learning_rate=0.1,
                                               early_stopping=False, class_weight="balanced", random_state=0)
            g.fit(ft, yt)
            report(f"stack: trees depth {depth} x {iters} over score + dense", g.decision_function(fv), yv, mm,
                   time.time() - t0)
    for drop in (b"J", b"A", b"K", b"X"):
        fit(f"v2 without {drop.decode()}, 17 bits, C=1", bits=17, ns=bytes(c for c in all_ns if c not in drop))


if __name__ == "__main__":
    main()
