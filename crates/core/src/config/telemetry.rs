//! `[tracing]` (DESIGN §15): OpenTelemetry spans exported over OTLP/HTTP, validated from the
//! file schema with every problem at its `file:line:col`. Absent, tracing is off.

use super::file::TracingFile;
use super::{Diagnostics, SourceFile};

/// The validated `[tracing]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// Where spans are posted: `{otlp_endpoint}/v1/traces`.
    pub traces_url: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces recorded (0.0 ..= 1.0); a continued trace follows its parent.
    pub sample_ratio: f64,
}

pub const DEFAULT_SERVICE_NAME: &str = "portcullis";
/// The OTLP/HTTP path of the traces signal (OTLP specification, "OTLP/HTTP Request").
pub const TRACES_PATH: &str = "/v1/traces";

/// Validates `[tracing]`; errors are pushed to `diags`, the settings returned regardless.
pub(super) fn validate(
    src: &SourceFile,
    t: &TracingFile,
    diags: &mut Diagnostics,
) -> TracingSettings {
    let endpoint = t.otlp_endpoint.get_ref().trim_end_matches('/');
    check_endpoint(src, t, endpoint, diags);
    let service_name = match &t.service_name {
        Some(n) if n.get_ref().trim().is_empty() => {
            diags.push(
                src.error(n.span(), "tracing.service_name is empty")
                    .with_hint("name the service as your tracing backend should show it, or leave it out for \"portcullis\""),
            );
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => DEFAULT_SERVICE_NAME.to_string(),
    };
    let sample_ratio = match &t.sample_ratio {
        Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
            diags.push(
                src.error(
                    r.span(),
                    format!("tracing.sample_ratio = {} is not between 0.0 and 1.0", r.get_ref()),
                )
                .with_hint("1.0 records every trace, 0.1 one in ten, 0.0 none (a trusted caller's sampled trace is still continued)"),
            );
            1.0
        }
        Some(r) => *r.get_ref(),
        None => 1.0,
    };
    TracingSettings {
        traces_url: format!("{endpoint}{TRACES_PATH}"),
        service_name,
        sample_ratio,
    }
}

/// An http(s) URL with a host and nothing after the path, not already naming the signal path.
/// A URL with credentials is refused without being echoed: they would sit in logs and `check`
/// output.
fn check_endpoint(src: &SourceFile, t: &TracingFile, endpoint: &str, diags: &mut Diagnostics) {
    let span = t.otlp_endpoint.span();
    let hint = "the OTLP/HTTP collector's base URL, e.g. \"http://127.0.0.1:4318\" (spans go to /v1/traces under it)";
    let parsed = url::Url::parse(endpoint).ok();
    if parsed
        .as_ref()
        .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
    {
        diags.push(
            src.error(span, "tracing.otlp_endpoint carries credentials")
                .with_hint("remove user:password@ from the URL; reach the collector on a trusted network or through a local agent"),
        );
        return;
    }
    let ok = parsed.is_some_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    let v = t.otlp_endpoint.get_ref();
    if !ok {
        diags.push(
            src.error(
                span,
                format!("tracing.otlp_endpoint = \"{v}\" is not an http(s) URL"),
            )
            .with_hint(hint),
        );
    } else if endpoint.ends_with(TRACES_PATH) {
        diags.push(
            src.error(
                span,
                format!("tracing.otlp_endpoint = \"{v}\" already ends in {TRACES_PATH}, which the gateway appends"),
            )
            .with_hint(hint),
        );
    }
}

#[cfg(test)]
mod tests;
