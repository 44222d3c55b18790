//! Storage tests of what the admin API changes (sql/admin.rs) and of `emailVerified`, each run
//! on SQLite and PostgreSQL.

use super::testing::{each_backend, family_row, realm, user};
use super::*;

fn group(id: &str, path: &str, parent: Option<&str>) -> GroupRow {
    GroupRow {
        id: id.into(),
        realm: "r1".into(),
        path: path.into(),
        name: path.rsplit('/').next().unwrap_or(path).into(),
        parent: parent.map(Into::into),
    }
}

#[tokio::test]
async fn email_verified_and_created_at_round_trip() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        let mut u = user("u1", "alice");
        u.email_verified = true;
        s.put_user(&u).await.unwrap();
        let got = s.get_user("r1", "u1").await.unwrap().unwrap();
        assert!(got.email_verified);
        assert_eq!(got.created_at, 100);
        // An update sets the flag and keeps the creation time.
        u.email_verified = false;
        u.created_at = 999;
        s.put_user(&u).await.unwrap();
        let got = s.get_user("r1", "u1").await.unwrap().unwrap();
        assert!(!got.email_verified);
        assert_eq!(got.created_at, 100);
    })
    .await;
}

#[tokio::test]
async fn groups_move_and_delete_with_their_subtree() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        s.put_group(&group("g1", "/staff", None)).await.unwrap();
        s.put_group(&group("g2", "/staff/support", Some("/staff")))
            .await
            .unwrap();
        // A sibling whose path only starts with the same letters is not in the subtree.
        s.put_group(&group("g3", "/staffing", None)).await.unwrap();
        s.put_user(&user("u1", "alice")).await.unwrap();
        s.add_user_group("u1", "/staff/support").await.unwrap();
        s.add_user_group("u1", "/staffing").await.unwrap();
        s.set_group_roles("r1", "/staff/support", &[RoleRef::realm("viewer")])
            .await
            .unwrap();

        s.move_group("r1", "/staff", &group("g1", "/team", None))
            .await
            .unwrap();
        let groups = s.list_groups("r1").await.unwrap();
        let paths: Vec<(&str, &str, Option<&str>)> = groups
            .iter()
            .map(|g| (g.id.as_str(), g.path.as_str(), g.parent.as_deref()))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("g3", "/staffing", None),
                ("g1", "/team", None),
                ("g2", "/team/support", Some("/team")),
            ]
        );
        assert_eq!(groups[1].name, "team");
        assert_eq!(
            s.user_groups("u1").await.unwrap(),
            vec!["/staffing".to_string(), "/team/support".to_string()]
        );
        assert_eq!(
            s.list_group_roles("r1").await.unwrap(),
            vec![("/team/support".to_string(), RoleRef::realm("viewer"))]
        );
        let members = s.group_members("r1", "/team/support").await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].id, "u1");

        s.delete_group("r1", "/team").await.unwrap();
        let left: Vec<String> = s
            .list_groups("r1")
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.path)
            .collect();
        assert_eq!(left, vec!["/staffing".to_string()]);
        assert_eq!(
            s.user_groups("u1").await.unwrap(),
            vec!["/staffing".to_string()]
        );
        assert!(s.list_group_roles("r1").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn roles_descriptions_mappings_and_delete() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        let viewer = RoleRef::realm("viewer");
        let editor = RoleRef::realm("editor");
        s.put_role("r1", &viewer).await.unwrap();
        s.put_role_row(
            "r1",
            &RoleRow {
                role: editor.clone(),
                description: Some("edits".into()),
            },
        )
        .await
        .unwrap();
        s.set_role_composites("r1", &editor, std::slice::from_ref(&viewer))
            .await
            .unwrap();
        let rows = s.list_role_rows("r1").await.unwrap();
        assert_eq!(rows[0].description.as_deref(), Some("edits"));
        assert_eq!(rows[1].description, None);

        s.put_user(&user("u1", "alice")).await.unwrap();
        s.add_user_roles("u1", &[viewer.clone(), editor.clone()])
            .await
            .unwrap();
        s.remove_user_roles("u1", std::slice::from_ref(&editor))
            .await
            .unwrap();
        assert_eq!(s.user_roles("u1").await.unwrap(), vec![viewer.clone()]);
        assert_eq!(s.role_members("r1", &viewer).await.unwrap().len(), 1);
        s.set_group_roles("r1", "/g", std::slice::from_ref(&viewer))
            .await
            .unwrap();

        s.delete_role("r1", &viewer).await.unwrap();
        assert_eq!(s.list_roles("r1").await.unwrap(), vec![editor]);
        assert!(s.list_composites("r1").await.unwrap().is_empty());
        assert!(s.user_roles("u1").await.unwrap().is_empty());
        assert!(s.list_group_roles("r1").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_and_tokens() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        s.put_user(&user("u1", "alice")).await.unwrap();
        s.add_user_group("u1", "/staff").await.unwrap();
        let session = SessionRow {
            id: "s1".into(),
            realm: "r1".into(),
            user_id: "u1".into(),
            cookie_hash: "c1".into(),
            created_at: 100,
            last_seen: 100,
            ended: false,
            amr: vec!["pwd".into()],
        };
        s.create_session(&session).await.unwrap();
        s.create_family(&FamilyRow {
            session_id: Some("s1".into()),
            ..family_row("f1", "h1")
        })
        .await
        .unwrap();
        assert_eq!(s.user_sessions("r1", "u1").await.unwrap(), vec![session]);
        assert_eq!(
            s.session_clients("s1").await.unwrap(),
            vec!["app".to_string()]
        );

        assert!(s.delete_user("r1", "u1").await.unwrap());
        assert!(!s.delete_user("r1", "u1").await.unwrap());
        assert!(s.get_user("r1", "u1").await.unwrap().is_none());
        assert!(s.user_groups("u1").await.unwrap().is_empty());
        assert!(s.session_by_id("s1").await.unwrap().unwrap().ended);
        assert!(s.get_family("f1").await.unwrap().unwrap().revoked);
        assert!(s.user_sessions("r1", "u1").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn ending_a_users_sessions_and_deleting_a_client() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        s.put_user(&user("u1", "alice")).await.unwrap();
        s.create_family(&family_row("f1", "h1")).await.unwrap();
        s.end_user_sessions("r1", "u1").await.unwrap();
        assert!(s.get_family("f1").await.unwrap().unwrap().revoked);

        s.put_client(&ClientRow {
            id: "cid".into(),
            realm: "r1".into(),
            client_id: "app".into(),
            secret_hash: None,
            config: ClientConfig::default(),
        })
        .await
        .unwrap();
        let sa = UserRow {
            service_account_client: Some("app".into()),
            ..user("sa", "service-account-app")
        };
        s.put_user(&sa).await.unwrap();
        let role = RoleRef::client("app", "read");
        s.put_role("r1", &role).await.unwrap();
        s.add_user_roles("u1", std::slice::from_ref(&role))
            .await
            .unwrap();
        assert_eq!(s.list_clients("r1").await.unwrap()[0].id, "cid");

        s.delete_client("r1", "app").await.unwrap();
        assert!(s.list_clients("r1").await.unwrap().is_empty());
        assert!(s.list_roles("r1").await.unwrap().is_empty());
        assert!(s.user_roles("u1").await.unwrap().is_empty());
        assert!(s.get_user("r1", "sa").await.unwrap().is_none());
        assert!(s.get_user("r1", "u1").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn admin_events_are_kept_and_purged() {
    each_backend(|s| async move {
        let e = AdminEvent {
            realm: "r1".into(),
            time: 100,
            operation: "CREATE".into(),
            resource_type: "USER".into(),
            resource_path: "users/u1".into(),
            auth_realm: "master".into(),
            auth_client: Some("admin-cli".into()),
            auth_user: "a1".into(),
            ip: None,
            error: None,
        };
        s.add_admin_event(&e).await.unwrap();
        assert_eq!(s.list_admin_events("r1").await.unwrap(), vec![e]);
        s.purge(200, 200).await.unwrap();
        assert!(s.list_admin_events("r1").await.unwrap().is_empty());
    })
    .await;
}
