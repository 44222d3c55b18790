//! The command line (DESIGN §3): `run`, `check`, `explain`, `sidecar`, `realm import`,
//! `realm export`, `keys rotate`, `certs dev` and `echo`. The `realm` and `keys` commands need
//! the embedded issuer: a build without the feature `issuer` answers them with an error (exit 2).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for the commands' output: a closed stdout (`portcullis explain … | head`) ends
/// the output quietly instead of panicking, as other command-line tools do.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!`, likewise.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Identity-aware reverse proxy gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Run {
        #[arg(long, default_value = "portcullis.toml", env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Take the listening sockets over from the gateway running with this config: start
        /// this, then send the running one SIGQUIT (within 5 s); it hands them over, drains
        /// and exits.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate config, routes and policies; print a summary; exit 1 on any error.
    Check {
        #[arg(long, default_value = "portcullis.toml", env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Explain the decision for one request: route, token checks, roles, rule; exit 0 allow, 3 deny.
    Explain {
        #[arg(long)]
        method: String,
        #[arg(long)]
        path: String,
        #[arg(long)]
        host: Option<String>,
        /// The bearer token, or "-" to read it from stdin (keeps it out of shell history).
        #[arg(long)]
        token: Option<String>,
        /// The session cookie (its value, `name=value` or a whole Cookie header), or "-" to read
        /// it from stdin: explains a `session` route's session.
        #[arg(long)]
        cookie: Option<String>,
        /// A client certificate (PEM chain, leaf first) the request's connection presents;
        /// checked against `[tls] client_ca` as a handshake would.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "portcullis.toml", env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// One workload's gateway: one implicit jwt route named `sidecar` to one upstream, no issuer.
    Sidecar(Box<crate::sidecar::SidecarArgs>),
    /// Realm templates of the embedded issuer.
    Realm {
        #[command(subcommand)]
        command: RealmCommand,
        #[arg(
            long,
            default_value = "portcullis.toml",
            env = "PORTCULLIS_CONFIG",
            global = true
        )]
        config: PathBuf,
    },
    /// Signing keys of the embedded issuer.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[arg(
            long,
            default_value = "portcullis.toml",
            env = "PORTCULLIS_CONFIG",
            global = true
        )]
        config: PathBuf,
    },
    /// TLS material.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// A tiny upstream that echoes each request as JSON (what the gateway forwarded).
    Echo {
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: SocketAddr,
    },
}

#[derive(Subcommand, Debug)]
pub enum RealmCommand {
    /// Create the realm if missing; with --sync apply the template's users, groups, roles and
    /// clients to an existing realm, keeping sessions and refresh tokens.
    Import {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        sync: bool,
    },
    /// Print the realm as a template (no password hashes, no secrets).
    Export {
        #[arg(long)]
        realm: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new active signing key; old public keys stay in the JWKS for a grace period.
    Rotate {
        #[arg(long)]
        realm: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Write a dev certificate (localhost, 127.0.0.1, ::1) and the dev CA that signed it.
    Dev {
        #[arg(long, default_value = "certs/gateway.crt")]
        cert: PathBuf,
        #[arg(long, default_value = "certs/gateway.key")]
        key: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, upgrade } => run(&config, upgrade),
        Command::Check { config } => check(&config),
        Command::Realm { command, config } => issuer_command(&config, IssuerCmd::Realm(command)),
        Command::Keys { command, config } => issuer_command(&config, IssuerCmd::Keys(command)),
        Command::Sidecar(args) => match crate::sidecar::write_config(&args) {
            Ok(path) => run(&path, false),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Explain {
            method,
            path,
            host,
            token,
            cookie,
            cert,
            json,
            config,
        } => explain(
            &config,
            portcullis_gateway::explain::Query {
                method,
                path,
                host,
                token,
                cookie,
                cert: None,
            },
            cert,
            json,
        ),
        Command::Certs {
            command: CertsCommand::Dev { cert, key },
        } => match portcullis_gateway::certs::write_dev_cert(&cert, &key) {
            Ok(()) => {
                outln!(
                    "wrote {}, {} and the dev CA {}",
                    cert.display(),
                    key.display(),
                    cert.parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join(portcullis_gateway::certs::DEV_CA_FILE)
                        .display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Echo { listen } => {
            let _guard = portcullis_gateway::audit::init(false);
            let Some(rt) = runtime() else {
                return ExitCode::FAILURE;
            };
            match rt.block_on(crate::echo::serve(listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(config: &std::path::Path, upgrade: bool) -> ExitCode {
    portcullis_gateway::app::install_crypto_provider();
    // Logs first (the issuer logs its imports), with the audit stream if the file asks for it.
    let audit = portcullis_core::config::Config::load(
        config,
        &mut portcullis_core::config::Diagnostics::default(),
    )
    .is_none_or(|l| l.config.runtime.audit_log);
    let guard = portcullis_gateway::audit::init(audit);
    let loaded =
        match portcullis_gateway::app::load(config, portcullis_gateway::app::IssuerUse::Start) {
            Ok(v) => v,
            Err(portcullis_gateway::app::LoadError::Config(diags)) => {
                eprint!("{diags}");
                eprintln!(
                    "error: configuration refused ({} errors)",
                    diags.errors().count()
                );
                return ExitCode::FAILURE;
            }
            Err(portcullis_gateway::app::LoadError::Start(e)) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    tracing::info!(
        "config loaded: {}",
        portcullis_gateway::snapshot::summary(&loaded.snapshot)
    );
    // `check` prints these too; a gateway started without it should still say so.
    for w in &loaded.snapshot.warnings {
        tracing::warn!("{w}");
    }
    match portcullis_gateway::app::run(loaded, guard, upgrade) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(config: &std::path::Path) -> ExitCode {
    portcullis_gateway::app::install_crypto_provider();
    match portcullis_gateway::app::load(config, portcullis_gateway::app::IssuerUse::CheckOnly) {
        Ok(portcullis_gateway::app::Loaded {
            config: cfg,
            snapshot: snap,
            ..
        }) => {
            for w in &snap.warnings {
                eprintln!("{w}");
            }
            outln!("{}: OK", cfg.path.display());
            outln!("  {}", portcullis_gateway::snapshot::summary(&snap));
            outln!(
                "  public {} ({}), management {}",
                cfg.listen.public,
                if cfg.tls.is_some() {
                    "TLS"
                } else {
                    "plain HTTP"
                },
                cfg.listen.management
            );
            ExitCode::SUCCESS
        }
        Err(portcullis_gateway::app::LoadError::Config(diags)) => {
            eprint!("{diags}");
            eprintln!("{} error(s)", diags.errors().count());
            ExitCode::FAILURE
        }
        Err(portcullis_gateway::app::LoadError::Start(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn explain(
    config: &std::path::Path,
    mut q: portcullis_gateway::explain::Query,
    cert: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    portcullis_gateway::app::install_crypto_provider();
    q.cert = match cert
        .map(|p| std::fs::read_to_string(&p).map_err(|e| (p, e)))
        .transpose()
    {
        Ok(c) => c,
        Err((p, e)) => {
            eprintln!("error: reading the certificate {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    };
    let (token, cookie) = (q.token.take(), q.cookie.take());
    if token.as_deref() == Some("-") && cookie.as_deref() == Some("-") {
        eprintln!("error: only one of --token and --cookie can be read from stdin");
        return ExitCode::FAILURE;
    }
    let (Some(token), Some(cookie)) = (from_stdin(token, "token"), from_stdin(cookie, "cookie"))
    else {
        return ExitCode::FAILURE;
    };
    (q.token, q.cookie) = (token, cookie);
    // The issuer's published keys are read (nothing written) so embedded tokens can be checked.
    let (snap, client_ca) =
        match portcullis_gateway::app::load(config, portcullis_gateway::app::IssuerUse::ReadKeys) {
            Ok(v) => (v.snapshot, v.config.tls.and_then(|t| t.client_ca)),
            Err(portcullis_gateway::app::LoadError::Config(diags)) => {
                eprint!("{diags}");
                return ExitCode::FAILURE;
            }
            Err(portcullis_gateway::app::LoadError::Start(e)) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    // Remote issuers' keys are needed to check a signature; fetch them (bounded).
    rt.block_on(snap.authn.prefetch(std::time::Duration::from_secs(5)));
    let e = portcullis_gateway::explain::explain_with_ca(&snap, &q, client_ca.as_deref());
    if json {
        outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
    } else {
        out!("{e}");
    }
    if e.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// `value`, or when it is "-" the first line of stdin (a secret kept out of shell history);
/// `None` (after saying why) when stdin can't be read.
fn from_stdin(value: Option<String>, what: &str) -> Option<Option<String>> {
    if value.as_deref() != Some("-") {
        return Some(value);
    }
    let mut t = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut t) {
        eprintln!("error: reading the {what} from stdin: {e}");
        return None;
    }
    Some(Some(t.trim().to_string()))
}

enum IssuerCmd {
    Realm(RealmCommand),
    Keys(KeysCommand),
}

#[cfg(feature = "issuer")]
fn issuer_command(config: &std::path::Path, cmd: IssuerCmd) -> ExitCode {
    let _guard = portcullis_gateway::audit::init(false);
    let mut diags = portcullis_core::config::Diagnostics::default();
    let Some(loaded) = portcullis_core::config::Config::load(config, &mut diags) else {
        eprint!("{diags}");
        return ExitCode::FAILURE;
    };
    let cfg = loaded.config;
    let Some(settings) = &cfg.issuer else {
        eprintln!("error: {}: [issuer] is not enabled", cfg.path.display());
        return ExitCode::FAILURE;
    };
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let base = cfg.base_dir.clone();
    let result = rt.block_on(async {
        match cmd {
            IssuerCmd::Realm(RealmCommand::Import { file, sync }) => {
                let outcome = portcullis_issuer::realm_import(settings, &base, &file, sync).await?;
                outln!("{}: {outcome:?}", file.display());
                Ok(())
            }
            IssuerCmd::Realm(RealmCommand::Export { realm }) => {
                let v = portcullis_issuer::realm_export(settings, &base, &realm).await?;
                outln!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            IssuerCmd::Keys(KeysCommand::Rotate { realm }) => {
                let kid = portcullis_issuer::keys_rotate(settings, &base, &realm).await?;
                outln!("realm {realm}: new active signing key {kid}");
                Ok::<(), anyhow::Error>(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The sidecar build has no issuer to administer: the command is refused, as a usage error.
#[cfg(not(feature = "issuer"))]
fn issuer_command(_config: &std::path::Path, cmd: IssuerCmd) -> ExitCode {
    let what = match cmd {
        IssuerCmd::Realm(RealmCommand::Import { file, sync }) => format!(
            "realm import --file {}{}",
            file.display(),
            if sync { " --sync" } else { "" }
        ),
        IssuerCmd::Realm(RealmCommand::Export { realm }) => format!("realm export --realm {realm}"),
        IssuerCmd::Keys(KeysCommand::Rotate { realm }) => format!("keys rotate --realm {realm}"),
    };
    eprintln!(
        "error: `portcullis {what}`: {}",
        portcullis_gateway::embed::NOT_BUILT
    );
    ExitCode::from(2)
}

/// A tokio runtime for the commands that are not the gateway (Pingora runs its own).
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start a tokio runtime: {e}");
            None
        }
    }
}
