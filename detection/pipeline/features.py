"""Features of a domain name, computed from the name alone.

This is the specification the Rust scorer (api-server/src/scan/model.rs) implements byte for byte;
change both together and bump FEATURES_VERSION.

Input: a normalized host (lowercase, no scheme, port, path or trailing dot), as UTF-8 bytes.
  suffix   the public suffix (Public Suffix List, private section included)
  reg      the registrable domain (suffix plus one label; the host itself if it is a suffix)
  label    reg without its suffix (the name the registrant chose); reg when reg is a suffix
  sub      the part left of reg ("" when none)
  tld      the last label

Sparse features: tokens, each hashed with 64-bit FNV-1a over (namespace byte + token bytes) into
2**bits buckets (hash & (2**bits - 1)); a token seen twice counts twice. In this order:
  'S' suffix; 'T' tld
  'G' byte n-grams (n = 3, 4, 5) of '^' + label + '$'; 'J' its byte 6-grams
  'H' byte n-grams (n = 3, 4) of '^' + sub + '$' (when sub is not empty)
  'W' each non-empty word of label split at '-'; 'V' each non-empty word of sub split at '.' and '-'
  'A' each run of 3 or more ASCII letters in label (check4drops -> check, drops)
  'K' the shape of label: a-z -> 'a', 0-9 -> '9', '-' kept, any other byte -> 'x', then runs of
      the same byte collapsed to one (claim-2024 -> a-9)
  'L' each lure word contained in the host (once per word); 'X' that word + '@' + tld
  'P' the hosting platform the host is a strict subdomain of (once)
  'B' each protected brand the host imitates (see below; once per brand)

Dense features, in this order (DENSE):
  len_host/32, len_label/16, labels_in_host/4, labels_in_sub/4, digit share of host,
  hyphens_in_host/4, entropy(host)/4, entropy(label)/4, longest digit run in host/8, bare IPv4,
  has 'xn--', vowel share of label letters, on a hosting platform, brand: label is a brand's name
  under another domain, brand: a brand's name is a word of the host (or a word's skeleton is the brand's), brand: a brand name (>= 5
  bytes) is contained in the host, brand: skeleton of label equals a brand's (homoglyph), brand:
  1 edit from a brand (>= 5 bytes), brand: 2 edits from a brand (>= 7 bytes), lure words/3,
  longest consonant run in label/8, non-ASCII bytes present, reg is a brand's official domain,
  a brand matched and the host has a lure word.
  "brand" conditions only count when reg is not one of that brand's official domains.
  entropy: Shannon entropy in bits of the byte distribution. edits: optimal string alignment
  distance over the skeletons. skeleton: bytes mapped 0->o 1->l i->l 3->e 4->a 5->s 7->t 8->b,
  '-' dropped, then "rn"->"m" and "vv"->"w" replaced left to right.
"""

import math

FEATURES_VERSION = 2

DENSE = [
    "len_host", "len_label", "labels", "sub_labels", "digit_share", "hyphens", "entropy_host",
    "entropy_label", "digit_run", "ipv4", "punycode", "vowel_share", "on_platform", "brand_tld_swap",
    "brand_word", "brand_contained", "brand_homoglyph", "brand_edit1", "brand_edit2", "lures",
    "consonant_run", "non_ascii", "official", "brand_and_lure",
]

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def fnv1a(ns, data):
    h = FNV_OFFSET
    h = ((h ^ ns) * FNV_PRIME) & MASK64
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


SKEL = {ord("0"): ord("o"), ord("1"): ord("l"), ord("i"): ord("l"), ord("3"): ord("e"), ord("4"): ord("a"),
        ord("5"): ord("s"), ord("7"): ord("t"), ord("8"): ord("b")}


def skeleton(b):
    mapped = bytes(SKEL.get(c, c) for c in b if c != ord("-"))
    out = bytearray()
    i = 0
    while i < len(mapped):
        if mapped[i:i + 2] == b"rn":
            out.append(ord("m"))
            i += 2
        elif mapped[i:i + 2] == b"vv":
            out.append(ord("w"))
            i += 2
        else:
            out.append(mapped[i])
            i += 1
    return bytes(out)


def osa(a, b):
    """Optimal string alignment distance (strsim::osa_distance) over bytes."""
    la, lb = len(a), len(b)
    if la == 0:
        return lb
    if lb == 0:
        return la
    prev2 = None
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        prev2, prev = prev, cur
    return prev[lb]


def entropy(b):
    if not b:
        return 0.0
    counts = [0] * 256
    for c in b:
        counts[c] += 1
    n = len(b)
    e = 0.0
    for c in range(256):  # fixed order: the Rust side sums in the same order
        if counts[c]:
            p = counts[c] / n
            e -= p * math.log2(p)
    return e


VOWELS = set(b"aeiou")


def letter_runs(b):
    """The maximal runs of ASCII letters a-z."""
    runs, start = [], None
    for i, c in enumerate(b):
        if 97 <= c <= 122:
            if start is None:
                start = i
        elif start is not None:
            runs.append(b[start:i])
            start = None
    if start is not None:
        runs.append(b[start:])
    return runs


def shape(b):
    """a-z -> 'a', 0-9 -> '9', '-' kept, anything else -> 'x'; runs of one class collapsed."""
    out = bytearray()
    for c in b:
        k = ord("a") if 97 <= c <= 122 else ord("9") if 48 <= c <= 57 else ord("-") if c == 45 else ord("x")
        if not out or out[-1] != k:
            out.append(k)
    return bytes(out)


class Extractor:
    def __init__(self, psl, config):
        self.psl = psl
        self.bits = config["hash_bits"]
        self.lures = [w.encode() for w in config["lure_words"]]
        self.platforms = [p.encode() for p in config["platforms"]]
        self.brands = []
        for b in config["brands"]:
            name = b["name"].encode()
            self.brands.append((name, skeleton(name), set(b["official"])))

    def parts(self, host):
        suffix = self.psl.suffix(host)
        reg = self.psl.registrable(host)
        label = reg[: len(reg) - len(suffix) - 1] if reg != suffix else reg
        sub = host[: len(host) - len(reg) - 1] if host != reg else ""
        return suffix, reg, label, sub

    def extract(self, host):
        """(sparse bucket -> count, dense list) for one host."""
        mask = (1 << self.bits) - 1
        tokens, dense = self.tokens(host)
        sparse = {}
        for _, h in tokens:
            k = h & mask
            sparse[k] = sparse.get(k, 0) + 1
        return sparse, dense

    def tokens(self, host):
        """([(namespace, 64-bit hash)] in the order the scorer sums them, dense list) for one host."""
        suffix, reg, label, sub = self.parts(host)
        hb, lb, sb = host.encode(), label.encode(), sub.encode()
        out = []

        def tok(ns, data):
            out.append((ns, fnv1a(ns, data)))

        tok(ord("S"), suffix.encode())
        tld = hb.rsplit(b".", 1)[-1]
        tok(ord("T"), tld)
        g = b"^" + lb + b"$"
        for n in (3, 4, 5):
            for i in range(len(g) - n + 1):
                tok(ord("G"), g[i:i + n])
        for i in range(len(g) - 6 + 1):
            tok(ord("J"), g[i:i + 6])
        if sb:
            g = b"^" + sb + b"$"
            for n in (3, 4):
                for i in range(len(g) - n + 1):
                    tok(ord("H"), g[i:i + n])
        for w in lb.split(b"-"):
            if w:
                tok(ord("W"), w)
        for w in sb.replace(b".", b"-").split(b"-"):
            if w:
                tok(ord("V"), w)
        for run in letter_runs(lb):
            if len(run) >= 3:
                tok(ord("A"), run)
        tok(ord("K"), shape(lb))
        lures = 0
        for w in self.lures:
            if w in hb:
                tok(ord("L"), w)
                tok(ord("X"), w + b"@" + tld)
                lures += 1
        on_platform = 0.0
        for p in self.platforms:
            if len(hb) > len(p) and hb.endswith(p) and hb[len(hb) - len(p) - 1] == ord("."):
                tok(ord("P"), p)
                on_platform = 1.0
                break

        words = set(w for w in hb.replace(b".", b"-").split(b"-") if w)
        word_skels = set(skeleton(w) for w in words)
        lskel = skeleton(lb)
        tld_swap = word = contained = homoglyph = edit1 = edit2 = is_official = 0.0
        any_brand = False
        for name, nskel, official in self.brands:
            if reg in official:
                is_official = 1.0
                continue
            hit = False
            if lb == name:
                tld_swap = 1.0
                hit = True
            if name in words or nskel in word_skels:
                word = 1.0
                hit = True
            if len(name) >= 5 and name in hb:
                contained = 1.0
                hit = True
            if len(name) >= 5 and lb != name and abs(len(lskel) - len(nskel)) <= 2:
                d = osa(lskel, nskel)
                if d == 0:
                    homoglyph = 1.0
                    hit = True
                elif d == 1:
                    edit1 = 1.0
                    hit = True
                elif d == 2 and len(name) >= 7:
                    edit2 = 1.0
                    hit = True
            if hit:
                tok(ord("B"), name)
                any_brand = True

        digits = sum(1 for c in hb if 48 <= c <= 57)
        run = best_run = 0
        for c in hb:
            run = run + 1 if 48 <= c <= 57 else 0
            best_run = max(best_run, run)
        labels = hb.split(b".")
        ipv4 = 1.0 if len(labels) == 4 and all(x and all(48 <= c <= 57 for c in x) for x in labels) else 0.0
        letters = [c for c in lb if 97 <= c <= 122]
        vowels = sum(1 for c in letters if c in VOWELS)
        crun = best_crun = 0
        for c in lb:
            crun = crun + 1 if (97 <= c <= 122 and c not in VOWELS) else 0
            best_crun = max(best_crun, crun)
        dense = [
            len(hb) / 32.0,
            len(lb) / 16.0,
            len(labels) / 4.0,
            (len(sb.split(b".")) if sb else 0) / 4.0,
            digits / len(hb),
            hb.count(b"-") / 4.0,
            entropy(hb) / 4.0,
            entropy(lb) / 4.0,
            best_run / 8.0,
            ipv4,
            1.0 if b"xn--" in hb else 0.0,
            (vowels / len(letters)) if letters else 0.0,
            on_platform,
            tld_swap,
            word,
            contained,
            homoglyph,
            edit1,
            edit2,
            lures / 3.0,
            best_crun / 8.0,
            1.0 if any(c >= 128 for c in hb) else 0.0,
            is_official,
            1.0 if any_brand and lures else 0.0,
        ]
        return out, dense
