//! Storage tests, each run on SQLite and PostgreSQL.

use super::testing::{each_backend, realm, user};
use super::*;

/// One rotation, as the issuer's batches of one.
async fn rotate_one(s: &SharedStore, r: &Rotation<'_>) -> anyhow::Result<Option<Rotated>> {
    Ok(s.rotate_live_families(std::slice::from_ref(r))
        .await?
        .pop()
        .flatten())
}

#[tokio::test]
async fn realms_users_and_mappings_round_trip() {
    each_backend(|s| async move {
        assert!(s.get_realm("r1").await.unwrap().is_none());
        s.put_realm(&realm()).await.unwrap();
        let mut r = realm();
        r.settings.failure_factor = 3;
        s.put_realm(&r).await.unwrap();
        assert_eq!(s.get_realm("r1").await.unwrap().unwrap(), r);
        assert_eq!(s.realm_names().await.unwrap(), vec!["r1".to_string()]);

        s.put_user(&user("u1", "Alice")).await.unwrap();
        let got = s.user_by_username("r1", "ALICE").await.unwrap().unwrap();
        assert_eq!(got.username, "alice");
        // An update without a hash keeps the stored one.
        let mut upd = user("ignored-id", "alice");
        upd.password_hash = None;
        upd.email = None;
        s.put_user(&upd).await.unwrap();
        let got = s.get_user("r1", "u1").await.unwrap().unwrap();
        assert_eq!(got.email, None);
        assert_eq!(got.password_hash.unwrap().expose(), "$argon2id$fake");

        s.set_user_groups("u1", &["/staff".into(), "/admins".into()])
            .await
            .unwrap();
        s.set_user_groups("u1", &["/staff".into()]).await.unwrap();
        assert_eq!(
            s.user_groups("u1").await.unwrap(),
            vec!["/staff".to_string()]
        );
        s.set_user_roles("u1", &[RoleRef::realm("viewer"), RoleRef::client("c", "x")])
            .await
            .unwrap();
        assert_eq!(
            s.user_roles("u1").await.unwrap(),
            vec![RoleRef::realm("viewer"), RoleRef::client("c", "x")]
        );
        assert_eq!(s.list_users("r1").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn groups_roles_composites_and_clients() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        for (path, parent) in [("/staff", None), ("/staff/support", Some("/staff"))] {
            s.put_group(&GroupRow {
                id: format!("id{path}"),
                realm: "r1".into(),
                path: path.into(),
                name: path.rsplit('/').next().unwrap().into(),
                parent: parent.map(Into::into),
            })
            .await
            .unwrap();
        }
        assert_eq!(
            s.list_groups("r1").await.unwrap()[1].parent.as_deref(),
            Some("/staff")
        );
        s.put_role("r1", &RoleRef::realm("viewer")).await.unwrap();
        s.put_role("r1", &RoleRef::realm("viewer")).await.unwrap();
        s.put_role("r1", &RoleRef::realm("editor")).await.unwrap();
        s.set_role_composites("r1", &RoleRef::realm("editor"), &[RoleRef::realm("viewer")])
            .await
            .unwrap();
        assert_eq!(s.list_roles("r1").await.unwrap().len(), 2);
        assert_eq!(
            s.list_composites("r1").await.unwrap(),
            vec![(RoleRef::realm("editor"), RoleRef::realm("viewer"))]
        );
        s.set_group_roles("r1", "/staff", &[RoleRef::realm("editor")])
            .await
            .unwrap();
        assert_eq!(
            s.list_group_roles("r1").await.unwrap(),
            vec![("/staff".to_string(), RoleRef::realm("editor"))]
        );

        let mut c = ClientRow {
            id: "c-1".into(),
            realm: "r1".into(),
            client_id: "app".into(),
            secret_hash: Some(Secret("h1".into())),
            config: ClientConfig {
                redirect_uris: vec!["http://x/cb".into()],
                ..Default::default()
            },
        };
        s.put_client(&c).await.unwrap();
        c.secret_hash = None;
        c.config.public_client = true;
        s.put_client(&c).await.unwrap();
        let got = s.list_clients("r1").await.unwrap().remove(0);
        assert!(got.config.public_client);
        assert_eq!(got.secret_hash.unwrap().expose(), "h1");
    })
    .await;
}

#[tokio::test]
async fn keys_rotate_and_retire() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        let key = |kid: &str, at| KeyRow {
            kid: kid.into(),
            realm: "r1".into(),
            alg: "RS256".into(),
            private_der: Secret(vec![1, 2, 3]),
            created_at: at,
            active: true,
            retired_at: None,
        };
        s.add_active_key(&key("k1", 10)).await.unwrap();
        s.add_active_key(&key("k2", 20)).await.unwrap();
        let keys = s.list_keys("r1").await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(!keys[0].active && keys[0].retired_at == Some(20));
        assert!(keys[1].active && keys[1].private_der.expose() == &vec![1, 2, 3]);
    })
    .await;
}

#[tokio::test]
async fn codes_are_single_use() {
    each_backend(|s| async move {
        let code = CodeRow {
            code_hash: "c1".into(),
            realm: "r1".into(),
            client_id: "app".into(),
            user_id: "u1".into(),
            session_id: "s1".into(),
            redirect_uri: "http://x/cb".into(),
            scope: "openid".into(),
            nonce: Some("n".into()),
            code_challenge: None,
            code_challenge_method: None,
            auth_time: 5,
            expires_at: 65,
        };
        s.put_code(&code).await.unwrap();
        assert_eq!(
            s.consume_code("c1", 10).await.unwrap(),
            CodeUse::Fresh(code.clone())
        );
        assert_eq!(
            s.consume_code("c1", 11).await.unwrap(),
            CodeUse::Reused(code)
        );
        assert_eq!(s.consume_code("nope", 11).await.unwrap(), CodeUse::Unknown);
    })
    .await;
}

#[tokio::test]
async fn sessions_and_refresh_families() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        let sess = SessionRow {
            id: "s1".into(),
            realm: "r1".into(),
            user_id: "u1".into(),
            cookie_hash: "ch".into(),
            created_at: 1,
            last_seen: 1,
            ended: false,
            amr: vec!["pwd".into()],
        };
        s.create_session(&sess).await.unwrap();
        s.touch_session("s1", 7).await.unwrap();
        assert_eq!(
            s.session_by_cookie("ch").await.unwrap().unwrap().last_seen,
            7
        );
        let fam = FamilyRow {
            id: "f1".into(),
            realm: "r1".into(),
            client_id: "app".into(),
            user_id: "u1".into(),
            session_id: Some("s1".into()),
            scope: "openid".into(),
            current_hash: "h1".into(),
            code_hash: Some("c1".into()),
            created_at: 1,
            updated_at: 1,
            revoked: false,
        };
        s.create_family(&fam).await.unwrap();
        let rotation = |old_hash, new_hash, now| Rotation {
            now,
            ..super::testing::rotation("f1", old_hash, new_hash)
        };
        assert!(
            rotate_one(&s, &rotation("h1", "h2", 2))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            rotate_one(&s, &rotation("h1", "h3", 3))
                .await
                .unwrap()
                .is_none(),
            "old hash"
        );
        assert_eq!(
            s.get_family("f1").await.unwrap().unwrap().current_hash,
            "h2"
        );
        s.end_session("s1").await.unwrap();
        assert!(s.session_by_id("s1").await.unwrap().unwrap().ended);
        assert!(s.get_family("f1").await.unwrap().unwrap().revoked);
        assert!(
            rotate_one(&s, &rotation("h2", "h3", 3))
                .await
                .unwrap()
                .is_none(),
            "revoked"
        );

        let mut fam2 = fam.clone();
        fam2.id = "f2".into();
        fam2.session_id = None;
        s.create_family(&fam2).await.unwrap();
        s.revoke_families_from_code("c1").await.unwrap();
        assert!(s.get_family("f2").await.unwrap().unwrap().revoked);
    })
    .await;
}

#[tokio::test]
async fn live_rotation_checks_everything_and_touches_the_session() {
    each_backend(|s| async move {
        let sess = SessionRow {
            id: "s1".into(),
            realm: "r1".into(),
            user_id: "u1".into(),
            cookie_hash: "ch".into(),
            created_at: 100,
            last_seen: 100,
            ended: false,
            amr: vec!["pwd".into()],
        };
        s.create_session(&sess).await.unwrap();
        let fam = FamilyRow {
            id: "f1".into(),
            realm: "r1".into(),
            client_id: "app".into(),
            user_id: "u1".into(),
            session_id: Some("s1".into()),
            scope: "openid".into(),
            current_hash: "h1".into(),
            code_hash: None,
            created_at: 100,
            updated_at: 100,
            revoked: false,
        };
        s.create_family(&fam).await.unwrap();
        let ok = Rotation {
            family_id: "f1",
            realm: "r1",
            client_id: "app",
            old_hash: "h1",
            new_hash: "h2",
            now: 150,
            active_since: 120 - 30,
            created_since: 0,
        };
        // Each wrong condition alone refuses, and changes nothing.
        for bad in [
            Rotation {
                family_id: "f9",
                ..ok
            },
            Rotation { realm: "r2", ..ok },
            Rotation {
                client_id: "other",
                ..ok
            },
            Rotation {
                old_hash: "h0",
                ..ok
            },
            Rotation {
                active_since: 101,
                ..ok
            },
            Rotation {
                created_since: 101,
                ..ok
            },
        ] {
            assert_eq!(rotate_one(&s, &bad).await.unwrap(), None, "{bad:?}");
        }
        assert_eq!(s.get_family("f1").await.unwrap().unwrap(), fam);
        assert_eq!(s.session_by_id("s1").await.unwrap().unwrap().last_seen, 100);

        s.put_realm(&realm()).await.unwrap();
        s.bump_realm_revision("r1").await.unwrap();
        assert_eq!(s.realm_revision("r1").await.unwrap(), 1);
        assert_eq!(s.realm_revision("nope").await.unwrap(), 0);
        let Rotated {
            family: rotated,
            realm_revision,
        } = rotate_one(&s, &ok).await.unwrap().unwrap();
        assert_eq!(realm_revision, 1);
        assert_eq!(
            (rotated.current_hash.as_str(), rotated.updated_at),
            ("h2", 150)
        );
        assert_eq!(rotated.user_id, "u1");
        assert_eq!(
            s.session_by_id("s1").await.unwrap().unwrap().last_seen,
            150,
            "a rotation is session activity"
        );
        assert_eq!(rotate_one(&s, &ok).await.unwrap(), None, "replay");

        // A stale or ended session refuses too.
        let next = Rotation {
            old_hash: "h2",
            new_hash: "h3",
            now: 160,
            ..ok
        };
        assert!(
            rotate_one(
                &s,
                &Rotation {
                    active_since: 151,
                    ..next
                }
            )
            .await
            .unwrap()
            .is_none()
        );
        s.end_session("s1").await.unwrap();
        let mut f2 = fam.clone();
        f2.id = "f2".into();
        s.create_family(&f2).await.unwrap();
        assert!(
            rotate_one(
                &s,
                &Rotation {
                    family_id: "f2",
                    ..ok
                }
            )
            .await
            .unwrap()
            .is_none()
        );

        // Without a session only the family's own state counts.
        let mut f3 = fam.clone();
        f3.id = "f3".into();
        f3.session_id = None;
        s.create_family(&f3).await.unwrap();
        assert!(
            rotate_one(
                &s,
                &Rotation {
                    family_id: "f3",
                    ..ok
                }
            )
            .await
            .unwrap()
            .is_some()
        );
        s.revoke_family("f3").await.unwrap();
        assert!(
            rotate_one(
                &s,
                &Rotation {
                    family_id: "f3",
                    old_hash: "h2",
                    ..ok
                }
            )
            .await
            .unwrap()
            .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn batched_rotations_answer_each_in_order_and_repeat_a_family_in_sequence() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        s.bump_realm_revision("r1").await.unwrap();
        for (id, session) in [("f1", Some("s1")), ("f2", None), ("f3", None)] {
            s.create_family(&FamilyRow {
                user_id: format!("user-of-{id}"),
                session_id: session.map(Into::into),
                ..super::testing::family_row(id, &format!("{id}-h1"))
            })
            .await
            .unwrap();
        }
        let r = super::testing::rotation;
        let got = s
            .rotate_live_families(&[
                // f1's session does not exist: refused.
                r("f1", "f1-h1", "f1-h2"),
                r("f2", "f2-h1", "f2-h2"),
                // The same family again, after the first: rotates from f2-h2.
                r("f2", "f2-h2", "f2-h3"),
                r("nope", "x", "y"),
                r("f3", "wrong", "f3-h2"),
                // A replay of f2's first token, asked after both rotations.
                r("f2", "f2-h1", "f2-h9"),
            ])
            .await
            .unwrap();
        let hashes: Vec<_> = got
            .iter()
            .map(|o| o.as_ref().map(|r| r.family.current_hash.as_str()))
            .collect();
        assert_eq!(
            hashes,
            [None, Some("f2-h2"), Some("f2-h3"), None, None, None]
        );
        let second = got[2].as_ref().unwrap();
        assert_eq!(
            (
                second.family.user_id.as_str(),
                second.family.updated_at,
                second.realm_revision
            ),
            ("user-of-f2", 150, 1)
        );
        assert_eq!(
            s.get_family("f2").await.unwrap().unwrap().current_hash,
            "f2-h3"
        );
        assert_eq!(
            s.get_family("f3").await.unwrap().unwrap().current_hash,
            "f3-h1"
        );
        assert!(s.rotate_live_families(&[]).await.unwrap().is_empty());
    })
    .await;
}
#[tokio::test]
async fn failures_events_revocations_and_purge() {
    each_backend(|s| async move {
        assert_eq!(s.get_failures("r1", "user:u1").await.unwrap(), None);
        let f = Failures {
            count: 2,
            last_failure: 9,
            locked_until: 70,
        };
        s.put_failures("r1", "user:u1", &f).await.unwrap();
        assert_eq!(s.get_failures("r1", "user:u1").await.unwrap(), Some(f));
        s.put_failures("r1", "ip:1.2.3.4", &f).await.unwrap();
        s.put_failures("r2", "user:u2", &f).await.unwrap();
        let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let mut both = s
            .failures_of("r1", &keys(&["user:u1", "ip:1.2.3.4", "user:u2"]))
            .await
            .unwrap();
        both.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            both,
            vec![("ip:1.2.3.4".to_string(), f), ("user:u1".to_string(), f)]
        );
        assert!(s.failures_of("r1", &[]).await.unwrap().is_empty());
        s.clear_failures("r1", "user:u1").await.unwrap();
        assert_eq!(s.get_failures("r1", "user:u1").await.unwrap(), None);
        assert_eq!(
            s.failures_of("r1", &keys(&["user:u1"])).await.unwrap(),
            vec![]
        );
        s.clear_failures("r1", "ip:1.2.3.4").await.unwrap();
        s.clear_failures("r2", "user:u2").await.unwrap();

        for t in [10, 100] {
            s.add_event(&LoginEvent {
                realm: "r1".into(),
                time: t,
                kind: "LOGIN".into(),
                user_id: Some("u1".into()),
                client_id: None,
                ip: Some("127.0.0.1".into()),
                error: None,
                factors: vec!["pwd".into()],
            })
            .await
            .unwrap();
        }
        s.revoke_jti("j1", 50).await.unwrap();
        assert!(s.is_jti_revoked("j1").await.unwrap());
        s.create_session(&SessionRow {
            id: "old".into(),
            realm: "r1".into(),
            user_id: "u1".into(),
            cookie_hash: "c-old".into(),
            created_at: 1,
            last_seen: 2,
            ended: false,
            amr: vec!["pwd".into()],
        })
        .await
        .unwrap();
        assert_eq!(s.purge(50, 60).await.unwrap(), 3);
        assert!(s.session_by_id("old").await.unwrap().is_none());
        assert_eq!(s.list_events("r1").await.unwrap()[0].time, 100);
        assert!(!s.is_jti_revoked("j1").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn sqlite_file_and_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = open("sqlite://data/nested/p.db", dir.path()).await.unwrap();
    store.ping().await.unwrap();
    assert!(dir.path().join("data/nested/p.db").exists());
    // Reopening runs the migrations again as a no-op.
    drop(store);
    open("sqlite://data/nested/p.db", dir.path()).await.unwrap();
    assert!(open("mysql://x", dir.path()).await.is_err());
}

/// `explain` opens the store read-only: it reads what is there and cannot write, on both backends.
#[tokio::test]
async fn read_only_access_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = open_with("sqlite://none/x.db", dir.path(), Access::ReadOnly).await;
    let err = format!(
        "{:#}",
        missing.err().expect("a missing database is an error")
    );
    assert!(err.contains("no issuer database yet"), "{err}");
    assert!(!dir.path().join("none").exists(), "nothing is created");

    let url = "sqlite://data/p.db";
    open(url, dir.path())
        .await
        .unwrap()
        .put_realm(&realm())
        .await
        .unwrap();
    let ro = open_with(url, dir.path(), Access::ReadOnly).await.unwrap();
    assert_eq!(ro.realm_names().await.unwrap(), vec!["r1".to_string()]);
    assert!(ro.put_user(&user("u1", "alice")).await.is_err());

    let db = super::testing::PgTestDb::create().await;
    open(&db.url, dir.path())
        .await
        .unwrap()
        .put_realm(&realm())
        .await
        .unwrap();
    let ro = open_with(&db.url, dir.path(), Access::ReadOnly)
        .await
        .unwrap();
    assert_eq!(ro.realm_names().await.unwrap(), vec!["r1".to_string()]);
    let write = ro.put_user(&user("u1", "alice")).await;
    drop(ro);
    db.drop_db().await;
    let err = format!("{:#}", write.expect_err("a write is refused"));
    assert!(err.contains("read-only"), "{err}");
}
