//! Storage tests of accounts (sql/accounts.rs, migration 0005): required actions, credentials
//! and their replay counter, session factors and login-event factors, on SQLite and PostgreSQL.

use super::testing::{each_backend, realm, user};
use super::*;

fn otp(id: &str, user_id: &str, at: i64) -> CredentialRow {
    CredentialRow {
        id: id.into(),
        realm: "r1".into(),
        user_id: user_id.into(),
        kind: "otp".into(),
        label: Some("phone".into()),
        secret: Secret("sealed".into()),
        data: "{}".into(),
        created_at: at,
        counter: 0,
    }
}

#[tokio::test]
async fn required_actions_credentials_and_factors_round_trip() {
    each_backend(|s| async move {
        s.put_realm(&realm()).await.unwrap();
        s.put_user(&user("u1", "alice")).await.unwrap();
        assert!(s.user_required_actions("u1").await.unwrap().is_empty());
        let acts = vec!["UPDATE_PASSWORD".to_string(), "VERIFY_EMAIL".into()];
        s.set_user_required_actions("u1", &acts).await.unwrap();
        assert_eq!(s.user_required_actions("u1").await.unwrap(), acts);
        // A user update (import, admin) keeps them.
        s.put_user(&user("u1", "alice")).await.unwrap();
        assert_eq!(s.user_required_actions("u1").await.unwrap(), acts);

        s.put_credential(&otp("c2", "u1", 20)).await.unwrap();
        s.put_credential(&otp("c1", "u1", 10)).await.unwrap();
        let got = s.user_credentials("r1", "u1").await.unwrap();
        assert_eq!(
            got.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert_eq!(got[0], otp("c1", "u1", 10));
        // The counter only moves forward, once per value.
        assert!(s.advance_credential_counter("c1", 5).await.unwrap());
        assert!(!s.advance_credential_counter("c1", 5).await.unwrap());
        assert!(!s.advance_credential_counter("c1", 4).await.unwrap());
        assert!(s.advance_credential_counter("c1", 6).await.unwrap());
        // An upsert of the same id (a sync) never moves it back.
        s.put_credential(&otp("c1", "u1", 10)).await.unwrap();
        assert!(!s.advance_credential_counter("c1", 6).await.unwrap());
        assert!(s.delete_credential("r1", "u1", "c2").await.unwrap());
        assert!(!s.delete_credential("r1", "u1", "c2").await.unwrap());
        // Deleting the user deletes their credentials.
        assert!(s.delete_user("r1", "u1").await.unwrap());
        assert!(s.user_credentials("r1", "u1").await.unwrap().is_empty());

        s.put_user(&user("u2", "bob")).await.unwrap();
        let sess = SessionRow {
            id: "s1".into(),
            realm: "r1".into(),
            user_id: "u2".into(),
            cookie_hash: "h".into(),
            created_at: 1,
            last_seen: 1,
            ended: false,
            amr: vec!["pwd".into()],
        };
        s.create_session(&sess).await.unwrap();
        s.set_session_amr("s1", &["pwd".into(), "otp".into()])
            .await
            .unwrap();
        assert_eq!(
            s.session_by_id("s1").await.unwrap().unwrap().amr,
            ["pwd", "otp"]
        );
        s.add_event(&LoginEvent {
            realm: "r1".into(),
            time: 1,
            kind: "LOGIN".into(),
            user_id: Some("u2".into()),
            client_id: None,
            ip: None,
            error: None,
            factors: vec!["pwd".into(), "otp".into()],
        })
        .await
        .unwrap();
        assert_eq!(
            s.list_events("r1").await.unwrap()[0].factors,
            ["pwd", "otp"]
        );
    })
    .await;
}
