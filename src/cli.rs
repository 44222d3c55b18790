//! The command line (DESIGN §3): `run`, `check`, `certs dev`, `echo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
    /// Validate config, routes and policies; print a summary; exit 1 on any error.
    Check {
        #[arg(long, default_value = "portcullis.toml", env = "PORTCULLIS_CONFIG")]
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
pub enum CertsCommand {
    /// Write a self-signed dev certificate (localhost, 127.0.0.1, ::1).
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
        Command::Run { config } => run(&config),
        Command::Check { config } => check(&config),
        Command::Certs {
            command: CertsCommand::Dev { cert, key },
        } => match crate::certs::write_dev_cert(&cert, &key) {
            Ok(()) => {
                println!("wrote {} and {}", cert.display(), key.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Echo { listen } => {
            let _guard = crate::audit::init(false);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
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

fn run(config: &std::path::Path) -> ExitCode {
    let (cfg, snapshot) = match crate::app::load(config) {
        Ok(v) => v,
        Err(diags) => {
            eprint!("{diags}");
            eprintln!(
                "error: configuration refused ({} errors)",
                diags.errors().count()
            );
            return ExitCode::FAILURE;
        }
    };
    let guard = crate::audit::init(cfg.runtime.audit_log);
    tracing::info!("config loaded: {}", crate::snapshot::summary(&snapshot));
    match crate::app::run(cfg, snapshot, guard) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(config: &std::path::Path) -> ExitCode {
    match crate::app::load(config) {
        Ok((cfg, snap)) => {
            println!("{}: OK", cfg.path.display());
            println!("  {}", crate::snapshot::summary(&snap));
            println!(
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
        Err(diags) => {
            eprint!("{diags}");
            eprintln!("{} error(s)", diags.errors().count());
            ExitCode::FAILURE
        }
    }
}
