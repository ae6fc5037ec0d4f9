//! Plans a keep-warm supervisor ([`crate::shadow::warm`]) runs for the runs that hand them over: each spare clone
//! gets its session opened and warmed while no run waits, and a run's plan is run and measured in it, so a warm CLI
//! run pays neither a new backend nor its cold caches. The supervisor drops the clone after the run, as after a lent
//! one; the run builds its report from the statements measured here.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::measure::Measured;
use crate::report::{CommitError, StatementReport};
use crate::shadow::warm::{Prepared, Runner, SpareInfo};
use crate::shadow::Shadow;
use crate::{measure, source, Plan, RunOptions};

/// What a run hands to the supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) plan: Plan,
}

/// What the supervisor answers: the measured statements and how the plan's final COMMIT would go, or why there are
/// none.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    statements: Option<Vec<StatementReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commit_error: Option<CommitError>,
    error: Option<String>,
}

/// The request for `plan`.
pub(crate) fn request(plan: &Plan) -> Option<String> {
    serde_json::to_string(&Request { plan: plan.clone() }).ok()
}

/// What a supervisor's answer measured.
pub(crate) fn statements(answer: &str) -> Result<Measured> {
    let failed = |message: String| Error::io("<warm cluster>", std::io::Error::other(message));
    let answer: Answer =
        serde_json::from_str(answer).map_err(|e| failed(format!("an answer it could not read: {e}")))?;
    match (answer.statements, answer.error) {
        (Some(statements), _) => Ok(Measured { statements, commit_error: answer.commit_error }),
        (None, error) => Err(failed(error.unwrap_or_else(|| "no statements".to_owned()))),
    }
}

/// Runs plans with the default plan role, as a run without `--role` or `--superuser` does.
pub(crate) struct MeasureRunner;

impl Runner for MeasureRunner {
    fn prepare(&self, shadow: Arc<Shadow>, spare: SpareInfo) -> BoxFuture<'static, Prepared> {
        Box::pin(async move {
            let database = source::clone_of(spare.template, None, &spare.database, &spare.login);
            match measure::open_session(&shadow, &database).await {
                Ok(session) => Some(session),
                Err(e) => {
                    tracing::debug!(error = %e, "no session opened ahead for a spare clone");
                    None
                }
            }
        })
    }

    fn run(
        &self,
        shadow: Arc<Shadow>,
        spare: SpareInfo,
        prepared: Prepared,
        request: String,
    ) -> BoxFuture<'static, (String, bool)> {
        Box::pin(async move {
            let database = source::clone_of(spare.template, None, &spare.database, &spare.login);
            let outcome = match serde_json::from_str::<Request>(&request) {
                Ok(Request { plan }) => {
                    let carried = measure::Carried { session: prepared, baseline: measure::stored_baseline(&database) };
                    measure::run_plan_in(&shadow, &database, &plan, &RunOptions::default(), carried)
                        .await
                        .map(|(measured, _)| measured)
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("a request it could not read: {e}")),
            };
            let clean = outcome.is_ok() && !database.spoiled.load(Ordering::SeqCst);
            let answer = match outcome {
                Ok(measured) => {
                    Answer { statements: Some(measured.statements), commit_error: measured.commit_error, error: None }
                }
                Err(error) => Answer { statements: None, commit_error: None, error: Some(error) },
            };
            (serde_json::to_string(&answer).unwrap_or_default(), clean)
        })
    }
}
