"""Build the labelled, de-duplicated, time-split dataset from the fetched sources.

Reads $CACHE/raw/*.tsv (fetch.py) and writes $CACHE/dataset.tsv:
  host, label (1 phishing, 0 legitimate), split (train/validation/test), first_seen (unix s), sources

- Hosts are normalized like the API does (lowercase, no scheme/path/port/trailing dot, leading
  '*.' dropped); names that the API would refuse, and bare public suffixes, are left out.
- One row per registrable domain (per platform site on hosting platforms, which the Public
  Suffix List does not always cover, e.g. arweave.net): the earliest-seen host stands for it, so
  no site is in two splits.
- A key found in both a phishing and a legitimate source is ambiguous and left out of both.
- Phishing is split by first-seen date: the newest entries are the test set, the ones before
  them the validation set (model selection, calibration, thresholds), the rest training.
  Legitimate names carry no date; they are split by a hash of their key.
"""

import calendar
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from psl import Psl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL = os.path.join(ROOT, "api-server", "src", "scan", "official_domains.txt")
LABEL_RE = re.compile(r"^[^\s/?#@:*!\"'<>\\|]+$")


def normalize(raw):
    s = raw.strip().lower()
    if "://" in s:
        s = s.split("://", 1)[1]
    s = re.split(r"[/?#]", s, maxsplit=1)[0]
    s = s.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    while s.startswith("*."):
        s = s[2:]
    if not s or len(s) > 253 or "." not in s:
        return None
    for label in s.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return None
        if not all(c.isalnum() or c in "-_" for c in label):
            return None
    return s


def day(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%d"))


def site_key(psl, platforms, host):
    for p in platforms:
        if host.endswith("." + p):
            return host[: -len(p) - 1].rsplit(".", 1)[-1] + "." + p
    return psl.registrable(host)


def main():
    cache = os.environ["DETECTION_CACHE"]
    raw = os.path.join(cache, "raw")
    sources = json.load(open(os.path.join(ROOT, "detection", "sources.json")))
    config = json.load(open(os.path.join(ROOT, "detection", "config.json")))
    psl = Psl(open(os.path.join(raw, "psl.txt"), encoding="utf-8").read())
    platforms = config["platforms"]
    stats = {"dropped_invalid": {}, "dropped_public_suffix": 0}

    def load(cls):
        hosts = {}  # host -> (first_seen, set of sources)
        for src in sources[cls]:
            bad = 0
            for line in open(os.path.join(raw, src["name"] + ".tsv"), encoding="utf-8"):
                e, ts, _ = line.rstrip("\n").split("\t")
                h = normalize(e)
                if h is None:
                    bad += 1
                    continue
                if psl.suffix(h) == h:
                    stats["dropped_public_suffix"] += 1
                    continue
                ts = int(ts)
                old = hosts.get(h)
                if old is None:
                    hosts[h] = (ts, {src["name"]})
                else:
                    hosts[h] = (min(old[0], ts) if old[0] and ts else (old[0] or ts), old[1] | {src["name"]})
            stats["dropped_invalid"][src["name"]] = bad
        by_key = {}
        for h in sorted(hosts):
            ts, srcs = hosts[h]
            k = site_key(psl, platforms, h)
            cur = by_key.get(k)
            if cur is None or (ts, h) < (cur[1], cur[0]):
                srcs_all = srcs | (cur[2] if cur else set())
                by_key[k] = (h, ts, srcs_all)
            else:
                by_key[k] = (cur[0], cur[1], cur[2] | srcs)
        stats[cls + "_hosts"] = len(hosts)
        stats[cls + "_keys"] = len(by_key)
        return by_key

    phish = load("phishing")
    benign = load("benign")
    # The brands' official domains (config.json) are legitimate by definition: training only,
    # since they are hand-picked (and the model has a feature for them).
    official = sorted({d for b in config["brands"] for d in b["official"]})
    for d in official:
        k = site_key(psl, platforms, d)
        benign[k] = (d, 0, {"official-brands"})
    stats["official_brand_domains"] = len(official)
    # The API's official domains (api-server/src/scan/official_domains.txt: the ecosystem's major
    # projects, each with the source that names it) are legitimate by definition too, and the
    # names phishing imitates most: training only, weighted as hard negatives (config.json).
    listed = 0
    for line in open(OFFICIAL, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            d = normalize(line.split("|", 1)[0])
            k = site_key(psl, platforms, d)
            old = benign.get(k)
            benign[k] = (old[0] if old else d, 0, (old[2] if old else set()) | {"official-domains"})
            listed += 1
    stats["official_domains"] = listed
    both = set(phish) & set(benign)
    stats["ambiguous_keys_dropped"] = len(both)
    test_from = day(config["split"]["test_from"])
    val_from = day(config["split"]["validation_from"])
    nt = config["split"]["benign_test_share_of_10"]
    nv = config["split"]["benign_validation_share_of_10"]
    rows = []
    for k, (h, ts, srcs) in phish.items():
        if k in both:
            continue
        split = "test" if ts >= test_from else "validation" if ts >= val_from else "train"
        rows.append((h, 1, split, ts, ",".join(sorted(srcs))))
    for k, (h, ts, srcs) in benign.items():
        if k in both:
            continue
        b = int(hashlib.sha256(k.encode()).hexdigest()[:8], 16) % 10
        split = "test" if b < nt else "validation" if b < nt + nv else "train"
        if "official-brands" in srcs or "official-domains" in srcs:
            split = "train"
        rows.append((h, 0, split, 0, ",".join(sorted(srcs))))
    rows.sort(key=lambda r: (r[2], -r[1], r[3], r[0]))
    with open(os.path.join(cache, "dataset.tsv"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    counts = {}
    for r in rows:
        key = f"{r[2]}_{'phishing' if r[1] else 'legitimate'}"
        counts[key] = counts.get(key, 0) + 1
    stats["rows"] = counts
    dates = {}
    for split in ("train", "validation", "test"):
        ts = [r[3] for r in rows if r[1] == 1 and r[2] == split and r[3]]
        if ts:
            dates[split] = [time.strftime("%Y-%m-%d", time.gmtime(min(ts))),
                            time.strftime("%Y-%m-%d", time.gmtime(max(ts)))]
    stats["phishing_first_seen"] = dates
    with open(os.path.join(cache, "dataset-stats.json"), "w") as f:
        json.dump(stats, f, indent=1, sort_keys=True)
    print(json.dumps(stats, indent=1, sort_keys=True), file=sys.stderr)


if __name__ == "__main__":
    main()
