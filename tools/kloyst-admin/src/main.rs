//! `kloyst-admin <command>`: operator commands that run once, not in every replica.
//!
//! - `migrate`: applies the migrations embedded in this binary (the deploy runs it once,
//!   before the services start, so replicas never race to migrate).
//! - `dead-letters list|replay`: webhooks whose processing failed for good (see `USAGE`).
//! - `rate-cards load|list`: Meta's rate cards from a CSV file.
//! - `books reconcile`, `campaigns settle`: the worker-pool's money jobs, run once.

mod books;
mod cli;
mod dead_letters;
mod rate_cards;

use std::process::ExitCode;

use cli::{Command, USAGE};
use dead_letters::DeadLetterError;
use kloyst_config::sections::DatabaseSettings;
use kloyst_config::{ConfigError, Env};
use kloyst_db::{DbError, PgPool};

/// Exit code for bad usage and bad configuration (as the services use for configuration).
const EXIT_USAGE: u8 = 2;

#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    #[error(transparent)]
    RateCards(#[from] rate_cards::RateCardError),
    #[error(transparent)]
    Books(#[from] books::BooksError),
}

impl AdminError {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_)
            | Self::DeadLetters(DeadLetterError::InvalidCursor)
            | Self::Books(books::BooksError::Config(_)) => ExitCode::from(EXIT_USAGE),
            _ => ExitCode::FAILURE,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(error) => {
            eprintln!("kloyst-admin: {error}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kloyst-admin: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kloyst-admin: {error}");
            error.exit_code()
        }
    }
}

async fn run(command: Command) -> Result<(), AdminError> {
    let pool = connect()?;
    match command {
        Command::Help => {}
        Command::Migrate => {
            kloyst_db::migrate(&pool).await?;
            println!("kloyst-admin: migrations applied");
        }
        Command::ListDeadLetters(query) => dead_letters::list(&pool, &query).await?,
        Command::ReplayDeadLetters(ids) => dead_letters::replay(&pool, &ids).await?,
        Command::ReplayAllDeadLetters(source) => dead_letters::replay_all(&pool, source).await?,
        Command::RateCards(command) => rate_cards::run(&pool, command).await?,
        Command::BooksReconcile => books::reconcile(&pool).await?,
        Command::CampaignsSettle => books::settle(&pool).await?,
    }
    Ok(())
}

fn connect() -> Result<PgPool, AdminError> {
    let settings = DatabaseSettings::from_env(&Env::from_process())?;
    Ok(kloyst_db::connect(&settings, "kloyst-admin")?)
}
