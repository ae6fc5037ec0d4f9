//! Committing an apply, and learning whether it committed when the answer to COMMIT is lost. The server's answer
//! settles it: success, or an error of severity ERROR (a deferred constraint violated at commit, a serialization
//! failure), after which the transaction is rolled back. Without an answer — the connection broke, or the session
//! was ended by a FATAL error, which may come after the commit record was written — the target is asked on a new
//! connection by the transaction's id, read just before COMMIT: `pg_xact_status` (`txid_status` before PostgreSQL
//! 13). Only `committed` or `aborted` settles it; anything else leaves it in doubt.

use std::time::{Duration, Instant};

use tokio_postgres::error::Severity;
use tokio_postgres::Client;

use crate::error::{Error, Result};

/// How long to keep asking the target (reconnecting, or waiting while the transaction is still in progress).
const RESOLVE_WITHIN: Duration = Duration::from_secs(10);

/// A transaction's id on a target, and how to ask that server for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TransactionId {
    /// The id, 64 bits with its epoch, as text.
    pub(super) id: String,
    /// PostgreSQL 13 or later (`pg_current_xact_id`, `pg_xact_status`, `xid8`); else `txid_current`, `txid_status`.
    xid8: bool,
}

impl TransactionId {
    /// The id of `client`'s current transaction (the server assigns one now if it has none yet).
    pub(super) async fn current(client: &Client) -> Result<TransactionId> {
        let fail = |e| Error::pg("reading the apply's transaction id", e);
        let version = "SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4";
        let version: i32 = client.query_one(version, &[]).await.map_err(fail)?.get(0);
        let xid8 = version >= 130_000;
        let sql = match xid8 {
            true => "SELECT pg_catalog.pg_current_xact_id()::text",
            false => "SELECT pg_catalog.txid_current()::text",
        };
        let id: String = client.query_one(sql, &[]).await.map_err(fail)?.get(0);
        Ok(TransactionId { id, xid8 })
    }

    /// The transaction's status on the server of `client`: `committed`, `aborted` or `in progress`; `None` when it
    /// is too old for the server to know. An id the server has not reached yet is an error.
    pub(super) async fn status(&self, client: &Client) -> Result<Option<String>> {
        let sql = match self.xid8 {
            true => "SELECT pg_catalog.pg_xact_status($1::text::pg_catalog.xid8)",
            false => "SELECT pg_catalog.txid_status($1::text::pg_catalog.int8)",
        };
        let row = client
            .query_one(sql, &[&self.id])
            .await
            .map_err(|e| Error::pg("asking the target whether the apply's transaction committed", e))?;
        Ok(row.get(0))
    }
}

/// How an apply's COMMIT ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Committed {
    /// The server said it committed.
    Yes,
    /// It did not commit: why, in words.
    No(String),
    /// The answer was lost, and the target confirmed afterwards that it committed: how, in words.
    Confirmed(String),
    /// The answer was lost and the outcome could not be learned: why, in words.
    InDoubt(String),
}

/// Commits `client`'s transaction, whose id is `xid`, on the target at `url`, and says how that ended.
pub(super) async fn commit(client: &Client, xid: &TransactionId, url: &str) -> Committed {
    let error = match client.batch_execute("COMMIT").await {
        Ok(()) => return Committed::Yes,
        Err(e) => e,
    };
    // The server's primary message only: a DETAIL may quote the target's rows, and this text goes to the audit log.
    let why = super::server_message(&error);
    if let Some(db) = error.as_db_error().filter(|db| db.parsed_severity() == Some(Severity::Error)) {
        return Committed::No(format!(
            "COMMIT failed on the target: {why} (SQLSTATE {}); the transaction rolled back",
            db.code().code()
        ));
    }
    let lost = format!("the answer to COMMIT was lost ({why}); transaction {}", xid.id);
    match ask(xid, url).await {
        Ok(true) => Committed::Confirmed(format!("{lost} committed, as the target said on a new connection")),
        Ok(false) => Committed::No(format!("{lost} aborted, as the target said on a new connection")),
        Err(why) => Committed::InDoubt(format!("{lost}: {why}")),
    }
}

/// Asks the target at `url`, on new connections, whether `xid` committed (`true`) or aborted (`false`), for up to
/// [`RESOLVE_WITHIN`]; else why it could not tell.
async fn ask(xid: &TransactionId, url: &str) -> std::result::Result<bool, String> {
    let deadline = Instant::now() + RESOLVE_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match tokio::time::timeout(left, super::connect(url)).await {
            Err(_) => "connecting to the target again timed out".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(client)) => match xid.status(&client).await {
                Ok(Some(status)) if status == "committed" => return Ok(true),
                Ok(Some(status)) if status == "aborted" => return Ok(false),
                Ok(Some(status)) => format!("the target says it is {status}"),
                Ok(None) => return Err("the target no longer knows it (too old)".to_owned()),
                Err(e) => return Err(e.to_string()),
            },
        };
        if Instant::now() >= deadline {
            return Err(format!("its outcome was not learned within {} s: {last}", RESOLVE_WITHIN.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status lookup on real servers (every PostgreSQL found, and the builds of `PGSHADOW_TEST_BUILDS`): a
    /// committed, an aborted and a not yet reached transaction.
    #[tokio::test]
    async fn a_transaction_status_is_read_by_its_id() {
        let builds = std::env::var_os("PGSHADOW_TEST_BUILDS").map(std::path::PathBuf::from);
        let found = crate::postgres::discover(builds.as_deref());
        let runnable = found.iter().filter(|i| i.has("pg_ctl")).collect::<Vec<_>>();
        assert!(!runnable.is_empty(), "no PostgreSQL with pg_ctl");
        for installation in runnable {
            let server = crate::test_server::TestServer::start_with(&installation.binaries.dir, &[], false);
            statuses(&server.url("postgres")).await;
        }
    }

    async fn statuses(url: &str) {
        let client = super::super::connect(url).await.expect("connect");
        let id_of = |end: &'static str| {
            let client = &client;
            async move {
                client.batch_execute("BEGIN").await.expect("begin");
                let xid = TransactionId::current(client).await.expect("an id");
                client.batch_execute(end).await.expect("end");
                xid
            }
        };
        let committed = id_of("COMMIT").await;
        let aborted = id_of("ROLLBACK").await;
        assert_ne!(committed, aborted);
        let other = super::super::connect(url).await.expect("connect again");
        assert_eq!(committed.status(&other).await.expect("status").as_deref(), Some("committed"));
        assert_eq!(aborted.status(&other).await.expect("status").as_deref(), Some("aborted"));
        assert_eq!(ask(&committed, url).await, Ok(true));
        assert_eq!(ask(&aborted, url).await, Ok(false));
        let unknown = TransactionId { id: "4000000000".to_owned(), ..committed.clone() };
        let error = unknown.status(&other).await.expect_err("an id in the future");
        assert!(error.to_string().contains("in the future"), "{error}");
        assert!(ask(&unknown, url).await.is_err_and(|e| e.contains("in the future")));
    }
}
