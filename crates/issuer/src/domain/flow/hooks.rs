//! Where the sign-in flow hands work to other parts of the issuer. Each hook is a clearly named
//! function with a stable signature; its body is replaced by the part that implements it.

use crate::domain::directory::Directory;
use crate::domain::flow::AuthSession;
use crate::domain::state::State;
use portcullis_store::UserRow;

/// Sends `user` the mail with the link that verifies their address, for the `VERIFY_EMAIL`
/// required action: called when its page is first shown in a sign-in and when the user asks
/// for another mail. `auth` is the sign-in (its client, redirect URI and expiry), for a link
/// that continues it. Must not block on the mail server (queue it) and must not fail the page
/// for a mail that could not be sent (log it).
///
/// **A logged no-op here**: the mail part (SMTP, action-token links; issue 17's `mail` work)
/// replaces this body. Until then the action is done only when something else sets
/// `emailVerified` (the admin API, a realm import).
pub async fn send_verify_email(
    _st: &State,
    dir: &Directory,
    user: &UserRow,
    auth: &AuthSession,
) -> anyhow::Result<()> {
    tracing::info!(
        realm = %dir.realm,
        user.id = %user.id,
        client.id = %auth.client_id(),
        "verify-email mail requested (no mail sender in this build)"
    );
    Ok(())
}
