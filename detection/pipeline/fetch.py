"""Fetch the pinned sources of sources.json into the cache and derive each entry's first-seen date.

Writes, under $CACHE/raw/:
  <name>.tsv   one line per entry: host, first-seen (unix seconds, 0 when unknown), commit or version
  psl.txt      the public-suffix rules the API's `psl` crate was generated from

Git sources are read from a local bare mirror when one exists ($SG_GIT_MIRRORS/<owner>+<name>/repo,
or an earlier clone in the cache), else cloned from GitHub. The first-seen date of an entry is the
committer date of the first commit (in the history of the pinned commit) whose diff of the list file
adds a line carrying that entry; only entries still in the list at the pinned commit are kept
(entries that were removed again, typically false positives, are not phishing for us). Legitimate
names kept in git (project directories, token lists) are read from the files of the pinned commit,
undated.
"""

import fnmatch
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository


def sh(args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, **kw).stdout


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_dir(cache, repo):
    key = repo.replace("/", "+")
    mirrors = os.environ.get("SG_GIT_MIRRORS", "/work/.mirror")
    for cand in (os.path.join(mirrors, key, "repo"), os.path.join(cache, "git", key + ".git")):
        if os.path.isdir(cand):
            return cand
    dest = os.path.join(cache, "git", key + ".git")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    print(f"cloning {repo} into {dest}", file=sys.stderr)
    subprocess.run(["git", "clone", "--bare", "--quiet", f"https://github.com/{repo}.git", dest], check=True)
    return dest


ENTRY_RE = {
    # all.json: {"allow": [...], "deny": ["host", ...]}, one quoted entry a line
    "polkadot-deny": re.compile(r'^\s*"([^"]+)",?\s*$'),
    # blocklist.yaml: "  - url: host" (optionally quoted), further keys on their own lines
    "phantom-yaml": re.compile(r'^\s*-\s*url:\s*["\']?([^"\'\s]+)["\']?\s*$'),
    # a plain list: one host a line; empty lines and '#' comments skipped
    "plain-lines": re.compile(r'^\s*([^\s#]\S*)\s*$'),
}


def current_entries(fmt, text):
    if fmt == "polkadot-deny":
        return json.loads(text)["deny"]
    if fmt in ("phantom-yaml", "plain-lines"):
        out = []
        for line in text.splitlines():
            m = ENTRY_RE[fmt].match(line)
            if m:
                out.append(m.group(1))
        return out
    raise ValueError(fmt)


def fetch_git(cache, src):
    gd = git_dir(cache, src["repo"])
    commit = src["commit"]
    subprocess.run(["git", "-C", gd, "cat-file", "-e", commit + "^{commit}"], check=True)
    text = sh(["git", "-C", gd, "show", f"{commit}:{src['file']}"]).decode("utf-8")
    keep = set(current_entries(src["format"], text))
    first = {}
    rx = ENTRY_RE[src["format"]]
    log = subprocess.Popen(
        ["git", "-C", gd, "log", "--reverse", "--first-parent", "--format=C %H %ct", "-p", "--unified=0",
         "--no-renames", "--no-color", commit, "--", src["file"]],
        stdout=subprocess.PIPE,
    )
    cur = None
    for raw in io.TextIOWrapper(log.stdout, encoding="utf-8", errors="replace"):
        if raw.startswith("C "):
            _, h, ts = raw.split()
            cur = (int(ts), h)
        elif raw.startswith("+") and not raw.startswith("+++"):
            m = rx.match(raw[1:])
            if m:
                e = m.group(1)
                if e in keep and e not in first:
                    first[e] = cur
    if log.wait() != 0:
        raise RuntimeError("git log failed")
    missing = keep - set(first)
    rows = []
    for e in sorted(keep):
        ts, h = first.get(e, (0, ""))
        rows.append((e, ts, h))
    return rows, {"entries": len(keep), "without_date": len(missing)}


def download_pypi(cache, src):
    d = os.path.join(cache, "downloads")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, src["filename"])
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", d, f"{src['package']}=={src['version']}"], check=True)
    return path


def download_npm(cache, src):
    d = os.path.join(cache, "downloads")
    os.makedirs(d, exist_ok=True)
    # npm pack names a scoped package's tarball scope-name-version.tgz.
    path = os.path.join(d, f"{src['package'].lstrip('@').replace('/', '-')}-{src['version']}.tgz")
    if not os.path.exists(path):
        subprocess.run(["npm", "pack", "--silent", f"{src['package']}@{src['version']}"], cwd=d, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def hsts_hosts(wheel):
    """Every host of the Chromium HSTS preload list as packed in the hstspreload wheel.

    hstspreload.bin holds, per layer (label depth) and per label bucket, records of
    (flags, length, label bytes); leaf records carry the whole host name.
    """
    with zipfile.ZipFile(wheel) as z:
        data = z.read("hstspreload/hstspreload.bin")
    hosts = []
    i = 0
    while i < len(data):
        flags, size = data[i], data[i + 1]
        label = data[i + 2:i + 2 + size]
        i += 2 + size
        if flags & 0x80:  # leaf: the full host name
            hosts.append(label.decode("ascii", "replace"))
    return sorted(set(hosts))


URL_RE = re.compile(r"(?:https?|wss?)://[^\s'\"`<>)]+")
HOST_RE = re.compile(r"^(?:https?|wss?)://([A-Za-z0-9._-]+)(?:[:/?#]|$)")
IPV4_RE = re.compile(r"^[0-9.]+$")


def url_hosts(urls):
    """The host names of http(s) and ws(s) URLs. Left out: literal IP addresses (RPC nodes of chain lists
    are often bare IPs, which would teach the model that a bare IP is a legitimate site) and URLs
    whose host is a template (`https://${API}/`)."""
    hosts = set()
    for u in urls:
        m = HOST_RE.match(u.strip())
        if m and not IPV4_RE.match(m.group(1)):
            hosts.add(m.group(1).lower())
    return sorted(hosts)


def tar_texts(path, patterns):
    """The text of every file of the tarball whose name matches one of the glob patterns, in name order."""
    with tarfile.open(path) as t:
        members = sorted((m for m in t.getmembers() if m.isfile() and any(fnmatch.fnmatchcase(m.name, p)
                                                                            for p in patterns)),
                         key=lambda m: m.name)
        if not members:
            raise SystemExit(f"{path}: no file matches {patterns}")
        return [t.extractfile(m).read().decode("utf-8", "replace") for m in members]


def ccxt_urls(text):
    """The URLs of an exchange class's `'urls': {...}` block (ccxt's js/src/<exchange>.js): its
    site, API, documentation and fee pages, not the other links of the file."""
    i = text.find("'urls': {")
    if i < 0:
        return []
    depth = 0
    for k in range(i + len("'urls': "), len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return URL_RE.findall(text[i:k])
    return []


def field_urls(text, field):
    """The values of a key named `field` (JSON, YAML or JavaScript: `"website": "…"`, `website: '…'`)
    that look like a site: a URL, or a bare host, which gets https:// in front."""
    out = []
    for v in re.findall(r"[\"']?\b%s[\"']?\s*:\s*[\"']([^\"'\s]+)[\"']" % re.escape(field), text):
        out.append(v if "://" in v else "https://" + v)
    return out


def yaml_list_urls(text, key):
    """The URLs of a top-level YAML list (`websites:` followed by `  - url: …` items)."""
    m = re.search(r"^%s:\s*\n((?:[ -].*\n?)*)" % re.escape(key), text, re.M)
    return URL_RE.findall(m.group(1)) if m else []


def git_texts(cache, src):
    """The text of every file of the pinned commit whose path matches one of the glob patterns (and
    contains `require`, when set), in path order."""
    gd = git_dir(cache, src["repo"])
    names = sh(["git", "-C", gd, "ls-tree", "-r", "--name-only", src["commit"]]).decode().splitlines()
    names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in src["files"])]
    if not names:
        raise SystemExit(f"{src['repo']}@{src['commit']}: no file matches {src['files']}")
    out = sh(["git", "-C", gd, "cat-file", "--batch"],
             input="".join(f"{src['commit']}:{n}\n" for n in names).encode())
    texts, i = [], 0
    while i < len(out):
        header_end = out.index(b"\n", i)
        header = out[i:header_end].split()
        if header[-1] == b"missing":  # the mirror lacks the blob (a partial snapshot)
            raise SystemExit(f"{src['repo']}@{src['commit']}: {header[0].decode()} is missing from {gd}")
        size = int(header[2])
        texts.append(out[header_end + 1:header_end + 1 + size].decode("utf-8", "replace"))
        i = header_end + 1 + size + 1
    return [t for t in texts if src.get("require", "") in t]


def fetch_git_files(cache, src):
    """A legitimate-name source kept in a git repository: the site URLs of its files at the pin."""
    texts = git_texts(cache, src)
    if src["format"] == "field-urls":
        entries = url_hosts(u for t in texts for f in src["fields"] for u in field_urls(t, f))
    elif src["format"] == "yaml-list-urls":
        entries = url_hosts(u for t in texts for u in yaml_list_urls(t, src["key"]))
    else:
        raise ValueError(src["format"])
    # `exclude`: placeholders of the file's own comments (a template's example host).
    entries = [e for e in entries if e not in src.get("exclude", ())]
    return [(e, 0, src["commit"]) for e in entries], {"entries": len(entries), "files": len(texts)}


def fetch_file(cache, src):
    if src["kind"] == "pypi":
        path = download_pypi(cache, src)
    else:
        path = download_npm(cache, src)
    got = sha256(path)
    if got != src["sha256"]:
        raise SystemExit(f"{path}: sha256 {got} is not the pinned {src['sha256']}")
    if src["format"] == "hstspreload-bin":
        entries = hsts_hosts(path)
    elif src["format"] == "eth-phishing-detect-whitelist":
        with tarfile.open(path) as t:
            cfg = json.load(t.extractfile(src["file"]))
        entries = sorted(set(cfg["whitelist"]))
    elif src["format"] == "url-hosts":
        texts = tar_texts(path, src.get("files") or [src["file"]])
        entries = url_hosts(u for text in texts for u in URL_RE.findall(text))
    elif src["format"] == "ccxt-urls":
        entries = url_hosts(u for text in tar_texts(path, src["files"]) for u in ccxt_urls(text))
    elif src["format"] == "token-list-websites":
        with tarfile.open(path) as t:
            tokens = json.load(t.extractfile(src["file"]))["tokens"]
        entries = url_hosts(w if "://" in w else "https://" + w
                            for w in ((tok.get("extensions") or {}).get("website") for tok in tokens) if w)
    elif src["format"] == "simple-icons-urls":
        with tarfile.open(path) as t:
            icons = json.load(t.extractfile(src["file"]))
        entries = url_hosts(u for icon in icons for u in (icon.get("source"), icon.get("guidelines")) if u)
    else:
        raise ValueError(src["format"])
    return [(e, 0, src["version"]) for e in entries], {"entries": len(entries)}


def psl_rules(cache, spec):
    lock = open(os.path.join(ROOT, "Cargo.lock"), encoding="utf-8").read()
    m = re.search(r'name = "psl"\nversion = "([^"]+)"', lock)
    version = m.group(1)
    meta = json.loads(sh(["cargo", "metadata", "--format-version", "1", "--locked", "--manifest-path",
                          os.path.join(ROOT, "Cargo.toml")], stderr=subprocess.DEVNULL))
    pkg = [p for p in meta["packages"] if p["name"] == "psl" and p["version"] == version][0]
    path = os.path.join(os.path.dirname(pkg["manifest_path"]), spec["file"])
    return version, open(path, encoding="utf-8").read()


def main():
    cache = os.environ["DETECTION_CACHE"]
    raw = os.path.join(cache, "raw")
    os.makedirs(raw, exist_ok=True)
    sources = json.load(open(os.path.join(ROOT, "detection", "sources.json")))
    summary = {}
    for cls in ("phishing", "benign"):
        for src in sources[cls]:
            if src["kind"] == "git":
                rows, info = fetch_git(cache, src) if cls == "phishing" else fetch_git_files(cache, src)
            else:
                rows, info = fetch_file(cache, src)
            with open(os.path.join(raw, src["name"] + ".tsv"), "w", encoding="utf-8") as f:
                for e, ts, ref in rows:
                    f.write(f"{e}\t{ts}\t{ref}\n")
            summary[src["name"]] = info
            print(f"{src['name']}: {info}", file=sys.stderr)
    version, rules = psl_rules(cache, sources["psl"])
    with open(os.path.join(raw, "psl.txt"), "w", encoding="utf-8") as f:
        f.write(rules)
    summary["psl"] = {"crate_version": version, "rules_sha256": hashlib.sha256(rules.encode()).hexdigest()}
    with open(os.path.join(raw, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
