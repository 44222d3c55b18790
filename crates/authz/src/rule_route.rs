//! A policy rule's route checked against what the routes files define: the loaded table, or
//! only the names of a refused one (so `check` still reports a rule for an unknown route).

use super::file::AllowFile;
use portcullis_core::config::diag::did_you_mean;
use portcullis_core::config::{Diagnostics, SourceFile};
use portcullis_core::route::{AuthMode, RouteTable};

/// What the policies' rules are checked against.
#[derive(Clone, Copy)]
pub(super) enum Known<'a> {
    Table(&'a RouteTable), // the loaded routes: names and auth modes
    Names(&'a [String]),   // the routes were refused: the names their files define
    Nothing,               // a routes file didn't parse: no name can be checked
}

/// The rule's route must be one the routes define (an error with a suggestion if not); a rule
/// for a public route is never checked (a warning).
pub(super) fn check_rule_route(
    src: &SourceFile,
    rule: &AllowFile,
    routes: Known<'_>,
    diags: &mut Diagnostics,
) {
    let name = rule.route.get_ref();
    // The route names to suggest from, when the rule's route is unknown.
    let unknown: Option<Vec<&str>> = match routes {
        Known::Nothing => None,
        Known::Names(names) => {
            (!names.iter().any(|n| n == name)).then(|| names.iter().map(String::as_str).collect())
        }
        Known::Table(routes) => match routes.get(name) {
            None => Some(routes.routes().iter().map(|r| &*r.name).collect()),
            Some(r) if r.auth == AuthMode::Public => {
                diags.push(
                    src.warning(
                        rule.route.span(),
                        format!("rule for public route \"{name}\" is never checked"),
                    )
                    .with_hint("the route has auth = \"public\"; set auth = \"jwt\" to enforce it"),
                );
                None
            }
            Some(_) => None,
        },
    };
    if let Some(known) = unknown {
        let d = src.error(
            rule.route.span(),
            format!("rule for unknown route \"{name}\""),
        );
        diags.push(match did_you_mean(name, known) {
            Some(hint) => d.with_hint(hint),
            None => d.with_hint("the route must be defined in the routes files"),
        });
    }
}
