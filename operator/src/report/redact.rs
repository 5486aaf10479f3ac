//! What a support bundle must never carry, removed twice (pure):
//!
//! 1. by structure, object by object ([`object`]): the values of a Secret's `data` and
//!    `stringData` (their keys stay), kubectl's `last-applied-configuration` annotation (it
//!    repeats a Secret's data when the Secret was applied with kubectl), every `value` of a
//!    `{name, value}` pair whose name looks like a credential (env vars, HTTP headers), such
//!    ConfigMap keys, `--password=...` style arguments, and passwords inside URLs;
//! 2. by value, in every byte of every file ([`Scrubber`]): each value the namespace's Secrets
//!    hold, raw, line by line and base64-encoded, wherever it turns up (a log line, an Event's
//!    message, an env var with an innocent name).

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "<redacted>";

/// kubectl's copy of what it applied, which for a Secret holds its data.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Parts of a name (env var, ConfigMap key, flag) that make its value a credential.
const SENSITIVE: &[&str] =
    &["PASSWORD", "PASSWD", "PASSPHRASE", "TOKEN", "SECRET", "KEY", "CREDENTIAL", "PRIVATE", "AUTH", "COOKIE", "DSN"];

/// Values shorter than this are not scrubbed from free text: `true` or `5432` cannot be told
/// from ordinary words, and replacing them everywhere would make the bundle unreadable. The
/// structural redaction covers them where they are known to be secret.
pub const MIN_SCRUBBED_LEN: usize = 8;

/// Whether a name (env var, ConfigMap key, command-line flag) looks like it holds a credential.
pub fn is_sensitive_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SENSITIVE.iter().any(|part| upper.contains(part))
}

/// Redacts one object of kind `kind` in place (see the module's documentation).
pub fn object(kind: &str, object: &mut Value) {
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        // Field paths only, but long: nothing on-call reads.
        metadata.remove("managedFields");
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations")
            && let Some(annotation) = annotations.get_mut(LAST_APPLIED)
        {
            *annotation = Value::String(REDACTED.to_owned());
        }
    }
    match kind {
        "Secret" => {
            for field in ["data", "stringData"] {
                if let Some(Value::Object(values)) = object.get_mut(field) {
                    values.values_mut().for_each(|v| *v = Value::String(REDACTED.to_owned()));
                }
            }
        }
        "ConfigMap" => {
            for field in ["data", "binaryData"] {
                if let Some(Value::Object(values)) = object.get_mut(field) {
                    for (key, value) in values.iter_mut() {
                        if is_sensitive_name(key) {
                            *value = Value::String(REDACTED.to_owned());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    walk(object, None);
}

/// Redacts sensitive `{name, value}` pairs, flags and URL passwords anywhere below `node`.
fn walk(node: &mut Value, key: Option<&str>) {
    match node {
        Value::Object(map) => {
            let sensitive_pair = map.get("name").and_then(Value::as_str).is_some_and(is_sensitive_name)
                && map.get("value").is_some_and(Value::is_string);
            if sensitive_pair {
                map.insert("value".to_owned(), Value::String(REDACTED.to_owned()));
            }
            for (field, child) in map.iter_mut() {
                walk(child, Some(field));
            }
        }
        Value::Array(items) => {
            let arguments = matches!(key, Some("args" | "command"));
            let mut previous_flag_sensitive = false;
            for item in items.iter_mut() {
                if arguments && let Value::String(text) = item {
                    // `--password secret`: the word after a sensitive flag.
                    if previous_flag_sensitive && !text.starts_with('-') {
                        *text = REDACTED.to_owned();
                        previous_flag_sensitive = false;
                        continue;
                    }
                    previous_flag_sensitive = text.starts_with('-') && !text.contains('=') && is_sensitive_name(text);
                    *text = argument(text);
                    continue;
                }
                walk(item, None);
            }
        }
        Value::String(text) => *text = url_passwords(text),
        _ => {}
    }
}

/// `--password=secret` → `--password=<redacted>`; other arguments lose only URL passwords.
fn argument(text: &str) -> String {
    if let Some((flag, _)) = text.split_once('=')
        && flag.starts_with('-')
        && is_sensitive_name(flag)
    {
        return format!("{flag}={REDACTED}");
    }
    url_passwords(text)
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`, everywhere in `text`.
pub fn url_passwords(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        // The authority ends at the first `/`, `?`, `#` or white space.
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@').and_then(|(info, host)| info.split_once(':').map(|(user, _)| (user, host))) {
            Some((user, host)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces known secret values in any bytes (see the module's documentation), in one pass
/// over each file whatever the number of values (Aho-Corasick, the longest match first).
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// What to replace.
    needles: Vec<Vec<u8>>,
    /// The automaton finding them (`None`: nothing to replace).
    automaton: Option<AhoCorasick>,
}

impl Scrubber {
    /// A scrubber of these secret values (the decoded `data` of Secrets).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for value in values {
            let mut forms = vec![value.to_vec(), value.trim_ascii().to_vec()];
            // Each line of a multi-line value (a PEM key) also shows inside escaped JSON text.
            forms.extend(value.split(|b| *b == b'\n').map(|line| line.trim_ascii().to_vec()));
            for form in [value, value.trim_ascii()] {
                forms.push(STANDARD_NO_PAD.encode(form).into_bytes());
                forms.push(URL_SAFE_NO_PAD.encode(form).into_bytes());
            }
            needles.extend(forms.into_iter().filter(|f| f.len() >= MIN_SCRUBBED_LEN));
        }
        needles.sort();
        needles.dedup();
        let automaton = (!needles.is_empty())
            .then(|| AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&needles).ok())
            .flatten();
        Self { needles, automaton }
    }

    /// How many byte strings it replaces.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Whether it replaces nothing.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `bytes` with every known value replaced by [`REDACTED`].
    pub fn scrub(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.automaton {
            Some(automaton) => {
                let mut out = Vec::with_capacity(bytes.len());
                automaton.replace_all_with_bytes(bytes, &mut out, |_, _, dst| {
                    dst.extend_from_slice(REDACTED.as_bytes());
                    true
                });
                out
            }
            None => bytes.to_vec(),
        }
    }
}

/// The base64 of a value as a Secret's `data` shows it (for tests and checks).
pub fn base64(value: &[u8]) -> String {
    STANDARD.encode(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_keeps_its_keys_and_loses_its_values() {
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "jwt", "managedFields": [{"manager": "kubectl"}], "annotations": {
                LAST_APPLIED: "{\"data\":{\"secret\":\"c2VjcmV0LXZhbHVl\"}}", "team": "a"}},
            "data": {"secret": "c2VjcmV0LXZhbHVl", "other": "eA=="},
            "stringData": {"plain": "secret-value"},
            "type": "Opaque",
        });
        object("Secret", &mut secret);
        assert_eq!(
            secret,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "jwt", "annotations": {LAST_APPLIED: REDACTED, "team": "a"}},
                "data": {"secret": REDACTED, "other": REDACTED},
                "stringData": {"plain": REDACTED},
                "type": "Opaque",
            })
        );
    }

    #[test]
    fn env_values_with_credential_names_are_redacted_wherever_they_are() {
        let mut deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{
            "name": "api",
            "env": [
                {"name": "DATABASE_PASSWORD", "value": "hunter2hunter2"},
                {"name": "api_token", "value": "t0k3n-value"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "aws-secret"},
                {"name": "JWT_SECRET", "valueFrom": {"secretKeyRef": {"name": "jwt", "key": "secret"}}},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "DATABASE_URL", "value": "postgres://sg:pa55word@db:5432/sg?sslmode=disable"},
            ],
            "args": ["run", "--password=p4ss", "--token", "t0k", "--verbose", "--db=redis://:r3dis@redis:6379"],
            "readinessProbe": {"httpGet": {"httpHeaders": [{"name": "Authorization", "value": "Bearer abc"}]}},
        }]}}}});
        object("Deployment", &mut deployment);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env: Vec<(&str, &Value)> =
            container["env"].as_array().expect("env").iter().map(|e| (e["name"].as_str().expect("name"), e)).collect();
        assert_eq!(env[0].1["value"], REDACTED);
        assert_eq!(env[1].1["value"], REDACTED);
        assert_eq!(env[2].1["value"], REDACTED);
        assert_eq!(env[3].1["valueFrom"]["secretKeyRef"], json!({"name": "jwt", "key": "secret"}));
        assert_eq!(env[4].1["value"], "info");
        assert_eq!(env[5].1["value"], "postgres://sg:<redacted>@db:5432/sg?sslmode=disable");
        assert_eq!(
            container["args"],
            json!([
                "run",
                "--password=<redacted>",
                "--token",
                REDACTED,
                "--verbose",
                "--db=redis://:<redacted>@redis:6379"
            ])
        );
        assert_eq!(container["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"], REDACTED);
    }

    #[test]
    fn config_map_keys_with_credential_names_are_redacted() {
        let mut config_map = json!({"kind": "ConfigMap", "data": {"LOG_LEVEL": "debug", "REDIS_PASSWORD": "x"}});
        object("ConfigMap", &mut config_map);
        assert_eq!(config_map["data"], json!({"LOG_LEVEL": "debug", "REDIS_PASSWORD": REDACTED}));
    }

    #[test]
    fn url_passwords_are_cut_out_of_any_text() {
        assert_eq!(
            url_passwords("connecting to postgres://app:s3cr3t@db:5432/x then https://example.com/a:b@c"),
            "connecting to postgres://app:<redacted>@db:5432/x then https://example.com/a:b@c"
        );
        assert_eq!(
            url_passwords("redis://:pw@r:6379 and s3://bucket/key"),
            "redis://:<redacted>@r:6379 and s3://bucket/key"
        );
        assert_eq!(url_passwords("no url"), "no url");
    }

    #[test]
    fn the_scrubber_replaces_values_their_lines_and_their_base64() {
        let pem = b"-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n";
        let scrubber = Scrubber::new([b"s3cr3t-passw0rd".as_slice(), b"short", pem.as_slice()]);
        let text = format!(
            "a s3cr3t-passw0rd b {} c {} d short e {}",
            base64(b"s3cr3t-passw0rd"),
            URL_SAFE_NO_PAD.encode(b"s3cr3t-passw0rd"),
            serde_json::to_string(std::str::from_utf8(pem).expect("utf-8")).expect("json"),
        );
        let out = String::from_utf8(scrubber.scrub(text.as_bytes())).expect("utf-8");
        assert!(!out.contains("s3cr3t-passw0rd"), "{out}");
        assert!(!out.contains(&base64(b"s3cr3t-passw0rd")[..16]), "{out}");
        assert!(!out.contains("MIIBOgIBAAJBAKj34GkxFhD9"), "{out}");
        assert!(out.starts_with("a <redacted> b <redacted>"), "{out}");
        // Too short to scrub from free text.
        assert!(out.contains(" short "), "{out}");
        assert!(Scrubber::default().is_empty());
    }
}
