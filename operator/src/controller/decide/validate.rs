//! Validate: turn a SecurityGuard and what it refers to into a [`ValidatedGuard`], or name every
//! problem the schema could not catch. Pure.

use kube::{Resource, ResourceExt};

use crate::backup::envelope::Keyring;
use crate::controller::read::dereference::References;
use crate::controller::vocabulary::{Datastore, ValidatedGuard};
use crate::crd::backup::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::crd::{BackupSpec, SecretKeyReference, SecurityGuard, SecurityGuardSpec, ServerSideEncryptionType};

/// Shortest JWT signing key accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Something that stops the SecurityGuard from working. Messages name the field and the
/// Secret, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A referenced Secret does not exist.
    #[error("{field}: Secret {name:?} does not exist")]
    MissingSecret {
        /// The spec field holding the reference.
        field: &'static str,
        /// The Secret's name.
        name: String,
    },
    /// A referenced Secret lacks the key.
    #[error("{field}: Secret {name:?} has no key {key:?}")]
    MissingKey {
        /// The spec field holding the reference.
        field: &'static str,
        /// The Secret's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The JWT signing key is too short.
    #[error(
        "{field}: the value of Secret {name:?} key {key:?} is {len} bytes long; at least {MIN_JWT_SECRET_BYTES} are required"
    )]
    WeakJwtSecret {
        /// The spec field holding the reference.
        field: &'static str,
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
        /// Length found.
        len: usize,
    },
    /// A connection URL is malformed.
    #[error("{field}: Secret {name:?} key {key:?} does not hold a valid {expected} URL: {reason}")]
    MalformedUrl {
        /// The spec field holding the reference.
        field: &'static str,
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
        /// What was expected, e.g. `postgresql://`.
        expected: &'static str,
        /// Why it was refused (never the value itself).
        reason: String,
    },
    /// A cron schedule the CronJob controller would refuse.
    #[error("{field}: {schedule:?} is not a valid cron schedule: {reason}")]
    Schedule {
        /// The spec field.
        field: &'static str,
        /// The schedule.
        schedule: String,
        /// Why.
        reason: String,
    },
    /// The encryption keys cannot be used (the reason names the Secret and the line, never a key).
    #[error("{field}: {reason}")]
    EncryptionKey {
        /// The spec field holding the reference.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Server-side encryption asked in a way S3 refuses (also refused at admission).
    #[error("{field}: {reason}")]
    ServerSideEncryption {
        /// The spec field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A duration the drill Job would refuse.
    #[error("{field}: {reason}")]
    Duration {
        /// The spec field.
        field: &'static str,
        /// Why, quoting the value.
        reason: String,
    },
    /// Metadata the API server always sets is missing.
    #[error("metadata.{0} is missing")]
    Metadata(&'static str),
}

/// Every problem found, in spec order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<Problem>);

/// Validates a SecurityGuard against its dereferenced Secrets.
pub fn validate(guard: &SecurityGuard, refs: &References) -> Result<ValidatedGuard, Invalid> {
    let mut problems = Vec::new();
    let spec = &guard.spec;
    check_api_secrets(spec, refs, &mut problems);
    let postgres = datastore(
        refs,
        (&spec.postgres.managed, &spec.postgres.external),
        "spec.postgres.external.connectionSecret",
        &["postgres", "postgresql"],
        &mut problems,
    );
    let redis = datastore(
        refs,
        (&spec.redis.managed, &spec.redis.external),
        "spec.redis.external.connectionSecret",
        &["redis", "rediss"],
        &mut problems,
    );

    if let Some(backup) = &spec.backup {
        check_backup(backup, refs, &mut problems);
    }
    if let Some(feeds) = &spec.threat_feeds
        && let Err(reason) = crate::crd::schedule::parse(&feeds.schedule)
    {
        problems.push(Problem::Schedule {
            field: "spec.threatFeeds.schedule",
            schedule: feeds.schedule.clone(),
            reason,
        });
    }

    let name = guard.metadata.name.clone();
    let namespace = guard.namespace();
    let owner = guard.controller_owner_ref(&());
    if name.is_none() {
        problems.push(Problem::Metadata("name"));
    }
    if namespace.is_none() {
        problems.push(Problem::Metadata("namespace"));
    }
    if owner.is_none() {
        problems.push(Problem::Metadata("uid"));
    }
    match (name, namespace, owner) {
        (Some(name), Some(namespace), Some(owner)) if problems.is_empty() => {
            Ok(ValidatedGuard { name, namespace, owner, spec: spec.clone(), postgres, redis })
        }
        _ => Err(Invalid(problems)),
    }
}

/// The JWT signing key (present and long enough) and the Claude API key, if referenced.
fn check_api_secrets(spec: &SecurityGuardSpec, refs: &References, problems: &mut Vec<Problem>) {
    if let Some(jwt) = secret_value(refs, "spec.secrets.jwtSecret", &spec.secrets.jwt_secret, problems)
        && jwt.len() < MIN_JWT_SECRET_BYTES
    {
        problems.push(Problem::WeakJwtSecret {
            field: "spec.secrets.jwtSecret",
            name: spec.secrets.jwt_secret.name.clone(),
            key: spec.secrets.jwt_secret.key.clone(),
            len: jwt.len(),
        });
    }
    if let Some(claude) = &spec.secrets.claude_api_key {
        secret_value(refs, "spec.secrets.claudeApiKey", claude, problems);
    }
}

/// The S3 credentials, the encryption keys and every schedule of `spec.backup`.
fn check_backup(backup: &BackupSpec, refs: &References, problems: &mut Vec<Problem>) {
    for key in [ACCESS_KEY_ID, SECRET_ACCESS_KEY] {
        let reference = SecretKeyReference { name: backup.s3.credentials_secret.clone(), key: key.to_owned() };
        secret_value(refs, "spec.backup.s3.credentialsSecret", &reference, problems);
    }
    if let Some(encryption) = &backup.encryption {
        let field = "spec.backup.encryption.keySecret";
        if let Some(text) = secret_value(refs, field, &encryption.key_secret, problems)
            && let Err(error) = Keyring::parse(text, &encryption.key_secret.to_string())
        {
            problems.push(Problem::EncryptionKey { field, reason: error.to_string() });
        }
    }
    if let Some(sse) = &backup.s3.server_side_encryption {
        let reason = match (sse.type_, &sse.kms_key_id) {
            (ServerSideEncryptionType::SseKms, None) => Some("type SSE-KMS needs kmsKeyId"),
            (ServerSideEncryptionType::SseS3, Some(_)) => Some("kmsKeyId is only allowed with type SSE-KMS"),
            _ => None,
        };
        if let Some(reason) = reason {
            problems
                .push(Problem::ServerSideEncryption { field: "spec.backup.s3.serverSideEncryption.kmsKeyId", reason });
        }
    }
    let mut schedules = vec![("spec.backup.schedule", &backup.schedule)];
    if backup.verify.enabled {
        schedules.push(("spec.backup.verify.schedule", &backup.verify.schedule));
    }
    if backup.log_archive.enabled {
        schedules.push(("spec.backup.logArchive.schedule", &backup.log_archive.schedule));
    }
    for (field, schedule) in schedules {
        if let Err(reason) = crate::crd::schedule::parse(schedule) {
            problems.push(Problem::Schedule { field, schedule: schedule.clone(), reason });
        }
    }
    let mut durations = Vec::new();
    if backup.verify.enabled {
        let targets = &backup.verify.targets;
        durations.push(("spec.backup.verify.targets.recoveryTime", &targets.recovery_time));
        durations.push(("spec.backup.verify.targets.recoveryPoint", &targets.recovery_point));
    }
    if let Some(pitr) = &backup.point_in_time {
        durations.push(("spec.backup.pointInTime.baseBackupInterval", &pitr.base_backup_interval));
        durations.push(("spec.backup.pointInTime.archiveLagAlert", &pitr.archive_lag_alert));
    }
    for (field, text) in durations {
        if let Err(reason) = crate::crd::duration::parse(text) {
            problems.push(Problem::Duration { field, reason });
        }
    }
}

/// External wins when both are set (the schema refuses that); neither means managed defaults.
fn datastore<M: Clone + Default>(
    refs: &References,
    (managed, external): (&Option<M>, &Option<crate::crd::ExternalDatastore>),
    field: &'static str,
    schemes: &[&'static str],
    problems: &mut Vec<Problem>,
) -> Datastore<M> {
    match external {
        Some(external) => {
            check_url(refs, field, &external.connection_secret, schemes, problems);
            Datastore::External(external.connection_secret.clone())
        }
        None => Datastore::Managed(managed.clone().unwrap_or_default()),
    }
}

fn secret_value<'a>(
    refs: &'a References,
    field: &'static str,
    reference: &SecretKeyReference,
    problems: &mut Vec<Problem>,
) -> Option<&'a [u8]> {
    let Some(secret) = refs.secret(&reference.name) else {
        problems.push(Problem::MissingSecret { field, name: reference.name.clone() });
        return None;
    };
    let value = secret.data.as_ref().and_then(|d| d.get(&reference.key)).map(|v| v.0.as_slice());
    if value.is_none() {
        problems.push(Problem::MissingKey { field, name: reference.name.clone(), key: reference.key.clone() });
    }
    value
}

fn check_url(
    refs: &References,
    field: &'static str,
    reference: &SecretKeyReference,
    schemes: &[&'static str],
    problems: &mut Vec<Problem>,
) {
    let Some(raw) = secret_value(refs, field, reference, problems) else { return };
    let malformed = |reason: String| Problem::MalformedUrl {
        field,
        name: reference.name.clone(),
        key: reference.key.clone(),
        expected: schemes[0],
        reason,
    };
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t.trim(),
        Err(_) => return problems.push(malformed("the value is not UTF-8".to_owned())),
    };
    match url::Url::parse(text) {
        Err(e) => problems.push(malformed(e.to_string())),
        Ok(u) if !schemes.contains(&u.scheme()) => {
            problems.push(malformed(format!("the scheme must be one of {}", schemes.join(", "))))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => problems.push(malformed("it names no host".to_owned())),
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    fn guard(extra: &str) -> SecurityGuard {
        let yaml = format!(
            "apiVersion: securityguard.io/v1alpha1\nkind: SecurityGuard\nmetadata: {{name: sg, namespace: prod, uid: u1}}\n\
             spec:\n  image: api:1\n  secrets:\n    jwtSecret: {{name: jwt, key: k}}\n{extra}"
        );
        serde_saphyr::from_str(&yaml).expect("fixture parses")
    }

    fn secret(name: &str, key: &str, value: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
            data: Some([(key.to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    const JWT: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn missing_secret_is_named_with_its_field() {
        let err = validate(&guard(""), &References::default()).expect_err("must fail");
        assert_eq!(err.0, vec![Problem::MissingSecret { field: "spec.secrets.jwtSecret", name: "jwt".into() }]);
        assert_eq!(err.to_string(), "spec.secrets.jwtSecret: Secret \"jwt\" does not exist");
    }

    #[test]
    fn missing_key_and_short_key_are_reported() {
        let err = validate(&guard(""), &References::from_secrets([secret("jwt", "other", JWT)])).unwrap_err();
        assert!(matches!(&err.0[..], [Problem::MissingKey { key, .. }] if key == "k"));
        let err = validate(&guard(""), &References::from_secrets([secret("jwt", "k", "short")])).unwrap_err();
        assert!(matches!(&err.0[..], [Problem::WeakJwtSecret { len: 5, .. }]));
    }

    #[test]
    fn malformed_external_urls_are_refused_without_showing_the_value() {
        let extra = "  postgres:\n    external: {connectionSecret: {name: db, key: url}}\n  redis:\n    external: {connectionSecret: {name: cache, key: url}}\n";
        let refs = References::from_secrets([
            secret("jwt", "k", JWT),
            secret("db", "url", "mysql://user:hunter2@db:3306/x"),
            secret("cache", "url", "not a url hunter2"),
        ]);
        let err = validate(&guard(extra), &refs).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let text = err.to_string();
        assert!(text.contains("spec.postgres.external.connectionSecret"), "{text}");
        assert!(text.contains("spec.redis.external.connectionSecret"), "{text}");
        assert!(!text.contains("hunter2"), "secret value leaked: {text}");
    }

    #[test]
    fn a_bad_threat_feed_schedule_names_its_field() {
        let refs = References::from_secrets([secret("jwt", "k", JWT)]);
        let extra = "  threatFeeds:\n    schedule: '61 * * * *'\n    feeds: [{name: f, url: 'https://x.example/f', format: Plain}]\n";
        let err = validate(&guard(extra), &refs).unwrap_err();
        assert!(matches!(&err.0[..], [Problem::Schedule { field: "spec.threatFeeds.schedule", .. }]), "{err}");
        assert!(err.to_string().starts_with("spec.threatFeeds.schedule: \"61 * * * *\" is not a valid cron schedule"));
    }

    fn s3_secret() -> Secret {
        let mut s3 = secret("s3", ACCESS_KEY_ID, "id");
        s3.data.get_or_insert_default().insert(SECRET_ACCESS_KEY.to_owned(), ByteString(b"secret".to_vec()));
        s3
    }

    fn backup_secrets(keys: &str) -> References {
        References::from_secrets([secret("jwt", "k", JWT), s3_secret(), secret("backup-key", "keys", keys)])
    }

    const ENCRYPTED: &str = "  backup:\n    s3: {bucket: b, credentialsSecret: s3}\n    encryption: {keySecret: {name: backup-key, key: keys}}\n";

    #[test]
    fn encryption_keys_are_checked_without_showing_them() {
        let current = "q8Ni1eq7RR3Oh4LQ3UdQSJ0ZGh8n9dU4xSPRpSqTlYc=";
        assert!(validate(&guard(ENCRYPTED), &backup_secrets(&format!("{current}\n{}\n", "0f".repeat(32)))).is_ok());

        let err =
            validate(&guard(ENCRYPTED), &backup_secrets(&format!("{current}\nhunter2-passphrase\n"))).unwrap_err();
        assert!(matches!(&err.0[..], [Problem::EncryptionKey { field: "spec.backup.encryption.keySecret", .. }]));
        let text = err.to_string();
        assert!(
            text.starts_with("spec.backup.encryption.keySecret: Secret \"backup-key\" key \"keys\" line 2: not a key"),
            "{text}"
        );
        assert!(!text.contains("hunter2") && !text.contains(current), "a key never shows: {text}");

        let err = validate(&guard(ENCRYPTED), &backup_secrets("# no key yet\n")).unwrap_err();
        assert!(err.to_string().contains("holds no key"), "{err}");
        let refs = References::from_secrets([secret("jwt", "k", JWT), s3_secret()]);
        let err = validate(&guard(ENCRYPTED), &refs).unwrap_err();
        assert_eq!(
            err.0,
            vec![Problem::MissingSecret { field: "spec.backup.encryption.keySecret", name: "backup-key".into() }]
        );
    }

    #[test]
    fn sse_kms_needs_its_key_and_sse_s3_takes_none() {
        let with = |sse: &str| {
            guard(&format!("  backup:\n    s3: {{bucket: b, credentialsSecret: s3, serverSideEncryption: {sse}}}\n"))
        };
        let refs = backup_secrets("");
        assert!(validate(&with("{type: SSE-KMS, kmsKeyId: alias/backups}"), &refs).is_ok());
        assert!(validate(&with("{type: SSE-S3}"), &refs).is_ok());
        let err = validate(&with("{type: SSE-KMS}"), &refs).unwrap_err();
        assert_eq!(err.to_string(), "spec.backup.s3.serverSideEncryption.kmsKeyId: type SSE-KMS needs kmsKeyId");
        let err = validate(&with("{type: SSE-S3, kmsKeyId: k}"), &refs).unwrap_err();
        assert!(err.to_string().ends_with("kmsKeyId is only allowed with type SSE-KMS"), "{err}");
    }

    #[test]
    fn a_recovery_target_that_is_not_a_duration_names_its_field() {
        let mut s3 = secret("s3", ACCESS_KEY_ID, "a");
        s3.data.get_or_insert_default().insert(SECRET_ACCESS_KEY.to_owned(), ByteString(b"b".to_vec()));
        let refs = References::from_secrets([secret("jwt", "k", JWT), s3]);
        let extra =
            "  backup:\n    s3: {bucket: bkt, credentialsSecret: s3}\n    verify: {targets: {recoveryPoint: 1m1h}}\n";
        let err = validate(&guard(extra), &refs).unwrap_err();
        assert!(
            matches!(&err.0[..], [Problem::Duration { field: "spec.backup.verify.targets.recoveryPoint", .. }]),
            "{err}"
        );
        assert!(err.to_string().contains("\"1m1h\" is not a duration"), "{err}");
        // The defaults are valid, and targets of drills turned off are not looked at.
        let defaults = "  backup:\n    s3: {bucket: bkt, credentialsSecret: s3}\n";
        assert!(validate(&guard(defaults), &refs).is_ok());
        let off = "  backup:\n    s3: {bucket: bkt, credentialsSecret: s3}\n    verify: {enabled: false, targets: {recoveryTime: x}}\n";
        assert!(validate(&guard(off), &refs).is_ok());
    }

    #[test]
    fn point_in_time_durations_name_their_field_and_an_external_postgres_is_not_refused() {
        let mut s3 = secret("s3", ACCESS_KEY_ID, "a");
        s3.data.get_or_insert_default().insert(SECRET_ACCESS_KEY.to_owned(), ByteString(b"b".to_vec()));
        let db = secret("db", "url", "postgresql://u:p@db.example.com:5432/sg");
        let refs = References::from_secrets([secret("jwt", "k", JWT), s3, db]);
        let backup = "  backup:\n    s3: {bucket: bkt, credentialsSecret: s3}\n";
        let bad = format!("{backup}    pointInTime: {{baseBackupInterval: 1d1d, archiveLagAlert: 0m}}\n");
        let err = validate(&guard(&bad), &refs).unwrap_err();
        let fields: Vec<_> = err
            .0
            .iter()
            .filter_map(|p| match p {
                Problem::Duration { field, .. } => Some(*field),
                _ => None,
            })
            .collect();
        assert_eq!(fields, ["spec.backup.pointInTime.baseBackupInterval", "spec.backup.pointInTime.archiveLagAlert"]);
        // The defaults are valid; an external PostgreSQL is reported in the status, not refused.
        let defaults = validate(&guard(&format!("{backup}    pointInTime: {{}}\n")), &refs).expect("valid");
        let pitr = defaults.spec.backup.and_then(|b| b.point_in_time).expect("pointInTime");
        assert_eq!((pitr.base_backup_interval.as_str(), pitr.archive_lag_alert.as_str()), ("24h", "5m"));
        let external = format!(
            "  postgres:\n    external: {{connectionSecret: {{name: db, key: url}}}}\n{backup}    pointInTime: {{}}\n"
        );
        assert!(validate(&guard(&external), &refs).is_ok());
    }

    #[test]
    fn valid_external_datastores() {
        let extra = "  postgres:\n    external: {connectionSecret: {name: db, key: url}}\n";
        let refs = References::from_secrets([
            secret("jwt", "k", JWT),
            secret("db", "url", "postgresql://u:p@db.example.com:5432/sg\n"),
        ]);
        let ok = validate(&guard(extra), &refs).expect("valid");
        assert!(matches!(ok.postgres, Datastore::External(ref r) if r.name == "db"));
        assert!(matches!(ok.redis, Datastore::Managed(_)));
        assert_eq!(ok.owner.uid, "u1");
        assert_eq!(ok.owner.controller, Some(true));
    }
}
