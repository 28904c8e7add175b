//! The shared rate budget of a process given `--redis` (feature `redis`):
//! each service's policies come from Redis, so every process using it
//! keeps to one rate per service together.

use super::CliError;
use super::redis_args::RedisArgs;
use crate::policy::RateLimit;
use crate::pool::Pool;

/// The process's link to the shared budgets, if it has one; cheap to clone.
#[derive(Clone, Default)]
pub(super) struct Budget {
    #[cfg(feature = "redis")]
    shared: Option<crate::fleet::redis::budget::SharedBudget>,
}

impl Budget {
    /// No shared budget: each process keeps to its own rates.
    pub(super) fn none() -> Budget {
        Budget::default()
    }

    /// Joins the shared budgets of the Redis `redis` names, if it names one.
    #[cfg(feature = "redis")]
    pub(super) fn join(redis: &RedisArgs) -> Result<Budget, CliError> {
        let share = redis.budget_share()?;
        let Some(target) = redis.open(None)? else {
            return Ok(Budget::none());
        };
        let options = crate::fleet::redis::budget::BudgetOptions {
            share,
            ..Default::default()
        };
        let shared = crate::fleet::redis::budget::SharedBudget::start(&target, options)?;
        Ok(Budget {
            shared: Some(shared),
        })
    }

    /// Without the `redis` feature a Redis is refused.
    #[cfg(not(feature = "redis"))]
    pub(super) fn join(redis: &RedisArgs) -> Result<Budget, CliError> {
        redis.refuse(None)?;
        Ok(Budget::none())
    }

    /// Gives each service (base URL, its rate) of `pool` its shared
    /// policies, before any client of it is made; a second service on an
    /// origin already given them shares them.
    pub(super) fn install(
        &self,
        pool: &Pool,
        services: &[(&str, RateLimit)],
    ) -> Result<(), CliError> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            for (url, rate_limit) in services {
                let origin = pool.origin(url)?;
                if origin.policies_if_made().is_some() {
                    continue;
                }
                let settings = crate::policy::PolicySettings {
                    rate_limit: *rate_limit,
                    ..Default::default()
                };
                let policies = shared.policies(&origin.origin().to_string(), settings);
                pool.set_policies(url, policies)?;
            }
        }
        #[cfg(not(feature = "redis"))]
        let _ = (pool, services);
        Ok(())
    }

    /// The budget's gauges in Prometheus text; nothing without one.
    pub(super) fn prometheus(&self) -> String {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let gauges = [
                (
                    "redis_up",
                    "1 while the shared rate budget's Redis answers, 0 while this process goes on alone.",
                    u8::from(shared.reachable()).to_string(),
                ),
                (
                    "members",
                    "Processes sharing the rate budget, as last counted (0: never reached).",
                    shared.members().to_string(),
                ),
                (
                    "share",
                    "The share of each rate this process keeps to while alone.",
                    format!("{:.4}", shared.share()),
                ),
            ];
            let mut out = String::new();
            for (name, help, value) in gauges {
                out.push_str(&format!(
                    "# HELP etlpool_budget_{name} {help}\n# TYPE etlpool_budget_{name} gauge\n\
                     etlpool_budget_{name} {value}\n"
                ));
            }
            return out;
        }
        String::new()
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn the_gauges_say_whether_redis_answers_and_the_share() {
        assert_eq!(Budget::none().prometheus(), "");
        // Nothing listens on port 9 of loopback.
        let args = RedisArgs {
            redis: Some("redis://127.0.0.1:9".into()),
            budget_share: Some("1/4".into()),
            redis_prefix: "etlpool".into(),
            ..RedisArgs::default()
        };
        let text = Budget::join(&args).unwrap().prometheus();
        assert!(text.contains("\netlpool_budget_redis_up 0\n"), "{text}");
        assert!(text.contains("\netlpool_budget_share 0.2500\n"), "{text}");
        assert!(
            text.contains("# TYPE etlpool_budget_members gauge\n"),
            "{text}"
        );
    }
}
