//! Loading policy files: validation of the file schema into a flattened [`PolicySet`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use super::file::{AllowFile, PolicyFile};
use super::perm::{self, Bits, METHODS, OTHER_SLOT, SLOTS};
use super::rule_route::{Known, check_rule_route};
use super::{Group, PolicySet, Role, RoleId, RouteRules, Rule};
use portcullis_core::config::diag::{Diagnostic, Severity, did_you_mean, line_col};
use portcullis_core::config::{Diagnostics, SourceFile, source};
use portcullis_core::route::{AuthMode, RouteTable};

/// The distinct permissions rules require, numbered for the grant bitsets.
#[derive(Default)]
struct Required {
    ids: HashMap<Arc<str>, u32>,
    list: Vec<Arc<str>>,
}

impl Required {
    fn id(&mut self, p: &Arc<str>) -> u32 {
        if let Some(&id) = self.ids.get(p) {
            return id;
        }
        let id = self.list.len() as u32;
        self.ids.insert(p.clone(), id);
        self.list.push(p.clone());
        id
    }
}

/// Group paths (or `[principals]` keys) and the roles they name.
type RoleMap<'a> = BTreeMap<&'a str, Vec<RoleId>>;

/// A role as written, before inheritance is resolved.
struct Draft<'a> {
    name: &'a str,
    file: usize,
    span: Range<usize>,
    permissions: &'a [Spanned<String>],
    inherits: &'a [Spanned<String>],
}

/// An inherits edge that resolved to a defined role, kept with its place for cycle errors.
struct Edge {
    to: RoleId,
    span: Range<usize>,
}

impl PolicySet {
    /// Loads every policy file under `path` (a file, or the `*.toml` files of a directory),
    /// checked against `routes`. Every problem is collected in `diags`; `None` if any is an error.
    pub fn load(path: &Path, routes: &RouteTable, diags: &mut Diagnostics) -> Option<PolicySet> {
        Self::load_with(path, Known::Table(routes), diags)
    }

    /// Checks the policies when the routes did not load, so `check` and a refused reload still
    /// report every policy error (DESIGN §3). `names` are the route names the routes files
    /// define (`RouteTable::defined_names`): a rule naming none of them is reported; `None`
    /// (a routes file didn't parse) leaves the rules' route names unchecked.
    pub fn check_without_routes(path: &Path, names: Option<&[String]>, diags: &mut Diagnostics) {
        let known = match names {
            Some(names) => Known::Names(names),
            None => Known::Nothing,
        };
        let _ = Self::load_with(path, known, diags);
    }

    fn load_with(path: &Path, routes: Known<'_>, diags: &mut Diagnostics) -> Option<PolicySet> {
        let errors_before = diags.errors().count();
        let mut sources = Vec::new();
        let mut parsed = Vec::new();
        let mut every_file = true;
        for file in source::files_in(path, "toml", diags) {
            let Some(src) = SourceFile::read(&file, diags) else {
                every_file = false;
                continue;
            };
            // Past unknown keys (reported): the rest of the file is known, so the checks
            // across files still see all of it.
            match src.parse_toml_keeping_known::<PolicyFile>(diags) {
                Some(p) => {
                    sources.push(src);
                    parsed.push(p);
                }
                None => every_file = false,
            }
        }
        // Cross-file checks on a partial read would blame the good files: a role defined in
        // the broken one would show up as "unknown" everywhere it is used. A rule's route
        // depends on the routes alone, so the read files' rules are still checked for it.
        if !every_file {
            for (src, file) in sources.iter().zip(&parsed) {
                for rule in &file.allow {
                    check_rule_route(src, rule, routes, diags);
                }
            }
            return None;
        }
        build(&sources, &parsed, routes, diags, errors_before)
    }
}

fn at(src: &SourceFile, span: &Range<usize>) -> String {
    let (line, _) = line_col(&src.text, span.start);
    format!(
        "{}:{line}",
        portcullis_core::config::diag::display_path(&src.path)
    )
}

fn build(
    sources: &[SourceFile],
    parsed: &[PolicyFile],
    routes: Known<'_>,
    diags: &mut Diagnostics,
    errors_before: usize,
) -> Option<PolicySet> {
    let (drafts, ids) = collect_roles(sources, parsed, diags);
    let names = || drafts.iter().map(|d| d.name);

    let mut edges: Vec<Vec<Edge>> = Vec::with_capacity(drafts.len());
    for d in &drafts {
        let src = &sources[d.file];
        let mut out = Vec::new();
        for j in d.inherits {
            match ids.get(j.get_ref().as_str()) {
                Some(&to) => out.push(Edge { to, span: j.span() }),
                None => diags.push(unknown_role(
                    src,
                    j,
                    &format!("in the inherits of role \"{}\"", d.name),
                    names(),
                )),
            }
        }
        edges.push(out);
    }
    report_cycles(&drafts, &edges, sources, diags);

    let mut groups: BTreeMap<&str, Vec<RoleId>> = BTreeMap::new();
    for (src, file) in sources.iter().zip(parsed) {
        for (group, roles) in &file.groups {
            let entry = groups.entry(group.get_ref().as_str()).or_default();
            for r in roles {
                match ids.get(r.get_ref().as_str()) {
                    Some(&id) if !entry.contains(&id) => entry.push(id),
                    Some(_) => {}
                    None => diags.push(unknown_role(
                        src,
                        r,
                        &format!("in group \"{}\"", group.get_ref()),
                        names(),
                    )),
                }
            }
        }
    }

    let principals = super::principals::collect(
        sources,
        parsed,
        &ids,
        |src, r, context| unknown_role(src, r, context, names()),
        diags,
    );

    let mut required = Required::default();
    let mut rules = Vec::new();
    for (src, file) in sources.iter().zip(parsed) {
        for rule in &file.allow {
            if let Some(r) = check_rule(src, rule, routes, &mut required, diags) {
                rules.push(r);
            }
        }
    }
    // Routes named by any rule, valid or not, so a typo in a rule isn't also reported as
    // a route without rules.
    let covered: BTreeSet<&str> = parsed
        .iter()
        .flat_map(|f| f.allow.iter().map(|a| a.route.get_ref().as_str()))
        .collect();
    if let Known::Table(routes) = routes {
        warn_unguarded_routes(routes, &covered, sources, diags);
    }

    if diags.errors().count() > errors_before {
        return None;
    }
    Some(flatten(
        sources,
        &drafts,
        &edges,
        (groups, principals),
        required.list,
        rules,
    ))
}

/// Every role of every file, by name; a name defined twice is an error at the second place.
fn collect_roles<'a>(
    sources: &[SourceFile],
    parsed: &'a [PolicyFile],
    diags: &mut Diagnostics,
) -> (Vec<Draft<'a>>, HashMap<&'a str, RoleId>) {
    let mut drafts: Vec<Draft<'a>> = Vec::new();
    let mut ids: HashMap<&'a str, RoleId> = HashMap::new();
    for (fi, (src, file)) in sources.iter().zip(parsed).enumerate() {
        for (name, role) in &file.roles {
            let span = name.span();
            if name.get_ref().trim().is_empty() {
                diags.push(src.error(span, "a role name can't be empty"));
                continue;
            }
            for p in &role.permissions {
                if let Some(why) = perm::syntax_error(p.get_ref()) {
                    diags.push(
                        src.error(p.span(), format!("bad permission \"{}\"", p.get_ref()))
                            .with_hint(why),
                    );
                }
            }
            if let Some(&first) = ids.get(name.get_ref().as_str()) {
                let f = &drafts[first as usize];
                diags.push(
                    src.error(span, format!("duplicate role \"{}\"", name.get_ref()))
                        .with_hint(format!(
                            "first defined at {}; a role is defined in one policy file only",
                            at(&sources[f.file], &f.span)
                        )),
                );
                continue;
            }
            ids.insert(name.get_ref().as_str(), drafts.len() as RoleId);
            drafts.push(Draft {
                name: name.get_ref(),
                file: fi,
                span,
                permissions: &role.permissions,
                inherits: &role.inherits,
            });
        }
    }
    (drafts, ids)
}

fn unknown_role<'a>(
    src: &SourceFile,
    name: &Spanned<String>,
    context: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    let d = src.error(
        name.span(),
        format!("unknown role \"{}\" {context}", name.get_ref()),
    );
    match did_you_mean(name.get_ref(), known) {
        Some(hint) => d.with_hint(hint),
        None => d.with_hint("define it with a [roles.NAME] table"),
    }
}

/// Depth-first search over inherits edges; every back edge closes a cycle, reported at that
/// edge as `a -> b -> a`. Iterative, so a long inheritance chain can't overflow the stack.
fn report_cycles(
    drafts: &[Draft<'_>],
    edges: &[Vec<Edge>],
    sources: &[SourceFile],
    diags: &mut Diagnostics,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; drafts.len()];
    for root in 0..drafts.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (role, index of the next edge to follow)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let (node, next) = *top;
            let Some(edge) = edges[node].get(next) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            let to = edge.to as usize;
            match mark[to] {
                Mark::New => {
                    mark[to] = Mark::OnPath;
                    path.push((to, 0));
                }
                Mark::OnPath => {
                    let start = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<&str> =
                        path[start..].iter().map(|(n, _)| drafts[*n].name).collect();
                    cycle.push(drafts[to].name);
                    let src = &sources[drafts[node].file];
                    diags.push(
                        src.error(
                            edge.span.clone(),
                            format!("inheritance cycle: {}", cycle.join(" -> ")),
                        )
                        .with_hint("a role can't inherit itself, directly or through others"),
                    );
                }
                Mark::Done => {}
            }
        }
    }
}

fn check_rule(
    src: &SourceFile,
    rule: &AllowFile,
    routes: Known<'_>,
    required: &mut Required,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    let errors_before = diags.errors().count();
    let name = rule.route.get_ref();
    check_rule_route(src, rule, routes, diags);

    if rule.methods.get_ref().is_empty() {
        diags.push(
            src.error(rule.methods.span(), "methods is empty")
                .with_hint("list methods, e.g. [\"GET\", \"HEAD\"], or [\"*\"] for any"),
        );
    }
    for m in rule.methods.get_ref() {
        let m_str = m.get_ref().as_str();
        if m_str != "*" && perm::slot_of_name(m_str).is_none() {
            let upper = m_str.to_ascii_uppercase();
            let hint = if perm::slot_of_name(&upper).is_some() {
                format!("methods are upper case: \"{upper}\"")
            } else {
                did_you_mean(&upper, METHODS.iter().copied())
                    .unwrap_or_else(|| format!("use one of {} or \"*\"", METHODS.join(", ")))
            };
            diags.push(
                src.error(m.span(), format!("bad method name \"{m_str}\""))
                    .with_hint(hint),
            );
        }
    }

    let p = rule.permission.get_ref();
    if let Some(why) = perm::syntax_error(p) {
        diags.push(
            src.error(rule.permission.span(), format!("bad permission \"{p}\""))
                .with_hint(why),
        );
    }
    if diags.errors().count() > errors_before {
        return None;
    }
    let permission: Arc<str> = Arc::from(p.as_str());
    Some(Rule {
        route: Arc::from(name.as_str()),
        methods: rule
            .methods
            .get_ref()
            .iter()
            .map(|m| m.get_ref().clone())
            .collect(),
        perm: required.id(&permission),
        permission,
        defined_at: at(src, &rule.route.span()),
    })
}

/// An authenticated route without any rule denies everyone; that is safe but almost always a
/// forgotten policy, so `check` says so without refusing the config.
fn warn_unguarded_routes(
    routes: &RouteTable,
    covered: &BTreeSet<&str>,
    sources: &[SourceFile],
    diags: &mut Diagnostics,
) {
    for route in routes.routes() {
        if route.auth == AuthMode::Public || covered.contains(&*route.name) {
            continue;
        }
        // Route definitions live in the routes files; `defined_at` is their "file:line".
        let (file, line) = match route.defined_at.rsplit_once(':') {
            Some((f, l)) => (PathBuf::from(f), l.parse().unwrap_or(1)),
            None => (
                sources
                    .first()
                    .map_or_else(PathBuf::new, |s| s.path.clone()),
                1,
            ),
        };
        diags.push(Diagnostic {
            file,
            line,
            col: 1,
            severity: Severity::Warning,
            message: format!(
                "route \"{}\" (auth = \"{}\") has no [[allow]] rule: every request to it is denied",
                route.name,
                route.auth.as_str()
            ),
            hint: Some(format!(
                "add an [[allow]] rule with route = \"{}\" to a policy file",
                route.name
            )),
        });
    }
}

/// Resolves inheritance juniors-first (only called once `report_cycles` found nothing, so
/// every role is reached) and precomputes which required permissions each role and group satisfies.
fn flatten(
    sources: &[SourceFile],
    drafts: &[Draft<'_>],
    edges: &[Vec<Edge>],
    (groups, principals): (RoleMap<'_>, RoleMap<'_>),
    required: Vec<Arc<str>>,
    rules: Vec<Rule>,
) -> PolicySet {
    let effective = effective_permissions(drafts, edges);
    let roles = flatten_roles(sources, drafts, edges, effective, &required);
    let groups = flatten_groups(groups, &roles, required.len());
    let principals = super::principals::flatten(principals, &roles, required.len());
    let by_route = rules_by_route(&rules);
    let mut route_names: Vec<Arc<str>> = by_route.keys().map(|k| Arc::from(&**k)).collect();
    route_names.sort();

    PolicySet {
        role_ids: roles
            .iter()
            .enumerate()
            .map(|(i, r)| (Box::from(&*r.name), i as RoleId))
            .collect(),
        roles,
        groups,
        principals,
        rules,
        routes: by_route,
        route_names,
        files: sources.iter().map(|s| s.path.clone()).collect(),
        required_len: required.len(),
        id: Default::default(),
    }
}

/// Each role's own and inherited permissions, in topological order (Kahn's algorithm): a
/// role is resolved once every role it inherits is.
fn effective_permissions(drafts: &[Draft<'_>], edges: &[Vec<Edge>]) -> Vec<BTreeSet<Arc<str>>> {
    let n = drafts.len();
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut seniors: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, out) in edges.iter().enumerate() {
        for e in out {
            seniors[e.to as usize].push(from);
        }
    }
    let mut effective: Vec<BTreeSet<Arc<str>>> = vec![BTreeSet::new(); n];
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    while let Some(r) = ready.pop_front() {
        let mut set: BTreeSet<Arc<str>> = drafts[r]
            .permissions
            .iter()
            .map(|p| Arc::from(p.get_ref().as_str()))
            .collect();
        for e in &edges[r] {
            set.extend(effective[e.to as usize].iter().cloned());
        }
        effective[r] = set;
        for &s in &seniors[r] {
            waiting[s] -= 1;
            if waiting[s] == 0 {
                ready.push_back(s);
            }
        }
    }
    effective
}

/// The roles with their effective permissions and the bit set of required permissions
/// those grant.
fn flatten_roles(
    sources: &[SourceFile],
    drafts: &[Draft<'_>],
    edges: &[Vec<Edge>],
    effective: Vec<BTreeSet<Arc<str>>>,
    required: &[Arc<str>],
) -> Vec<Role> {
    drafts
        .iter()
        .zip(effective)
        .zip(edges)
        .map(|((d, eff), out)| {
            let mut grants = Bits::new(required.len());
            for (i, req) in required.iter().enumerate() {
                if eff.iter().any(|held| perm::grants(held, req)) {
                    grants.set(i as u32);
                }
            }
            let mut inherits: Vec<RoleId> = Vec::new();
            for e in out {
                if !inherits.contains(&e.to) {
                    inherits.push(e.to);
                }
            }
            Role {
                name: Arc::from(d.name),
                inherits,
                permissions: eff.into_iter().collect(),
                grants,
                defined_at: at(&sources[d.file], &d.span),
            }
        })
        .collect()
}

/// Each group's grants: the union of its roles'.
fn flatten_groups(
    groups: BTreeMap<&str, Vec<RoleId>>,
    roles: &[Role],
    required_len: usize,
) -> HashMap<Box<str>, Group> {
    groups
        .into_iter()
        .map(|(name, ids)| {
            let mut grants = Bits::new(required_len);
            for &id in &ids {
                if let Some(r) = roles.get(id as usize) {
                    grants.union_with(&r.grants);
                }
            }
            (Box::from(name), Group { roles: ids, grants })
        })
        .collect()
}

/// The rules indexed by route, then by method slot (`"*"` fills every slot).
fn rules_by_route(rules: &[Rule]) -> HashMap<Box<str>, RouteRules> {
    let mut by_route: HashMap<Box<str>, RouteRules> = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let entry = by_route
            .entry(Box::from(&*rule.route))
            .or_insert_with(|| RouteRules {
                slots: Default::default(),
            });
        let mut slots: Vec<usize> = Vec::new();
        for m in &rule.methods {
            if m == "*" {
                slots.extend(0..SLOTS);
            } else if let Some(s) = perm::slot_of_name(m) {
                slots.push(s);
            }
        }
        slots.sort_unstable();
        slots.dedup();
        for s in slots.into_iter().filter(|&s| s <= OTHER_SLOT) {
            if let Some(slot) = entry.slots.get_mut(s) {
                slot.push((rule.perm, i as u32));
            }
        }
    }
    by_route
}
