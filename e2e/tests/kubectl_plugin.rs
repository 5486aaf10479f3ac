//! `kubectl securityguard backups|restore`, run through the real kubectl (which finds the
//! plugin on the PATH) as a user holding only the Role the plugin needs, against the control
//! plane and the local S3 server holding backups made by the real backup command.

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use securityguard_e2e::backups::{Bucket, Database, run_dir, run_operator, service_account_with};
use securityguard_e2e::fixtures::{GuardFixture, manifest};
use securityguard_e2e::{TempNamespace, admin, install, kubectl_ok, operator_binary, s3_credentials};
use securityguard_operator::crd::{S3Spec, SecurityGuard};
use serde_json::Value;

const PREFIX: &str = "backups";

/// What the plugin's user needs: read the SecurityGuard and the credentials Secret, patch the
/// SecurityGuard for a restore.
const USER_RULES: &[&str] = &[
    "{apiGroups: [securityguard.io], resources: [securityguards], verbs: [get, patch]}",
    "{apiGroups: [\"\"], resources: [secrets], resourceNames: [s3-credentials], verbs: [get]}",
];

/// A directory holding only `kubectl-securityguard`, for the PATH.
fn plugin_dir() -> PathBuf {
    let operator = operator_binary();
    let plugin = operator.with_file_name("kubectl-securityguard");
    assert!(plugin.is_file(), "{} not found: cargo build -p securityguard-operator builds it", plugin.display());
    plugin.parent().expect("directory").to_owned()
}

/// `kubectl securityguard ARGS` as the user of `kubeconfig`.
fn plugin(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let path = format!("{}:{}", plugin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("kubectl")
        .arg("securityguard")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    eprintln!("--- kubectl securityguard {args:?}: {}\n{stdout}\n{stderr}", out.status);
    (out.status.success(), stdout, stderr)
}

#[tokio::test]
async fn the_plugin_lists_backups_and_requests_restores() {
    let client = admin().await;
    install().await;
    let ns = TempNamespace::create(&client, "plugin").await;
    let ns = ns.name.as_str();
    let bucket = Bucket::create("plugin").await;
    s3_credentials(ns, "s3-credentials", &bucket.access_key, &bucket.secret_key);
    let guard = SecurityGuard::test("pg")
        .image("api:1")
        .backup(S3Spec { prefix: PREFIX.to_owned(), ..bucket.s3_spec("s3-credentials") });
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&manifest(&guard)));

    // Two backups by the real backup command, and an upload that never finished.
    let db = Database::create().await;
    let dir = run_dir(&format!("plugin-{ns}"));
    let mut env = bucket.env(PREFIX);
    env.push(("DATABASE_URL".into(), db.url.full().to_owned()));
    env.push(("SG_GUARD".into(), format!("{ns}/pg")));
    for _ in 0..2 {
        assert!(run_operator(&["backup"], &env, &dir).await.status.success());
    }
    bucket.put(&format!("{PREFIX}/{ns}/pg/20200101T000000.000Z.pgdump"), b"cut short".to_vec()).await;

    let user = service_account_with(ns, "on-call", USER_RULES);
    let (ok, table, _) = plugin(&user, &["backups", "pg", "-n", ns]);
    assert!(ok);
    // The same table as `securityguard-operator backups list` on the same folder.
    let list = run_operator(&["backups", "list"], &env, &dir).await;
    assert_eq!(table, String::from_utf8_lossy(&list.stdout));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "header and three backups:\n{table}");
    assert!(lines[0].starts_with("TIME") && lines[0].ends_with("KEY"), "{table}");
    assert_eq!(lines[1..].iter().filter(|l| l.contains(" good ")).count(), 2, "{table}");
    assert!(lines[3].contains("incomplete") && lines[3].ends_with("20200101T000000.000Z.pgdump"), "{table}");
    let (ok, json, _) = plugin(&user, &["backups", "pg", "-n", ns, "-o", "json"]);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&json).expect("JSON");
    let newest = listed[0]["key"].as_str().expect("key").to_owned();
    assert!(newest.starts_with(&format!("{PREFIX}/{ns}/pg/")), "{newest}");

    // A restore request: spec.restore gets a new requestId and the source.
    let gvk = GroupVersionKind::gvk("securityguard.io", "v1alpha1", "SecurityGuard");
    let guards: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "securityguards"));
    let (ok, out, _) = plugin(&user, &["restore", "pg", "-n", ns, "--source", &newest]);
    assert!(ok);
    assert!(out.contains("status.restore.phase"), "says how to follow it: {out}");
    let restore = |g: &DynamicObject| g.data["spec"]["restore"].clone();
    let first = restore(&guards.get("pg").await.expect("guard"));
    assert_eq!(first["source"], newest.as_str());
    let first_id = first["requestId"].as_str().expect("requestId").to_owned();
    assert!(out.contains(&first_id), "{out}");
    assert_eq!(first_id.len(), 36, "{first_id}");

    // Another request gets another id; the rest of the spec is untouched.
    let (ok, _, _) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "before:2026-01-01T00:00:00Z"]);
    assert!(ok);
    let guard = guards.get("pg").await.expect("guard");
    assert_eq!(restore(&guard)["source"], "before:2026-01-01T00:00:00Z");
    assert_ne!(restore(&guard)["requestId"], first_id.as_str());
    assert_eq!(guard.data["spec"]["backup"]["s3"]["bucket"], bucket.name.as_str());
    assert_eq!(guard.data["spec"]["image"], "api:1");

    // A source that is not one is refused before anything is patched.
    let before = guards.get("pg").await.expect("guard").data["spec"]["restore"].clone();
    let (ok, _, err) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "before:yesterday"]);
    assert!(!ok);
    assert!(err.contains("not an RFC 3339 time"), "{err}");
    assert_eq!(guards.get("pg").await.expect("guard").data["spec"]["restore"], before);

    // Without the Secret the listing names what it cannot read; never its content.
    kubectl_ok(&["-n", ns, "delete", "secret", "s3-credentials"], None);
    let (ok, _, err) = plugin(&user, &["backups", "pg", "-n", ns]);
    assert!(!ok);
    assert!(
        err.contains(&format!("cannot get Secret {ns}/s3-credentials (spec.backup.s3.credentialsSecret)")),
        "{err}"
    );
    // A SecurityGuard without backups says so (a restore needs backups: both go).
    kubectl_ok(
        &[
            "-n",
            ns,
            "patch",
            "securityguard",
            "pg",
            "--type=merge",
            "-p",
            "{\"spec\": {\"backup\": null, \"restore\": null}}",
        ],
        None,
    );
    let (ok, _, err) = plugin(&user, &["restore", "pg", "-n", ns, "--source", "latest"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("SecurityGuard {ns}/pg has no backups configured: spec.backup.s3 is not set")),
        "{err}"
    );
}
