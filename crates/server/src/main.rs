//! `caremesh`: run a hospital node, or administer it.

use std::process::ExitCode;

use caremesh_server::cli::{Cli, Command};
use caremesh_server::{Config, EmptyDatabase, launch, open_store, shutdown_signal, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let empty = if cli.init {
        EmptyDatabase::Initialise
    } else {
        EmptyDatabase::Refuse
    };
    match cli.command {
        Command::Serve => {
            telemetry::init(&config.log);
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
            launch(config, listener, shutdown_signal(), empty).await
        }
        Command::Migrate => {
            telemetry::init(&config.log);
            let store = open_store(&config, empty).await?;
            store.ready().await?;
            println!("migrations applied ({} database)", store.backend());
            Ok(())
        }
        Command::Backup { to } => caremesh_server::backup(&config, &to).await,
        Command::Config => {
            print!("{}", toml::to_string(&config)?);
            Ok(())
        }
        command => {
            let store = open_store(&config, empty).await?;
            let stdin = std::io::stdin();
            let mut stdin = stdin.lock();
            let mut stdout = std::io::stdout();
            caremesh_server::cli::run_admin(command, &config, store, &mut stdin, &mut stdout).await
        }
    }
}
