//! The refresh rotations' batch statement (`Store::rotate_live_families`), shared by both
//! backends: which rotations go together, and the SQL text for a batch of them.

use super::Rotation;

/// Splits `rs` into rounds in which no family appears twice, keeping each family's rotations
/// in the order asked (indices into `rs`).
pub(super) fn distinct_rounds(rs: &[Rotation<'_>]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, r) in rs.iter().enumerate() {
        let round = seen.entry(r.family_id).and_modify(|n| *n += 1).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(i);
    }
    rounds
}

/// The rotation statement for `n` families (`Store::rotate_live_families`): `$1` is `false`,
/// then eight parameters per family. SQLite names a `VALUES` table's columns `column1…` as
/// PostgreSQL does, and its `RETURNING` may name only the updated table, hence the unqualified
/// `realm` in the revision's subquery.
pub(super) fn rotation_sql(n: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(900 + n * 90);
    sql.push_str(
        "UPDATE refresh_families AS f SET current_hash = v.column5, updated_at = v.column6 \
         FROM (VALUES ",
    );
    for i in 0..n {
        let b = 2 + 8 * i;
        let sep = if i == 0 { "" } else { ", " };
        // Writing to a String cannot fail.
        let _ = write!(
            sql,
            "{sep}(${}, ${}, ${}, ${}, ${}, CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
            b,
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7
        );
    }
    sql.push_str(
        ") AS v \
         WHERE f.id = v.column1 AND f.realm = v.column2 AND f.client_id = v.column3 \
         AND f.current_hash = v.column4 AND f.revoked = $1 \
         AND f.updated_at >= v.column7 AND f.created_at >= v.column8 \
         AND (f.session_id IS NULL OR EXISTS (SELECT 1 FROM sso_sessions s \
         WHERE s.id = f.session_id AND s.realm = v.column2 AND s.ended = $1 \
         AND s.last_seen >= v.column7 AND s.created_at >= v.column8)) \
         RETURNING id, realm, client_id, user_id, session_id, scope, current_hash, code_hash, \
         created_at, updated_at, revoked, \
         (SELECT revision FROM realms WHERE name = realm) AS realm_revision",
    );
    sql
}
