//! An example's `main`: its arguments parsed, `--help` answered with the
//! usage, and an error shown with the program's name; exit status 2 for a
//! bad argument, 1 for a failure.
//!
//! Included by the examples with `#[path = "common/cli.rs"] mod cli;`.

use std::process::ExitCode;

/// Runs `name`: `parse` gets the arguments after the program's name
/// (`Ok(None)` for `--help`), `run` the options it made.
pub fn main<O>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(std::iter::Skip<std::env::Args>) -> Result<Option<O>, String>,
    run: impl FnOnce(O) -> Result<(), String>,
) -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("{name}: {why}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{name}: {why}");
            ExitCode::FAILURE
        }
    }
}
