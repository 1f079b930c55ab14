//! Log setup: one global `tracing` subscriber writing to stderr, human-readable or JSON.
//!
//! The filter comes, in order of precedence, from `--log-level`, then `RUST_LOG`, then
//! `[log] level` in the configuration, then the default (`info`).

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Where the effective log filter came from; named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterSource {
    /// The `--log-level` flag.
    Flag,
    /// The `RUST_LOG` environment variable.
    Env,
    /// `[log] level` in the configuration (or its default).
    Config,
}

impl std::fmt::Display for FilterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flag => "--log-level",
            Self::Env => "RUST_LOG",
            Self::Config => "log.level",
        })
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogInitError {
    /// The effective filter does not parse.
    #[error("invalid log filter {directives:?} from {source_of}: {error}")]
    Filter {
        /// Where the filter came from.
        source_of: FilterSource,
        /// The filter text.
        directives: String,
        /// What the parser said.
        error: String,
    },
    /// A global subscriber was already installed.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Command-line overrides of the `[log]` table.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogOverrides {
    /// `--log-level`, highest precedence.
    pub level: Option<String>,
    /// `--log-format`.
    pub format: Option<LogFormat>,
}

impl LogOverrides {
    /// Overrides from the command line.
    pub fn new(level: Option<String>, format: Option<LogFormat>) -> Self {
        Self { level, format }
    }
}

/// Picks the effective filter directives and where they came from. `rust_log` is the
/// value of `RUST_LOG` (passed in so this stays testable); an empty one is ignored.
pub fn effective_filter(
    config: &LogConfig,
    overrides: &LogOverrides,
    rust_log: Option<String>,
) -> (String, FilterSource) {
    if let Some(level) = &overrides.level {
        (level.clone(), FilterSource::Flag)
    } else if let Some(env) = rust_log.filter(|v| !v.trim().is_empty()) {
        (env, FilterSource::Env)
    } else {
        (config.level.as_str().to_owned(), FilterSource::Config)
    }
}

/// Installs the global subscriber for `config` with `overrides` applied.
pub fn init(config: &LogConfig, overrides: &LogOverrides) -> Result<(), LogInitError> {
    let (directives, source_of) =
        effective_filter(config, overrides, std::env::var("RUST_LOG").ok());
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| LogInitError::Filter {
            source_of,
            directives: directives.clone(),
            error: e.to_string(),
        })?;
    let format = overrides.format.unwrap_or(config.format);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Human => builder.with_ansi(stderr_is_terminal()).try_init(),
    };
    result.map_err(|e| LogInitError::AlreadyInitialised(e.to_string()))
}

fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_flag_env_config() {
        let config = LogConfig::default();
        let flag = LogOverrides::new(Some("debug".into()), None);
        let none = LogOverrides::default();
        assert_eq!(
            effective_filter(&config, &flag, Some("trace".into())),
            ("debug".into(), FilterSource::Flag)
        );
        assert_eq!(
            effective_filter(&config, &none, Some("trace".into())),
            ("trace".into(), FilterSource::Env)
        );
        assert_eq!(
            effective_filter(&config, &none, Some("  ".into())),
            ("info".into(), FilterSource::Config)
        );
        assert_eq!(
            effective_filter(&config, &none, None),
            ("info".into(), FilterSource::Config)
        );
    }
}
