//! Translations: one `key = value` file per language under `crates/web/i18n/`, embedded in the
//! binary. Values may hold `{name}` placeholders. A test checks that every language has the same
//! keys and the same placeholders.

use std::collections::HashMap;
use std::sync::OnceLock;

use caremesh_domain::Language;

const ZH: &str = include_str!("../../i18n/zh-CN.txt");
const EN: &str = include_str!("../../i18n/en.txt");

fn parse(src: &'static str) -> HashMap<&'static str, &'static str> {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn table(lang: Language) -> &'static HashMap<&'static str, &'static str> {
    static ZH_T: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    static EN_T: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    match lang {
        Language::ZhCn => ZH_T.get_or_init(|| parse(ZH)),
        Language::En => EN_T.get_or_init(|| parse(EN)),
    }
}

/// The text for `key`; a missing key shows as itself (and fails the tests).
pub fn t(lang: Language, key: &str) -> &'static str {
    match table(lang).get(key) {
        Some(v) => v,
        None => {
            tracing::warn!(key, "missing translation");
            // Keys are static strings in the code; leak nothing, show a marker.
            "??"
        }
    }
}

/// The text for `key` if the language has it (for keys made at run time, such as error codes).
pub fn lookup(lang: Language, key: &str) -> Option<&'static str> {
    table(lang).get(key).copied()
}

/// The text for `key` with `{name}` placeholders filled in (values are not escaped here).
pub fn tf(lang: Language, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(lang, key).to_owned();
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn placeholders(v: &str) -> BTreeSet<String> {
        v.split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
            .collect()
    }

    #[test]
    fn every_language_has_the_same_keys_and_placeholders() {
        let zh = parse(ZH);
        let en = parse(EN);
        let zk: BTreeSet<_> = zh.keys().collect();
        let ek: BTreeSet<_> = en.keys().collect();
        assert_eq!(
            zk.symmetric_difference(&ek).collect::<Vec<_>>(),
            Vec::<&&&str>::new(),
            "keys differ between zh-CN and en"
        );
        for (k, v) in &zh {
            assert!(!v.is_empty(), "empty zh-CN value for {k}");
            assert!(!en[k].is_empty(), "empty en value for {k}");
            assert_eq!(placeholders(v), placeholders(en[k]), "placeholders of {k}");
        }
        // Duplicate keys would silently shadow each other.
        for src in [ZH, EN] {
            let n = src
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
                .count();
            assert_eq!(n, parse(src).len(), "duplicate or malformed lines");
        }
    }

    #[test]
    fn every_key_used_in_the_pages_exists() {
        let zh = parse(ZH);
        let sources = [
            include_str!("mod.rs"),
            include_str!("patient.rs"),
            include_str!("doctor.rs"),
            include_str!("admin.rs"),
            include_str!("manage.rs"),
        ];
        for src in sources {
            for pat in [".t(", ".tf(", "t(v.lang, ", "t(viewer.lang, "] {
                for part in src.split(pat).skip(1) {
                    let part = part.trim_start();
                    let Some(rest) = part.strip_prefix('"') else {
                        continue;
                    };
                    if let Some((key, _)) = rest.split_once('"')
                        && !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
                    {
                        assert!(zh.contains_key(key), "missing translation key {key}");
                    }
                }
            }
        }
    }
}
