//! The layer in front of each mock API: test hooks, latency, rate limit, auth and faults.

use std::sync::Arc;

use super::auth::Tokens;
use super::faults::{FailPoint, Faults, Plan};
use super::qtest::quota::{Quota, REMAINING_MINUTE, REMAINING_MONTH};
use super::ratelimit::RateWindow;
use super::server::{Answer, ConnContext, Handler, Request, Response};

/// Which service's conventions errors and headers follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Zephyr,
    Qtest,
}

impl Flavor {
    /// The service's error body.
    pub(crate) fn error(self, status: u16, message: &str) -> Response {
        let body = match self {
            Flavor::Zephyr => serde_json::json!({ "errorCode": status, "message": message }),
            Flavor::Qtest => serde_json::json!({ "message": message }),
        };
        Response::json(status, &body)
    }

    fn rate_headers(self) -> (&'static str, &'static str) {
        match self {
            Flavor::Zephyr => ("X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"),
            Flavor::Qtest => ("X-RateLimit-Remaining", "X-RateLimit-Reset"),
        }
    }
}

/// An API's answer and whether it changed state.
pub(crate) struct Outcome {
    pub response: Response,
    pub write_applied: bool,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            write_applied: false,
        }
    }
}

/// One mock service behind the gate.
pub(crate) trait Api: Send + Sync + 'static {
    /// Answers an authenticated request.
    fn call(&self, req: &Request) -> Outcome;
    /// Answers the `/__` test hooks (no auth, no faults); `None` for an unknown hook.
    fn hook(&self, req: &Request) -> Option<Response>;
}

/// A [`Handler`] applying the faults and auth of one server before and after its API.
pub(crate) struct Gate {
    pub flavor: Flavor,
    pub api: Arc<dyn Api>,
    pub faults: Faults,
    pub tokens: Tokens,
    pub window: RateWindow,
    /// qTest's request quota and its headers; `None` for Zephyr.
    pub quota: Option<Quota>,
}

impl Handler for Gate {
    fn handle(&self, req: Request, _ctx: &ConnContext) -> Answer {
        if req.path.starts_with("/__") {
            let hook = self.api.hook(&req);
            return Answer::Response(
                hook.unwrap_or_else(|| self.flavor.error(404, "no such test hook")),
            );
        }
        if self.faults.crashed() {
            return Answer::Reset;
        }
        let plan = self.faults.plan();
        // The latency is the server's whole time to answer: work, then wait for
        // the rest, so a 2 ms server answers in 2 ms however long the work took.
        let answer_at = std::time::Instant::now().checked_add(plan.latency);
        let reply = self.answer(&req, &plan);
        if let Some(at) = answer_at {
            std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
        }
        reply
    }
}

impl Gate {
    fn answer(&self, req: &Request, plan: &Plan) -> Answer {
        let limit = plan.rate_limit.map(|l| self.window.check(l));
        let quota = match &limit {
            Some(v) if !v.allowed => None,
            _ => self.quota.as_ref().map(Quota::take),
        };
        let reply = match (&limit, &quota) {
            (Some(v), _) if !v.allowed => {
                let wait = v.reset.saturating_sub(now_secs()).max(1);
                let body = self.flavor.error(429, "Too many requests");
                Answer::Response(body.header("Retry-After", wait.to_string()))
            }
            // qTest names no Retry-After when its quota is spent.
            (_, Some(q)) if !q.allowed => {
                Answer::Response(self.flavor.error(429, "API rate limit exceeded"))
            }
            _ => self.guarded(req, plan),
        };
        let reply = match (reply, limit) {
            (Answer::Response(r), Some(v)) => {
                let (remaining, reset) = self.flavor.rate_headers();
                let r = r
                    .header(remaining, v.remaining.to_string())
                    .header(reset, v.reset.to_string());
                Answer::Response(r)
            }
            (reply, _) => reply,
        };
        match (reply, quota) {
            (Answer::Response(r), Some(q)) => Answer::Response(
                r.header(REMAINING_MINUTE, q.remaining_minute.to_string())
                    .header(REMAINING_MONTH, q.remaining_month.to_string()),
            ),
            (reply, _) => reply,
        }
    }

    /// Auth, the API call and the faults around it.
    fn guarded(&self, req: &Request, plan: &Plan) -> Answer {
        if self.flavor == Flavor::Qtest && req.path == "/oauth/token" && req.method == "POST" {
            return self.shape(self.tokens.issue(req), plan);
        }
        if !self.tokens.accepts(req) {
            return Answer::Response(self.flavor.error(401, "Unauthorized"));
        }
        let is_write = !matches!(req.method.as_str(), "GET" | "HEAD");
        let failure = plan
            .fail
            .map(|(status, point)| (self.fail_response(status), point));
        if let Some((resp, point)) = &failure
            && (!is_write || *point == FailPoint::Before)
        {
            return Answer::Response(resp.clone());
        }
        let out = self.api.call(req);
        if out.write_applied {
            if self.faults.count_write() {
                log::warn!("mock: crashing after the configured number of writes");
                self.faults.crash_server();
                return Answer::Reset;
            }
            if plan.reset_after_write {
                return Answer::Reset;
            }
        }
        match failure {
            Some((resp, _)) => Answer::Response(resp),
            None => self.shape(out.response, plan),
        }
    }

    fn fail_response(&self, status: u16) -> Response {
        let msg = match status {
            502 => "Bad Gateway",
            504 => "Gateway Timeout",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        self.flavor.error(status, msg)
    }

    /// The faults that damage a response on its way out.
    fn shape(&self, mut resp: Response, plan: &Plan) -> Answer {
        if plan.malformed {
            let keep = resp.body.len() / 2;
            resp.body.truncate(keep);
            resp.body.extend_from_slice(b"\x00}{");
        }
        if plan.close {
            resp = resp.close();
        }
        if plan.reset {
            // Cut inside the body (or the last header line when there is none).
            let cut = (resp.body.len() - resp.body.len() / 2).max(1);
            let bytes = resp.serialize(false, false).len() - cut;
            return Answer::Partial {
                response: resp,
                bytes,
            };
        }
        Answer::Response(resp)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
