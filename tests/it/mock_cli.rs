//! `etlpool mock` arguments: parsing into options, and the JSON it prints.

use clap::Parser;
use etlpool::cli::{MockArgs, describe_mocks as describe};
use etlpool::mock::{FailPoint, MockServers};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: MockArgs,
}

fn parse(args: &[&str]) -> MockArgs {
    Cli::try_parse_from(std::iter::once("mock").chain(args.iter().copied()))
        .unwrap()
        .args
}

#[test]
fn arguments_become_options() {
    let a = parse(&[
        "--seed",
        "7",
        "--cases",
        "3",
        "--latency-ms",
        "20",
        "--fail-rate",
        "0.5",
        "--fail-after-write",
        "--rate-limit",
        "100",
        "--idle-close-ms",
        "250",
        "--faults-on",
        "qtest",
        "--crash-after-writes",
        "9",
    ]);
    let o = a.to_options();
    assert_eq!((o.seed, o.sizes.cases), (Some(7), 3));
    assert_eq!(o.qtest_faults.fail_point, FailPoint::After);
    assert_eq!(o.qtest_faults.rate_limit, Some(100));
    assert_eq!(o.qtest_faults.idle_close.map(|d| d.as_millis()), Some(250));
    assert_eq!(o.qtest_faults.crash_after_writes, Some(9));
    assert_eq!(
        o.zephyr_faults,
        Default::default(),
        "--faults-on qtest leaves Zephyr alone"
    );
    assert!(o.validate().is_ok());
    assert!(
        parse(&["--fail-rate", "2"])
            .to_options()
            .validate()
            .is_err()
    );
}

#[test]
fn the_json_description_is_stable() {
    let servers = MockServers::start(parse(&["--seed", "3", "--cases", "1"]).to_options()).unwrap();
    let d = describe(&servers);
    let mut keys: Vec<String> = d.as_object().unwrap().keys().cloned().collect();
    keys.extend(
        d["zephyr"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| format!("zephyr.{k}")),
    );
    keys.extend(
        d["qtest"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| format!("qtest.{k}")),
    );
    keys.sort();
    let expected = [
        "qtest",
        "qtest.password",
        "qtest.project_id",
        "qtest.site",
        "qtest.site_url",
        "qtest.token",
        "qtest.url",
        "qtest.username",
        "seed",
        "zephyr",
        "zephyr.project_key",
        "zephyr.token",
        "zephyr.url",
    ];
    assert_eq!(keys, expected);
    assert_eq!(d["seed"], 3);
    assert_eq!(d["zephyr"]["url"], servers.zephyr_url());
}

#[test]
fn public_types_are_send_and_sync() {
    fn ensure<T: Send + Sync>() {}
    ensure::<MockServers>();
    ensure::<etlpool::mock::HttpServer>();
    ensure::<etlpool::mock::Faults>();
}
