//! `kloyst-admin <command>`: operator commands that run once, not in every replica.
//!
//! - `migrate`: applies the migrations embedded in this binary (the deploy runs it once,
//!   before the services start, so replicas never race to migrate).

use std::process::ExitCode;

use kloyst_config::sections::DatabaseSettings;
use kloyst_config::Env;

const USAGE: &str = "usage: kloyst-admin migrate";

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
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
    match command.as_str() {
        "migrate" => runtime.block_on(migrate()),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn migrate() -> ExitCode {
    let settings = match DatabaseSettings::from_env(&Env::from_process()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("kloyst-admin: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match kloyst_db::connect(&settings, "kloyst-admin") {
        Ok(pool) => kloyst_db::migrate(&pool).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => {
            println!("kloyst-admin: migrations applied");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kloyst-admin: {error}");
            ExitCode::FAILURE
        }
    }
}
