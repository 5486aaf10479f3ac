//! `just eval-detection`: the served domain model, scored by the API's own Rust code, on the
//! time-split test set of `detection/` (the newest phishing, first seen from the split date of
//! `detection/config.json`, and a fifth of the legitimate names).
//!
//!   cargo run --release -p securityguard-api --example eval-detection [DATASET [SPLIT]]
//!
//! DATASET is the `dataset.tsv` the training pipeline writes (default
//! `$SG_CACHE/detection/dataset.tsv`; `detection/train.sh --dataset-only` re-derives it from the
//! pinned sources). It must be the one the model was trained on: the rows of SPLIT must number
//! what the artifact records. SPLIT is `test` (default) or `validation`, where the settings of
//! the scan are chosen: there it also prints what the scan would give at other values of the
//! model's `rules` threshold (below which the name rules' heuristics are ignored).
//!
//! Two measures, each as precision, recall and false-positive rate at WARN-or-BLOCK and at
//! BLOCK, and ROC-AUC:
//! - the model alone (its calibrated probability and thresholds), which must agree with
//!   `detection/EVALUATION.md`'s test row (the Python scorer's);
//! - the whole domain scan as `POST /v1/scan/domains` answers it: the official domains, the
//!   pattern library of a fresh deployment (its seed migration), the rules and the model.
//!   Its ROC-AUC ranks by the action first, then by the probability.
//!
//! Both again with the MetaMask allowlist's names as the only legitimate ones (crypto sites
//! that are not phishing: the hardest legitimate names), and the legitimate names the scan warns
//! though the model alone does not, by the rules' warning kinds.
//!
//!   cargo run --release -p securityguard-api --example eval-detection -- --hosts FILE
//!
//! scores a list of your own instead (one host or URL a line, `#` comments), as
//! `POST /v1/scan/domains` would: a line per host with the action, the model's probability, the
//! official domain that covers it and the warnings' kinds, then the count of each action. This is
//! how to measure the scan on names of your own that it has never seen.

use std::collections::BTreeMap;
use std::path::PathBuf;

use securityguard_api::scan::model::DomainModel;
use securityguard_api::scan::official::OfficialDomains;
use securityguard_api::scan::patterns::PatternSet;
use securityguard_api::scan::verdict::Action;
use securityguard_api::scan::{self, Detection, domain};

/// The pattern library a fresh deployment starts with.
const SEED: &str = include_str!("../migrations/20261125000002_seed_patterns.sql");

/// One row: is it phishing, and its score and verdict.
#[derive(Clone, Copy)]
struct Scored {
    phishing: bool,
    score: f64,
    action: Action,
}

/// One row of the dataset.
struct Row {
    host: String,
    phishing: bool,
    /// A legitimate name from the MetaMask allowlist.
    crypto_legitimate: bool,
    /// A legitimate name from the chain list (chain sites, explorers, RPC endpoints, faucets).
    chain_legitimate: bool,
    /// A legitimate name from any of the crypto sources the model weighs as hard negatives
    /// (the artifact's `training.hard_negative_weights`: wallets, exchanges, chain and token sites).
    any_crypto_legitimate: bool,
}

/// `(kind, value)` of the seed's INSERT rows and `(value, data)` of its rule-parameter UPDATEs.
fn seed_patterns() -> PatternSet {
    let mut set = PatternSet::default();
    for line in SEED.lines() {
        let quoted: Vec<&str> = line.split('\'').collect();
        let added = if line.trim_start().starts_with("(gen_random_uuid(), '") && quoted.len() >= 4 {
            set.add(quoted[1], quoted[3], &serde_json::Value::Null).or_else(|e| {
                // Rule parameters get their values from the UPDATEs below.
                if quoted[1] == "rule_parameter" { Ok(()) } else { Err(e) }
            })
        } else if line.starts_with("UPDATE patterns SET data = '") && quoted.len() >= 6 {
            let data: serde_json::Value = serde_json::from_str(quoted[1]).expect("the seed's data is JSON");
            set.add("rule_parameter", quoted[5], &data)
        } else {
            Ok(())
        };
        added.unwrap_or_else(|e| panic!("seed pattern {line:?}: {e}"));
    }
    assert!(!set.protected_domains.is_empty(), "no patterns found in the seed migration");
    set
}

/// The rows of one split of the dataset.
fn split_rows(path: &PathBuf, split: &str, crypto_sources: &[String]) -> Vec<Row> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; `detection/train.sh --dataset-only` writes it", path.display()));
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 5 && fields[2] == split).then(|| Row {
                host: fields[0].to_owned(),
                phishing: fields[1] == "1",
                crypto_legitimate: fields[1] == "0" && fields[4].split(',').any(|s| s == "metamask-allowlist"),
                chain_legitimate: fields[1] == "0" && fields[4].split(',').any(|s| s == "ethereum-chains"),
                any_crypto_legitimate: fields[1] == "0"
                    && fields[4].split(',').any(|s| crypto_sources.iter().any(|c| c == s)),
            })
        })
        .collect()
}

/// Precision, recall and false-positive rate of "flagged".
fn rates(rows: &[Scored], flagged: impl Fn(&Scored) -> bool) -> (f64, f64, f64) {
    let count = |phishing: bool| rows.iter().filter(|r| r.phishing == phishing).count() as f64;
    let tp = rows.iter().filter(|r| r.phishing && flagged(r)).count() as f64;
    let fp = rows.iter().filter(|r| !r.phishing && flagged(r)).count() as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    (precision, tp / count(true), fp / count(false))
}

/// ROC-AUC: the probability that a phishing row scores above a legitimate one (ties count half),
/// from the ranks (Mann-Whitney U).
fn roc_auc(rows: &[Scored]) -> f64 {
    let mut order: Vec<&Scored> = rows.iter().collect();
    order.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let j = i + order[i..].iter().take_while(|r| r.score == order[i].score).count();
        // Ranks i + 1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * order[i..j].iter().filter(|r| r.phishing).count() as f64;
        i = j;
    }
    let pos = rows.iter().filter(|r| r.phishing).count() as f64;
    let neg = rows.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn print_row(name: &str, rows: &[Scored]) {
    let (wp, wr, wf) = rates(rows, |r| r.action >= Action::Warn);
    let (bp, br, bf) = rates(rows, |r| r.action == Action::Block);
    println!(
        "| {name} | {:.4} | {wp:.3} | {wr:.3} | {:.2} % | {bp:.3} | {br:.3} | {:.3} % |",
        roc_auc(rows),
        wf * 100.0,
        bf * 100.0
    );
}

/// Mean time of `f` per host, over a few passes (the fastest pass: the machine is shared).
fn cost_per_domain(hosts: &[&str], f: impl Fn(&str) -> f64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let checksum: f64 = hosts.iter().map(|h| f(std::hint::black_box(h))).sum();
        std::hint::black_box(checksum);
        best = best.min(started.elapsed().as_secs_f64() * 1e6 / hosts.len() as f64);
    }
    best
}

/// The scan of every row: the model alone, the whole domain scan, and the rules' warning kinds
/// on the legitimate names the scan warns though the model alone does not.
fn score(rows: &[Row], set: &PatternSet, detection: &Detection) -> (Vec<Scored>, Vec<Scored>, BTreeMap<String, usize>) {
    let (mut alone, mut served) = (Vec::new(), Vec::new());
    let mut by_rules = BTreeMap::new();
    for row in rows {
        let a = detection.model.assess(&row.host);
        alone.push(Scored { phishing: row.phishing, score: a.probability, action: a.action });
        let normalized = domain::normalize(&row.host).expect("the dataset holds normalized hosts");
        let r = scan::scan_domain(normalized, set, detection);
        let rank = match r.action {
            Action::None => 0.0,
            Action::Warn => 1.0,
            Action::Block => 2.0,
        };
        if !row.phishing && r.action > a.action {
            let mut kinds: Vec<&str> = r.warnings.iter().map(|w| w.kind).collect();
            kinds.sort_unstable();
            kinds.dedup();
            *by_rules.entry(kinds.join(" + ")).or_default() += 1;
        }
        served.push(Scored { phishing: row.phishing, score: rank + r.probability.unwrap_or(0.0), action: r.action });
    }
    (alone, served, by_rules)
}

/// Whether a test row is of one kind (a source of legitimate names).
type RowKind = fn(&Row) -> bool;

/// The rows of `all` whose row is phishing or a legitimate name `kind` picks (a source's names).
fn legitimate_only(rows: &[Row], all: &[Scored], kind: impl Fn(&Row) -> bool) -> Vec<Scored> {
    all.iter().zip(rows).filter(|(_, row)| row.phishing || kind(row)).map(|(s, _)| *s).collect()
}

/// The compiled-in detection data with another `rules` threshold.
fn with_rules_threshold(rules: f64) -> Detection {
    let mut art: serde_json::Value = serde_json::from_str(scan::model::ARTIFACT).expect("the artifact is JSON");
    art["thresholds"]["rules"] = serde_json::json!(rules);
    let model = DomainModel::from_json(&art.to_string()).expect("the artifact loads");
    Detection { model, official: OfficialDomains::compiled_in().expect("the official domains load") }
}

/// `--hosts FILE`: each host of FILE as the domain scan answers it, and the count of each action.
fn score_hosts(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let detection = Detection::compiled_in().expect("the compiled-in detection data loads");
    let set = seed_patterns();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    println!("model {}", detection.model.version());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Ok(host) = domain::normalize(line) else {
            println!("refused\t-\t-\t{line}");
            *counts.entry("refused".to_owned()).or_default() += 1;
            continue;
        };
        let official =
            detection.official.covering(&host).map_or_else(|| "-".to_owned(), |(domain, _)| domain.to_owned());
        let r = scan::scan_domain(host.clone(), &set, &detection);
        let mut kinds: Vec<&str> = r.warnings.iter().map(|w| w.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let action = format!("{:?}", r.action).to_lowercase();
        let probability = r.probability.map_or_else(|| "-".to_owned(), |p| format!("{p:.4}"));
        println!("{action}\t{probability}\t{official}\t{host}\t{}", kinds.join(","));
        *counts.entry(action).or_default() += 1;
    }
    println!("{counts:?}");
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(flag) = std::env::args().nth(1).filter(|a| a == "--hosts") {
        let file = args.nth(1).unwrap_or_else(|| panic!("{flag} FILE"));
        return score_hosts(&file);
    }
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("SG_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/securityguard"));
        cache.join("detection/dataset.tsv")
    });
    let split = args.next().unwrap_or_else(|| "test".to_owned());
    assert!(split == "test" || split == "validation", "SPLIT is test or validation, not {split}");
    let detection = Detection::compiled_in().expect("the compiled-in detection data loads");
    let model = &detection.model;
    let artifact: serde_json::Value = serde_json::from_str(scan::model::ARTIFACT).expect("the artifact is JSON");
    let crypto_sources: Vec<String> = artifact["training"]["hard_negative_weights"]
        .as_object()
        .map(|weights| weights.keys().cloned().collect())
        .unwrap_or_default();
    let rows = split_rows(&path, &split, &crypto_sources);
    let phishing = rows.iter().filter(|r| r.phishing).count();
    let legitimate = rows.len() - phishing;
    let recorded = &artifact["training"]["rows"];
    assert!(
        recorded[format!("{split}_phishing")] == phishing && recorded[format!("{split}_legitimate")] == legitimate,
        "{}: {phishing} / {legitimate} {split} rows, the model was evaluated on {recorded}: another dataset",
        path.display()
    );

    let set = seed_patterns();
    let official = [false, true].map(|phishing| {
        rows.iter()
            .filter(|r| r.phishing == phishing)
            .filter(|r| detection.official.covering(&domain::normalize(&r.host).unwrap_or_default()).is_some())
            .count()
    });
    let (alone, served, by_rules) = score(&rows, &set, &detection);

    let t = model.thresholds();
    println!("model {} (WARN >= {}, BLOCK >= {}, rules count from {})", model.version(), t.warn, t.block, t.rules);
    let hosts: Vec<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    println!(
        "cost a domain (this build, this machine): the model {:.1} µs, the whole domain scan {:.1} µs",
        cost_per_domain(&hosts, |h| model.probability(h)),
        cost_per_domain(&hosts, |h| f64::from(scan::scan_domain(h.to_owned(), &set, &detection).risk_score))
    );
    let crypto = rows.iter().filter(|r| r.crypto_legitimate).count();
    let chains = rows.iter().filter(|r| r.chain_legitimate).count();
    println!(
        "{split} set {}: {phishing} phishing, {legitimate} legitimate ({crypto} of the MetaMask allowlist, {chains} of the chain list)",
        path.display()
    );
    println!("official domains (never warned) among them: {} phishing, {} legitimate", official[1], official[0]);
    println!(
        "\n| scored by | ROC-AUC | WARN+ precision | WARN+ recall | WARN+ FPR | BLOCK precision | BLOCK recall | BLOCK FPR |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    print_row("the model alone (Rust scorer)", &alone);
    print_row("the domain scan: official domains, seed patterns, rules, model", &served);
    // The same two scorers with one kind of legitimate name only (the kinds the set has).
    let kinds: [(&str, RowKind); 3] = [
        ("chain list only", |r| r.chain_legitimate),
        ("crypto sites only (every hard-negative source)", |r| r.any_crypto_legitimate),
        ("MetaMask allowlist only", |r| r.crypto_legitimate),
    ];
    for (kind, is_kind) in kinds.into_iter().filter(|(_, is_kind)| rows.iter().any(is_kind)) {
        print_row(&format!("the model alone; legitimate = {kind}"), &legitimate_only(&rows, &alone, is_kind));
        print_row(&format!("the domain scan; legitimate = {kind}"), &legitimate_only(&rows, &served, is_kind));
    }
    println!("\nlegitimate names the scan warns and the model alone does not, by the warnings' kinds:");
    for (kinds, n) in &by_rules {
        println!("  {n:5}  {kinds}");
    }

    if split == "validation" {
        // The `rules` threshold at the probability above which a share of these legitimate names
        // score: what the scan would give with it.
        let mut legit: Vec<f64> = rows.iter().filter(|r| !r.phishing).map(|r| model.probability(&r.host)).collect();
        legit.sort_by(|a, b| b.total_cmp(a));
        println!(
            "\n| rules count from | share of legitimate names at or above | WARN+ recall | WARN+ FPR | WARN+ FPR, MetaMask allowlist |"
        );
        println!("|---:|---:|---:|---:|---:|");
        for share in [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0] {
            let k = ((share * legit.len() as f64) as usize).min(legit.len() - 1);
            let rules = if share >= 1.0 {
                0.0
            } else if share == 0.0 {
                2.0
            } else {
                legit[k]
            };
            let (_, served, _) = score(&rows, &set, &with_rules_threshold(rules));
            let (_, recall, fpr) = rates(&served, |r| r.action >= Action::Warn);
            let (_, _, crypto_fpr) =
                rates(&legitimate_only(&rows, &served, |r| r.crypto_legitimate), |r| r.action >= Action::Warn);
            println!("| {rules:.6} | {share} | {recall:.4} | {:.3} % | {:.2} % |", fpr * 100.0, crypto_fpr * 100.0);
        }
    }
}
