//! `just eval-detection`: the served domain model, scored by the API's own Rust code, on the
//! time-split test set of `detection/` (the newest phishing, first seen from the split date of
//! `detection/config.json`, and a fifth of the legitimate names).
//!
//!   cargo run --release -p securityguard-api --example eval-detection [DATASET]
//!
//! DATASET is the `dataset.tsv` the training pipeline writes (default
//! `$SG_CACHE/detection/dataset.tsv`; `detection/train.sh --dataset-only` re-derives it from the
//! pinned sources). It must be the one the model was trained on: its test rows must number what
//! the artifact records.
//!
//! Two measures, each as precision, recall and false-positive rate at WARN-or-BLOCK and at
//! BLOCK, and ROC-AUC:
//! - the model alone (its calibrated probability and thresholds), which must agree with
//!   `detection/EVALUATION.md`'s test row (the Python scorer's);
//! - the whole domain scan as `POST /v1/scan/domains` answers it: the official domains, the
//!   pattern library of a fresh deployment (its seed migration), the rules and the model.
//!   Its ROC-AUC ranks by the action first, then by the probability.

use std::path::PathBuf;

use securityguard_api::scan::patterns::PatternSet;
use securityguard_api::scan::verdict::Action;
use securityguard_api::scan::{self, Detection, domain};

/// The pattern library a fresh deployment starts with.
const SEED: &str = include_str!("../migrations/20261125000002_seed_patterns.sql");

/// One test row: is it phishing, and its score and verdict.
struct Scored {
    phishing: bool,
    score: f64,
    action: Action,
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

/// The test rows of the dataset: (host, is phishing).
fn test_rows(path: &PathBuf) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; `detection/train.sh --dataset-only` writes it", path.display()));
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 5 && fields[2] == "test").then(|| (fields[0].to_owned(), fields[1] == "1"))
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

fn main() {
    let path = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("SG_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/securityguard"));
        cache.join("detection/dataset.tsv")
    });
    let detection = Detection::compiled_in().expect("the compiled-in detection data loads");
    let model = &detection.model;
    let rows = test_rows(&path);
    let (phishing, legitimate) = (rows.iter().filter(|r| r.1).count(), rows.iter().filter(|r| !r.1).count());
    let artifact: serde_json::Value = serde_json::from_str(scan::model::ARTIFACT).expect("the artifact is JSON");
    let recorded = &artifact["training"]["rows"];
    assert!(
        recorded["test_phishing"] == phishing && recorded["test_legitimate"] == legitimate,
        "{}: {phishing} / {legitimate} test rows, the model was evaluated on {recorded}: another dataset",
        path.display()
    );

    let set = seed_patterns();
    let (mut alone, mut served) = (Vec::new(), Vec::new());
    let mut official = [0usize; 2];
    for (host, phishing) in &rows {
        let a = model.assess(host);
        alone.push(Scored { phishing: *phishing, score: a.probability, action: a.action });
        let normalized = domain::normalize(host).expect("the dataset holds normalized hosts");
        official[usize::from(*phishing)] += usize::from(detection.official.covering(&normalized).is_some());
        let r = scan::scan_domain(normalized, &set, &detection);
        let rank = match r.action {
            Action::None => 0.0,
            Action::Warn => 1.0,
            Action::Block => 2.0,
        };
        served.push(Scored { phishing: *phishing, score: rank + r.probability.unwrap_or(0.0), action: r.action });
    }

    println!("model {} (WARN >= {}, BLOCK >= {})", model.version(), model.thresholds().warn, model.thresholds().block);
    let hosts: Vec<&str> = rows.iter().map(|(h, _)| h.as_str()).collect();
    println!(
        "cost a domain (this build, this machine): the model {:.1} µs, the whole domain scan {:.1} µs",
        cost_per_domain(&hosts, |h| model.probability(h)),
        cost_per_domain(&hosts, |h| f64::from(scan::scan_domain(h.to_owned(), &set, &detection).risk_score))
    );
    println!("test set {}: {phishing} phishing, {legitimate} legitimate", path.display());
    println!("official domains (never warned) among them: {} phishing, {} legitimate", official[1], official[0]);
    println!(
        "\n| scored by | ROC-AUC | WARN+ precision | WARN+ recall | WARN+ FPR | BLOCK precision | BLOCK recall | BLOCK FPR |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    print_row("the model alone (Rust scorer)", &alone);
    print_row("the domain scan: official domains, seed patterns, rules, model", &served);
}
