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
    pub fn parse_toml<T: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<T> {
        match toml::from_str::<T>(&self.text) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                diags.push(Diagnostic::error(
                    &self.path,
                    &self.text,
                    span,
                    toml_message(&e),
                ));
                None
            }
        }
    }

    /// An error at a span of this file.
    pub fn error(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, &self.text, span, msg)
    }

    pub fn warning(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.path, &self.text, span, msg)
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
