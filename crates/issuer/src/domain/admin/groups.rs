//! Groups through the admin API, named by id: the tree (or the branches a search finds), one
//! group by id or by path, children, members, create (top level or as a child, or move an
//! existing group there), rename and delete (with the subtree). A group's path is its
//! identity in the store; its id stays the same across renames and moves.

use serde_json::Value;

use super::super::directory::Directory;
use super::super::realm_file::GroupRep;
use super::super::realm_import::{given_id, refs};
use super::super::state::State;
use super::access::Caller;
use super::{Outcome, Page, Pattern, Refused, reps};
use portcullis_store::{GroupRow, RoleRef};

/// Keycloak's group list parameters.
#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    pub search: Option<String>,
    pub exact: bool,
    pub page: Page,
    pub brief: bool,
}

/// What `POST groups` (or `…/children`) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new group with this id.
    New(String),
    /// An existing group (named by `id` in the body) moved here.
    Moved,
}

/// The group `id` and every group of the realm.
pub async fn by_id(st: &State, realm: &str, id: &str) -> Outcome<(GroupRow, Vec<GroupRow>)> {
    let all = st.store.list_groups(realm).await?;
    Ok(match all.iter().find(|g| g.id == id) {
        Some(g) => Ok((g.clone(), all)),
        None => Err(Refused::not_found("Could not find group by id")),
    })
}

/// Whether `g` or a group below it has a name `p` matches.
fn subtree_matches(g: &GroupRow, all: &[GroupRow], p: &Pattern) -> bool {
    p.matches(&g.name)
        || all
            .iter()
            .filter(|c| c.parent.as_deref() == Some(g.path.as_str()))
            .any(|c| subtree_matches(c, all, p))
}

/// The top-level groups with their subtrees, a page of them; with `search`, only the branches
/// leading to groups whose name matches.
pub async fn list(st: &State, realm: &str, q: &GroupQuery) -> anyhow::Result<Vec<Value>> {
    let mut all = st.store.list_groups(realm).await?;
    let roles = st.store.list_group_roles(realm).await?;
    if let Some(s) = &q.search {
        let p = Pattern::filter(s, q.exact);
        let keep: Vec<GroupRow> = all
            .iter()
            .filter(|g| subtree_matches(g, &all, &p))
            .cloned()
            .collect();
        all = keep;
    }
    let tops: Vec<Value> = reps::top_level(&all)
        .map(|g| reps::group(g, &all, &roles, q.brief, usize::MAX))
        .collect();
    Ok(q.page.apply(tops))
}

/// `GET groups/count`: how many groups (only top-level ones with `top`) match `search`.
pub async fn count(
    st: &State,
    realm: &str,
    search: Option<&str>,
    top: bool,
) -> anyhow::Result<usize> {
    let all = st.store.list_groups(realm).await?;
    let p = search.map(|s| Pattern::filter(s, false));
    Ok(all
        .iter()
        .filter(|g| !top || g.parent.is_none())
        .filter(|g| p.as_ref().is_none_or(|p| p.matches(&g.name)))
        .count())
}

/// The group `id`, in full, with its subtree.
pub async fn get(st: &State, realm: &str, id: &str) -> Outcome<Value> {
    let (g, all) = or_refuse!(by_id(st, realm, id).await?);
    let roles = st.store.list_group_roles(realm).await?;
    Ok(Ok(reps::group(&g, &all, &roles, false, usize::MAX)))
}

/// `GET group-by-path/{path}` (with or without the leading `/`).
pub async fn by_path(st: &State, realm: &str, path: &str) -> Outcome<Value> {
    let path = format!("/{}", path.trim_start_matches('/'));
    let all = st.store.list_groups(realm).await?;
    let Some(g) = all.iter().find(|g| g.path == path) else {
        return Ok(Err(Refused::not_found("Group path does not exist")));
    };
    let roles = st.store.list_group_roles(realm).await?;
    Ok(Ok(reps::group(g, &all, &roles, false, usize::MAX)))
}

/// `GET groups/{id}/children`: the direct subgroups, a page of them.
pub async fn children(st: &State, realm: &str, id: &str, q: &GroupQuery) -> Outcome<Vec<Value>> {
    let (g, all) = or_refuse!(by_id(st, realm, id).await?);
    let roles = st.store.list_group_roles(realm).await?;
    let p = q.search.as_deref().map(|s| Pattern::filter(s, q.exact));
    let kids: Vec<Value> = all
        .iter()
        .filter(|c| c.parent.as_deref() == Some(g.path.as_str()))
        .filter(|c| p.as_ref().is_none_or(|p| p.matches(&c.name)))
        .map(|c| reps::group(c, &all, &roles, q.brief, usize::MAX))
        .collect();
    Ok(Ok(q.page.apply(kids)))
}

/// `GET groups/{id}/members`: the users in the group directly, a page of them.
pub async fn members(
    st: &State,
    realm: &str,
    id: &str,
    page: Page,
    brief: bool,
    manage: bool,
) -> Outcome<Vec<Value>> {
    let (g, _) = or_refuse!(by_id(st, realm, id).await?);
    let users = page
        .or_max(100)
        .apply(st.store.group_members(realm, &g.path).await?);
    Ok(Ok(users
        .iter()
        .map(|u| reps::user(u, brief, manage))
        .collect()))
}

fn check_name(name: &str) -> Result<(), Refused> {
    if name.trim().is_empty() || name.contains('/') || name.chars().any(char::is_control) {
        return Err(Refused::bad("a group name is required and has no '/'"));
    }
    if name.chars().count() > 255 {
        return Err(Refused::bad("group name too long"));
    }
    Ok(())
}

fn child_path(parent: Option<&GroupRow>, name: &str) -> String {
    format!("{}/{name}", parent.map_or("", |p| p.path.as_str()))
}

fn conflict(parent: Option<&GroupRow>, name: &str) -> Refused {
    match parent {
        None => Refused::conflict(format!("Top level group named '{name}' already exists.")),
        Some(_) => Refused::conflict(format!("Sibling group named '{name}' already exists.")),
    }
}

/// `POST groups` (`parent_id` = `None`) or `POST groups/{parent_id}/children`: a new group
/// named `rep.name`, or, when `rep.id` names an existing group, that group moved here. A
/// top-level `POST` whose `path` names a parent (`/staff/new`) creates the child there.
pub async fn create(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    parent_id: Option<&str>,
    rep: GroupRep,
) -> Outcome<Created> {
    let realm = dir.realm.as_str();
    let all = st.store.list_groups(realm).await?;
    let parent = match parent_id {
        Some(pid) => match all.iter().find(|g| g.id == pid) {
            Some(p) => Some(p.clone()),
            None => return Ok(Err(Refused::not_found("Could not find group by id"))),
        },
        None => {
            let named = rep
                .path
                .as_deref()
                .and_then(|p| p.rsplit_once('/'))
                .map(|(p, _)| p)
                .filter(|p| !p.is_empty());
            match named {
                Some(p) => match all.iter().find(|g| g.path == p) {
                    Some(g) => Some(g.clone()),
                    None => return Ok(Err(Refused::bad("parent group does not exist"))),
                },
                None => None,
            }
        }
    };
    // Whatever the parent's roles grant reaches the group's members.
    let inherited = parent
        .as_ref()
        .map(|p| dir.expand(&[], std::slice::from_ref(&p.path)))
        .unwrap_or_default();
    if !caller.may_grant(realm, &inherited) {
        return Ok(Err(Refused::Forbidden(
            "the parent group grants admin roles the caller does not hold".into(),
        )));
    }
    if let Some(id) = rep
        .id
        .as_deref()
        .filter(|id| all.iter().any(|g| g.id == *id))
    {
        or_refuse!(move_to(st, realm, &all, id, parent.as_ref(), None).await?);
        return Ok(Ok(Created::Moved));
    }
    or_refuse!(check_name(&rep.name));
    let path = child_path(parent.as_ref(), &rep.name);
    if all.iter().any(|g| g.path == path) {
        return Ok(Err(conflict(parent.as_ref(), &rep.name)));
    }
    let roles = refs(&rep.realm_roles, &rep.client_roles);
    let known: Vec<RoleRef> = st.store.list_roles(realm).await?;
    if let Some(r) = roles.iter().find(|r| !known.contains(r)) {
        return Ok(Err(Refused::bad(format!("Role {} not found", r.name))));
    }
    if !caller.may_grant(realm, &dir.expand(&roles, &[])) {
        return Ok(Err(Refused::Forbidden(
            "cannot grant admin roles the caller does not hold".into(),
        )));
    }
    let id = given_id(rep.id.as_deref())?;
    st.store
        .put_group(&GroupRow {
            id: id.clone(),
            realm: realm.to_string(),
            path: path.clone(),
            name: rep.name.clone(),
            parent: parent.map(|p| p.path),
        })
        .await?;
    st.store.set_group_roles(realm, &path, &roles).await?;
    st.realm_changed(realm).await?;
    Ok(Ok(Created::New(id)))
}

/// Moves the group `id` under `parent` (top level with `None`), renamed to `name` if given.
async fn move_to(
    st: &State,
    realm: &str,
    all: &[GroupRow],
    id: &str,
    parent: Option<&GroupRow>,
    name: Option<&str>,
) -> Outcome<()> {
    let Some(g) = all.iter().find(|g| g.id == id) else {
        return Ok(Err(Refused::not_found("Could not find group by id")));
    };
    let name = name.unwrap_or(&g.name);
    let to = child_path(parent, name);
    if to == g.path {
        return Ok(Ok(()));
    }
    if to.starts_with(&format!("{}/", g.path)) {
        return Ok(Err(Refused::bad(
            "a group cannot move into its own subtree",
        )));
    }
    if all.iter().any(|x| x.path == to) {
        return Ok(Err(conflict(parent, name)));
    }
    let row = GroupRow {
        id: g.id.clone(),
        realm: realm.to_string(),
        path: to,
        name: name.to_string(),
        parent: parent.map(|p| p.path.clone()),
    };
    st.store.move_group(realm, &g.path, &row).await?;
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// `PUT groups/{id}`: renames the group (its subgroups, members and roles follow).
pub async fn update(st: &State, realm: &str, id: &str, rep: GroupRep) -> Outcome<()> {
    let (g, all) = or_refuse!(by_id(st, realm, id).await?);
    if rep.name.is_empty() || rep.name == g.name {
        return Ok(Ok(()));
    }
    or_refuse!(check_name(&rep.name));
    let parent = g
        .parent
        .as_deref()
        .and_then(|p| all.iter().find(|x| x.path == p))
        .cloned();
    move_to(st, realm, &all, id, parent.as_ref(), Some(&rep.name)).await
}

/// `DELETE groups/{id}`: the group and its subgroups; members lose the memberships.
pub async fn delete(st: &State, realm: &str, id: &str) -> Outcome<()> {
    let (g, _) = or_refuse!(by_id(st, realm, id).await?);
    st.store.delete_group(realm, &g.path).await?;
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}
