//! `etlpool config`: print a commented default config file with every key,
//! or check one.
//!
//! The default file is generated from the sections' own types (serialised at
//! their defaults), so a key added to a section shows up here, and a test
//! fails until it has a description.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::config::{AlertsSection, RunSection, ServiceSection, read_file};
use super::{CliError, ExitCode};
use crate::migrate::MappingConfig;
use crate::pool::PoolConfig;

/// Options of `etlpool config`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["print_default", "check"])))]
pub struct ConfigArgs {
    /// Print a config file with every key at its default, commented out,
    /// each with a line saying what it does.
    #[arg(long)]
    pub print_default: bool,
    /// Check a config file: its syntax, unknown keys, and every value; exits
    /// 2 naming the key at fault.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

pub(super) fn run(args: &ConfigArgs) -> Result<ExitCode, CliError> {
    if let Some(path) = &args.check {
        let (file, text) = read_file(path)?;
        file.check(&text)?;
        println!("{}: ok", path.display());
    } else {
        print!("{}", default_file());
    }
    Ok(ExitCode::Ok)
}

/// A key's description and, for keys with no default, an example value.
type Doc = (&'static str, &'static str, Option<&'static str>);

const ZEPHYR: &[Doc] = &[
    (
        "url",
        "Zephyr Scale API base URL, with its /v2 (ZEPHYR_URL, --zephyr-url). Required.",
        Some("\"https://api.zephyrscale.smartbear.com/v2\""),
    ),
    (
        "project",
        "Zephyr project key (ZEPHYR_PROJECT, --zephyr-project). Required.",
        Some("\"PROJ\""),
    ),
    (
        "token",
        "API access token (ZEPHYR_TOKEN); chmod 600 a file that holds one.",
        Some("\"...\""),
    ),
    (
        "rate_limit",
        "Client-side requests per second; 429s pause the origin anyway. Default: none.",
        Some("20"),
    ),
    (
        "burst",
        "Requests allowed at once after a quiet spell, with rate_limit.",
        Some("1"),
    ),
];

const QTEST: &[Doc] = &[
    (
        "url",
        "qTest API base URL, with its /api/v3 (QTEST_URL, --qtest-url). Required.",
        Some("\"https://SITE.qtestnet.com/api/v3\""),
    ),
    (
        "project_id",
        "qTest project id (QTEST_PROJECT_ID, --qtest-project). Required.",
        Some("12345"),
    ),
    (
        "token",
        "Bearer token from \"API & SDK\" (QTEST_TOKEN); or username and password.",
        Some("\"...\""),
    ),
    (
        "username",
        "Login name (QTEST_USERNAME), instead of a token.",
        Some("\"etl@example.com\""),
    ),
    (
        "password",
        "Login password (QTEST_PASSWORD); chmod 600 a file that holds one.",
        Some("\"...\""),
    ),
    (
        "site",
        "Site name for the password login (QTEST_SITE). Default: the first label of the host.",
        Some("\"acme\""),
    ),
    (
        "rate_limit",
        "Client-side requests per second. Default: none.",
        Some("20"),
    ),
    (
        "burst",
        "Requests allowed at once after a quiet spell, with rate_limit.",
        Some("1"),
    ),
    (
        "month_floor",
        "Stop (exit 3) once x-ratelimit-remaining-month says fewer requests are left (QTEST_MONTH_FLOOR, --qtest-month-floor); 0: only when none are. Default: 1000.",
        Some("1000"),
    ),
];

const RUN: &[Doc] = &[
    (
        "workers",
        "Concurrent jobs, 1 to 256 (ETLPOOL_WORKERS, --workers); the per-host connection cap follows it. Default: 8.",
        Some("8"),
    ),
    (
        "journal",
        "The journal; a re-run resumes from it (--journal). Default: <project>.journal.csv.",
        Some("\"/var/lib/etlpool/PROJ.journal.csv\""),
    ),
    (
        "report",
        "Report name; each run writes <name>.<start time>.csv (--report). Default: <project>.report.csv.",
        Some("\"/var/lib/etlpool/PROJ.report.csv\""),
    ),
    (
        "page_size",
        "Zephyr page size asked for. Default: 100.",
        Some("100"),
    ),
    (
        "status_interval",
        "Progress line (without a terminal) and alert checks (--status-interval). Default: 30s.",
        Some("\"30s\""),
    ),
    (
        "attachments",
        "Migrate the files of cases and executions (--no-attachments turns it off). Default: true.",
        Some("true"),
    ),
    (
        "step_attachments",
        "Migrate the files of test steps and execution step results too; Zephyr lists them one step at a time (--no-step-attachments turns it off). Default: true.",
        Some("true"),
    ),
    (
        "max_attachment_bytes",
        "Files larger than this are reported as skipped, not migrated (--max-attachment-bytes, ETLPOOL_MAX_ATTACHMENT_BYTES). Default: 52428800 (50 MiB).",
        Some("52428800"),
    ),
    (
        "max_outage",
        "How long work waits for a service whose circuit breaker is open; then the run stops, exit 3 (ETLPOOL_MAX_OUTAGE, --max-outage). Default: 10m.",
        Some("\"10m\""),
    ),
];

const ALERTS: &[Doc] = &[
    (
        "acquire_wait_p95",
        "WARN when the p95 of lease waits is above this (\"off\" to disable). Default: 1s.",
        Some("\"1s\""),
    ),
    (
        "utilisation",
        "WARN when (in use + waiting) / connection cap is above this. Default: 1.0.",
        Some("1.0"),
    ),
    (
        "error_rate",
        "WARN when this share of requests failed since the last check. Default: 0.05.",
        Some("0.05"),
    ),
    (
        "slow_request_p95",
        "WARN when the p95 of request latency is above this. Default: 5s.",
        Some("\"5s\""),
    ),
    (
        "min_requests",
        "Fewer requests per interval say nothing about an error rate. Default: 20.",
        Some("20"),
    ),
];

const POOL: &[Doc] = &[
    (
        "max_connections_per_host",
        "Sockets per origin (migrate and verify set it to workers).",
        None,
    ),
    (
        "max_connections_total",
        "Over all origins. Default: no limit.",
        Some("64"),
    ),
    (
        "acquire_timeout",
        "Longest wait for a free connection.",
        None,
    ),
    (
        "idle_timeout",
        "Close connections idle longer; keep below the server's keep-alive.",
        None,
    ),
    (
        "max_lifetime",
        "Close connections older than this (\"none\": never).",
        None,
    ),
    (
        "lifetime_jitter",
        "Random share taken off each lifetime.",
        None,
    ),
    ("reap_interval", "How often the cleaner runs.", None),
    (
        "min_idle",
        "Connections per origin the cleaner keeps open and idle, once the origin is used.",
        None,
    ),
    (
        "warm_path",
        "Path of the cheap HEAD request that opens a connection ahead of use.",
        None,
    ),
    (
        "tcp_keepalive",
        "TCP keepalive on pooled sockets (finds connections a NAT or firewall dropped).",
        None,
    ),
    (
        "tcp_keepalive_idle",
        "Idle time before the first keepalive probe.",
        None,
    ),
    (
        "tcp_keepalive_interval",
        "Time between keepalive probes.",
        None,
    ),
    (
        "tcp_keepalive_count",
        "Unanswered probes before a connection counts as dead.",
        None,
    ),
    ("connect_timeout", "TCP connect plus TLS handshake.", None),
    (
        "request_timeout",
        "One attempt, send to last body byte.",
        None,
    ),
    (
        "total_timeout",
        "A whole call with retries and waits (\"none\": no limit).",
        None,
    ),
    ("dns_ttl", "How long resolved addresses are cached.", None),
    ("max_body_bytes", "Largest response body read.", None),
    (
        "proxy",
        "An http:// CONNECT proxy (ETLPOOL_PROXY); never taken from HTTP_PROXY. Default: none.",
        Some("\"http://proxy:3128\""),
    ),
    ("user_agent", "The User-Agent header.", None),
];

const TLS: &[Doc] = &[
    (
        "ca_file",
        "Extra CA certificates, PEM (ETLPOOL_CA_FILE, --ca-file).",
        Some("\"/etc/etlpool/ca.pem\""),
    ),
    (
        "ca_pem",
        "Extra CA certificates inline, PEM.",
        Some("\"-----BEGIN CERTIFICATE-----...\""),
    ),
    (
        "client_cert",
        "Client certificate for mutual TLS, PEM (--client-cert).",
        Some("\"/etc/etlpool/client.pem\""),
    ),
    (
        "client_key",
        "Its private key, PEM (--client-key).",
        Some("\"/etc/etlpool/client.key\""),
    ),
    (
        "platform_verifier",
        "Verify with the operating system's verifier (platform-verifier builds).",
        None,
    ),
    (
        "danger_accept_invalid_certs",
        "Turns verification OFF: anyone on the path can read the tokens. Always warned about.",
        None,
    ),
];

const MAPPING: &[Doc] = &[
    (
        "priority",
        "Zephyr priority -> label of a qTest priority value.",
        None,
    ),
    (
        "case_status",
        "Zephyr case status -> label of a qTest status value.",
        None,
    ),
    (
        "execution_status",
        "Zephyr execution status -> qTest execution status.",
        None,
    ),
    (
        "no_log_statuses",
        "Zephyr execution statuses that get no test log.",
        None,
    ),
    (
        "default_module",
        "Root module for cases in no folder.",
        None,
    ),
    (
        "default_cycle",
        "Root test cycle for executions in no cycle.",
        None,
    ),
    (
        "same_label_first",
        "Map a status or priority to the qTest value of the same label first, then the tables.",
        None,
    ),
    (
        "approve_approved",
        "Approve cases that are Approved on Zephyr (makes a new version).",
        None,
    ),
    (
        "approve_executed",
        "Approve cases that have executions before their first run (logs need an approved version).",
        None,
    ),
    (
        "key_field",
        "The qTest text field that holds the Zephyr key (the idempotency key).",
        None,
    ),
    ("priority_field", "Label of the qTest priority field.", None),
    ("status_field", "Label of the qTest status field.", None),
];

const FIELDS: &[Doc] = &[
    (
        "labels",
        "qTest field for Zephyr labels (\"\": into the description).",
        None,
    ),
    (
        "estimated_time",
        "qTest field for the estimated time.",
        None,
    ),
    ("owner", "qTest field for the owner.", None),
    ("component", "qTest field for the Jira component.", None),
];

/// Every section's defaults, as JSON objects (infallible for these plain
/// structs; `Null` would only print an empty section).
fn defaults() -> Vec<(&'static str, Value, &'static [Doc])> {
    let json = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    let pool = json(serde_json::to_value(PoolConfig::default()));
    let mapping = json(serde_json::to_value(MappingConfig::default()));
    let service = json(serde_json::to_value(ServiceSection::default()));
    vec![
        ("zephyr", service.clone(), ZEPHYR),
        ("qtest", service, QTEST),
        (
            "run",
            json(serde_json::to_value(RunSection::default())),
            RUN,
        ),
        (
            "alerts",
            json(serde_json::to_value(AlertsSection::default())),
            ALERTS,
        ),
        ("pool", pool.clone(), POOL),
        ("pool.tls", pool["tls"].clone(), TLS),
        ("mapping", mapping.clone(), MAPPING),
        ("mapping.fields", mapping["fields"].clone(), FIELDS),
    ]
}

/// The commented default file.
pub(super) fn default_file() -> String {
    let mut out = String::from(
        "# etlpool configuration (etlpool migrate --config FILE; check it with\n\
         # etlpool config --check FILE). Precedence: flag, then environment, then this\n\
         # file, then the default. Every key below is at its default (or an example,\n\
         # where there is none) and commented out: uncomment what you change.\n\
         # Durations: 250ms, 30s, 10m. Unknown keys are errors.\n",
    );
    for (name, values, docs) in defaults() {
        let _ = write!(out, "\n[{name}]\n");
        for (key, doc, example) in docs {
            let value = match (&values[*key], example) {
                (Value::Null, Some(example)) => (*example).to_string(),
                (v, _) => toml_value(v),
            };
            let _ = write!(out, "# {doc}\n# {key} = {value}\n");
        }
    }
    out
}

/// A JSON value as TOML (strings, numbers, booleans, arrays, inline tables).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Null => "\"none\"".into(),
        other => other.to_string(),
    }
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default file with every key uncommented.
    fn uncommented() -> String {
        default_file()
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| !k.contains(' ')) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_key_of_every_section_is_documented() {
        let all_service: Vec<&str> = ZEPHYR.iter().chain(QTEST).map(|d| d.0).collect();
        for (name, values, docs) in defaults() {
            let Value::Object(map) = values else {
                panic!("{name} is not a table")
            };
            for key in map.keys() {
                let documented = docs.iter().any(|d| d.0 == key)
                    || all_service.contains(&key.as_str())
                    || (name == "pool" && key == "tls")
                    || (name == "mapping" && key == "fields");
                assert!(documented, "[{name}] {key} has no line in the default file");
            }
        }
    }

    #[test]
    fn the_default_file_uncommented_is_a_valid_config() {
        let text = uncommented();
        let file: super::super::config::FileConfig = toml::from_str(&text).unwrap();
        let checked = file.check(&text).unwrap();
        assert_eq!(checked.mapping, MappingConfig::default());
        assert_eq!(
            checked.pool.idle_timeout,
            PoolConfig::default().idle_timeout
        );
        assert_eq!(checked.alerts, crate::alerts::Thresholds::default());
    }
}
