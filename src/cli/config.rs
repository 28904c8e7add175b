//! Settings of `migrate`, `verify` and `demo`: flag, then environment, then
//! config file, then default. Tokens come only from the environment or the
//! config file, never from a flag (flags end up in shell history and `ps`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::migrate::{Endpoints, MappingConfig, QtestAuth};
use crate::policy::RateLimit;
use crate::pool::PoolConfig;

/// Where the services are; shared by `migrate` and `verify`.
// The field docs are also the `--help` texts, written for a terminal.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// Zephyr Scale API base URL, e.g. https://api.zephyrscale.smartbear.com/v2.
    #[arg(long, env = "ZEPHYR_URL")]
    pub zephyr_url: Option<String>,
    /// Zephyr project key.
    #[arg(long, env = "ZEPHYR_PROJECT")]
    pub zephyr_project: Option<String>,
    /// qTest API base URL, e.g. https://SITE.qtestnet.com/api/v3.
    #[arg(long, env = "QTEST_URL")]
    pub qtest_url: Option<String>,
    /// qTest project id.
    #[arg(long = "qtest-project", env = "QTEST_PROJECT_ID")]
    pub qtest_project: Option<u64>,
    /// A TOML config file ([zephyr], [qtest], [run], [pool], [mapping]).
    #[arg(long, value_name = "FILE", env = "ETLPOOL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Concurrent jobs; the per-host connection cap follows it.
    #[arg(long, env = "ETLPOOL_WORKERS")]
    pub workers: Option<usize>,
}

/// The config file. Every section is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    zephyr: ServiceSection,
    #[serde(default)]
    qtest: ServiceSection,
    #[serde(default)]
    run: RunSection,
    pool: Option<PoolConfig>,
    /// Accepted here so `deny_unknown_fields` lets it through; parsed and
    /// validated by [`MappingConfig::from_toml`].
    #[serde(default, rename = "mapping")]
    _mapping: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSection {
    url: Option<String>,
    project: Option<String>,
    project_id: Option<u64>,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    /// qTest's site name for a password login (`[qtest] site`).
    site: Option<String>,
    /// Requests per second (client side).
    rate_limit: Option<f64>,
    /// Requests allowed at once after a quiet spell.
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSection {
    workers: Option<usize>,
    journal: Option<PathBuf>,
    report: Option<PathBuf>,
    page_size: Option<u64>,
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The services.
    pub endpoints: Endpoints,
    /// The pool, with its cap sized to the workers.
    pub pool: PoolConfig,
    /// Name maps.
    pub mapping: MappingConfig,
    /// Concurrent jobs. Defaults to 8.
    pub workers: usize,
    /// From `[run] journal`, if set.
    pub journal: Option<PathBuf>,
    /// From `[run] report`, if set.
    pub report: Option<PathBuf>,
    /// Zephyr page size. Defaults to 100.
    pub page_size: u64,
}

/// A source of environment variables (the process's, or a test's map).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ConnectionArgs {
    /// Resolves flags (clap has already folded in their environment
    /// variables), the other environment variables, the config file and the
    /// defaults.
    pub fn resolve(&self, env: Env<'_>) -> Result<Settings> {
        let (file, text) = match &self.config {
            Some(path) => read_file(path)?,
            None => (FileConfig::default(), String::new()),
        };
        let missing = |what: &str, flag: &str, var: &str| {
            Error::config(
                what,
                format!("set {flag}, {var}, or `{what}` in the config file"),
            )
        };
        let zephyr_url = first([self.zephyr_url.clone(), file.zephyr.url.clone()])
            .ok_or_else(|| missing("zephyr.url", "--zephyr-url", "ZEPHYR_URL"))?;
        let zephyr_project = first([self.zephyr_project.clone(), file.zephyr.project.clone()])
            .ok_or_else(|| missing("zephyr.project", "--zephyr-project", "ZEPHYR_PROJECT"))?;
        let qtest_url = first([self.qtest_url.clone(), file.qtest.url.clone()])
            .ok_or_else(|| missing("qtest.url", "--qtest-url", "QTEST_URL"))?;
        let qtest_project = self
            .qtest_project
            .or(file.qtest.project_id)
            .ok_or_else(|| missing("qtest.project_id", "--qtest-project", "QTEST_PROJECT_ID"))?;
        let zephyr_token =
            first([env("ZEPHYR_TOKEN"), file.zephyr.token.clone()]).ok_or_else(|| {
                Error::config(
                    "ZEPHYR_TOKEN",
                    "set ZEPHYR_TOKEN or `zephyr.token` in the config file",
                )
            })?;
        let qtest_auth = qtest_auth(env, &file.qtest)?;
        let workers = self.workers.or(file.run.workers).unwrap_or(8);
        if workers == 0 {
            return Err(Error::config("workers", "must be at least 1"));
        }
        let mut pool = file.pool.clone().unwrap_or_default();
        pool.apply_env(std::env::vars())?;
        self.apply_tls(&mut pool);
        // The workers and the thread listing Zephyr's pages share these
        // connections; a worker count above the cap would only queue for them.
        pool.max_connections_per_host = workers;
        pool.validate()?;
        let mapping =
            MappingConfig::from_toml(&text).map_err(|e| Error::config("mapping", e.to_string()))?;
        Ok(Settings {
            endpoints: Endpoints {
                zephyr_url,
                zephyr_token,
                zephyr_project,
                qtest_url,
                qtest_auth,
                qtest_project,
                zephyr_rate: rate(&file.zephyr, "zephyr")?,
                qtest_rate: rate(&file.qtest, "qtest")?,
            },
            pool,
            mapping,
            workers,
            journal: file.run.journal,
            report: file.run.report,
            page_size: file
                .run
                .page_size
                .unwrap_or(crate::zephyr::DEFAULT_PAGE_SIZE),
        })
    }

    fn apply_tls(&self, pool: &mut PoolConfig) {
        if let Some(ca) = &self.ca_file {
            pool.tls.ca_file = Some(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            pool.tls.client_cert = Some(cert.clone());
            pool.tls.client_key = Some(key.clone());
        }
    }
}

fn first<const N: usize>(options: [Option<String>; N]) -> Option<String> {
    options.into_iter().flatten().find(|v| !v.trim().is_empty())
}

fn qtest_auth(env: Env<'_>, file: &ServiceSection) -> Result<QtestAuth> {
    if let Some(token) = first([env("QTEST_TOKEN"), file.token.clone()]) {
        return Ok(QtestAuth::Token(token));
    }
    let username = first([env("QTEST_USERNAME"), file.username.clone()]);
    let password = first([env("QTEST_PASSWORD"), file.password.clone()]);
    let site = first([env("QTEST_SITE"), file.site.clone()]);
    match (username, password) {
        (Some(username), Some(password)) => Ok(QtestAuth::Login {
            username,
            password,
            site,
        }),
        _ => Err(Error::config(
            "QTEST_TOKEN",
            "set QTEST_TOKEN, or QTEST_USERNAME and QTEST_PASSWORD (or the same in [qtest] of the config file)",
        )),
    }
}

fn rate(section: &ServiceSection, name: &str) -> Result<RateLimit> {
    let limit = RateLimit {
        per_second: section.rate_limit,
        burst: section.burst.unwrap_or(1),
        ..RateLimit::default()
    };
    limit
        .validate()
        .map_err(|e| Error::config(format!("{name}.rate_limit"), e.to_string()))?;
    Ok(limit)
}

fn read_file(path: &Path) -> Result<(FileConfig, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading config file {}", path.display()), e))?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        Error::config(
            path.display().to_string(),
            e.to_string().trim_end().to_string(),
        )
    })?;
    warn_if_readable_by_others(path, &file);
    Ok((file, text))
}

/// A config file holding a secret should not be world-readable.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &FileConfig) {
    use std::os::unix::fs::PermissionsExt;
    let has_secret = [&file.zephyr, &file.qtest]
        .iter()
        .any(|s| s.token.is_some() || s.password.is_some());
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if has_secret && mode & 0o004 != 0 {
        log::warn!(
            "{} holds a token or password and is readable by every user; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path, _: &FileConfig) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn args() -> ConnectionArgs {
        ConnectionArgs {
            zephyr_url: Some("http://127.0.0.1:1/v2".into()),
            zephyr_project: Some("PROJ".into()),
            qtest_url: Some("http://127.0.0.1:2/api/v3".into()),
            qtest_project: Some(7),
            ..ConnectionArgs::default()
        }
    }

    #[test]
    fn tokens_come_from_the_environment() {
        let env = env_of(&[
            ("ZEPHYR_TOKEN", "z"),
            ("QTEST_USERNAME", "u"),
            ("QTEST_PASSWORD", "p"),
        ]);
        let s = args().resolve(&env).unwrap();
        assert_eq!(s.endpoints.zephyr_token, "z");
        assert!(matches!(
            s.endpoints.qtest_auth,
            QtestAuth::Login { site: None, .. }
        ));
        assert_eq!(s.workers, 8);
        assert_eq!(s.pool.max_connections_per_host, 8);
    }

    #[test]
    fn the_qtest_site_comes_from_the_environment_then_the_file() {
        let dir = std::env::temp_dir().join(format!("etlpool-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("etlpool.toml");
        std::fs::write(
            &path,
            "[qtest]\nusername = \"u\"\npassword = \"p\"\nsite = \"acme\"\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        let site = |env: &'static [(&'static str, &'static str)]| match a
            .resolve(&env_of(env))
            .unwrap()
            .endpoints
            .qtest_auth
        {
            QtestAuth::Login { site, .. } => site,
            QtestAuth::Token(_) => panic!("a login was configured"),
        };
        assert_eq!(site(&[("ZEPHYR_TOKEN", "z")]).as_deref(), Some("acme"));
        assert_eq!(
            site(&[("ZEPHYR_TOKEN", "z"), ("QTEST_SITE", "other")]).as_deref(),
            Some("other")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_token_names_the_variable() {
        let err = args()
            .resolve(&env_of(&[("QTEST_TOKEN", "q")]))
            .unwrap_err();
        assert!(err.to_string().contains("ZEPHYR_TOKEN"), "{err}");
        let err = args()
            .resolve(&env_of(&[("ZEPHYR_TOKEN", "z")]))
            .unwrap_err();
        assert!(err.to_string().contains("QTEST_TOKEN"), "{err}");
        let mut a = args();
        a.zephyr_url = None;
        let err = a
            .resolve(&env_of(&[("ZEPHYR_TOKEN", "z"), ("QTEST_TOKEN", "q")]))
            .unwrap_err();
        assert!(err.to_string().contains("--zephyr-url"), "{err}");
    }

    #[test]
    fn the_file_fills_what_flags_leave_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("etlpool-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("etlpool.toml");
        std::fs::write(
            &path,
            "[zephyr]\ntoken = \"zt\"\nrate_limit = 5\n[qtest]\ntoken = \"qt\"\n[run]\nworkers = 3\n\
             [pool]\nidle_timeout = \"20s\"\n[mapping]\ndefault_module = \"Imported\"\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let s = a.resolve(&env_of(&[])).unwrap();
        assert_eq!((s.workers, s.endpoints.zephyr_token.as_str()), (3, "zt"));
        assert_eq!(s.endpoints.zephyr_rate.per_second, Some(5.0));
        assert_eq!(s.pool.idle_timeout, std::time::Duration::from_secs(20));
        assert_eq!(s.mapping.default_module, "Imported");
        a.workers = Some(5);
        assert_eq!(
            a.resolve(&env_of(&[])).unwrap().workers,
            5,
            "a flag beats the file"
        );
        std::fs::write(&path, "[zephyr]\ntokn = \"x\"\n").unwrap();
        let err = a.resolve(&env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
