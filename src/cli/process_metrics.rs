//! `/metrics` and `/health` of a process that runs project after project
//! (`etlpool worker`, `etlpool migrate --projects`): one server for the
//! life of the process, showing the project running now (its pool's and
//! job's metrics) and the process's own counts, every sample labelled with
//! `worker`, so the processes of a fleet can be told apart on one
//! dashboard.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::CliError;
use super::job::{Job, escape, labelled};
use super::monitor::{FailureWatch, health};
use super::serve::Server;
use crate::pool::Pool;

/// What the process's server shows.
pub(super) struct ProcessMetrics {
    command: &'static str,
    worker: String,
    /// Guards the project running now: its pool and job.
    current: Mutex<Option<(Pool, Arc<Job>)>>,
    /// Guards the projects finished by this process, per outcome.
    finished: Mutex<BTreeMap<&'static str, u64>>,
    failures: FailureWatch,
    /// Guards the process's shared rate budget, shown once set.
    budget: Mutex<super::budget::Budget>,
}

impl ProcessMetrics {
    pub(super) fn new(command: &'static str, worker: &str) -> Arc<ProcessMetrics> {
        Arc::new(ProcessMetrics {
            command,
            worker: worker.to_string(),
            current: Mutex::new(None),
            finished: Mutex::new(BTreeMap::new()),
            failures: FailureWatch::default(),
            budget: Mutex::new(super::budget::Budget::none()),
        })
    }

    /// Shows the gauges of the process's shared rate budget too.
    #[cfg(feature = "redis")]
    pub(super) fn show_budget(&self, budget: &super::budget::Budget) {
        *self.budget.lock() = budget.clone();
    }

    /// Serves `/metrics` and `/health` on `addr` until the server is dropped;
    /// a taken address is a usage error.
    pub(super) fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<Server, CliError> {
        let (me, checked) = (Arc::clone(self), Arc::clone(self));
        let server = Server::start(
            addr,
            super::serve::metrics_and_health(move || me.render(), move || checked.health()),
        )
        .map_err(|e| CliError::Usage(format!("--metrics-addr {addr}: cannot listen there: {e}")))?;
        log::info!("serving /metrics and /health on http://{}", server.addr());
        Ok(server)
    }

    /// Shows the run of `pool` and `job` until the next one.
    pub(super) fn show(&self, pool: &Pool, job: &Arc<Job>) {
        *self.current.lock() = Some((pool.clone(), Arc::clone(job)));
    }

    /// Counts a finished project: `done`, `failed`, `retried`, `released`.
    pub(super) fn finished(&self, outcome: &'static str) {
        *self.finished.lock().entry(outcome).or_default() += 1;
    }

    fn render(&self) -> String {
        let current = self.current.lock().clone();
        let mut out = match &current {
            Some((pool, job)) => job.prometheus(&pool.metrics()),
            None => String::new(),
        };
        let mut own = String::from(
            "# HELP etlpool_worker_projects_total Projects this process finished, by outcome.\n\
             # TYPE etlpool_worker_projects_total counter\n",
        );
        for (outcome, n) in self.finished.lock().iter() {
            let _ = writeln!(
                own,
                "etlpool_worker_projects_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        own.push_str(&self.budget.lock().prometheus());
        let labels = format!(
            "command=\"{}\",worker=\"{}\"",
            self.command,
            escape(&self.worker)
        );
        out.push_str(&labelled(&own, &labels));
        out
    }

    fn health(&self) -> (u16, String) {
        let current = self.current.lock().clone();
        match current {
            Some((pool, _)) => health(&pool, &self.failures),
            None => (200, "{\"status\":\"ok\",\"origins\":{}}\n".to_string()),
        }
    }
}
