"""The public-suffix algorithm over the rules the API's `psl` crate is generated from.

Mirrors `psl::suffix_str` / `psl::domain_str` (ICANN and private sections alike, wildcard and
exception rules, the implicit `*` rule for unknown top-level domains); the Rust parity test checks
the two agree on every domain it compares.
"""


class Psl:
    def __init__(self, text):
        self.rules = set()
        self.wild = set()
        self.exc = set()
        for line in text.splitlines():
            r = line.strip()
            if not r or r.startswith("//"):
                continue
            r = r.split()[0].lower()
            if r.startswith("!"):
                self.exc.add(r[1:])
            elif r.startswith("*."):
                self.wild.add(r[2:])
            else:
                self.rules.add(r)

    def suffix(self, host):
        labels = host.split(".")
        n = len(labels)
        best = 1  # the implicit "*" rule: the last label
        for i in range(n):  # candidate suffix labels[i:]
            cand = ".".join(labels[i:])
            if cand in self.exc:
                # An exception's suffix is the rule minus its leftmost label; it wins outright.
                return ".".join(labels[i + 1:])
            k = n - i
            if cand in self.rules and k > best:
                best = k
            if i > 0 and ".".join(labels[i:]) in self.wild and k + 1 > best:
                best = k + 1
        return ".".join(labels[n - min(best, n):])

    def registrable(self, host):
        """Suffix plus one label; the host itself when it is a public suffix."""
        suf = self.suffix(host)
        if suf == host:
            return host
        rest = host[: len(host) - len(suf) - 1]
        return rest.rsplit(".", 1)[-1] + "." + suf
