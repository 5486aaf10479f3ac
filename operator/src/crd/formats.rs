//! The formats of string values that Kubernetes, the kubelet, Redis or the operator would only
//! refuse after admission: image references, quantities, cron schedules, RFC 3339 times and
//! object names. Each is a regular expression (RE2, the syntax of CEL's `matches`, which the
//! `regex` crate shares for everything used here) and a CEL rule built from it, so the API
//! server refuses an invalid SecurityGuard at `kubectl apply` with the path of the field.

use kube::core::{Rule, validate};
use schemars::{Schema, SchemaGenerator, json_schema};

/// A DNS subdomain (RFC 1123), unanchored.
macro_rules! dns_subdomain {
    () => {
        r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    };
}
/// The name part of a label or annotation key, unanchored.
macro_rules! label_name {
    () => {
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
    };
}

/// A CEL string literal holding `text`.
fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The CEL rule `self` matches `pattern` (anchored by the pattern itself).
pub fn matches_rule(pattern: &str) -> String {
    format!("self.matches({})", cel_string(pattern))
}

// ----- Image references -----------------------------------------------------------------------

/// One component of a registry host name; the host may be upper case, the repository may not.
const DOMAIN_COMPONENT: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?";
/// One component of the repository path: lower-case runs joined by `.`, `_`, `__` or dashes.
const PATH_COMPONENT: &str = "[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*";
/// A tag: a word character then up to 127 word characters, dots or dashes.
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
/// The digests the kubelet's parser (go-digest) accepts: their algorithm and length.
const DIGEST: &str = "(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})";

/// A container image reference as the kubelet and containerd parse it (the grammar of
/// `github.com/distribution/reference`): `[host[:port]/]path[:tag][@digest]`.
pub fn image_pattern() -> String {
    let domain = format!(r"({DOMAIN_COMPONENT}(\.{DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(:[0-9]+)?");
    let path = format!("{PATH_COMPONENT}(/{PATH_COMPONENT})*");
    format!("^({domain}/)?{path}(:{TAG})?(@{DIGEST})?$")
}

/// The rule of every image field. A bare 64-character hexadecimal name is refused by the
/// parser too (it would read as an image ID).
pub fn image_rule() -> String {
    format!("{} && !self.matches('^[a-f0-9]{{64}}$')", matches_rule(&image_pattern()))
}

/// The message of every image field.
pub const IMAGE_MESSAGE: &str = "must be an image reference [host[:port]/]path[:tag][@sha256:digest], such as \
                                 ghcr.io/securityguard/api:1.4.2: a lower-case path, no spaces, a tag of at \
                                 most 128 characters";

// ----- Quantities --------------------------------------------------------------------------------

/// A quantity that is a string or an integer (`x-kubernetes-int-or-string`), as a CEL string.
const QUANTITY_TEXT: &str = "string(self)";

/// The rule of a storage size: a positive quantity.
pub fn positive_quantity_rule() -> String {
    format!("isQuantity({QUANTITY_TEXT}) && quantity({QUANTITY_TEXT}).isGreaterThan(quantity('0'))")
}

/// A resource name a container may request: the standard ones, huge pages, or an extended
/// resource `<domain>/<name>` (Kubernetes refuses any other name in a pod template).
fn resource_name_rule() -> String {
    format!(
        "self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || k.matches({}) || k.matches({}))",
        cel_string("^hugepages-[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"),
        cel_string(concat!("^", dns_subdomain!(), "/", label_name!(), "$")),
    )
}

/// Huge pages and extended resources cannot be overcommitted: Kubernetes wants their request
/// equal to their limit.
const NOT_OVERCOMMITTABLE: &str = "(k.startsWith('hugepages-') || (k.contains('/') && !k.contains('kubernetes.io/')))";

/// A request may not exceed the limit of the same resource (Kubernetes refuses the pod template).
const REQUEST_WITHIN_LIMIT_RULE: &str = "!has(self.requests) || !has(self.limits) || self.requests.all(k, \
     !(k in self.limits) || !isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) \
     || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)";

/// The schema of a container's `resources` (a `ResourceRequirements`): the quantities and
/// resource names Kubernetes accepts in a pod template, checked at admission.
pub fn resources_schema(_: &mut SchemaGenerator) -> Schema {
    let quantities = |what: &str| {
        json_schema!({
            "type": "object",
            "description": format!(
                "{what} per resource: cpu, memory, ephemeral-storage, hugepages-<size> or an extended \
                 resource <domain>/<name>, each a quantity such as 500m, 2 or 1Gi."
            ),
            "maxProperties": 16,
            "additionalProperties": {
                "description": "A quantity such as 500m, 2 or 1Gi.",
                "x-kubernetes-int-or-string": true,
                "maxLength": 64,
                "x-kubernetes-validations": [{
                    "rule": format!("isQuantity({QUANTITY_TEXT}) && !quantity({QUANTITY_TEXT}).isLessThan(quantity('0'))"),
                    "message": "must be a non-negative quantity such as 500m, 2 or 1Gi",
                }],
            },
            "x-kubernetes-validations": [{
                "rule": resource_name_rule(),
                "message": "resource names must be cpu, memory, ephemeral-storage, hugepages-<size> or an \
                            extended resource <domain>/<name>",
            }],
        })
    };
    let equal_to_limit = format!(
        "!has(self.requests) || self.requests.all(k, !{NOT_OVERCOMMITTABLE} \
         || (has(self.limits) && k in self.limits && (!isQuantity(string(self.requests[k])) \
         || !isQuantity(string(self.limits[k])) \
         || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) == 0)))"
    );
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "requests": quantities("Minimum resources the container is given"),
            "limits": quantities("Maximum resources the container may use"),
            "claims": {
                "type": "array",
                "description": "Not supported: the operator's pods have no resource claims.",
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Name of a resource claim of the pod."},
                        "request": {"type": "string", "description": "A request of that claim."},
                    },
                },
                "x-kubernetes-validations": [{
                    "rule": "size(self) == 0",
                    "message": "claims is not supported: the operator's pods have no resource claims",
                }],
            },
        },
        "x-kubernetes-validations": [
            {
                "rule": REQUEST_WITHIN_LIMIT_RULE,
                "message": "a request must not exceed the limit of the same resource",
                "fieldPath": ".requests",
            },
            {
                "rule": equal_to_limit,
                "message": "hugepages-<size> and extended resources need a limit equal to their request",
                "fieldPath": ".limits",
            },
        ],
    })
}

// ----- Redis memory ------------------------------------------------------------------------------

/// A memory size as redis-server reads `maxmemory`: a positive number of bytes, optionally with
/// a unit `b`, `k`/`kb`, `m`/`mb` or `g`/`gb` in any case (`k` is 1000, `kb` 1024). Zero, which
/// Redis reads as no limit at all, is refused.
pub const REDIS_MEMORY_PATTERN: &str = "^[1-9][0-9]{0,12}(?i:b|k|kb|m|mb|g|gb)?$";

/// The rule of `maxMemory`.
pub fn redis_memory_rule() -> String {
    matches_rule(REDIS_MEMORY_PATTERN)
}

/// `text` (a CEL string matching [`REDIS_MEMORY_PATTERN`]) as a Kubernetes quantity.
pub fn redis_memory_as_quantity(text: &str) -> String {
    format!(
        "quantity({text}.lowerAscii().replace('kb', 'Ki').replace('mb', 'Mi').replace('gb', 'Gi')\
         .replace('m', 'M').replace('g', 'G').replace('b', ''))"
    )
}

// ----- Cron schedules ----------------------------------------------------------------------------

/// One field of a five-field cron schedule.
pub struct CronField {
    /// Its name.
    pub name: &'static str,
    /// Smallest value.
    min: u32,
    /// Largest value.
    max: u32,
    /// Names of the values from `first_name` on, matched in any case.
    names: &'static [&'static str],
    /// The value of `names[0]`.
    first_name: u32,
    /// Whether `?` (any) is allowed: only in the day fields, where both parsers take it.
    any: bool,
}

const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The fields in order. The ranges are those of the CronJob controller's parser
/// (robfig/cron), which the operator's own parser (croner) also accepts: day of week stops at
/// 6, `L`, `W`, `#` and seconds are refused.
pub const CRON_FIELDS: [CronField; 5] = [
    CronField { name: "minute", min: 0, max: 59, names: &[], first_name: 0, any: false },
    CronField { name: "hour", min: 0, max: 23, names: &[], first_name: 0, any: false },
    CronField { name: "day of month", min: 1, max: 31, names: &[], first_name: 0, any: true },
    CronField { name: "month", min: 1, max: 12, names: MONTHS, first_name: 1, any: false },
    CronField { name: "day of week", min: 0, max: 6, names: WEEKDAYS, first_name: 0, any: true },
];

/// The macros both parsers know.
const CRON_MACRO: &str = "^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$";
/// Five fields separated by spaces.
const CRON_SHAPE: &str = r"^\S+( +\S+){4}$";
/// A step: `/n` with n from 1 to 999.
const CRON_STEP: &str = "/0*[1-9][0-9]{0,2}";

/// A character class of the digits `a` to `b`.
fn digits(a: u32, b: u32) -> String {
    if a == b { a.to_string() } else { format!("[{a}-{b}]") }
}

/// The decimal numbers `lo` to `hi` (below 100), single digits with an optional leading zero.
fn numbers(lo: u32, hi: u32) -> String {
    let mut parts = Vec::new();
    if lo <= 9 {
        parts.push(format!("0?{}", digits(lo, hi.min(9))));
    }
    let lo = lo.max(10);
    if lo <= hi {
        let (first, last) = (lo / 10, hi / 10);
        if first == last {
            parts.push(format!("{first}{}", digits(lo % 10, hi % 10)));
        } else {
            parts.push(format!("{first}{}", digits(lo % 10, 9)));
            if first + 1 < last {
                parts.push(format!("{}[0-9]", digits(first + 1, last - 1)));
            }
            parts.push(format!("{last}{}", digits(0, hi % 10)));
        }
    }
    parts.join("|")
}

impl CronField {
    /// The values `lo` to `hi`, as numbers or names.
    fn values(&self, lo: u32, hi: u32) -> String {
        let names: Vec<&str> = (lo.max(self.first_name)..=hi)
            .filter_map(|v| self.names.get((v - self.first_name) as usize).copied())
            .collect();
        if names.is_empty() { numbers(lo, hi) } else { format!("{}|(?i:{})", numbers(lo, hi), names.join("|")) }
    }

    /// The ranges `a-b` whose end is `b ≥ a` (`ascending`) or `b < a`, as alternatives.
    fn ranges(&self, ascending: bool) -> String {
        let ranges: Vec<String> = (self.min..=self.max)
            .filter(|&a| ascending || a > self.min)
            .map(|a| {
                let end = if ascending { self.values(a, self.max) } else { self.values(self.min, a - 1) };
                format!("({})-({end})", self.values(a, a))
            })
            .collect();
        ranges.join("|")
    }

    /// The field alone: `*`, a value or a range `a-b` (any order), each with an optional step,
    /// in a list.
    pub fn pattern(&self) -> String {
        let value = self.values(self.min, self.max);
        let item = format!(r"(\*|({value})(-({value}))?)({CRON_STEP})?");
        let list = format!("{item}(,{item})*");
        if self.any { format!(r"(\?|{list})") } else { list }
    }

    /// The whole schedule with this field (0-based `position`) matching `field`, the others any
    /// word.
    fn in_schedule(position: usize, field: &str) -> String {
        let before = r"\S+ +".repeat(position);
        let after = r" +\S+".repeat(4 - position);
        format!("^{before}({field}){after}$")
    }

    /// The schedule with this field valid.
    pub fn schedule_pattern(&self, position: usize) -> String {
        Self::in_schedule(position, &self.pattern())
    }

    /// The schedule with a range in this field that ends before it starts (`20-10`, `FRI-MON`).
    pub fn descending_range_pattern(&self, position: usize) -> String {
        Self::in_schedule(position, &format!("([^ ]*,)?({})(/[^ ,]*)?(,[^ ]*)?", self.ranges(false)))
    }

    /// The rule for this field: true when the schedule is a macro or has not five fields (the
    /// shape rule reports that), or when this field is valid and has no descending range.
    pub fn rule(&self, position: usize) -> String {
        format!(
            "!self.matches({}) || (self.matches({}) && !self.matches({}))",
            cel_string(CRON_SHAPE),
            cel_string(&self.schedule_pattern(position)),
            cel_string(&self.descending_range_pattern(position)),
        )
    }

    /// The values allowed, for the message.
    fn allowed(&self) -> String {
        match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => {
                format!("{}-{} or {}-{}", self.min, self.max, first.to_uppercase(), last.to_uppercase())
            }
            _ => format!("{}-{}", self.min, self.max),
        }
    }

    /// The message for this field.
    pub fn message(&self, position: usize) -> String {
        format!(
            "schedule field {} ({}) must be * or {}, a list a,b, a range a-b with a <= b, or a step */n or a-b/n",
            position + 1,
            self.name,
            self.allowed()
        )
    }
}

/// The rules of a cron schedule field (a schemars transform): a macro or five fields, each
/// field within its range.
pub fn cron_schedule(schema: &mut Schema) {
    let shape = format!("self.matches({}) || self.matches({})", cel_string(CRON_MACRO), cel_string(CRON_SHAPE));
    let mut rules = vec![Rule::new(shape).message(
        "schedule must be a cron expression with five fields (minute hour day-of-month month day-of-week) \
         or a macro such as @hourly",
    )];
    for (position, field) in CRON_FIELDS.iter().enumerate() {
        rules.push(Rule::new(field.rule(position)).message(field.message(position).as_str()));
    }
    for rule in rules {
        validate(schema, rule).expect("a rule serializes");
    }
}

// ----- Times -------------------------------------------------------------------------------------

/// Month and day of a date that exists, 29 February of leap years apart.
const MONTH_DAY: &str = "(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31";
/// Leap years: divisible by 4, and by 400 for the centuries.
const LEAP_YEAR: &str = "[0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00";

/// An RFC 3339 time that exists: a real date, hours 00-23, minutes and seconds 00-59, at most
/// nine fractional digits, `Z` or an offset within ±23:59. Years run to 9998 (the operator's
/// time type ends during 9999).
pub fn rfc3339_pattern() -> String {
    let year = "([0-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])";
    let date = format!("({year}-({MONTH_DAY})|({LEAP_YEAR})-02-29)");
    let time = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?";
    let offset = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
    format!("{date}T{time}{offset}")
}

/// The rule of a restore source: `latest`, `before:<RFC 3339 time>` or a backup key.
pub fn restore_source_rule() -> String {
    format!(
        "self == 'latest' || self.endsWith('.pgdump') || self.matches({})",
        cel_string(&format!("^before:{}$", rfc3339_pattern()))
    )
}

// ----- Durations ---------------------------------------------------------------------------------

/// The rule of a recovery target: a duration of [`super::duration::PATTERN`] of at least a
/// second (a digit other than 0 somewhere).
pub fn duration_rule() -> String {
    format!("{} && self.matches('[1-9]')", matches_rule(super::duration::PATTERN))
}

/// The message of every duration field.
pub const DURATION_MESSAGE: &str = "must be a duration of at least 1s such as 15m, 1h or 1h30m: whole numbers of \
                                    days, hours, minutes and seconds (d, h, m, s), in that order, each at most once";

// ----- Names -------------------------------------------------------------------------------------

/// Environment variable names as Kubernetes accepts them in a pod template: printable ASCII
/// characters other than `=`.
pub const ENV_NAMES_RULE: &str = "self.all(e, e.name.matches('^[ -<>-~]+$'))";

/// Bounds the length of environment variable names (a schemars transform of a list of
/// `EnvVar`), which lets the API server bound the cost of [`ENV_NAMES_RULE`].
pub fn bounded_env_names(schema: &mut Schema) {
    let name = schema.pointer_mut("/items/properties/name").and_then(|n| n.as_object_mut());
    name.expect("EnvVar has a name").insert("maxLength".to_owned(), 256.into());
}

/// A DNS subdomain (RFC 1123): the names of Secrets, StorageClasses and IngressClasses.
pub const DNS_SUBDOMAIN_PATTERN: &str = concat!("^", dns_subdomain!(), "$");

/// Annotation keys (`prefix/name`) as Kubernetes accepts them.
pub fn annotation_keys_rule() -> String {
    format!("self.all(k, k.matches({}))", cel_string(concat!("^(", dns_subdomain!(), "/)?", label_name!(), "$")))
}

/// The rule that Redis' `maxMemory` stays below the memory limit of its container
/// (`default_limit` when `resources` is absent; no check without a limit): Redis evicts keys at
/// `maxMemory`, the kernel kills the container at its limit.
pub fn redis_memory_below_limit_rule(default_limit: &str) -> String {
    let limit = "string(self.resources.limits['memory'])";
    let max_memory = redis_memory_as_quantity("self.maxMemory");
    format!(
        "!self.maxMemory.matches({}) || (!has(self.resources) ? {max_memory}.isLessThan(quantity({})) \
         : (!has(self.resources.limits) || !('memory' in self.resources.limits) || !isQuantity({limit}) \
         || {max_memory}.isLessThan(quantity({limit}))))",
        cel_string(REDIS_MEMORY_PATTERN),
        cel_string(default_limit),
    )
}

/// The rule that an autoscaled container requests (or limits, which sets the request) the CPU
/// and memory whose utilisation the autoscaler targets.
pub const AUTOSCALED_RESOURCES_RULE: &str = "!self.autoscaling.enabled || !has(self.resources) \
     || ['cpu', 'memory'].all(r, (has(self.resources.requests) && r in self.resources.requests) \
     || (has(self.resources.limits) && r in self.resources.limits))";

/// Schedules and whether they are valid: the CronJob controller's parser (robfig/cron) and the
/// operator's (croner) both accept the valid ones, and at least the CronJob controller refuses
/// the others. The unit tests run them through the rules' regular expressions and croner; the
/// end-to-end tests through the API server, as a SecurityGuard and as a CronJob.
pub const CRON_CASES: &[(&str, bool)] = &[
    ("0 * * * *", true),
    ("59 23 31 12 6", true),
    ("*/15 * * * *", true),
    ("*/100 * * * *", true),
    ("5/15 * * * *", true),
    ("10-20/5 * * * *", true),
    ("05 9,17 * * *", true),
    ("0 0 ? * *", true),
    ("0 0 * * ?", true),
    ("0 0 1-31/2 JAN-mar *", true),
    ("0 0 * * MON-FRI", true),
    ("0 0 * * mon-5", true),
    ("0 0 * * 0-6", true),
    ("0 0 * * 1-1", true),
    ("0,30 */2 1,15-20,31 * *", true),
    ("0 0 * FEB-nov/3 SUN,sat", true),
    ("30  3 * * 0", true),
    ("@hourly", true),
    ("@annually", true),
    ("60 * * * *", false),
    ("0 24 * * *", false),
    ("0 0 0 * *", false),
    ("0 0 32 * *", false),
    ("0 0 * 0 *", false),
    ("0 0 * 13 *", false),
    ("0 0 * * 7", false),
    ("0 0 * * 1-7", false),
    ("0 0 * * MONDAY", false),
    ("20-10 * * * *", false),
    ("0 0 * DEC-JAN *", false),
    ("0 0 * * FRI-MON", false),
    ("0 0 * * sat-SUN", false),
    ("0 0 * 3-1 *", false),
    ("1,30-5/5 * * * *", false),
    ("*/0 * * * *", false),
    ("1/0 * * * *", false),
    ("*/5/2 * * * *", false),
    ("1-2-3 * * * *", false),
    ("*-5 * * * *", false),
    ("? * * * *", false),
    ("0 0 L * *", false),
    ("0 0 * * 5L", false),
    ("0 0 * * 1#2", false),
    ("0 0 15W * *", false),
    ("0 0 * * * *", false),
    ("0 0 * *", false),
    ("@every 1h", false),
    ("@reboot", false),
];

/// Schedules both parsers accept but the rules refuse, as most likely typos: an empty list
/// item, spaces around the schedule.
pub const CRON_REFUSED_TYPOS: &[&str] = &["1, * * * *", "0 ,6 * * *", " 0 * * * *", "0 * * * * "];

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn image_references() {
        let image = re(&image_pattern());
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let valid = [
            "postgres:15".to_owned(),
            "redis".to_owned(),
            "ghcr.io/securityguard/api:0.1.0".to_owned(),
            "registry.example.com/team/app".to_owned(),
            format!("localhost:5000/a/b@sha256:{hex}"),
            format!("api:1.0@sha256:{hex}"),
            "Registry.Example.com/team/app:V1".to_owned(),
            "[::1]:5000/app:1".to_owned(),
            "a__b/c-d---e.f_g:1.0-rc_1".to_owned(),
            format!("app:{}", "t".repeat(128)),
        ];
        let invalid = [
            "Ghcr.io/X:1".to_owned(),
            "Api:1".to_owned(),
            "api:".to_owned(),
            "api:1 2".to_owned(),
            " api:1".to_owned(),
            "a//b".to_owned(),
            "-a".to_owned(),
            "a-".to_owned(),
            "a.".to_owned(),
            "a___b".to_owned(),
            "app@sha256:short".to_owned(),
            format!("app@sha256:{}", hex.to_uppercase()),
            format!("app@md5:{hex}"),
            "app:-1".to_owned(),
            format!("app:{}", "t".repeat(129)),
            "ghcr.io/".to_owned(),
            "https://ghcr.io/app".to_owned(),
        ];
        for v in &valid {
            assert!(image.is_match(v), "refused {v:?}");
        }
        for v in &invalid {
            assert!(!image.is_match(v), "accepted {v:?}");
        }
        assert!(image_rule().ends_with("!self.matches('^[a-f0-9]{64}$')"), "{}", image_rule());
    }

    #[test]
    fn redis_memory_sizes_as_redis_reads_them() {
        let memory = re(REDIS_MEMORY_PATTERN);
        for v in ["256mb", "1GB", "2gb", "512m", "1073741824", "100kb", "64K", "1b"] {
            assert!(memory.is_match(v), "refused {v:?}");
        }
        // Kubernetes units, zero (no limit at all for Redis), signs, spaces and fractions.
        for v in ["1Gi", "512Mi", "0", "0mb", "-1mb", "1 mb", "1.5gb", "mb", "", "1tb"] {
            assert!(!memory.is_match(v), "accepted {v:?}");
        }
    }

    /// The CEL rules of a schedule, evaluated with the same regular expressions in Rust.
    fn schedule_rules_accept(schedule: &str) -> bool {
        re(CRON_MACRO).is_match(schedule)
            || re(CRON_SHAPE).is_match(schedule)
                && CRON_FIELDS.iter().enumerate().all(|(i, f)| {
                    re(&f.schedule_pattern(i)).is_match(schedule)
                        && !re(&f.descending_range_pattern(i)).is_match(schedule)
                })
    }

    #[test]
    fn schedule_rules_and_croner_agree() {
        for (schedule, valid) in CRON_CASES {
            assert_eq!(schedule_rules_accept(schedule), *valid, "the rules on {schedule:?}");
            if *valid {
                let parsed = crate::crd::schedule::parse(schedule);
                assert!(parsed.is_ok(), "croner refuses {schedule:?}: {parsed:?}");
            }
        }
        for schedule in CRON_REFUSED_TYPOS {
            assert!(!schedule_rules_accept(schedule), "the rules accept {schedule:?}");
            assert!(crate::crd::schedule::parse(schedule).is_ok(), "croner refuses {schedule:?}");
        }
    }

    #[test]
    fn number_ranges() {
        assert_eq!(numbers(0, 59), "0?[0-9]|1[0-9]|[2-4][0-9]|5[0-9]");
        assert_eq!(numbers(17, 23), "1[7-9]|2[0-3]");
        assert_eq!(numbers(3, 6), "0?[3-6]");
        assert_eq!(numbers(8, 12), "0?[8-9]|1[0-2]");
        for (lo, hi) in [(0, 59), (1, 31), (5, 23), (12, 12), (10, 19)] {
            let pattern = re(&format!("^({})$", numbers(lo, hi)));
            for n in 0..100 {
                assert_eq!(pattern.is_match(&n.to_string()), (lo..=hi).contains(&n), "{n} in {lo}-{hi}");
            }
        }
    }

    #[test]
    fn each_field_rule_names_its_field_and_range() {
        let messages: Vec<String> = CRON_FIELDS.iter().enumerate().map(|(i, f)| f.message(i)).collect();
        assert_eq!(
            messages[4],
            "schedule field 5 (day of week) must be * or 0-6 or SUN-SAT, a list a,b, a range a-b with a <= b, \
             or a step */n or a-b/n"
        );
        // Only the offending field's rule fails.
        let failing: Vec<&str> = CRON_FIELDS
            .iter()
            .enumerate()
            .filter(|(i, f)| !re(&f.schedule_pattern(*i)).is_match("0 24 * * *"))
            .map(|(_, f)| f.name)
            .collect();
        assert_eq!(failing, ["hour"]);
    }

    #[test]
    fn restore_times_that_exist_and_the_operator_reads() {
        let before = re(&format!("^before:{}$", rfc3339_pattern()));
        let valid = [
            "2026-11-25T09:00:00Z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-04-30T12:00:00.5+02:00",
            "2026-12-31T23:59:59.123456789-23:59",
            "2026-01-31T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9998-12-31T23:59:59Z",
        ];
        let invalid = [
            "2026-13-45T25:61:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-01T00:00:00.1234567891Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+05:60",
            "2026-01-01T00:00:00",
            "2026-01-01 00:00:00Z",
            "9999-12-31T23:59:59Z",
            "yesterday",
        ];
        for time in valid {
            assert!(before.is_match(&format!("before:{time}")), "refused {time:?}");
            let parsed = format!("before:{time}").parse::<crate::backup::catalog::Source>();
            assert!(parsed.is_ok(), "the operator refuses {time:?}: {parsed:?}");
        }
        for time in invalid {
            assert!(!before.is_match(&format!("before:{time}")), "accepted {time:?}");
        }
        // The operator reads a few of the refused ones; the rule is stricter on purpose there: a
        // leap second (read as :59), an offset of 24 hours, a space instead of `T`.
        let operator_reads: Vec<&str> = invalid
            .into_iter()
            .filter(|t| format!("before:{t}").parse::<crate::backup::catalog::Source>().is_ok())
            .collect();
        assert_eq!(operator_reads, ["2026-12-31T23:59:60Z", "2026-01-01T00:00:00+24:00", "2026-01-01 00:00:00Z"]);
    }

    #[test]
    fn cel_strings_escape_backslashes_and_quotes() {
        assert_eq!(cel_string(r"^a\.b'c$"), r"'^a\\.b\'c$'");
        assert_eq!(matches_rule("^x$"), "self.matches('^x$')");
    }
}
