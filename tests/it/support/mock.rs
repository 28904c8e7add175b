//! Helpers of the mock tests: a plain ureq agent (no project client code) and small requests.

use std::time::Duration;

use etlpool::mock::{MockOptions, MockServers};
use serde_json::Value;

/// A plain agent: statuses are not errors, no proxy from the environment.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A response read completely.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `name` of every object in a JSON array.
pub fn names(items: &Value) -> std::collections::HashSet<String> {
    let items = items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"));
    items
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

/// Sends one request; `Err` only for transport failures.
pub fn try_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Resp, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        builder = builder.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = match body {
        Some(b) => agent.run(
            builder
                .header("Content-Type", "application/json")
                .body(b.to_string())
                .unwrap(),
        )?,
        None => agent.run(builder.body(()).unwrap())?,
    };
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string()?;
    Ok(Resp {
        status,
        text,
        headers,
    })
}

pub fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    try_call(agent, method, url, token, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Small data so tests run fast; sizes can be overridden.
pub fn small(seed: u64) -> MockOptions {
    let mut o = MockOptions::seeded(seed);
    o.sizes.cases = 12;
    o.sizes.executions = 30;
    o
}

/// A test's view of the two servers.
pub struct Mocks {
    pub m: MockServers,
    pub agent: ureq::Agent,
}

impl Mocks {
    pub fn start(opts: MockOptions) -> Mocks {
        Mocks {
            m: MockServers::start(opts).unwrap(),
            agent: agent(),
        }
    }

    pub fn z(&self, path: &str) -> Resp {
        call(
            &self.agent,
            "GET",
            &format!("{}{path}", self.m.zephyr_url()),
            Some(self.m.zephyr_token()),
            None,
        )
    }

    /// `tail` is under `/api/v3/projects/{p}`.
    pub fn q(&self, method: &str, tail: &str, body: Option<&Value>) -> Resp {
        call(
            &self.agent,
            method,
            &self.qurl(tail),
            Some(self.m.qtest_token()),
            body,
        )
    }

    pub fn qurl(&self, tail: &str) -> String {
        format!(
            "{}/projects/{}{tail}",
            self.m.qtest_url(),
            self.m.qtest_project_id()
        )
    }

    /// `POST /oauth/token` at the qTest site with this form and `Authorization` header.
    pub fn oauth(&self, form: &str, authorization: Option<&str>) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/oauth/token", self.m.qtest_site_url()))
            .header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        let mut resp = self.agent.run(req.body(form.to_string()).unwrap()).unwrap();
        Resp {
            status: resp.status().as_u16(),
            text: resp.body_mut().read_to_string().unwrap(),
            headers: Vec::new(),
        }
    }

    /// Field id of a test-case field label.
    pub fn field(&self, label: &str) -> u64 {
        self.m.qtest_config().case_field(label).unwrap().id
    }

    pub fn module(&self, name: &str, parent: Option<u64>) -> u64 {
        let q = parent.map_or(String::new(), |p| format!("?parentId={p}"));
        let r = self.q(
            "POST",
            &format!("/modules{q}"),
            Some(&serde_json::json!({ "name": name })),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_u64().unwrap()
    }

    /// The required case fields with their default values, as create properties.
    pub fn required(&self) -> Vec<Value> {
        let cfg = self.m.qtest_config();
        cfg.case_fields
            .iter()
            .filter(|f| f.required && f.active && !f.system_field)
            .map(|f| serde_json::json!({ "field_id": f.id, "field_value": f.default_value }))
            .collect()
    }

    pub fn case(&self, name: &str, parent: u64, key: &str) -> Value {
        let mut properties = self.required();
        properties
            .push(serde_json::json!({ "field_id": self.field("Zephyr Key"), "field_value": key }));
        let body = serde_json::json!({ "name": name, "parent_id": parent,
            "properties": properties,
            "test_steps": [{ "description": "Login", "expected": "Dashboard", "order": 1 }] });
        let r = self.q("POST", "/test-cases", Some(&body));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }
}
