//! Chinese and English message catalogues (`i18n/zh.toml`, `i18n/en.toml`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// One language's messages. A missing key shows as itself, so a gap is visible.
#[derive(Debug)]
pub struct Messages(HashMap<String, String>);

impl Messages {
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.get(key).map(String::as_str).unwrap_or(key)
    }

    /// A DICOM modality's name in the page's language (`US` → 超声), else its code.
    pub fn modality<'a>(&'a self, code: &'a str) -> &'a str {
        self.0
            .get(&format!("modality_{code}"))
            .map(String::as_str)
            .unwrap_or(code)
    }

    /// A role's name in the page's language (`manager` → 管理人员).
    pub fn role<'a>(&'a self, role: &'a str) -> &'a str {
        self.0
            .get(&format!("role_{role}"))
            .map(String::as_str)
            .unwrap_or(role)
    }
}

impl Messages {
    /// A programme's name (`hypertension` → 高血压患者健康管理).
    pub fn programme(&self, p: dhp_core::Programme) -> String {
        self.get(&format!("prog_{}", p.as_str())).to_string()
    }

    /// A programme status as a person reads it (`controlled` → 已控制); unknown values
    /// as they are.
    pub fn programme_status(&self, status: &str) -> String {
        let parts: Vec<String> = status
            .split('+')
            .map(|p| {
                let key = format!("st_{}", p.replace('-', "_"));
                match self.get(&key) {
                    k if k == key => p.to_string(),
                    v => v.to_string(),
                }
            })
            .collect();
        parts.join(" + ")
    }

    /// A due item's status (`overdue` → 已逾期).
    pub fn due_status(&self, s: dhp_core::programmes::DueStatus) -> String {
        self.get(&format!("status_{}", s.as_str())).to_string()
    }
}

tokio::task_local! {
    /// The page a request shows (its path and query; for a form's answer, the page the
    /// form was on), for the language switch.
    static PAGE: String;
}

/// Remember the page each request shows, so that its language switch keeps it.
pub(crate) async fn remember_page(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method};
    let page = if matches!(*req.method(), Method::GET | Method::HEAD) {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into())
    } else {
        // A form's answer (an error shown on it) switches to the form's own page,
        // which a GET can reach; only its path and query are taken.
        req.headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .unwrap_or_else(|| req.uri().path().to_string())
    };
    // Only a path of this site is ever linked to (`//host/…` or `/\host` would be
    // another site's).
    let own = page.starts_with('/')
        && !page.starts_with("//")
        && !page.contains('\\')
        && !page.chars().any(char::is_control);
    let page = if own { page } else { "/".to_string() };
    PAGE.scope(page, next.run(req)).await
}

/// The link to the page being shown in the other language: its path and query kept,
/// `lang` set.
pub fn switch_href(t: &Messages) -> String {
    let lang = t.get("other_lang");
    PAGE.try_with(|p| with_lang(p, lang))
        .unwrap_or_else(|_| format!("?lang={lang}"))
}

/// `page` (a path with its query) without its `lang`, every other parameter kept.
pub(crate) fn without_lang(page: &str) -> String {
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "lang" {
            out.append_pair(&k, &v);
        }
    }
    let q = out.finish();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// `page` (a path with its query) with `lang` set and every other parameter kept.
pub(crate) fn with_lang(page: &str, lang: &str) -> String {
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "lang" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("lang", lang);
    format!("{path}?{}", out.finish())
}

/// A page's `lang` query parameter as one of the two catalogues: `en`, else `zh`.
/// Whatever else a URL carries there (a CR LF, a script) is never echoed into a
/// redirect or a link.
pub(crate) fn page_lang<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let raw: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(raw.map(|l| if l == "en" { "en" } else { "zh" }.to_string()))
}

fn load(text: &str) -> Messages {
    Messages(toml::from_str(text).expect("message catalogue is valid TOML"))
}

/// Messages for `lang` (`zh` default, `en`).
pub fn messages(lang: &str) -> &'static Messages {
    static ZH: OnceLock<Messages> = OnceLock::new();
    static EN: OnceLock<Messages> = OnceLock::new();
    if lang == "en" {
        EN.get_or_init(|| load(include_str!("../i18n/en.toml")))
    } else {
        ZH.get_or_init(|| load(include_str!("../i18n/zh.toml")))
    }
}

/// `12345` → `12,345`.
pub(crate) fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_keeps_the_page_and_its_query() {
        assert_eq!(
            with_lang("/workbench?programme=hypertension&lang=zh&page=3", "en"),
            "/workbench?programme=hypertension&page=3&lang=en"
        );
        assert_eq!(with_lang("/me", "en"), "/me?lang=en");
        assert_eq!(
            with_lang("/care?q=%E7%8E%8B", "zh"),
            "/care?q=%E7%8E%8B&lang=zh"
        );
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let zh: HashMap<String, String> = toml::from_str(include_str!("../i18n/zh.toml")).unwrap();
        let en: HashMap<String, String> = toml::from_str(include_str!("../i18n/en.toml")).unwrap();
        let mut a: Vec<_> = zh.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(messages("zh").get("residents"), "常住居民");
        assert_eq!(messages("en").get("residents"), "Residents");
    }

    /// Every key the code and the templates ask for (`t.get("…")`, a refusal page's
    /// way back `("/…", "…")`) is in the catalogue: a missing key would show itself, in
    /// English, on a Chinese page.
    #[test]
    fn every_key_asked_for_is_in_the_catalogue() {
        let zh: HashMap<String, String> = toml::from_str(include_str!("../i18n/zh.toml")).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("src"), root.join("templates")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        let key = |s: &str| {
            let end = s.find('"')?;
            let k = &s[..end];
            (!k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .then(|| k.to_string())
        };
        let mut missing = Vec::new();
        let mut asked = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let mut keys = Vec::new();
            for (at, _) in text.match_indices("t.get(\"") {
                // `t.get`, not `sent.get`.
                let whole = text[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                if whole {
                    keys.extend(key(&text[at + 7..]));
                }
            }
            for part in text.split("(\"/").skip(1) {
                // A way back: the path, then its label's key.
                let Some((path, rest)) = part.split_once('"') else {
                    continue;
                };
                if path.contains(char::is_whitespace) {
                    continue;
                }
                if let Some(k) = rest.strip_prefix(", \"").and_then(key) {
                    if rest[3 + k.len()..].starts_with("\")") {
                        keys.push(k);
                    }
                }
            }
            for k in keys {
                asked += 1;
                if !zh.contains_key(&k) && k != "zh" && k != "en" {
                    missing.push(format!("{}: {k}", f.display()));
                }
            }
        }
        assert!(asked > 500, "only {asked} keys found: the scan is wrong");
        assert!(
            missing.is_empty(),
            "keys not in the catalogue: {missing:#?}"
        );
    }
}
