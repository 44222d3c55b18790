//! Graceful upgrade (`portcullis run --upgrade`): the running gateway hands its listening
//! sockets to its successor, so a binary swap refuses no connection.
//!
//! Pingora carries the handover: the new process waits on the upgrade socket (`bootstrap`),
//! the old one, on SIGQUIT, sends every listening socket in its table over it, keeps accepting
//! for 5 s beside the new one (both share each socket's accept queue), then stops and drains.
//! This file adds what Pingora leaves to us: where the upgrade socket lives ([`upgrade_sock`]),
//! the issuer's internal listener in that table ([`InternalListener`]: it is axum on the
//! issuer's runtime, not a Pingora listener), and a drain that closes no keep-alive connection
//! under a client about to reuse it ([`Lingering`], [`OpenConnections`]).

use std::any::Any;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::Stream;
use pingora::server::{ListenFds, ShutdownWatch};

use crate::embed::EmbeddedIssuer;

/// The upgrade socket: `runtime.upgrade_sock`, or `upgrade-<public address>.sock` in a
/// directory of `$TMPDIR` private to this user (created 0700; refused when someone else owns
/// it or may enter it). Pingora makes the socket itself world-writable and adopts the sockets
/// of whoever connects first, so only a private directory keeps another local user from
/// handing a waiting successor listeners of their own. Old and new process compute the same
/// path from the same config.
pub fn upgrade_sock(configured: Option<&Path>, public: SocketAddr) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("portcullis-{uid}"));
    private_dir(&dir, uid)?;
    let name = public.to_string().replace(['[', ']'], "").replace(':', "_");
    Ok(dir.join(format!("upgrade-{name}.sock")))
}

/// Creates `dir` with mode 0700, or accepts it when it exists, is a directory (not a symlink)
/// owned by `uid`, and no one else may enter it.
fn private_dir(dir: &Path, uid: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let m = std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        bail!(
            "{}: the upgrade socket's directory must be a directory of this user (uid {uid}) \
             that no one else may enter (mode 0700); remove it, or set runtime.upgrade_sock",
            dir.display()
        );
    }
    Ok(())
}

/// The embedded issuer's internal listener as a Pingora service, so that its socket is in the
/// table the upgrade hands over: it takes the socket the old process handed over when there is
/// one, else the one bound at start (`bound`), else binds; then serves the issuer on it until
/// shutdown and its drain are over (`EmbeddedIssuer::serve_internal_on`). While it serves it
/// holds one count in `open`, so the process's drain waits for it.
pub struct InternalListener {
    pub addr: SocketAddr,
    pub bound: Option<std::net::TcpListener>,
    pub issuer: Arc<EmbeddedIssuer>,
    pub audit: bool,
    pub open: Arc<AtomicUsize>,
    pub linger: Duration,
}

impl InternalListener {
    fn socket(&mut self, fds: Option<ListenFds>) -> Result<std::net::TcpListener> {
        let key = self.addr.to_string();
        let Some(fds) = fds else {
            return self.take_or_bind();
        };
        let mut table = fds.lock();
        if let Some(fd) = table.get(&key).copied() {
            // SAFETY: Pingora's bootstrap received `fd` from the old process (SCM_RIGHTS, so it
            // is a fresh descriptor of this process) as the listening socket of this address,
            // which only this service claims (`listen_addresses`), so nothing else owns it.
            // The table keeps just its number, to hand it on at the next upgrade before this
            // listener closes it. Pingora's own listeners take theirs the same way.
            return Ok(unsafe { std::net::TcpListener::from_raw_fd(fd) });
        }
        let listener = self.take_or_bind()?;
        table.add(key, listener.as_raw_fd());
        Ok(listener)
    }

    fn take_or_bind(&mut self) -> Result<std::net::TcpListener> {
        match self.bound.take() {
            Some(l) => Ok(l),
            None => std::net::TcpListener::bind(self.addr)
                .with_context(|| format!("binding the internal listener {}", self.addr)),
        }
    }
}

#[async_trait]
impl pingora::services::Service for InternalListener {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        self.open.fetch_add(1, Ordering::AcqRel);
        let served = match self.socket(fds) {
            Ok(socket) => {
                self.issuer
                    .serve_internal_on(socket, self.audit, shutdown, self.linger)
                    .await
            }
            Err(e) => Err(e),
        };
        self.open.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = served {
            tracing::error!("internal listener {}: {e:#}", self.addr);
        }
    }

    fn name(&self) -> &str {
        "internal"
    }

    fn threads(&self) -> Option<usize> {
        // It only waits for the issuer's runtime, which does the work.
        Some(1)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(vec![self.addr.to_string()])
    }
}

/// How long a listener that stopped accepting keeps its idle keep-alive connections. A client
/// that sends its next request in that time gets its answer with `Connection: close` (Pingora
/// disables keep-alive for requests read after shutdown) and goes to a new connection, which
/// the successor accepts. Closing an idle connection at once would race a client's next
/// request on it: a reset for requests the client had every reason to send.
pub const LINGER: Duration = Duration::from_secs(2);

/// Wraps a listener's app so that, after shutdown, its idle keep-alive connections are closed
/// only after `linger` (Pingora closes them when the service's `cleanup` runs).
pub struct Lingering<A> {
    pub inner: Arc<A>,
    pub linger: Duration,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Lingering<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        tokio::time::sleep(self.linger).await;
        self.inner.cleanup().await
    }
}

/// The listener's connection filter, counting its open client connections (from accept to
/// close, handshake included) for the drain: the process exits once none is left.
#[derive(Debug)]
pub struct OpenConnections {
    pub inner: Arc<dyn ConnectionFilter>,
    pub open: Arc<AtomicUsize>,
}

/// Held for a connection's life: one count in [`OpenConnections::open`], and the inner
/// filter's own guard.
struct Counted {
    _inner: Box<dyn Any + Send>,
    open: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Release);
    }
}

#[async_trait]
impl ConnectionFilter for OpenConnections {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        self.inner.should_accept(addr).await
    }

    fn admit(&self) -> Option<(Box<dyn Any + Send>, Option<Duration>)> {
        let (guard, timeout) = self.inner.admit()?;
        self.open.fetch_add(1, Ordering::AcqRel);
        let counted = Counted {
            _inner: guard,
            open: Arc::clone(&self.open),
        };
        Some((Box::new(counted), timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_default_upgrade_socket_is_in_a_private_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let dir = tmp.path().join("d");
        private_dir(&dir, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        // Existing and private: accepted as it is.
        private_dir(&dir, uid).unwrap();
        // Others may enter: refused, not repaired (someone may be inside already).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&dir, uid).unwrap_err().to_string();
        assert!(e.contains("mode 0700"), "{e}");
        // Another user's directory: refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(private_dir(&dir, uid.wrapping_add(1)).is_err());
        // A symlink to a private directory: refused (it could be swapped).
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(private_dir(&link, uid).is_err());
        // A file: refused.
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(private_dir(&file, uid).is_err());
    }

    #[test]
    fn each_public_address_has_its_own_socket_and_a_configured_one_wins() {
        let a = upgrade_sock(None, "127.0.0.1:8443".parse().unwrap()).unwrap();
        let b = upgrade_sock(None, "[::1]:8443".parse().unwrap()).unwrap();
        assert_ne!(a, b);
        assert!(
            a.ends_with("upgrade-127.0.0.1_8443.sock"),
            "{}",
            a.display()
        );
        assert!(b.ends_with("upgrade-__1_8443.sock"), "{}", b.display());
        let set = Path::new("/run/portcullis/upgrade.sock");
        assert_eq!(
            upgrade_sock(Some(set), "127.0.0.1:1".parse().unwrap()).unwrap(),
            set
        );
    }
}
