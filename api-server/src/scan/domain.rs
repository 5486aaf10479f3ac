//! Domain checks: allow- and block-list suffix matching, and lookalikes of protected brand
//! domains (edit distance, homoglyphs, brand names under other domains).

use aho_corasick::AhoCorasick;

use super::patterns::PatternSet;
use super::skeleton::{ProtectedDomain, label_of, skeleton};
use super::verdict::{Severity, Warning};

/// Longest accepted domain (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;

/// A domain (or URL) reduced to its lowercase host name, or why it is not one.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let mut s = input.trim();
    if let Some((scheme, rest)) = s.split_once("://") {
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') {
            return Err("invalid URL scheme");
        }
        s = rest;
    }
    let s = s.split(['/', '?', '#']).next().unwrap_or("");
    let s = s.rsplit_once('@').map_or(s, |(_, host)| host);
    let s = s.split(':').next().unwrap_or("");
    let s = s.trim_end_matches('.');
    if s.is_empty() {
        return Err("empty domain");
    }
    if s.len() > MAX_DOMAIN_LEN {
        return Err("domain is too long");
    }
    let lower = s.to_lowercase();
    if !lower.contains('.') {
        return Err("domain needs at least two labels");
    }
    for label in lower.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("invalid label length");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels cannot start or end with '-'");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            return Err("invalid character in domain");
        }
    }
    Ok(lower)
}

/// `domain` and each domain it is under, longest first (`a.b.c`, `b.c`, `c`): the names
/// [`matches_suffix`] would match it against.
pub fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
}

/// `domain` is `suffix` or a subdomain of it.
pub fn matches_suffix(domain: &str, suffix: &str) -> bool {
    domain == suffix
        || (domain.len() > suffix.len()
            && domain.ends_with(suffix)
            && domain.as_bytes()[domain.len() - suffix.len() - 1] == b'.')
}

/// The registrable part (the public suffix plus one label) by the Public Suffix List compiled
/// into the `psl` crate, private suffixes included: on `github.io` or `vercel.app` every
/// subdomain belongs to someone else. A domain that is itself a public suffix is its own
/// registrable part.
pub fn registrable(domain: &str) -> &str {
    psl::domain_str(domain).unwrap_or(domain)
}

/// A top-level domain of the Public Suffix List (`app`, `com`, `io`), as one label.
fn is_top_level_domain(label: &str) -> bool {
    psl::suffix(label.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == label.as_bytes())
}

const SUSPICIOUS_WORDS: &[&str] = &[
    "airdrop",
    "claim",
    "giveaway",
    "bonus",
    "reward",
    "free-mint",
    "freemint",
    "drain",
    "walletconnect",
    "wallet-connect",
    "connect-wallet",
    "validate",
    "verify-wallet",
    "recover",
    "restore",
    "sync-wallet",
    "unlock",
    "presale",
    "whitelist",
];
const LURE_WORDS: &[&str] =
    &["wallet", "login", "secure", "support", "help", "official", "connect", "auth", "app", "web"];
const SUSPICIOUS_TLDS: &[&str] = &[
    "xyz", "top", "click", "site", "online", "live", "icu", "buzz", "rest", "monster", "cfd", "sbs", "shop", "fun",
    "pw", "tk", "ml", "ga", "cf", "gq",
];

/// The lure and phishing words of a domain, found in one pass (an Aho-Corasick automaton over
/// both lists, built once) rather than one substring search per word.
struct Words {
    /// Bit i: `SUSPICIOUS_WORDS[i]`; bit `SUSPICIOUS_WORDS.len() + j`: `LURE_WORDS[j]`.
    found: u64,
}

static WORD_FINDER: std::sync::LazyLock<AhoCorasick> = std::sync::LazyLock::new(|| {
    const { assert!(SUSPICIOUS_WORDS.len() + LURE_WORDS.len() <= 64) };
    AhoCorasick::new(SUSPICIOUS_WORDS.iter().chain(LURE_WORDS)).expect("the word lists build an automaton")
});

impl Words {
    fn in_domain(domain: &str) -> Self {
        let found =
            WORD_FINDER.find_overlapping_iter(domain).fold(0u64, |found, m| found | (1 << m.pattern().as_usize()));
        Self { found }
    }

    /// Any lure or phishing word.
    fn any(&self) -> bool {
        self.found != 0
    }

    /// The phishing words, in `SUSPICIOUS_WORDS`' order.
    fn suspicious(&self) -> impl Iterator<Item = &'static str> + '_ {
        SUSPICIOUS_WORDS.iter().enumerate().filter(|(i, _)| self.found & (1 << i) != 0).map(|(_, w)| *w)
    }
}

/// Warnings for one normalized domain; `None` for a domain on the allow list (or under one),
/// which nothing else may warn about either.
pub fn analyze(domain: &str, set: &PatternSet) -> Option<Vec<Warning>> {
    if set.allowed_domains.iter().any(|a| matches_suffix(domain, a)) {
        return None;
    }
    if let Some(b) = suffixes(domain).find(|s| set.blocked_domains.contains(*s)) {
        return Some(vec![warning(
            "blocked_domain",
            Severity::Critical,
            format!("{domain} is on the block list ({b})"),
        )]);
    }
    if domain.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(vec![ip_address(domain)]);
    }
    Some(lookalikes(domain, set))
}

/// A bare IPv4 address instead of a name. Wallets, dApps and exchanges are served under their
/// names (with certificates for them); a page at a bare address names nobody, so there is no
/// one it could be checked against, and the domain model, trained on names, cannot vouch for it.
fn ip_address(domain: &str) -> Warning {
    let message = format!("{domain} is a bare IP address, not a site's name");
    warning("ip_address_domain", Severity::Medium, message)
}

/// Look-alikes of the protected brands, and the weaker signals of the name itself.
fn lookalikes(domain: &str, set: &PatternSet) -> Vec<Warning> {
    // Punycode labels are compared in their Unicode form (xn--hantom-… may be рhantom).
    let punycode = domain.split('.').any(|l| l.starts_with("xn--"));
    let decoded;
    let domain = match punycode.then(|| idna::domain_to_unicode(domain)) {
        Some((unicode, Ok(()))) => {
            decoded = unicode;
            decoded.as_str()
        }
        _ => domain,
    };
    let candidate = Candidate::new(domain);
    let mut out = Vec::new();
    for brand in &set.protected_domains {
        match candidate.compare(brand) {
            // The brand itself (or its subdomain), not a lookalike.
            Brand::Itself => return out,
            Brand::Imitated(w) => {
                out.push(w);
                break;
            }
            Brand::Other => {}
        }
    }
    let lookalike = !out.is_empty();
    candidate.other_signals(punycode, lookalike, &mut out);
    out
}

fn warning(kind: &'static str, severity: Severity, message: String) -> Warning {
    Warning { kind, severity, message, instruction: None }
}

/// What a domain is compared with the protected brands by.
struct Candidate<'a> {
    domain: &'a str,
    /// The registrable domain, its first label and its top-level domain.
    reg: &'a str,
    reg_label: &'a str,
    tld: &'a str,
    has_non_ascii: bool,
    reg_skeleton: String,
    label_skeleton: String,
    /// The characters in `label_skeleton`.
    label_skeleton_chars: usize,
    whole_skeleton: String,
    /// The skeletons of the domain's tokens (split at dots and hyphens).
    token_skeletons: Vec<String>,
    /// The lure and phishing words the domain contains.
    words: Words,
    /// A lure word, a phishing word or a top-level domain often used for phishing.
    lured: bool,
    /// The labels of the subdomain that a top-level domain follows, still inside the subdomain:
    /// `phantom` in `phantom.app.secure-login.com`, a name dressed as a whole domain.
    dressed: Vec<&'a str>,
}

/// How a domain relates to a protected brand.
enum Brand {
    Itself,
    Imitated(Warning),
    Other,
}

impl<'a> Candidate<'a> {
    fn new(domain: &'a str) -> Self {
        let reg = registrable(domain);
        let reg_label = label_of(reg);
        let tld = reg.rsplit('.').next().unwrap_or("");
        let words = Words::in_domain(domain);
        let label_skeleton = skeleton(reg_label);
        let sub = domain.strip_suffix(reg).and_then(|s| s.strip_suffix('.')).unwrap_or("");
        let dressed = sub.split('.').zip(sub.split('.').skip(1)).filter(|(_, next)| is_top_level_domain(next));
        let dressed = dressed.map(|(label, _)| label).collect();
        Self {
            domain,
            reg,
            reg_label,
            tld,
            has_non_ascii: !domain.is_ascii(),
            reg_skeleton: skeleton(reg),
            label_skeleton_chars: label_skeleton.chars().count(),
            label_skeleton,
            whole_skeleton: skeleton(domain),
            token_skeletons: domain.split(['.', '-']).map(skeleton).collect(),
            lured: words.any() || SUSPICIOUS_TLDS.contains(&tld),
            words,
            dressed,
        }
    }

    fn compare(&self, protected: &ProtectedDomain) -> Brand {
        let (domain, reg_label) = (self.domain, self.reg_label);
        let brand = protected.domain.as_str();
        if matches_suffix(domain, brand) {
            return Brand::Itself;
        }
        let brand_label = protected.label();
        let brand_skeleton = &protected.label_skeleton;
        let imitated = |kind, message| Brand::Imitated(warning(kind, Severity::High, message));
        if self.reg_skeleton == protected.skeleton || (self.has_non_ascii && self.label_skeleton == *brand_skeleton) {
            let message = format!("{domain} imitates {brand} with look-alike characters");
            return Brand::Imitated(warning("homoglyph_domain", Severity::Critical, message));
        }
        // The brand's name and a top-level domain at the start of another site's address
        // (phantom.app.secure-login.com, orca.app.login-portal.com): what the address bar shows
        // first reads as the brand's site. No legitimate name of the training data does this.
        if self.dressed.contains(&brand_label) {
            let message = format!("{domain} puts the name of {brand} before another site's domain");
            return imitated("brand_domain_in_subdomain", message);
        }
        // Short brand names (jup) only match as a whole token.
        if brand_label.len() == 3
            && domain.split(['.', '-']).filter(|t| *t == brand_label).count() > 0
            && reg_label != brand_label
        {
            return imitated(
                "brand_impersonation",
                format!("{domain} contains the name of {brand} but is not {brand}"),
            );
        }
        if brand_label.len() < 4 {
            return Brand::Other;
        }
        let max = if brand_label.len() >= 7 { 2 } else { 1 };
        // The distance is at least the difference in length: skip the comparisons that cannot
        // come within `max`.
        let distance = if self.label_skeleton_chars.abs_diff(protected.label_skeleton_chars) <= max {
            strsim::damerau_levenshtein(&self.label_skeleton, brand_skeleton)
        } else {
            usize::MAX
        };
        if reg_label != brand_label && distance <= max {
            // Two edits from a name of seven letters or more also reach ordinary words and
            // other projects' names (balance/binance, urlscan/solscan, fantom/phantom): a
            // separate kind, so that the domain scan can weigh it against the model.
            let kind = if distance <= 1 { "typosquat_domain" } else { "distant_typosquat_domain" };
            return imitated(kind, format!("{domain} is {distance} edit(s) away from {brand}"));
        }
        if reg_label == brand_label && self.reg != brand {
            let message = format!("{domain} uses the name of {brand} under another top-level domain");
            return imitated("brand_tld_swap", message);
        }
        // The brand's name inside another registrable domain: phantom-wallet.com,
        // phantom.app.evil.io, secure-phant0m.xyz; a name merely containing it
        // (tensorflow.org) only counts together with a lure word.
        let exact_token = self.token_skeletons.contains(brand_skeleton);
        if exact_token || (self.lured && self.whole_skeleton.contains(brand_skeleton.as_str())) {
            return imitated(
                "brand_impersonation",
                format!("{domain} contains the name of {brand} but is not {brand}"),
            );
        }
        Brand::Other
    }

    /// Punycode or non-ASCII labels, phishing words, and a top-level domain often used for
    /// phishing.
    fn other_signals(&self, punycode: bool, lookalike: bool, out: &mut Vec<Warning>) {
        let (domain, tld) = (self.domain, self.tld);
        if punycode && !lookalike {
            out.push(warning(
                "punycode_domain",
                Severity::Medium,
                format!("{domain} uses punycode (internationalized) labels"),
            ));
        } else if self.has_non_ascii && !lookalike {
            out.push(warning("non_ascii_domain", Severity::Medium, format!("{domain} contains non-ASCII characters")));
        }
        let words: Vec<&str> = self.words.suspicious().collect();
        if !words.is_empty() {
            let message = format!("{domain} contains words common in wallet phishing: {}", words.join(", "));
            out.push(warning("phishing_keywords", Severity::Medium, message));
        }
        if SUSPICIOUS_TLDS.contains(&tld) && (!words.is_empty() || lookalike) {
            let message = format!(".{tld} is a top-level domain often used for phishing");
            out.push(warning("suspicious_tld", Severity::Low, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> PatternSet {
        let mut s = PatternSet::default();
        for b in ["phantom.app", "solflare.com", "jup.ag", "magiceden.io", "raydium.io"] {
            s.protected_domains.push(b.into());
        }
        s.allowed_domains.push("solana.com".into());
        s.blocked_domains.insert("drainer.xyz".into());
        s
    }

    fn kinds(d: &str) -> Vec<&'static str> {
        analyze(&normalize(d).unwrap(), &set()).unwrap_or_default().into_iter().map(|w| w.kind).collect()
    }

    #[test]
    fn normalizes_urls() {
        assert_eq!(normalize("https://User@Phantom.App:443/path?x#y").unwrap(), "phantom.app");
        assert_eq!(normalize("phantom.app.").unwrap(), "phantom.app");
        assert!(normalize("localhost").is_err());
        assert!(normalize("a..b").is_err());
        assert!(normalize("-a.com").is_err());
        assert!(normalize("a b.com").is_err());
    }

    #[test]
    fn suffixes_run_from_the_domain_to_its_last_label() {
        assert_eq!(
            suffixes("a.b.drainer.xyz").collect::<Vec<_>>(),
            ["a.b.drainer.xyz", "b.drainer.xyz", "drainer.xyz", "xyz"]
        );
        let mut set = PatternSet::default();
        for i in 0..50_000 {
            set.add("blocked_domain", &format!("feed-{i}.xyz"), &serde_json::json!({})).unwrap();
        }
        assert!(analyze("login.feed-49999.xyz", &set).is_some_and(|w| w[0].kind == "blocked_domain"));
        assert!(analyze("feed-49999.xyz.example", &set).is_some_and(|w| w.iter().all(|w| w.kind != "blocked_domain")));
    }

    #[test]
    fn suffix_matching_respects_label_boundaries() {
        assert!(matches_suffix("a.drainer.xyz", "drainer.xyz"));
        assert!(!matches_suffix("notdrainer.xyz", "drainer.xyz"));
        assert_eq!(kinds("app.drainer.xyz"), vec!["blocked_domain"]);
        assert!(kinds("docs.solana.com").is_empty());
        assert_eq!(analyze("docs.solana.com", &set()), None);
        assert_eq!(analyze("example.org", &set()), Some(vec![]));
        assert!(kinds("phantom.app").is_empty());
        assert!(kinds("help.phantom.app").is_empty());
    }

    #[test]
    fn finds_lookalikes() {
        assert_eq!(kinds("phant0m.app"), vec!["homoglyph_domain"]);
        assert_eq!(kinds("рhantom.app"), vec!["homoglyph_domain"]); // Cyrillic р
        assert_eq!(kinds("phamtom.app"), vec!["typosquat_domain"]);
        assert_eq!(kinds("solfare.com"), vec!["typosquat_domain"]);
        assert_eq!(kinds("phantuomn.app"), vec!["distant_typosquat_domain"]);
        assert_eq!(kinds("phantom.com"), vec!["brand_tld_swap"]);
        // The punycode form of the Cyrillic-р lookalike.
        let ascii = idna::domain_to_ascii("рhantom.app").unwrap();
        assert!(ascii.starts_with("xn--"), "{ascii}");
        assert_eq!(kinds(&ascii), vec!["homoglyph_domain"]);
        // Punycode that imitates nothing is still reported.
        assert_eq!(kinds(&idna::domain_to_ascii("bücher.example").unwrap()), vec!["punycode_domain"]);
        assert_eq!(kinds("phantom-wallet.io"), vec!["brand_impersonation"]);
        assert_eq!(kinds("phantom.app.login-secure.io"), vec!["brand_domain_in_subdomain"]);
        assert_eq!(kinds("raydium.io.wallet.example.com"), vec!["brand_domain_in_subdomain"]);
        assert_eq!(kinds("solflare.app.example.com"), vec!["brand_domain_in_subdomain"]);
        assert_eq!(kinds("connect.jup.ag.claim-portal.io")[0], "brand_domain_in_subdomain");
        // Not a domain in front: the brand's name as an ordinary subdomain label, or followed by
        // a label that is no top-level domain; and the brand's own subdomains.
        assert_eq!(kinds("phantom.login-secure.io"), vec!["brand_impersonation"]);
        assert_eq!(kinds("phantom.wallet.login-secure.io"), vec!["brand_impersonation"]);
        assert!(kinds("docs.phantom.app").is_empty());
        assert!(kinds("claim-airdrop-now.xyz").contains(&"phishing_keywords"));
        // Bare IPv4 addresses; names that merely look numeric are names.
        assert_eq!(kinds("185.22.13.7"), vec!["ip_address_domain"]);
        assert_eq!(kinds("http://10.0.0.1:8080/connect"), vec!["ip_address_domain"]);
        assert!(kinds("1.2.3.4.nip.io").is_empty());
        assert!(kinds("999.1.1.1").is_empty());
        assert!(kinds("example.org").is_empty());
        assert_eq!(registrable("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("a.b.example.com"), "example.com");
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        // Multi-label ICANN suffixes.
        assert_eq!(registrable("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(registrable("a.b.example.com.au"), "example.com.au");
        assert_eq!(registrable("shop.example.co.jp"), "example.co.jp");
        assert_eq!(registrable("x.example.gov.br"), "example.gov.br");
        // Two-letter second levels that are not suffixes are not treated as one.
        assert_eq!(registrable("app.my.id.example.de"), "example.de");
        // Private suffixes: each subdomain is a separate registrant.
        assert_eq!(registrable("phantom-wallet.github.io"), "phantom-wallet.github.io");
        assert_eq!(registrable("docs.phantom.vercel.app"), "phantom.vercel.app");
        assert_eq!(registrable("phantom.pages.dev"), "phantom.pages.dev");
        // A public suffix alone, and unknown top-level domains (the default rule).
        assert_eq!(registrable("co.uk"), "co.uk");
        assert_eq!(registrable("github.io"), "github.io");
        assert_eq!(registrable("a.b.example.notatld"), "example.notatld");
    }

    #[test]
    fn lookalikes_under_multi_label_suffixes() {
        // The brand's name registered under someone's github.io or vercel.app site.
        assert_eq!(kinds("phantom.github.io"), vec!["brand_tld_swap"]);
        assert_eq!(kinds("solflare.vercel.app"), vec!["brand_tld_swap"]);
        assert_eq!(kinds("phant0m.co.uk"), vec!["typosquat_domain"]);
        assert_eq!(kinds("phantom.co.uk"), vec!["brand_tld_swap"]);
        assert_eq!(kinds("secure.phamtom.com.au"), vec!["typosquat_domain"]);
        // Names under a multi-label suffix that imitate nothing.
        assert!(kinds("www.bbc.co.uk").is_empty());
        assert!(kinds("rust-lang.github.io").is_empty());
        assert!(kinds("example.co.jp").is_empty());
    }
}
