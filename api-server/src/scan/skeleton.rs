//! The comparison form of names ("skeletons") and the protected domains as the look-alike
//! rules compare them. A leaf: the pattern library keeps its protected domains in this form,
//! computed once per library version rather than once per scanned domain.

/// Maps confusable characters to the ASCII letters they imitate.
fn skeleton_char(c: char) -> char {
    match c {
        'а' | 'ɑ' | 'α' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | '@' => 'a',
        'Ь' | 'ь' | 'ḃ' => 'b',
        'с' | 'ϲ' | 'ç' => 'c',
        'ԁ' | 'ɗ' => 'd',
        'е' | 'ё' | 'è' | 'é' | 'ê' | 'ë' | 'ε' | '3' => 'e',
        'ɡ' => 'g',
        'һ' => 'h',
        'і' | 'ı' | 'ì' | 'í' | 'î' | 'ï' | 'l' | '1' | '|' | 'ӏ' => 'l',
        'ј' => 'j',
        'κ' | 'к' => 'k',
        'ո' | 'п' => 'n',
        'о' | 'ο' | 'ò' | 'ó' | 'ô' | 'õ' | 'ö' | '0' | 'ø' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | '5' | '$' => 's',
        'т' | 'τ' | '7' => 't',
        'υ' | 'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ν' | 'ѵ' => 'v',
        'ѡ' | 'ԝ' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'ý' | 'ÿ' => 'y',
        'ᴢ' => 'z',
        other => other,
    }
}

/// A comparison form: confusables mapped, 'i' and 'l' merged, "rn" read as "m", "vv" as "w",
/// hyphens dropped.
pub fn skeleton(s: &str) -> String {
    let mapped: String =
        s.chars().map(skeleton_char).map(|c| if c == 'i' { 'l' } else { c }).filter(|&c| c != '-').collect();
    mapped.replace("rn", "m").replace("vv", "w")
}

pub fn label_of(registrable: &str) -> &str {
    registrable.split('.').next().unwrap_or(registrable)
}

/// A protected domain and its comparison forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedDomain {
    /// The domain, lowercase (`phantom.app`).
    pub domain: String,
    /// The skeleton of the whole domain.
    pub skeleton: String,
    /// The skeleton of its first label (`phantom`).
    pub label_skeleton: String,
    /// The characters in `label_skeleton`.
    pub label_skeleton_chars: usize,
}

impl ProtectedDomain {
    pub fn new(domain: impl Into<String>) -> Self {
        let domain = domain.into().to_ascii_lowercase();
        let label_skeleton = skeleton(label_of(&domain));
        Self {
            skeleton: skeleton(&domain),
            label_skeleton_chars: label_skeleton.chars().count(),
            label_skeleton,
            domain,
        }
    }

    /// The first label (`phantom` of `phantom.app`).
    pub fn label(&self) -> &str {
        label_of(&self.domain)
    }
}

impl From<&str> for ProtectedDomain {
    fn from(domain: &str) -> Self {
        Self::new(domain)
    }
}
