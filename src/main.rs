//! The `switchboard` command: serve, mint a client token, check a config.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard::Config;
use switchboard::auth::{ClientClaims, TokenSigner};

#[derive(Parser, Debug)]
#[command(name = "switchboard", version, about = "Self-hosted conversation hub")]
struct Cli {
    /// Config file layered over the defaults (env SWITCHBOARD_* wins over both).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: human or json (overrides log.format).
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server (the default).
    Serve,
    /// Validate the configuration and list every problem.
    CheckConfig,
    /// Mint a WebSocket client token with the configured auth.token_secret.
    MintToken {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        identity: String,
        /// Conversation the token may join (repeat); none = every conversation of the tenant.
        #[arg(long = "conversation")]
        conversations: Vec<uuid::Uuid>,
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn init_logs(config: &Config, format: Option<&str>) {
    switchboard::logging::init(format.unwrap_or(&config.log.format), &config.log.filter);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    if let Some(f) = &cli.log_format {
        config.log.format = f.clone();
        if let Err(errors) = config.validate() {
            errors.iter().for_each(|e| eprintln!("  - {e}"));
            return ExitCode::from(2);
        }
    }
    match cli.cmd.unwrap_or(Cmd::Serve) {
        Cmd::CheckConfig => {
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Cmd::MintToken { tenant, identity, conversations, ttl } => {
            if config.auth.token_secret.is_empty() {
                eprintln!("auth.token_secret is empty: a minted token would match no server");
                return ExitCode::from(2);
            }
            let now = chrono::Utc::now().timestamp() as u64;
            let claims = ClientClaims {
                sub: identity,
                tid: tenant,
                convs: if conversations.is_empty() { None } else { Some(conversations) },
                iat: now,
                exp: now + ttl,
                role: None,
                sid: None,
            };
            println!("{}", TokenSigner::new(config.auth.token_secret.as_bytes()).sign(&claims));
            ExitCode::SUCCESS
        }
        Cmd::Serve => {
            init_logs(&config, cli.log_format.as_deref());
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("switchboard: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = switchboard::listen(&config.server.listen, config.server.listen_backlog)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    switchboard::run(listener, config, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}
