//! The `pgward` command: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "pgward",
    version,
    about = "A security proxy that speaks the PostgreSQL wire protocol"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, default_value = "pgward.toml")]
        config: PathBuf,
    },
    /// Validate the policies against the live catalog; exit 1 on any error.
    Check {
        /// Configuration file (TOML).
        #[arg(long, default_value = "pgward.toml")]
        config: PathBuf,
    },
    /// Create or repair the helper schema `pgward` (the function writes under
    /// policy call) in the upstream database, for the service role.
    Install {
        /// Configuration file (TOML).
        #[arg(long, default_value = "pgward.toml")]
        config: PathBuf,
        /// Connect as this role instead of the service role (one that may
        /// create a schema in the upstream database); same database.
        #[arg(long)]
        admin_url: Option<String>,
    },
    /// Print the decision for a statement of a user and the SQL pgward would forward.
    Explain {
        /// Configuration file (TOML).
        #[arg(long, default_value = "pgward.toml")]
        config: PathBuf,
        /// The user whose session to assume.
        #[arg(long)]
        user: String,
        /// Extra roles to assume besides the user's own.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The SQL text.
        sql: String,
    },
    /// Start a throwaway PostgreSQL with the demo policies behind the proxy.
    Demo {
        /// Folder with the demo policies (default: policies/demo).
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    pgward::logging::init(matches!(cli.log_format, LogFormat::Json));
    if matches!(cli.command, Command::Serve { .. } | Command::Demo { .. }) {
        // This thread serves sessions too (session thread 0).
        pgward::logging::batch_this_thread();
    }
    // The listener's thread is session thread 0; `serve` starts the others
    // (see pgward::workers).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // This thread may be pinned to one CPU; its blocking pool is not.
        .on_thread_start(pgward::workers::affinity::unpin)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pgward: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => {
                let config = pgward::config::Config::load(&config)?;
                pgward::server::run(config, shutdown_signal()).await
            }
            Command::Check { config } => {
                let config = pgward::config::Config::load(&config)?;
                pgward::check::run(config).await
            }
            Command::Install { config, admin_url } => {
                let config = pgward::config::Config::load(&config)?;
                pgward::install::run(config, admin_url.as_deref()).await
            }
            Command::Demo { policies } => pgward::demo::run(policies).await,
            Command::Explain {
                config,
                user,
                roles,
                sql,
            } => {
                let config = pgward::config::Config::load(&config)?;
                pgward::explain::run(config, &user, &roles, &sql).await
            }
        }
    });
    pgward::logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
