//! The official domains of the ecosystem's major projects (`official_domains.txt`, one
//! `domain | project | source` a line): a domain scan never warns about them or their
//! subdomains.

use std::collections::HashMap;

use super::domain;

/// The list compiled into the service.
pub const LIST: &str = include_str!("official_domains.txt");

/// The official domains, by domain, with their project's name.
#[derive(Debug, Default)]
pub struct OfficialDomains {
    projects: HashMap<String, String>,
}

impl OfficialDomains {
    /// The list compiled into the service.
    pub fn compiled_in() -> Result<Self, String> {
        Self::parse(LIST)
    }

    /// Reads a list; refuses (naming the line) entries that are not normalized host names,
    /// that are public suffixes (every name under `vercel.app` would be official), that lack
    /// their project or source, and duplicates.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut projects = HashMap::new();
        for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [name, project, source] = fields[..] else {
                return Err(format!("official domains, line {n}: expected `domain | project | source`"));
            };
            if project.is_empty() || source.is_empty() {
                return Err(format!("official domains, line {n}: {name} needs its project and source"));
            }
            if domain::normalize(name).as_deref() != Ok(name) {
                return Err(format!("official domains, line {n}: {name:?} is not a lowercase host name"));
            }
            if psl::suffix_str(name) == Some(name) {
                return Err(format!("official domains, line {n}: {name} is a public suffix"));
            }
            if projects.insert(name.to_string(), project.to_string()).is_some() {
                return Err(format!("official domains, line {n}: {name} is listed twice"));
            }
        }
        Ok(Self { projects })
    }

    /// The official domain a normalized domain is, or is under, and its project.
    pub fn covering<'a>(&'a self, domain: &'a str) -> Option<(&'a str, &'a str)> {
        let mut rest = domain;
        loop {
            if let Some(project) = self.projects.get(rest) {
                return Some((rest, project));
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// The official domain that blocking `domain` (normalized) would block: one it is, is under,
    /// or is a parent of (its registrable domain, say), with its project.
    pub fn blocked_by<'a>(&'a self, domain: &'a str) -> Option<(&'a str, &'a str)> {
        self.covering(domain).or_else(|| {
            self.projects
                .iter()
                .find(|(official, _)| super::domain::matches_suffix(official, domain))
                .map(|(official, project)| (official.as_str(), project.as_str()))
        })
    }

    /// The official domains, in no particular order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.projects.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.projects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.projects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_list_loads() {
        let list = OfficialDomains::compiled_in().unwrap();
        assert!(list.len() >= 100, "{}", list.len());
        assert_eq!(list.covering("phantom.app"), Some(("phantom.app", "Phantom")));
        assert_eq!(list.covering("explorer.solana.com"), Some(("solana.com", "Solana Foundation")));
    }

    #[test]
    fn covers_subdomains_at_label_boundaries_only() {
        let list = OfficialDomains::parse("jup.ag | Jupiter | github.com/jup-ag\n").unwrap();
        assert_eq!(list.covering("station.jup.ag"), Some(("jup.ag", "Jupiter")));
        assert_eq!(list.covering("a.b.jup.ag"), Some(("jup.ag", "Jupiter")));
        assert_eq!(list.covering("fakejup.ag"), None);
        assert_eq!(list.covering("jup.ag.evil.io"), None);
        assert_eq!(list.covering("ag"), None);
    }

    #[test]
    fn blocking_an_official_domain_its_subdomain_or_its_parent_is_seen() {
        let list = OfficialDomains::parse("app.jup.ag | Jupiter | x\nphantom.app | Phantom | x\n").unwrap();
        assert_eq!(list.blocked_by("phantom.app"), Some(("phantom.app", "Phantom")));
        assert_eq!(list.blocked_by("login.phantom.app"), Some(("phantom.app", "Phantom")));
        assert_eq!(list.blocked_by("jup.ag"), Some(("app.jup.ag", "Jupiter")));
        assert_eq!(list.blocked_by("x.app.jup.ag"), Some(("app.jup.ag", "Jupiter")));
        assert_eq!(list.blocked_by("phantom-app.com"), None);
        assert_eq!(list.blocked_by("fakephantom.app"), None);
        assert_eq!(list.blocked_by("station.jup.ag"), None);
    }

    #[test]
    fn refuses_bad_entries_by_line() {
        let err = |text: &str| OfficialDomains::parse(text).unwrap_err();
        assert!(err("# c\n\nvercel.app | Vercel | x\n").contains("line 3: vercel.app is a public suffix"));
        assert!(err("Jup.ag | Jupiter | x\n").contains("line 1"));
        assert!(err("jup.ag | Jupiter\n").contains("expected"));
        assert!(err("jup.ag | | x\n").contains("needs its project"));
        assert!(err("jup.ag | J | x\njup.ag | J | x\n").contains("line 2: jup.ag is listed twice"));
        assert!(err("https://jup.ag | J | x\n").contains("not a lowercase host name"));
    }
}
