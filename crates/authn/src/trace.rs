//! The record of each check of a token, kept only for `explain`; off on the request path.
//!
//! It sits below the checks that write to it (`claims`, `trust`) and `explain`, which reads it,
//! so none of them has to import another for it.

use serde::Serialize;

use super::error::AuthnError;

/// One check and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub check: &'static str,
    pub passed: bool,
    /// The failure's metric label, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub detail: String,
}

impl CheckOutcome {
    pub(crate) fn new(check: &'static str, result: Result<(), AuthnError>, detail: String) -> Self {
        Self {
            check,
            passed: result.is_ok(),
            reason: result.err().map(|e| e.reason),
            detail,
        }
    }
}

/// The record of each check, kept only for `explain`; off on the request path (no allocation).
pub(crate) struct Trace {
    steps: Option<Vec<CheckOutcome>>,
}

impl Trace {
    pub(crate) fn off() -> Self {
        Self { steps: None }
    }

    pub(crate) fn on() -> Self {
        Self {
            steps: Some(Vec::new()),
        }
    }

    /// Notes one check; `detail` is only formatted when tracing.
    pub(crate) fn record(
        &mut self,
        check: &'static str,
        result: Result<(), AuthnError>,
        detail: impl FnOnce() -> String,
    ) {
        if let Some(steps) = &mut self.steps {
            steps.push(CheckOutcome::new(check, result, detail()));
        }
    }

    pub(crate) fn into_steps(self) -> Vec<CheckOutcome> {
        self.steps.unwrap_or_default()
    }
}
