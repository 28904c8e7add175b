//! `--redis URL` and its companions, shared by `migrate`, `worker`,
//! `status` and `journal`.
//!
//! The flags are there in every build, so a script's command line means the
//! same everywhere; an `etlpool` built without the `redis` feature refuses
//! them with a usage error that says how to get one with it.

use std::time::Duration;

use clap::Args;

use super::CliError;
use super::config::process_env;

/// The default of `--lease`.
const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Where the Redis of a fleet is.
// The field docs are also the `--help` texts, written for a terminal.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Redis (projects, journals and locks shared by many processes)")]
pub struct RedisArgs {
    /// Redis at redis://HOST[:PORT][/DB]: journals and locks live there, and
    /// with --projects the projects are queued there for `etlpool worker`s.
    /// A password never goes in this flag: set ETLPOOL_REDIS_PASSWORD, or
    /// the whole URL in ETLPOOL_REDIS_URL. Needs an etlpool built with
    /// `--features redis`.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of etlpool's keys in Redis, so several fleets can share one.
    #[arg(
        long,
        value_name = "NAME",
        env = "ETLPOOL_REDIS_PREFIX",
        default_value = "etlpool"
    )]
    pub redis_prefix: String,
    /// How long a project's claim and lock outlive a worker that stopped
    /// heartbeating (it died, or stalled): after that another worker takes
    /// the project over. Heartbeats go every third of it. Defaults to 60s.
    #[arg(long, value_name = "DURATION", env = "ETLPOOL_LEASE")]
    pub lease: Option<String>,
    /// The share of each service's rate this process keeps to when Redis
    /// can't be reached (the rates, `rate_limit` in the config file, are
    /// shared by every process using this Redis): 0.25, 1/4 or 25%.
    /// Defaults to 1/N of the processes last seen.
    #[arg(long, value_name = "SHARE", env = "ETLPOOL_BUDGET_SHARE")]
    pub budget_share: Option<String>,
}

impl RedisArgs {
    /// The URL: the flag (without a password), else `ETLPOOL_REDIS_URL`.
    fn url(&self) -> Result<Option<String>, CliError> {
        if let Some(url) = &self.redis {
            let (_, rest) = url.split_once("://").unwrap_or(("", url));
            let authority = rest.split('/').next().unwrap_or("");
            // redis-rs reads a password from the user-info, and for a
            // `redis+unix://` URL from its `pass` parameter.
            let query = rest.split_once('?').map_or("", |(_, q)| q);
            if authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
                || query.split('&').any(|pair| pair.starts_with("pass="))
            {
                return Err(CliError::Usage(
                    "--redis: a password doesn't go on the command line (it ends up in \
                     shell history and `ps`); set ETLPOOL_REDIS_PASSWORD, or the whole URL \
                     in ETLPOOL_REDIS_URL"
                        .into(),
                ));
            }
            return Ok(Some(url.clone()));
        }
        Ok(process_env("ETLPOOL_REDIS_URL"))
    }

    /// `--lease`, checked.
    pub(super) fn lease(&self) -> Result<Duration, CliError> {
        match &self.lease {
            Some(v) => {
                let lease = super::config::positive_duration("--lease", v)?;
                if lease < Duration::from_millis(300) {
                    return Err(CliError::Usage(format!(
                        "--lease {v}: at least 300ms (heartbeats go every third of it)"
                    )));
                }
                Ok(lease)
            }
            None => Ok(DEFAULT_LEASE),
        }
    }

    /// `--budget-share`, checked: a share in (0, 1].
    pub(super) fn budget_share(&self) -> Result<Option<f64>, CliError> {
        let Some(v) = self.budget_share.as_deref() else {
            return Ok(None);
        };
        let t = v.trim();
        let parsed = if let Some(percent) = t.strip_suffix('%') {
            percent.trim().parse::<f64>().ok().map(|p| p / 100.0)
        } else if let Some((a, b)) = t.split_once('/') {
            match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
                (Ok(a), Ok(b)) if b != 0.0 => Some(a / b),
                _ => None,
            }
        } else {
            t.parse::<f64>().ok()
        };
        match parsed {
            Some(share) if share > 0.0 && share <= 1.0 => Ok(Some(share)),
            _ => Err(CliError::Usage(format!(
                "--budget-share {v}: a share more than 0 and at most 1, e.g. 0.25, 1/4 or 25%"
            ))),
        }
    }

    /// Whether a Redis is named (flag or environment).
    pub(super) fn given(&self) -> bool {
        self.redis.is_some() || process_env("ETLPOOL_REDIS_URL").is_some()
    }

    /// The Redis named, if one is; `required` names the command that needs
    /// one.
    #[cfg(feature = "redis")]
    pub(super) fn open(
        &self,
        required: Option<&str>,
    ) -> Result<Option<crate::fleet::redis::Redis>, CliError> {
        let Some(url) = self.url()? else {
            return match required {
                Some(command) => Err(CliError::Usage(format!(
                    "{command} needs a Redis: pass --redis URL or set ETLPOOL_REDIS_URL"
                ))),
                None => Ok(None),
            };
        };
        let password = process_env("ETLPOOL_REDIS_PASSWORD");
        crate::fleet::redis::Redis::open(&url, password.as_deref(), &self.redis_prefix)
            .map(Some)
            .map_err(CliError::from)
    }

    /// Without the `redis` feature: an error when a Redis is named or needed.
    #[cfg(not(feature = "redis"))]
    pub(super) fn refuse(&self, required: Option<&str>) -> Result<(), CliError> {
        self.lease()?;
        self.budget_share()?;
        match (self.url()?, required) {
            (None, None) => Ok(()),
            _ => Err(without_redis()),
        }
    }
}

/// The error of a Redis option in a build without Redis.
#[cfg(not(feature = "redis"))]
pub(super) fn without_redis() -> CliError {
    CliError::Usage(
        "this etlpool was built without Redis support: build it with \
         `cargo install etlpool --features redis` (or `cargo build --features redis`)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_on_the_command_line_is_refused() {
        let args = |url: &str| RedisArgs {
            redis: Some(url.into()),
            ..RedisArgs::default()
        };
        let err = args("redis://:secret@127.0.0.1:6379").url().unwrap_err();
        assert_eq!(err.exit_code(), super::super::ExitCode::Usage);
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(args("redis://user@127.0.0.1:6379/1").url().is_ok());
        assert_eq!(
            RedisArgs {
                lease: Some("100ms".into()),
                ..RedisArgs::default()
            }
            .lease()
            .unwrap_err()
            .exit_code(),
            super::super::ExitCode::Usage
        );
    }

    #[test]
    fn a_budget_share_is_a_fraction_a_ratio_or_a_percentage() {
        let share = |v: &str| {
            RedisArgs {
                budget_share: Some(v.into()),
                ..RedisArgs::default()
            }
            .budget_share()
        };
        assert_eq!(share("0.25").unwrap(), Some(0.25));
        assert_eq!(share("1/4").unwrap(), Some(0.25));
        assert_eq!(share("25%").unwrap(), Some(0.25));
        assert_eq!(share("1").unwrap(), Some(1.0));
        for bad in ["0", "1.5", "2/1", "1/0", "-10%", "half", ""] {
            assert!(share(bad).is_err(), "{bad}");
        }
    }
}
