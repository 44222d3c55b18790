//! Reading config files: one file or every `*.toml`/`*.json` in a directory, parsed with spans.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::diag::{Diagnostic, Diagnostics};

/// A file's path and full text, kept so later checks can point at spans in it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn read(path: &Path, diags: &mut Diagnostics) -> Option<SourceFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(SourceFile {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => {
                diags.push(Diagnostic::file_error(
                    path,
                    format!("cannot read file: {e}"),
                ));
                None
            }
        }
    }

    /// Parses the text as TOML into `T`; a syntax or schema error becomes a located diagnostic.
    /// serde stops at the first error, so after an unknown key the document is parsed again
    /// without it: every unknown key of a file is reported (DESIGN §3: every error), not just
    /// the first. Other errors end the file's check (what follows could be their echo).
    pub fn parse_toml<T: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<T> {
        self.parse_toml_past_unknown_keys(diags)
            .and_then(|(v, unknown_keys)| (unknown_keys == 0).then_some(v))
    }

    /// As [`parse_toml`](Self::parse_toml), but a file whose only errors are unknown keys
    /// (each reported) still yields its value without them: the rest of its content is known,
    /// so checks of it and across files go on and report their errors too, while the
    /// reported errors keep the config refused.
    pub fn parse_toml_keeping_known<T: DeserializeOwned>(
        &self,
        diags: &mut Diagnostics,
    ) -> Option<T> {
        self.parse_toml_past_unknown_keys(diags).map(|(v, _)| v)
    }

    /// The value, and how many unknown keys were reported and left out to get it.
    fn parse_toml_past_unknown_keys<T: DeserializeOwned>(
        &self,
        diags: &mut Diagnostics,
    ) -> Option<(T, usize)> {
        let mut doc = match toml::de::DeTable::parse(&self.text) {
            Ok(d) => d,
            Err(e) => {
                self.push_toml_error(&e, diags);
                return None;
            }
        };
        let mut unknown_keys = 0;
        // A bound, not a limit anyone should reach: each round removes one key.
        for _ in 0..64 {
            match T::deserialize(toml::de::Deserializer::from(doc.clone())) {
                Ok(v) => return Some((v, unknown_keys)),
                Err(e) => {
                    self.push_toml_error(&e, diags);
                    let removed = e.message().starts_with("unknown field")
                        && e.span().is_some_and(|s| remove_key_at(doc.get_mut(), &s));
                    if !removed {
                        return None;
                    }
                    unknown_keys += 1;
                }
            }
        }
        None
    }

    fn push_toml_error(&self, e: &toml::de::Error, diags: &mut Diagnostics) {
        let span = e.span().unwrap_or(0..0);
        diags.push(Diagnostic::error(
            &self.path,
            &self.text,
            span,
            toml_message(e),
        ));
    }

    /// An error at a span of this file.
    pub fn error(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, &self.text, span, msg)
    }

    pub fn warning(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.path, &self.text, span, msg)
    }
}

/// Removes the key that starts at `span` (where toml reports an unknown field), at any depth.
fn remove_key_at(t: &mut toml::de::DeTable<'_>, span: &std::ops::Range<usize>) -> bool {
    // Keys compare by name, not span: the clone finds the entry it was taken from.
    let hit = t
        .iter()
        .find(|(k, _)| k.span() == *span)
        .map(|(k, _)| k.clone());
    if let Some(key) = hit {
        return t.remove(&key).is_some();
    }
    t.iter_mut().any(|(_, v)| remove_key_in(v.get_mut(), span))
}

fn remove_key_in(v: &mut toml::de::DeValue<'_>, span: &std::ops::Range<usize>) -> bool {
    match v {
        toml::de::DeValue::Table(t) => remove_key_at(t, span),
        toml::de::DeValue::Array(a) => a.iter_mut().any(|i| remove_key_in(i.get_mut(), span)),
        _ => false,
    }
}

/// toml's message without its own multi-line rendering of the source.
fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', " ")
}

/// The files a `routes`/`policies` setting names: the file itself, or the sorted `*.{ext}` files
/// of a directory (hidden files and Kubernetes' `..data` entries skipped).
pub fn files_in(path: &Path, ext: &str, diags: &mut Diagnostics) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::file_error(
                path,
                format!("cannot read directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && p.extension().and_then(|e| e.to_str()) == Some(ext)
                && p.is_file()
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only the schema matters here: the fields exist for serde to check.
    #[allow(dead_code)]
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: String,
        #[serde(default)]
        item: Vec<Item>,
    }

    #[allow(dead_code)]
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        n: u32,
    }

    fn parse(text: &str) -> (Option<Doc>, Vec<String>) {
        let src = SourceFile {
            path: PathBuf::from("f.toml"),
            text: text.to_string(),
        };
        let mut d = Diagnostics::default();
        let doc = src.parse_toml::<Doc>(&mut d);
        (doc, d.all().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_unknown_key_is_reported_at_any_depth() {
        let (doc, errs) = parse(
            "name = \"x\"\nextra = 1\n[[item]]\nn = 1\nbad = 2\n[[item]]\nn = 2\nworse = 3\n",
        );
        assert!(doc.is_none());
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("f.toml:2:1: unknown field `extra`"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("f.toml:5:1: unknown field `bad`")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("f.toml:8:1: unknown field `worse`")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_good_document_parses_and_other_errors_stop_the_file() {
        let (doc, errs) = parse("name = \"x\"\n[[item]]\nn = 1\n");
        assert!(doc.is_some() && errs.is_empty(), "{errs:?}");
        let (doc, errs) = parse("name = 5\nzzz = 1\n");
        assert!(doc.is_none());
        assert_eq!(errs.len(), 1, "{errs:?}");
        let (_, errs) = parse("name = \n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("f.toml:1:"), "{errs:?}");
    }
}
