//! Errors that lead to the fix: full URLs, the variable behind a rejected
//! token, base URLs without their version, usage errors as exit 2, workers
//! bounded, TLS failures in words, and help that lists every variable.

use std::process::Command;

use crate::cli::{migrate, mocks, run};
use crate::support::{Scratch, TestCa};

fn etlpool() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etlpool"));
    cmd.env_clear();
    cmd
}

#[test]
fn a_rejected_token_names_its_variable_and_the_full_url() {
    let mocks = mocks(101);
    let dir = Scratch::new("ops-401");
    let (code, out) = run(migrate(&mocks, &dir.0).env("QTEST_TOKEN", "expired"));
    assert_eq!(code, 4, "{out}");
    let error = out
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        error.contains(&format!("{}/projects/", mocks.qtest_url())),
        "{error}"
    );
    assert!(error.contains("401"), "{error}");
    let hint = out
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(hint.contains("QTEST_TOKEN"), "{hint}");
    assert!(!out.contains("expired"), "the token was printed");
}

#[test]
fn usage_errors_exit_2_and_say_what_to_change() {
    let mocks = mocks(102);
    let dir = Scratch::new("ops-usage");
    let origin = mocks.zephyr_url().trim_end_matches("/v2").to_string();
    type Tweak<'a> = Box<dyn Fn(&mut Command) + 'a>;
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "base URL without /v2",
            Box::new(|c: &mut Command| {
                c.env("ZEPHYR_URL", &origin);
            }),
            "/v2",
        ),
        (
            "missing config file",
            Box::new(|c: &mut Command| {
                c.args(["--config", "/no/such/etlpool.toml"]);
            }),
            "/no/such/etlpool.toml",
        ),
        (
            "too many workers",
            Box::new(|c: &mut Command| {
                c.env("ETLPOOL_WORKERS", "100000");
            }),
            "1 to 256",
        ),
        (
            "bad --wait",
            Box::new(|c: &mut Command| {
                c.arg("--wait=soon");
            }),
            "--wait",
        ),
    ];
    for (name, tweak, says) in cases {
        let mut cmd = migrate(&mocks, &dir.0);
        tweak(&mut cmd);
        let (code, out) = run(&mut cmd);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains("error: ") && out.contains(says),
            "{name}: expected {says:?} in {out}"
        );
    }
    assert!(mocks.qtest_state().journal.is_empty());
    assert!(!dir.0.join("journal.csv.lock").exists(), "a stale lock");
}

/// A server whose certificate is a self-signed CA certificate: what rustls
/// reports as `CaUsedAsEndEntity`.
fn ca_as_server() -> (etlpool::mock::server::HttpServer, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (TestCa::serve(std::sync::Arc::new(config)), cert.pem())
}

#[test]
fn a_tls_failure_reads_as_words_with_a_hint() {
    let mocks = mocks(103);
    let dir = Scratch::new("ops-tls");
    let (server, pem) = ca_as_server();
    let ca = dir.file("ca.pem", pem.as_bytes());
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let (code, out) = run(migrate(&mocks, &dir.0)
        .env("ZEPHYR_URL", format!("https://localhost:{port}/v2"))
        .arg("--ca-file")
        .arg(&ca));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("is a CA certificate"), "{out}");
    assert!(!out.contains("OtherError"), "debug names: {out}");
    let hint = out
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(hint.contains("signed by that CA"), "{hint}");
}

#[test]
fn help_lists_every_variable_the_exit_codes_and_global_options_once() {
    let out = etlpool().args(["migrate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "ZEPHYR_URL",
        "ZEPHYR_PROJECT",
        "ZEPHYR_TOKEN",
        "QTEST_URL",
        "QTEST_PROJECT_ID",
        "QTEST_TOKEN",
        "QTEST_USERNAME",
        "QTEST_PASSWORD",
        "ETLPOOL_CONFIG",
        "ETLPOOL_WORKERS",
        "ETLPOOL_CA_FILE",
        "ETLPOOL_CLIENT_CERT",
        "ETLPOOL_CLIENT_KEY",
        "ETLPOOL_STATUS_INTERVAL",
        "ETLPOOL_METRICS_ADDR",
        "RUST_LOG",
        "Exit codes:",
        "130",
    ] {
        assert!(help.contains(var), "{var} not in\n{help}");
    }
    assert_eq!(help.matches("--verbose").count(), 1, "{help}");
    let global = help
        .find("Global options:")
        .expect("a global options heading");
    assert!(help.find("--verbose").unwrap() > global, "{help}");
    let top = etlpool().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains("Exit codes:"));
}

#[test]
fn the_default_config_checks_and_a_bad_one_names_its_key() {
    let dir = Scratch::new("ops-config");
    let out = etlpool()
        .args(["config", "--print-default"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for key in [
        "[zephyr]",
        "[alerts]",
        "[pool.tls]",
        "# idle_timeout = \"30s\"",
        "status_interval",
    ] {
        assert!(text.contains(key), "{key} not in\n{text}");
    }
    let file = dir.file("default.toml", text.as_bytes());
    let (code, out) = run(etlpool().args(["config", "--check"]).arg(&file));
    assert_eq!(code, 0, "{out}");
    let bad = dir.file("bad.toml", b"[run]\nworkers = 0\n");
    let (code, out) = run(etlpool().args(["config", "--check"]).arg(&bad));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("workers"), "{out}");
}

#[test]
fn a_malformed_secret_in_the_config_file_is_not_printed() {
    let mocks = mocks(104);
    let dir = Scratch::new("ops-config-secret");
    for (n, body) in [
        "[qtest]\ntoken = \"SEKRET-unterminated\n",
        "[qtest]\ntoken = SEKRET-unquoted\n",
        "[zephyr]\npassword = 'SEKRET-single' trailing\n",
        "[qtest]\nusername = \"u\"\npassword = 7654321987\n",
        "qtest.token = SEKRET-dotted\n",
    ]
    .into_iter()
    .enumerate()
    {
        let secret = if body.contains("7654321987") {
            "7654321987"
        } else {
            "SEKRET"
        };
        let config = dir.file(&format!("c{n}.toml"), body.as_bytes());
        let (code, out) = run(etlpool().args(["config", "--check"]).arg(&config));
        assert_eq!(code, 2, "{body}: {out}");
        assert!(!out.contains(secret), "{body}: {out}");
        assert!(out.contains("line "), "no line number: {out}");
        let summary = dir.0.join("last.json");
        let (code, out) = run(migrate(&mocks, &dir.0)
            .args(["--log-format", "json", "--config"])
            .arg(&config)
            .arg("--summary-json")
            .arg(&summary));
        assert_eq!(code, 2, "{body}: {out}");
        assert!(!out.contains(secret), "{body}: {out}");
        let written = std::fs::read_to_string(&summary).unwrap();
        assert!(!written.contains(secret), "{body}: {written}");
    }
}

#[test]
fn a_timeout_too_long_to_be_a_deadline_is_a_usage_error_not_a_panic() {
    let mocks = mocks(105);
    let dir = Scratch::new("ops-huge-timeout");
    let summary = dir.0.join("last.json");
    for var in ["ETLPOOL_CONNECT_TIMEOUT", "ETLPOOL_TOTAL_TIMEOUT"] {
        let (code, out) = run(migrate(&mocks, &dir.0)
            .env(var, "500000000000y")
            .arg("--summary-json")
            .arg(&summary));
        assert_eq!(code, 2, "{var}: {out}");
        assert!(!out.contains("panicked"), "{var}: {out}");
        let key = var.trim_start_matches("ETLPOOL_").to_lowercase();
        assert!(out.contains(&key), "{var}: {out}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(s["exit_code"], 2, "{var}: {s:#}");
    }
}

/// `etlpool verify` with the environment `migrate` gets.
pub(crate) fn verify(mocks: &etlpool::mock::MockServers, dir: &std::path::Path) -> Command {
    let like = migrate(mocks, dir);
    let mut cmd = etlpool();
    for (k, v) in like.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.arg("verify");
    cmd
}

#[test]
fn verify_checks_its_report_path_before_reading_both_services() {
    let mocks = mocks(106);
    let dir = Scratch::new("ops-verify-path");
    let (code, out) = run(verify(&mocks, &dir.0)
        .arg("--report-json")
        .arg(dir.0.join("no/such/dir/verify.json")));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--report-json"), "{out}");
    let asked = mocks.zephyr_stats().snapshot().requests + mocks.qtest_stats().snapshot().requests;
    assert_eq!(asked, 0, "the services were read first: {out}");

    // `-` is stdout, as for migrate's outputs: the JSON there, the text on stderr.
    let out = verify(&mocks, &dir.0)
        .current_dir(&dir.0)
        .args(["--report-json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing migrated: differences");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(report.is_object(), "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("differences"));
    assert!(!dir.0.join("-").exists(), "a file named -");
}

#[test]
fn load_with_errors_keeps_exit_3_when_its_metrics_file_cannot_be_written() {
    let Some(mut outer) = crate::ops_util::unshare(&["-m"]) else {
        return;
    };
    let dir = Scratch::new("ops-load-full");
    let disk = dir.0.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    // Nothing listens on port 1: every request fails, so the run is partial (3).
    let script = format!(
        "mount -t tmpfs -o size=16k tmpfs '{d}' && \
         dd if=/dev/zero of='{d}/filler' bs=1024 count=16 2>/dev/null; \
         '{bin}' load http://127.0.0.1:1/x --requests 3 --threads 1 --metrics '{d}/m.prom'",
        d = disk.display(),
        bin = env!("CARGO_BIN_EXE_etlpool"),
    );
    let (code, out) = run(outer.args(["sh", "-c", &script]));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("No space left on device"), "{out}");
}
