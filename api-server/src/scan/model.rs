//! The domain-risk model: a calibrated logistic regression over features of the domain name
//! alone, trained by `detection/` (`just train-domain-model`) and shipped as
//! `domain_model.json` beside this file.
//!
//! The features are those of `detection/pipeline/features.py`, computed here byte for byte (the
//! parity test compares the probabilities with the ones the training script exports). Scoring
//! allocates nothing: tokens are hashed and their weights summed as they are produced, with
//! stack buffers for n-grams and skeletons.

use aho_corasick::AhoCorasick;
use serde::Deserialize;

use super::verdict::Action;

/// The artifact compiled into the service.
pub const ARTIFACT: &str = include_str!("domain_model.json");

/// The features this code computes, in the artifact's order (`features.py`'s `DENSE`).
const DENSE: [&str; 24] = [
    "len_host",
    "len_label",
    "labels",
    "sub_labels",
    "digit_share",
    "hyphens",
    "entropy_host",
    "entropy_label",
    "digit_run",
    "ipv4",
    "punycode",
    "vowel_share",
    "on_platform",
    "brand_tld_swap",
    "brand_word",
    "brand_contained",
    "brand_homoglyph",
    "brand_edit1",
    "brand_edit2",
    "lures",
    "consonant_run",
    "non_ascii",
    "official",
    "brand_and_lure",
];
const FEATURES_VERSION: u32 = 2;
/// Longest host the scorer accepts (RFC 1035), and so the size of its buffers.
const MAX_HOST: usize = 253;
const MAX_NAME: usize = 63;
/// Most lure words and brands an artifact may have: the words and brands found in a host are
/// kept in fixed bit sets, so that scoring allocates nothing.
const MAX_LURES: usize = 128;
const MAX_BRANDS: usize = 256;
/// Brand names from this length on count when contained anywhere in the host.
const CONTAINED_FROM: usize = 5;

#[derive(Deserialize)]
struct Artifact {
    format: u32,
    features_version: u32,
    version: String,
    hash_bits: u32,
    dense: Vec<String>,
    intercept: f64,
    weights: Vec<f64>,
    dense_weights: Vec<f64>,
    calibration: Calibration,
    thresholds: Thresholds,
    lure_words: Vec<String>,
    platforms: Vec<String>,
    brands: Vec<BrandSpec>,
}

#[derive(Deserialize)]
struct Calibration {
    a: f64,
    b: f64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct Thresholds {
    /// Probability from which the model says WARN.
    pub warn: f64,
    /// Probability from which the model says BLOCK.
    pub block: f64,
    /// Probability below which the model vouches for a name: the domain scan then ignores the
    /// name rules' heuristic warnings (see `scan::scan_domain`). 0 (the default) lets them always
    /// count.
    #[serde(default)]
    pub rules: f64,
}

#[derive(Deserialize)]
struct BrandSpec {
    name: String,
    official: Vec<String>,
}

struct Brand {
    name: String,
    skeleton: Vec<u8>,
    /// The letters of `skeleton`, counted (see `Letters`).
    letters: Letters,
    official: Vec<String>,
}

/// Counts of the bytes of a skeleton, in 32 buckets (`byte % 32`). Half the difference between
/// two counts (more precisely: the larger of the two one-sided differences) is a lower bound of
/// the edit distance, since an edit changes it by at most one and a transposition not at all;
/// merging bytes into buckets only lowers it. It rules most brands out before the edit
/// distance is computed.
#[derive(Clone, Copy)]
struct Letters([u8; 32]);

impl Letters {
    fn of(s: &[u8]) -> Self {
        let mut counts = [0u8; 32];
        for &c in s {
            counts[usize::from(c % 32)] = counts[usize::from(c % 32)].saturating_add(1);
        }
        Self(counts)
    }

    /// A lower bound of the edit distance between the two skeletons counted.
    fn distance_at_least(&self, other: &Self) -> usize {
        let (mut more, mut fewer) = (0usize, 0usize);
        for (&a, &b) in self.0.iter().zip(&other.0) {
            more += usize::from(a.saturating_sub(b));
            fewer += usize::from(b.saturating_sub(a));
        }
        more.max(fewer)
    }
}

/// A loaded model.
pub struct DomainModel {
    version: String,
    mask: u64,
    weights: Vec<f64>,
    dense_weights: [f64; DENSE.len()],
    intercept: f64,
    a: f64,
    b: f64,
    thresholds: Thresholds,
    lures: Vec<String>,
    /// Finds every lure word in a host in one pass (pattern i is `lures[i]`).
    lure_finder: AhoCorasick,
    platforms: Vec<String>,
    brands: Vec<Brand>,
    /// Finds every brand name of `CONTAINED_FROM` letters or more in a host in one pass
    /// (pattern i is the brand `contained_brands[i]`).
    brand_finder: AhoCorasick,
    contained_brands: Vec<usize>,
}

/// A fixed set of small indices (lure words, brands).
struct Bits<const WORDS: usize>([u64; WORDS]);

impl<const WORDS: usize> Bits<WORDS> {
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

impl<const WORDS: usize> Default for Bits<WORDS> {
    fn default() -> Self {
        Self([0; WORDS])
    }
}

/// The model's view of one domain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// Calibrated probability that the domain is phishing.
    pub probability: f64,
    pub action: Action,
}

impl DomainModel {
    /// The model compiled into the service (`domain_model.json`).
    pub fn compiled_in() -> Result<Self, String> {
        Self::from_json(ARTIFACT)
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        let art: Artifact = serde_json::from_str(json).map_err(|e| format!("domain model: {e}"))?;
        if art.format != 1 || art.features_version != FEATURES_VERSION {
            return Err(format!(
                "domain model: format {} / features {} is not the supported 1 / {FEATURES_VERSION}",
                art.format, art.features_version
            ));
        }
        if art.dense.iter().map(String::as_str).ne(DENSE) {
            return Err("domain model: dense features differ from this scorer's".into());
        }
        if !(1..=24).contains(&art.hash_bits) || art.weights.len() != 1usize << art.hash_bits {
            return Err("domain model: weights do not match hash_bits".into());
        }
        let dense_weights: [f64; DENSE.len()] =
            art.dense_weights.try_into().map_err(|_| "domain model: wrong number of dense weights")?;
        if art.lure_words.len() > MAX_LURES || art.brands.len() > MAX_BRANDS {
            return Err(format!("domain model: more than {MAX_LURES} lure words or {MAX_BRANDS} brands"));
        }
        let mut brands = Vec::with_capacity(art.brands.len());
        for b in art.brands {
            if b.name.is_empty() || b.name.len() > MAX_NAME {
                return Err(format!("domain model: brand name {:?} is empty or too long", b.name));
            }
            let mut buf = [0u8; MAX_HOST];
            let skeleton = skeleton(b.name.as_bytes(), &mut buf).to_vec();
            let letters = Letters::of(&skeleton);
            brands.push(Brand { name: b.name, skeleton, letters, official: b.official });
        }
        let finder = |words: &mut dyn Iterator<Item = &str>| {
            AhoCorasick::new(words).map_err(|e| format!("domain model: cannot search for its words: {e}"))
        };
        let lure_finder = finder(&mut art.lure_words.iter().map(String::as_str))?;
        let contained_brands: Vec<usize> =
            (0..brands.len()).filter(|&i| brands[i].name.len() >= CONTAINED_FROM).collect();
        let brand_finder = finder(&mut contained_brands.iter().map(|&i| brands[i].name.as_str()))?;
        Ok(Self {
            version: art.version,
            mask: (1u64 << art.hash_bits) - 1,
            weights: art.weights,
            dense_weights,
            intercept: art.intercept,
            a: art.calibration.a,
            b: art.calibration.b,
            thresholds: art.thresholds,
            lures: art.lure_words,
            lure_finder,
            platforms: art.platforms,
            brands,
            brand_finder,
            contained_brands,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Probability and action for a normalized domain (see `domain::normalize`).
    pub fn assess(&self, host: &str) -> Assessment {
        let probability = self.probability(host);
        let action = if probability >= self.thresholds.block {
            Action::Block
        } else if probability >= self.thresholds.warn {
            Action::Warn
        } else {
            Action::None
        };
        Assessment { probability, action }
    }

    /// The calibrated probability that a normalized domain is phishing.
    pub fn probability(&self, host: &str) -> f64 {
        let z = self.logit(host);
        sigmoid(self.a * z + self.b)
    }

    fn weight(&self, ns: u8, data: &[u8]) -> f64 {
        self.weights[(fnv1a(ns, data) & self.mask) as usize]
    }

    /// The uncalibrated score: intercept + token weights + dense features · weights, summed in
    /// the order `features.py` produces them.
    fn logit(&self, host: &str) -> f64 {
        let p = Parts::new(&host[..floor_char_boundary(host, MAX_HOST)]);
        let mut z = self.intercept;
        self.add_tokens(&p, &mut z);
        let lures = self.add_lures(&p, &mut z);
        let on_platform = self.add_platform(&p, &mut z);
        let brands = self.add_brands(&p, &mut z);
        for (w, x) in self.dense_weights.iter().zip(dense_features(&p, lures, on_platform, &brands)) {
            z += w * x;
        }
        z
    }

    /// Suffix, top-level domain, character n-grams of the registrable label and of the
    /// subdomain, their words, the label's letter runs and its shape.
    fn add_tokens(&self, p: &Parts, z: &mut f64) {
        let (lb, sb) = (p.lb, p.sb);
        *z += self.weight(b'S', p.suffix.as_bytes());
        *z += self.weight(b'T', p.tld);
        let mut buf = [0u8; MAX_HOST + 2];
        let g = bracket(lb, &mut buf);
        for n in 3..=5 {
            for gram in g.windows(n) {
                *z += self.weight(b'G', gram);
            }
        }
        for gram in g.windows(6) {
            *z += self.weight(b'J', gram);
        }
        if !sb.is_empty() {
            let g = bracket(sb, &mut buf);
            for n in 3..=4 {
                for gram in g.windows(n) {
                    *z += self.weight(b'H', gram);
                }
            }
        }
        for w in lb.split(|&c| c == b'-').filter(|w| !w.is_empty()) {
            *z += self.weight(b'W', w);
        }
        for w in sb.split(|&c| c == b'.' || c == b'-').filter(|w| !w.is_empty()) {
            *z += self.weight(b'V', w);
        }
        for run in lb.split(|c| !c.is_ascii_lowercase()).filter(|r| r.len() >= 3) {
            *z += self.weight(b'A', run);
        }
        *z += self.weight(b'K', shape(lb, &mut buf));
    }

    /// The lure words the host contains, alone and with the top-level domain; returns how many.
    fn add_lures(&self, p: &Parts, z: &mut f64) -> u32 {
        let mut found = Bits::<{ MAX_LURES / 64 }>::default();
        for m in self.lure_finder.find_overlapping_iter(p.hb) {
            found.insert(m.pattern().as_usize());
        }
        let mut lures = 0u32;
        // In the list's order, as `features.py` adds them.
        for (i, w) in self.lures.iter().enumerate() {
            if found.contains(i) {
                *z += self.weight(b'L', w.as_bytes());
                let h = fnv1a_more(fnv1a_more(fnv1a(b'X', w.as_bytes()), b"@"), p.tld);
                *z += self.weights[(h & self.mask) as usize];
                lures += 1;
            }
        }
        lures
    }

    /// The first hosting platform the host is under; returns 1.0 when there is one.
    fn add_platform(&self, p: &Parts, z: &mut f64) -> f64 {
        let hb = p.hb;
        for platform in &self.platforms {
            let pb = platform.as_bytes();
            if hb.len() > pb.len() && hb.ends_with(pb) && hb[hb.len() - pb.len() - 1] == b'.' {
                *z += self.weight(b'P', pb);
                return 1.0;
            }
        }
        0.0
    }

    /// Brands: under another domain, as a word, contained, or a few edits away; the token of
    /// each brand that matched.
    fn add_brands(&self, p: &Parts, z: &mut f64) -> BrandHits {
        let mut lskel_buf = [0u8; MAX_HOST];
        let lskel = skeleton(p.lb, &mut lskel_buf);
        let letters = Letters::of(lskel);
        let words = HostWords::new(p.hb);
        let mut contained = Bits::<{ MAX_BRANDS / 64 }>::default();
        for m in self.brand_finder.find_overlapping_iter(p.hb) {
            contained.insert(self.contained_brands[m.pattern().as_usize()]);
        }
        let mut hits = BrandHits::default();
        for (i, brand) in self.brands.iter().enumerate() {
            if brand.official.iter().any(|o| o == p.reg) {
                hits.official = true;
                continue;
            }
            if hits.compare(brand, p, (lskel, &letters), &words, contained.contains(i)) {
                *z += self.weight(b'B', brand.name.as_bytes());
                hits.any = true;
            }
        }
        hits
    }
}

/// A host as the features see it: the registrable domain by the Public Suffix List, its first
/// label and the subdomain in front of it.
struct Parts<'a> {
    host: &'a str,
    hb: &'a [u8],
    /// The last label.
    tld: &'a [u8],
    suffix: &'a str,
    reg: &'a str,
    /// The registrable domain's label (`reg` without the suffix).
    lb: &'a [u8],
    /// The subdomain (empty when there is none).
    sb: &'a [u8],
}

impl<'a> Parts<'a> {
    fn new(host: &'a str) -> Self {
        let suffix = psl::suffix_str(host).unwrap_or_else(|| host.rsplit('.').next().unwrap_or(host));
        let reg = psl::domain_str(host).unwrap_or(host);
        let label = if reg.len() > suffix.len() { &reg[..reg.len() - suffix.len() - 1] } else { reg };
        let sub = if host.len() > reg.len() { &host[..host.len() - reg.len() - 1] } else { "" };
        let hb = host.as_bytes();
        let tld = hb.rsplit(|&c| c == b'.').next().unwrap_or(hb);
        Self { host, hb, tld, suffix, reg, lb: label.as_bytes(), sb: sub.as_bytes() }
    }
}

/// What the comparisons with the brands found: the dense features `brand_*` and `official`.
#[derive(Default)]
struct BrandHits {
    tld_swap: f64,
    word: f64,
    contained: f64,
    homoglyph: f64,
    edit1: f64,
    edit2: f64,
    official: bool,
    /// Some brand (not at its official domain) matched.
    any: bool,
}

impl BrandHits {
    /// Compares the host with one brand (not its official domain); true when any signal fired.
    /// `contained`: the host contains the brand's name (of `CONTAINED_FROM` letters or more).
    /// `lskel`: the skeleton of the registrable label, and its letters counted.
    fn compare(
        &mut self,
        brand: &Brand,
        p: &Parts,
        (lskel, letters): (&[u8], &Letters),
        words: &HostWords,
        contained: bool,
    ) -> bool {
        let lb = p.lb;
        let name = brand.name.as_bytes();
        let mut hit = false;
        if lb == name {
            self.tld_swap = 1.0;
            hit = true;
        }
        if words.any(name, &brand.skeleton) {
            self.word = 1.0;
            hit = true;
        }
        if contained {
            self.contained = 1.0;
            hit = true;
        }
        if name.len() >= 5
            && lb != name
            && lskel.len().abs_diff(brand.skeleton.len()) <= 2
            && letters.distance_at_least(&brand.letters) <= 2
        {
            let edits = match osa_within(lskel, &brand.skeleton, 2) {
                0 => &mut self.homoglyph,
                1 => &mut self.edit1,
                2 if name.len() >= 7 => &mut self.edit2,
                _ => return hit,
            };
            *edits = 1.0;
            hit = true;
        }
        hit
    }
}

/// The dense features, in `DENSE`'s order.
fn dense_features(p: &Parts, lures: u32, on_platform: f64, b: &BrandHits) -> [f64; DENSE.len()] {
    let (hb, lb, sb) = (p.hb, p.lb, p.sb);
    let digits = hb.iter().filter(|c| c.is_ascii_digit()).count();
    let digit_run = longest_run(hb, |c| c.is_ascii_digit());
    let labels = hb.split(|&c| c == b'.').count();
    let ipv4 = labels == 4 && hb.split(|&c| c == b'.').all(|l| !l.is_empty() && l.iter().all(u8::is_ascii_digit));
    let letters = lb.iter().filter(|c| c.is_ascii_lowercase()).count();
    let vowels = lb.iter().filter(|&&c| is_vowel(c)).count();
    let consonant_run = longest_run(lb, |c| c.is_ascii_lowercase() && !is_vowel(c));
    [
        hb.len() as f64 / 32.0,
        lb.len() as f64 / 16.0,
        labels as f64 / 4.0,
        if sb.is_empty() { 0.0 } else { sb.split(|&c| c == b'.').count() as f64 / 4.0 },
        digits as f64 / hb.len().max(1) as f64,
        hb.iter().filter(|&&c| c == b'-').count() as f64 / 4.0,
        entropy(hb) / 4.0,
        entropy(lb) / 4.0,
        digit_run as f64 / 8.0,
        f64::from(u8::from(ipv4)),
        f64::from(u8::from(p.host.contains("xn--"))),
        if letters > 0 { vowels as f64 / letters as f64 } else { 0.0 },
        on_platform,
        b.tld_swap,
        b.word,
        b.contained,
        b.homoglyph,
        b.edit1,
        b.edit2,
        f64::from(lures) / 3.0,
        consonant_run as f64 / 8.0,
        f64::from(u8::from(!p.host.is_ascii())),
        f64::from(u8::from(b.official)),
        f64::from(u8::from(b.any && lures > 0)),
    ]
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// 64-bit FNV-1a over a namespace byte and the token.
fn fnv1a(ns: u8, data: &[u8]) -> u64 {
    fnv1a_more((FNV_OFFSET ^ u64::from(ns)).wrapping_mul(FNV_PRIME), data)
}

/// FNV-1a continued over more bytes (a token made of several parts).
fn fnv1a_more(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// The shape of a label: a-z as `a`, digits as `9`, `-` kept, anything else as `x`, runs of
/// one class written once (`claim-2024` -> `a-9`).
fn shape<'a>(s: &[u8], buf: &'a mut [u8; MAX_HOST + 2]) -> &'a [u8] {
    let mut n = 0;
    for &c in s.iter().take(MAX_HOST) {
        let class = match c {
            b'a'..=b'z' => b'a',
            b'0'..=b'9' => b'9',
            b'-' => b'-',
            _ => b'x',
        };
        if n == 0 || buf[n - 1] != class {
            buf[n] = class;
            n += 1;
        }
    }
    &buf[..n]
}

/// `^` + s + `$` in buf.
fn bracket<'a>(s: &[u8], buf: &'a mut [u8; MAX_HOST + 2]) -> &'a [u8] {
    let n = s.len().min(MAX_HOST);
    buf[0] = b'^';
    buf[1..=n].copy_from_slice(&s[..n]);
    buf[n + 1] = b'$';
    &buf[..n + 2]
}

/// Most words a host of `MAX_HOST` bytes can have.
const MAX_WORDS: usize = MAX_HOST / 2 + 1;

/// The words of a host (split at dots and hyphens, empty ones skipped) and their skeletons,
/// computed once for the comparisons with every brand.
struct HostWords<'a> {
    hb: &'a [u8],
    skeletons: [u8; MAX_HOST],
    /// Per word: its span in `hb` and its skeleton's span in `skeletons`.
    spans: [(u8, u8, u8, u8); MAX_WORDS],
    len: usize,
}

impl<'a> HostWords<'a> {
    fn new(hb: &'a [u8]) -> Self {
        let hb = &hb[..hb.len().min(MAX_HOST)];
        let mut words = Self { hb, skeletons: [0; MAX_HOST], spans: [(0, 0, 0, 0); MAX_WORDS], len: 0 };
        let (mut start, mut at) = (0, 0);
        let mut buf = [0u8; MAX_HOST];
        for end in (0..=hb.len()).filter(|&i| i == hb.len() || matches!(hb[i], b'.' | b'-')) {
            if end > start {
                // A skeleton is never longer than its word, so they all fit in MAX_HOST bytes.
                let skel = skeleton(&hb[start..end], &mut buf);
                words.skeletons[at..at + skel.len()].copy_from_slice(skel);
                // Offsets are at most MAX_HOST (253) and fit in a byte.
                words.spans[words.len] = (start as u8, end as u8, at as u8, (at + skel.len()) as u8);
                words.len += 1;
                at += skel.len();
            }
            start = end + 1;
        }
        words
    }

    /// A word is `name`, or has the skeleton `skeleton`.
    fn any(&self, name: &[u8], skeleton: &[u8]) -> bool {
        self.spans[..self.len].iter().any(|&(s, e, ks, ke)| {
            &self.hb[usize::from(s)..usize::from(e)] == name
                || &self.skeletons[usize::from(ks)..usize::from(ke)] == skeleton
        })
    }
}

/// Confusable digits and letters mapped, hyphens dropped, "rn" read as "m" and "vv" as "w".
fn skeleton<'a>(s: &[u8], buf: &'a mut [u8; MAX_HOST]) -> &'a [u8] {
    let map = |c: u8| match c {
        b'0' => b'o',
        b'1' | b'i' => b'l',
        b'3' => b'e',
        b'4' => b'a',
        b'5' => b's',
        b'7' => b't',
        b'8' => b'b',
        c => c,
    };
    let mut mapped = [0u8; MAX_HOST];
    let mut m = 0;
    for &c in s.iter().filter(|&&c| c != b'-').take(MAX_HOST) {
        mapped[m] = map(c);
        m += 1;
    }
    let (mut i, mut n) = (0, 0);
    while i < m {
        let pair = (mapped[i], mapped.get(i + 1).copied().filter(|_| i + 1 < m));
        buf[n] = match pair {
            (b'r', Some(b'n')) => {
                i += 1;
                b'm'
            }
            (b'v', Some(b'v')) => {
                i += 1;
                b'w'
            }
            (c, _) => c,
        };
        i += 1;
        n += 1;
    }
    &buf[..n]
}

/// Optimal string alignment distance (as `strsim::osa_distance`) when it is at most `max`,
/// else `max + 1`: the features only tell 0, 1 and 2 edits apart from more. `b` is a brand
/// skeleton (at most `MAX_NAME` bytes, checked when the model loads).
fn osa_within(a: &[u8], b: &[u8], max: usize) -> usize {
    if a.is_empty() || b.is_empty() {
        return a.len().max(b.len()).min(max + 1);
    }
    let lb = b.len().min(MAX_NAME);
    // Three rotating rows: i - 2, i - 1 and i. Distances are at most MAX_HOST and fit in u16.
    let mut rows = [[0u16; MAX_NAME + 1]; 3];
    for (j, v) in rows[0].iter_mut().enumerate().take(lb + 1) {
        *v = j as u16;
    }
    let bound = max as u16;
    let mut prev_min = 0;
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i as u16;
        let mut row_min = rows[cur][0];
        for j in 1..=lb {
            let cost = u16::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[prev][j] + 1).min(rows[cur][j - 1] + 1).min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = v;
            row_min = row_min.min(v);
        }
        // Every alignment crosses row i - 1 or row i (a transposition skips one row, never
        // two), and its cost never falls along the way: past the bound in both, it stays past.
        if row_min > bound && prev_min > bound {
            return max + 1;
        }
        prev_min = row_min;
    }
    usize::from(rows[a.len() % 3][lb]).min(max + 1)
}

/// Shannon entropy in bits of the byte distribution.
fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in s {
        counts[usize::from(c)] += 1;
    }
    let n = s.len() as f64;
    let mut e = 0.0;
    for &c in &counts {
        if c > 0 {
            let p = f64::from(c) / n;
            e -= p * p.log2();
        }
    }
    e
}

fn longest_run(s: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    let (mut run, mut best) = (0, 0);
    for &c in s {
        run = if pred(c) { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn model() -> &'static DomainModel {
        static MODEL: OnceLock<DomainModel> = OnceLock::new();
        MODEL.get_or_init(|| DomainModel::compiled_in().unwrap())
    }

    #[test]
    fn the_compiled_in_model_loads() {
        let m = model();
        assert!(m.version().starts_with("dm2-"), "{}", m.version());
        let t = m.thresholds();
        assert!(0.0 <= t.rules && t.rules < t.warn && t.warn <= t.block && t.block < 1.0, "{t:?}");
    }

    /// The probabilities the training script computed from the same artifact, to 1e-6.
    #[test]
    fn probabilities_match_the_training_script() {
        let m = model();
        let parity = include_str!("domain_model_parity.tsv");
        let header = parity.lines().next().unwrap();
        assert!(header.contains(m.version()), "the parity file is for another model: {header}");
        let mut n = 0;
        for line in parity.lines().skip(1) {
            let (host, p) = line.split_once('\t').unwrap();
            let want: f64 = p.parse().unwrap();
            let got = m.probability(host);
            assert!((got - want).abs() < 1e-6, "{host}: Rust {got} vs Python {want}");
            n += 1;
        }
        assert!(n >= 200, "only {n} parity vectors");
    }

    #[test]
    fn helpers_match_their_definitions() {
        let mut buf = [0u8; MAX_HOST];
        assert_eq!(skeleton(b"ph4nt0m-rnvvi", &mut buf), b"phantommwl");
        assert_eq!(skeleton(b"rrn", &mut buf), b"rm");
        assert_eq!(osa_within(b"phantom", b"phamtom", 2), 1);
        assert_eq!(osa_within(b"phantom", b"phnatom", 2), 1);
        assert_eq!(osa_within(b"ca", b"abc", 3), 3);
        assert_eq!(osa_within(b"ca", b"abc", 2), 3);
        assert_eq!(osa_within(b"", b"abc", 5), 3);
        assert_eq!(osa_within(b"", b"abc", 2), 3);
        assert_eq!(osa_within(b"raydium", b"raydium", 2), 0);
        assert_eq!(osa_within(b"rayduim", b"raydium", 2), 1);
        assert_eq!(osa_within(b"solflare", b"soIfIares", 2), 3);
        assert_eq!(osa_within(b"xxxxxxxxxxxxxxxxxxxx", b"phantom", 2), 3);
        assert!((entropy(b"aabb") - 1.0).abs() < 1e-12);
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(fnv1a(b'S', b""), (FNV_OFFSET ^ u64::from(b'S')).wrapping_mul(FNV_PRIME));
        assert_eq!(fnv1a_more(fnv1a(b'X', b"claim"), b"@xyz"), fnv1a(b'X', b"claim@xyz"));
        let mut buf = [0u8; MAX_HOST + 2];
        assert_eq!(shape(b"claim-2024", &mut buf), b"a-9");
        assert_eq!(shape("é1--x_".as_bytes(), &mut buf), b"x9-ax");
        assert_eq!(shape(b"", &mut buf), b"");
    }

    #[test]
    fn host_words_are_split_at_dots_and_hyphens_with_their_skeletons() {
        let words = HostWords::new(b"ph4nt0m-.app--x.rn");
        let got: Vec<(&[u8], &[u8])> = words.spans[..words.len]
            .iter()
            .map(|&(s, e, ks, ke)| (&words.hb[s as usize..e as usize], &words.skeletons[ks as usize..ke as usize]))
            .collect();
        let want: Vec<(&[u8], &[u8])> = vec![(b"ph4nt0m", b"phantom"), (b"app", b"app"), (b"x", b"x"), (b"rn", b"m")];
        assert_eq!(got, want);
        assert!(words.any(b"phantom", b"phantom") && words.any(b"rn", b"zz") && !words.any(b"ph4", b"ph4"));
        let long = [b'a'; MAX_HOST];
        assert_eq!(HostWords::new(&long).len, 1);
        assert_eq!(HostWords::new(&[b'.'; MAX_HOST]).len, 0);
    }

    #[test]
    fn odd_input_is_scored_without_panicking() {
        let m = model();
        let long = format!("{}.com", "a".repeat(300));
        for host in ["a", ".", "", "..", "é.é", "xn--", long.as_str(), "1.2.3.4", "-.-"] {
            let p = m.probability(host);
            assert!((0.0..=1.0).contains(&p), "{host}: {p}");
        }
    }
    /// Scoring cost, for comparison with a domain scan's latency:
    /// `cargo test --release -p securityguard-api --lib scan::model -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn scoring_cost() {
        let m = model();
        let hosts: Vec<&str> = include_str!("domain_model_parity.tsv")
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once('\t').map(|(h, _)| h))
            .collect();
        let rounds = 200;
        let start = std::time::Instant::now();
        let mut sum = 0.0;
        for _ in 0..rounds {
            for h in &hosts {
                sum += m.probability(std::hint::black_box(h));
            }
        }
        let per = start.elapsed() / (rounds * hosts.len()) as u32;
        println!("{per:?} a domain ({} domains x {rounds}; checksum {sum:.3})", hosts.len());
    }
}
