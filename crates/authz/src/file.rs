//! The file schema of `policies/*.toml`: serde structs with spans, exactly as written by people.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    /// Group full path → role names.
    #[serde(default)]
    pub groups: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// Client-certificate identity (exact, or a prefix ending in `/*`) → role names.
    #[serde(default)]
    pub principals: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    pub roles: BTreeMap<Spanned<String>, RoleFile>,
    #[serde(default)]
    pub allow: Vec<AllowFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleFile {
    #[serde(default)]
    pub permissions: Vec<Spanned<String>>,
    #[serde(default)]
    pub inherits: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AllowFile {
    pub route: Spanned<String>,
    pub methods: Spanned<Vec<Spanned<String>>>,
    pub permission: Spanned<String>,
}
