//! Settings of `migrate`, `verify` and `demo`: flag, then environment, then
//! config file, then default. Tokens come only from the environment or the
//! config file, never from a flag (flags end up in shell history and `ps`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::alerts::Thresholds;
use crate::error::{Error, Result};
use crate::migrate::{
    AttachmentOptions, DEFAULT_MAX_ATTACHMENT_BYTES, Endpoints, MappingConfig, QtestAuth,
};
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
    #[arg(long, value_name = "PEM", env = "ETLPOOL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(
        long,
        value_name = "PEM",
        requires = "client_key",
        env = "ETLPOOL_CLIENT_CERT"
    )]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(
        long,
        value_name = "PEM",
        requires = "client_cert",
        env = "ETLPOOL_CLIENT_KEY"
    )]
    pub client_key: Option<PathBuf>,
    /// Concurrent jobs, 1 to 256; the per-host connection cap follows it.
    /// Defaults to 8.
    #[arg(long, env = "ETLPOOL_WORKERS")]
    pub workers: Option<usize>,
    /// Leave attachments out (they are migrated by default).
    #[arg(long)]
    pub no_attachments: bool,
    /// Leave out the files of test steps and execution step results: Zephyr
    /// lists them one step at a time, so a project that doesn't use them
    /// saves about half its Zephyr requests.
    #[arg(long)]
    pub no_step_attachments: bool,
    /// Files larger than this many bytes are not migrated (reported as
    /// skipped). Defaults to 52428800 (50 MiB).
    #[arg(long, value_name = "BYTES", env = "ETLPOOL_MAX_ATTACHMENT_BYTES")]
    pub max_attachment_bytes: Option<u64>,
    /// Stop cleanly (exit 3) once qTest says fewer requests than this are
    /// left in the month (x-ratelimit-remaining-month), keeping them for the
    /// account's other users; 0 stops only when none are left. Defaults to
    /// 1000.
    #[arg(long, value_name = "N", env = "QTEST_MONTH_FLOOR")]
    pub qtest_month_floor: Option<u64>,
}

/// Most workers a run may have: each is a thread and a connection per
/// service, and the SaaS APIs rate-limit long before this.
pub const MAX_WORKERS: usize = 256;

/// The config file. Every section is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    zephyr: ServiceSection,
    #[serde(default)]
    qtest: ServiceSection,
    #[serde(default)]
    run: RunSection,
    #[serde(default)]
    alerts: AlertsSection,
    pool: Option<PoolConfig>,
    /// Accepted here so `deny_unknown_fields` lets it through; parsed and
    /// validated by [`MappingConfig::from_toml`].
    #[serde(default, rename = "mapping")]
    _mapping: toml::Table,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceSection {
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
    /// Stop before the month's request budget (qTest's
    /// `x-ratelimit-remaining-month`) falls under this.
    month_floor: Option<u64>,
}

/// Masks the token and the password, so no `{:?}` of a config can print them.
impl std::fmt::Debug for ServiceSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("ServiceSection")
            .field("url", &self.url.as_deref().map(crate::redact::url))
            .field("project", &self.project)
            .field("project_id", &self.project_id)
            .field("token", &masked(&self.token))
            .field("username", &self.username)
            .field("password", &masked(&self.password))
            .field("site", &self.site)
            .field("rate_limit", &self.rate_limit)
            .field("burst", &self.burst)
            .field("month_floor", &self.month_floor)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunSection {
    workers: Option<usize>,
    journal: Option<PathBuf>,
    report: Option<PathBuf>,
    page_size: Option<u64>,
    status_interval: Option<String>,
    attachments: Option<bool>,
    step_attachments: Option<bool>,
    max_attachment_bytes: Option<u64>,
    max_outage: Option<String>,
}

/// `[alerts]`: thresholds, each a value or `"off"`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertsSection {
    acquire_wait_p95: Option<String>,
    utilisation: Option<NumberOrOff>,
    error_rate: Option<NumberOrOff>,
    slow_request_p95: Option<String>,
    min_requests: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum NumberOrOff {
    Number(f64),
    Text(String),
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
    /// From `[run] status_interval`, if set.
    pub status_interval: Option<std::time::Duration>,
    /// From `[run] max_outage` (`migrate` puts `--max-outage` here), if set.
    pub max_outage: Option<std::time::Duration>,
    /// Alert thresholds (`[alerts]`).
    pub alerts: Thresholds,
    /// Whether and up to what size attachments are migrated (`--no-attachments`,
    /// `--max-attachment-bytes`, `[run] attachments` and `max_attachment_bytes`).
    pub attachments: AttachmentOptions,
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
        let checked = file.check(&text)?;
        let missing = |what: &str, flag: &str, var: &str| {
            Error::config(
                what,
                format!("set {flag}, {var}, or `{what}` in the config file"),
            )
        };
        let zephyr_url = first([self.zephyr_url.clone(), file.zephyr.url.clone()])
            .ok_or_else(|| missing("zephyr.url", "--zephyr-url", "ZEPHYR_URL"))?;
        versioned(&zephyr_url, "ZEPHYR_URL", "/v2", ZEPHYR_EXAMPLE)?;
        let zephyr_project = first([self.zephyr_project.clone(), file.zephyr.project.clone()])
            .ok_or_else(|| missing("zephyr.project", "--zephyr-project", "ZEPHYR_PROJECT"))?;
        let qtest_url = first([self.qtest_url.clone(), file.qtest.url.clone()])
            .ok_or_else(|| missing("qtest.url", "--qtest-url", "QTEST_URL"))?;
        versioned(&qtest_url, "QTEST_URL", "/api/v3", QTEST_EXAMPLE)?;
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
        let workers = check_workers(self.workers.or(file.run.workers).unwrap_or(8))?;
        let mut pool = checked.pool;
        pool.apply_env(std::env::vars())?;
        self.apply_tls(&mut pool);
        // The workers and the thread listing Zephyr's pages share these
        // connections; a worker count above the cap would only queue for them.
        pool.max_connections_per_host = workers;
        pool.validate()?;
        let attachments = self.attachment_options(&file.run)?;
        Ok(Settings {
            endpoints: Endpoints {
                zephyr_url,
                zephyr_token,
                zephyr_project,
                qtest_url,
                qtest_auth,
                qtest_project,
                zephyr_rate: checked.zephyr_rate,
                qtest_rate: RateLimit {
                    month_floor: self
                        .qtest_month_floor
                        .unwrap_or(checked.qtest_rate.month_floor),
                    ..checked.qtest_rate
                },
            },
            pool,
            mapping: checked.mapping,
            workers,
            journal: file.run.journal,
            report: file.run.report,
            page_size: file
                .run
                .page_size
                .unwrap_or(crate::zephyr::DEFAULT_PAGE_SIZE),
            status_interval: checked.status_interval,
            max_outage: checked.max_outage,
            alerts: checked.alerts,
            attachments,
        })
    }

    fn attachment_options(&self, run: &RunSection) -> Result<AttachmentOptions> {
        let max = self
            .max_attachment_bytes
            .or(run.max_attachment_bytes)
            .unwrap_or(DEFAULT_MAX_ATTACHMENT_BYTES);
        if max == 0 {
            return Err(Error::config(
                "max_attachment_bytes",
                "must be at least 1 (use --no-attachments to leave files out)",
            ));
        }
        let on = !self.no_attachments && run.attachments.unwrap_or(true);
        let steps = !self.no_step_attachments && run.step_attachments.unwrap_or(true);
        Ok(AttachmentOptions::default()
            .max_bytes(max)
            .enabled(on)
            .steps(steps))
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
        month_floor: section
            .month_floor
            .unwrap_or(RateLimit::default().month_floor),
        ..RateLimit::default()
    };
    limit
        .validate()
        .map_err(|e| Error::config(format!("{name}.rate_limit"), e.to_string()))?;
    Ok(limit)
}

/// What a config file says, each value checked (a key's own rules; whether
/// the required ones are set anywhere is [`ConnectionArgs::resolve`]'s job).
pub(super) struct Checked {
    pub(super) pool: PoolConfig,
    pub(super) mapping: MappingConfig,
    pub(super) zephyr_rate: RateLimit,
    pub(super) qtest_rate: RateLimit,
    pub(super) status_interval: Option<std::time::Duration>,
    pub(super) max_outage: Option<std::time::Duration>,
    pub(super) alerts: Thresholds,
}

impl FileConfig {
    /// Checks every value; `text` is the file (its `[mapping]` is parsed
    /// apart).
    pub(super) fn check(&self, text: &str) -> Result<Checked> {
        if let Some(workers) = self.run.workers {
            check_workers(workers)?;
        }
        for (url, var, version, example) in [
            (&self.zephyr.url, "zephyr.url", "/v2", ZEPHYR_EXAMPLE),
            (&self.qtest.url, "qtest.url", "/api/v3", QTEST_EXAMPLE),
        ] {
            if let Some(url) = url {
                versioned(url, var, version, example)?;
            }
        }
        let pool = self.pool.clone().unwrap_or_default();
        pool.validate()?;
        let mapping =
            MappingConfig::from_toml(text).map_err(|e| Error::config("mapping", e.to_string()))?;
        let status_interval = match &self.run.status_interval {
            Some(v) => Some(positive_duration("run.status_interval", v)?),
            None => None,
        };
        let max_outage = match &self.run.max_outage {
            Some(v) => Some(positive_duration("run.max_outage", v)?),
            None => None,
        };
        Ok(Checked {
            pool,
            mapping,
            zephyr_rate: rate(&self.zephyr, "zephyr")?,
            qtest_rate: rate(&self.qtest, "qtest")?,
            status_interval,
            max_outage,
            alerts: self.alerts.thresholds()?,
        })
    }
}

impl AlertsSection {
    fn thresholds(&self) -> Result<Thresholds> {
        let d = Thresholds::default();
        let duration = |key: &str, v: &Option<String>, default| match v.as_deref() {
            None => Ok(default),
            Some("off") => Ok(None),
            Some(text) => positive_duration(key, text).map(Some),
        };
        let ratio = |key: &str, v: &Option<NumberOrOff>, default| match v {
            None => Ok(default),
            Some(NumberOrOff::Text(t)) if t == "off" => Ok(None),
            Some(NumberOrOff::Number(x)) if x.is_finite() && *x > 0.0 => Ok(Some(*x)),
            Some(_) => Err(Error::config(key, "must be a number above 0, or \"off\"")),
        };
        let mut t = d;
        t.acquire_wait_p95 = duration(
            "alerts.acquire_wait_p95",
            &self.acquire_wait_p95,
            d.acquire_wait_p95,
        )?;
        t.utilisation = ratio("alerts.utilisation", &self.utilisation, d.utilisation)?;
        t.error_rate = ratio("alerts.error_rate", &self.error_rate, d.error_rate)?;
        t.slow_request_p95 = duration(
            "alerts.slow_request_p95",
            &self.slow_request_p95,
            d.slow_request_p95,
        )?;
        t.min_requests = self.min_requests.unwrap_or(d.min_requests);
        Ok(t)
    }
}

/// A duration above zero: `30s`, `250ms`, `1m 30s` or bare seconds.
pub(super) fn positive_duration(key: &str, v: &str) -> Result<std::time::Duration> {
    let t = v.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| Error::config(key, format!("{v:?} is not a duration ({e}); try 30s")))?,
    };
    if d.is_zero() {
        return Err(Error::config(key, "must be longer than 0"));
    }
    Ok(d)
}

/// An example of each service's base URL, for messages.
const ZEPHYR_EXAMPLE: &str = "https://api.zephyrscale.smartbear.com/v2";
const QTEST_EXAMPLE: &str = "https://SITE.qtestnet.com/api/v3";

/// A base URL must end in its API's version path: without it every call
/// reads as "not found", which looks like a missing project.
fn versioned(url: &str, key: &str, version: &str, example: &str) -> Result<()> {
    let after_host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, path)| path);
    let path = after_host.split(['?', '#']).next().unwrap_or("");
    let path = format!("/{}", path.trim_end_matches('/'));
    if path.ends_with(version) {
        return Ok(());
    }
    let redacted = crate::redact::url(url);
    let why = if path == "/" {
        format!(
            "{redacted} has no version path: the API lives under {version}, so use e.g. {example}"
        )
    } else {
        format!(
            "{redacted}: the path {path} does not end with {version}, where the API lives \
             (e.g. {example})"
        )
    };
    Err(Error::config(key, why))
}

fn check_workers(workers: usize) -> Result<usize> {
    if (1..=MAX_WORKERS).contains(&workers) {
        Ok(workers)
    } else {
        Err(Error::config(
            "workers",
            format!(
                "{workers} is out of range: use 1 to {MAX_WORKERS} (each worker is a thread and a connection per service)"
            ),
        ))
    }
}

pub(super) fn read_file(path: &Path) -> Result<(FileConfig, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config("--config", format!("cannot read {}: {e}", path.display())))?;
    let file: FileConfig = toml::from_str(&text)
        .map_err(|e| Error::config(path.display().to_string(), parse_error(&e, &text)))?;
    warn_if_readable_by_others(path, &file);
    Ok((file, text))
}

/// A TOML error as toml prints it (the line, marked), unless the line holds
/// a token or password: then its place and what is wrong, with the value
/// masked. Errors reach logs and the summary file; a secret must not.
fn parse_error(e: &toml::de::Error, text: &str) -> String {
    let rendered = e.to_string().trim_end().to_string();
    let Some(before) = e.span().and_then(|span| text.get(..span.start)) else {
        return rendered;
    };
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or_default();
    let Some((key, value)) = line.split_once('=') else {
        return rendered;
    };
    let key = key.trim().trim_matches(['"', '\'']);
    let key = key.rsplit('.').next().unwrap_or(key);
    if !matches!(key, "token" | "password") {
        return rendered;
    }
    let value = value.trim();
    let mut message = e.message().trim_end().to_string();
    for shown in [value, value.trim_matches(['"', '\''])] {
        if !shown.is_empty() {
            message = message.replace(shown, "***");
        }
    }
    format!(
        "TOML parse error at line {}, `{key}` (its value not shown): {message}",
        before.matches('\n').count() + 1
    )
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
            target: super::SECURITY_TARGET,
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

    #[test]
    fn debug_of_a_service_section_masks_its_secrets() {
        let section: ServiceSection =
            toml::from_str("token = \"tok-s3cret\"\npassword = \"pw-s3cret\"\nusername = \"u\"\n")
                .unwrap();
        let text = format!("{section:?}");
        assert!(!text.contains("s3cret") && text.contains("***"), "{text}");
    }

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
        assert!(s.attachments.steps, "step files are migrated by default");
        std::fs::write(
            &path,
            "[zephyr]\ntoken = \"zt\"\n[qtest]\ntoken = \"qt\"\n[run]\nstep_attachments = false\n",
        )
        .unwrap();
        let s = a.resolve(&env_of(&[])).unwrap();
        assert!(s.attachments.enabled && !s.attachments.steps);
        a.config = None;
        a.no_step_attachments = true;
        let env = env_of(&[("ZEPHYR_TOKEN", "z"), ("QTEST_TOKEN", "q")]);
        assert!(!a.resolve(&env).unwrap().attachments.steps, "the flag");
        a.config = Some(path.clone());
        std::fs::write(&path, "[zephyr]\ntokn = \"x\"\n").unwrap();
        let err = a.resolve(&env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
