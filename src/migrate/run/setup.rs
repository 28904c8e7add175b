//! Before any work: connect to both services, check the projects, read the
//! lookup lists.

use std::sync::Arc;

use super::patience::Patience;
use crate::cancel::CancelToken;
use crate::http::{ApiClient, Auth};
use crate::migrate::error::MigrateError;
use crate::migrate::mapping::MappingConfig;
use crate::migrate::source::{check_projects, load_lookups};
use crate::migrate::transform::Catalog;
use crate::policy::RateLimit;
use crate::pool::Pool;
use crate::qtest::{QtestClient, QtestLogin};
use crate::zephyr::ZephyrClient;

/// How to sign in to qTest.
#[derive(Clone)]
pub enum QtestAuth {
    /// A bearer token from the "API & SDK" page.
    Token(String),
    /// A password login at `/oauth/token`, renewed before it expires.
    Login {
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// The qTest site name the login names; `None`: the first label of the host
        /// (`acme` for `acme.qtestnet.com`).
        site: Option<String>,
    },
}

impl std::fmt::Debug for QtestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QtestAuth::Token(_) => f.write_str("Token(***)"),
            QtestAuth::Login { username, site, .. } => write!(
                f,
                "Login {{ username: {username:?}, password: ***, site: {site:?} }}"
            ),
        }
    }
}

/// Where the two services are and how to sign in.
#[derive(Clone)]
pub struct Endpoints {
    /// Zephyr's API base URL, e.g. `https://api.zephyrscale.smartbear.com/v2`.
    pub zephyr_url: String,
    /// Zephyr's API token.
    pub zephyr_token: String,
    /// The Zephyr project key.
    pub zephyr_project: String,
    /// qTest's API base URL, e.g. `https://SITE.qtestnet.com/api/v3`.
    pub qtest_url: String,
    /// qTest credentials.
    pub qtest_auth: QtestAuth,
    /// The qTest project id.
    pub qtest_project: u64,
    /// Client-side rate limits per service; defaults to none (server pauses
    /// still apply).
    pub zephyr_rate: RateLimit,
    /// See `zephyr_rate`.
    pub qtest_rate: RateLimit,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("zephyr_url", &crate::redact::url(&self.zephyr_url))
            .field("zephyr_project", &self.zephyr_project)
            .field("qtest_url", &crate::redact::url(&self.qtest_url))
            .field("qtest_auth", &self.qtest_auth)
            .field("qtest_project", &self.qtest_project)
            .finish_non_exhaustive()
    }
}

/// Makes both clients and checks that both projects exist. Every failure here
/// happens before any work (the binary exits 4 for them). `migrate` calls it;
/// `etlpool verify` does too.
pub fn connect(
    pool: &Pool,
    ep: &Endpoints,
    cancel: &CancelToken,
    page_size: u64,
) -> Result<(ZephyrClient, QtestClient), MigrateError> {
    let zephyr_api = ApiClient::builder(pool, &ep.zephyr_url)
        .auth(Auth::Bearer(ep.zephyr_token.clone()))
        .rate_limit(ep.zephyr_rate)
        .cancel_token(cancel.clone())
        .build()?;
    let qtest_auth = match &ep.qtest_auth {
        QtestAuth::Token(token) => Auth::Bearer(token.clone()),
        QtestAuth::Login {
            username,
            password,
            site,
        } => {
            let login = QtestLogin::new(pool, &ep.qtest_url, username, password)?;
            let login = match site {
                Some(site) => login.with_site(site),
                None => login,
            };
            Auth::Provider(Arc::new(login))
        }
    };
    let qtest_api = ApiClient::builder(pool, &ep.qtest_url)
        .auth(qtest_auth)
        .rate_limit(ep.qtest_rate)
        .cancel_token(cancel.clone())
        .build()?;
    let zephyr = ZephyrClient::new(zephyr_api, &ep.zephyr_project).with_page_size(page_size);
    let qtest = QtestClient::new(qtest_api, ep.qtest_project);
    check_projects(&zephyr, &qtest)?;
    Ok((zephyr, qtest))
}

/// Reads both services' lookup lists ([patiently](Patience::patiently): a
/// blip here would stop the run before any work) and resolves them with the
/// mapping.
pub(crate) fn catalog(
    zephyr: &ZephyrClient,
    qtest: &QtestClient,
    mapping: MappingConfig,
    patience: &Patience<'_>,
) -> Result<Catalog, MigrateError> {
    let lookups = patience.patiently(|| load_lookups(zephyr, qtest))?;
    let catalog = Catalog::new(mapping, &lookups)?;
    for problem in catalog.problems() {
        log::warn!("{problem}");
    }
    Ok(catalog)
}

/// Environment names and test plans, read with a record's patience. A list
/// Zephyr refuses or lacks leaves ids in their place (logged), never a
/// failed run: they are context, not records.
pub(crate) fn zephyr_context(
    s: &super::shared::Shared,
) -> crate::migrate::transform::ZephyrContext {
    context_of(
        s.patiently(|| s.zephyr.environments()),
        s.patiently(|| s.zephyr.test_plans()),
    )
}

/// The context from what reading its two lists gave (`verify` reads them
/// too: it expects what the migration wrote).
pub(crate) fn context_of(
    environments: crate::Result<Vec<crate::zephyr::Environment>>,
    plans: crate::Result<Vec<crate::zephyr::TestPlan>>,
) -> crate::migrate::transform::ZephyrContext {
    let warn = |what: &str, e: crate::Error| {
        log::warn!("reading {what} from Zephyr failed ({e}); ids stand in for their names");
    };
    let environments = environments.unwrap_or_else(|e| {
        warn("environments", e);
        Vec::new()
    });
    let plans = plans.unwrap_or_else(|e| {
        warn("test plans", e);
        Vec::new()
    });
    crate::migrate::transform::ZephyrContext::new(&environments, &plans)
}

/// Fails before any work when the API user may not approve test cases
/// (`GET /projects/{p}/user-profiles/current`, permission `test_case.approve`)
/// and the run needs to: to approve cases (the mapping), or to log results, since
/// qTest takes a log of an unapproved case version only from a user who may
/// approve (contract section 0), and the cases a run creates start unapproved.
/// A service that doesn't say is trusted: a refused approval or log then fails
/// its record alone.
pub(crate) fn check_approval(
    qtest: &QtestClient,
    mapping: &MappingConfig,
    logs: bool,
    patience: &Patience<'_>,
) -> Result<(), MigrateError> {
    if !mapping.approves_any() && !logs {
        return Ok(());
    }
    let profile = match patience.patiently(|| qtest.user_profile()) {
        Ok(profile) => profile,
        Err(e) if e.status() == Some(403) => None,
        Err(e) => return Err(e.into()),
    };
    match profile.and_then(|p| p.test_case).and_then(|p| p.approve) {
        Some(true) => Ok(()),
        Some(false) => Err(MigrateError::Catalog {
            message: format!(
                "the qTest API user may not approve test cases in project {}, which qTest \
                 requires both to approve a case and to log a result against an unapproved \
                 case version: grant the \"Approve\" permission for Test Cases to the user's \
                 profile in that project (qTest Manager: Administration, Users, the project's \
                 profile), or migrate without logs (--only modules,cases,cycles,runs) and with \
                 mapping.approve_approved = false and mapping.approve_executed = false",
                qtest.project_id()
            ),
        }),
        None => {
            log::warn!(
                "qTest did not say whether the API user may approve test cases; a refused \
                 approval or log will fail its record"
            );
            Ok(())
        }
    }
}
