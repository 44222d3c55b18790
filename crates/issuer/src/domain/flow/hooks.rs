//! Where the sign-in flow hands work to other parts of the issuer. Each hook is a clearly named
//! function with a stable signature; its body is replaced by the part that implements it.

use crate::domain::accounts;
use crate::domain::directory::Directory;
use crate::domain::flow::AuthSession;
use crate::domain::state::State;
use portcullis_store::UserRow;

/// Sends `user` the mail with the link that verifies their address, for the `VERIFY_EMAIL`
/// required action: called when its page is first shown in a sign-in and when the user asks
/// for another mail. `auth` is the sign-in; `realm_base` the realm's URL as the request sees
/// it (the flow's `iss`), where the link points. Only queues the mail (`accounts`): a mail
/// that could not be sent is logged and counted there, never an error of the page.
pub async fn send_verify_email(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    auth: &AuthSession,
    realm_base: &str,
) -> anyhow::Result<()> {
    let queued = accounts::send_verify_email(st, dir, user, realm_base, None)?;
    tracing::info!(
        realm = %dir.realm,
        user.id = %user.id,
        client.id = %auth.client_id(),
        queued,
        "verify-email mail requested"
    );
    Ok(())
}
