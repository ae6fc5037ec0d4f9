//! A connection to one database of a shadow, and the one way statements of a script are sent to it.

use futures_util::{pin_mut, SinkExt, TryStreamExt};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::Endpoint;
use crate::plan::RawStatement;

/// One connection, driven by a spawned task that ends when the session is dropped.
pub(crate) struct Session {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
    /// Set when a `COPY ... FROM STDIN` was refused before it started: the driver then loses step with the server
    /// (it sends a second Sync, rust-postgres/rust-postgres#789), so the connection must not be used again.
    broken: std::sync::atomic::AtomicBool,
    /// Queries prepared once for the connection, with their text ([`Session::prepared`]): a few at most.
    prepared: std::sync::Mutex<Vec<(String, Statement)>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("broken", &self.is_broken()).finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to the shadow as `role`. Every connection logs in as the role it acts as: the
    /// plan's connection never starts as a superuser that could `RESET ROLE` back. With `pinned`, the session's
    /// `search_path` is `pg_catalog, pg_temp` from the start, so that nothing a source created (a function or operator
    /// in `public` that matches better than the built-in one) can stand in for what a superuser session calls.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        role: &str,
        database: &str,
        pinned: bool,
    ) -> Result<Session, tokio_postgres::Error> {
        let mut config = endpoint.base.clone();
        config.user(role).dbname(database);
        if pinned {
            let options = config.get_options().map_or_else(String::new, |o| format!("{o} "));
            config.options(format!("{options}-c search_path=pg_catalog,pg_temp"));
        }
        if let Some(password) = endpoint.password(role) {
            config.password(password);
        }
        let (client, driver) = crate::tls::connect(&config, endpoint.tls.as_ref(), "shadow").await?;
        Ok(Session { client, driver, broken: Default::default(), prepared: Default::default() })
    }

    /// Whether the connection is out of step with the server and must be replaced (see `broken`).
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The driver's client, for typed queries.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// `sql` prepared on this connection, the first time it is asked for, and kept for the connection's life: parsed
    /// and planned once, not at every call. Only for a session no plan runs in (a superuser's that puts a clone back):
    /// a plan could `DEALLOCATE` a named statement of its own session and `PREPARE` another under its name, and so
    /// answer the next query pgshadow sends; a plan's session sends its queries unnamed ([`Client::query_typed`]).
    pub(crate) async fn prepared(&self, sql: &str, types: &[Type]) -> Result<Statement, tokio_postgres::Error> {
        let known = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(s, _)| s == sql).cloned();
        if let Some((_, statement)) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).push((sql.to_owned(), statement.clone()));
        Ok(statement)
    }

    /// Runs one statement of a script and returns the row count of its command tag: [`Session::ready`], then
    /// [`Session::run_ready`].
    pub(crate) async fn run(&self, statement: &RawStatement) -> Result<u64, tokio_postgres::Error> {
        let ready = self.ready(statement).await?;
        self.run_ready(statement, ready).await
    }

    /// Makes a statement of a script ready to run: prepares it (a syntax error is its error), unless it is a COPY.
    /// Preparing learns the types of its result, and the driver looks up one it has not seen while nothing else
    /// waits on the connection: a statement sent with no preparing (`query_typed`) looks them up in the middle of its
    /// rows, and with enough rows the driver waits on itself (rust-postgres/rust-postgres#1348).
    pub(crate) async fn ready(&self, statement: &RawStatement) -> Result<Ready, tokio_postgres::Error> {
        match copies(statement) {
            true => Ok(Ready::Copy),
            false => Ok(Ready::Prepared(self.client.prepare(&statement.text).await?)),
        }
    }

    /// Runs a statement [`Session::ready`] made ready and returns the row count of its command tag. Result rows are
    /// counted as they stream in, never kept. A `COPY ... FROM STDIN` statement gets its data.
    ///
    /// The extended query protocol is used on purpose: it refuses a text holding more than one statement, so a
    /// statement can never smuggle a second one (a `COMMIT`, say) past the splitter and the classifier.
    pub(crate) async fn run_ready(&self, statement: &RawStatement, ready: Ready) -> Result<u64, tokio_postgres::Error> {
        let prepared = match ready {
            Ready::Prepared(prepared) => prepared,
            Ready::Copy => return self.copy(statement).await,
        };
        let no_params: [&(dyn ToSql + Sync); 0] = [];
        let stream = self.client.query_raw(&prepared, no_params).await?;
        pin_mut!(stream);
        let mut returned = 0;
        while stream.try_next().await?.is_some() {
            returned += 1;
        }
        Ok(stream.rows_affected().unwrap_or(returned))
    }

    /// Runs a COPY: its data goes to the server, or its rows are counted as they come.
    async fn copy(&self, statement: &RawStatement) -> Result<u64, tokio_postgres::Error> {
        if let Some(data) = &statement.copy_data {
            let sink = match self.client.copy_in::<_, bytes::Bytes>(statement.text.as_str()).await {
                Ok(sink) => sink,
                Err(e) => {
                    self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            };
            pin_mut!(sink);
            sink.send(bytes::Bytes::copy_from_slice(data.as_bytes())).await?;
            return sink.finish().await;
        }
        // Postgres sends one CopyData message per row.
        let stream = self.client.copy_out(statement.text.as_str()).await?;
        pin_mut!(stream);
        let mut rows = 0;
        while stream.try_next().await?.is_some() {
            rows += 1;
        }
        Ok(rows)
    }
}

/// A statement of a script made ready to run ([`Session::ready`]).
pub(crate) enum Ready {
    /// A COPY, whose data or rows follow its request: prepared as it runs.
    Copy,
    /// Prepared, the types of its result known.
    Prepared(tokio_postgres::Statement),
}

/// Whether a statement is a COPY that [`Session::run_ready`] runs with the COPY protocol: one with data from the
/// script, or one `TO STDOUT`.
fn copies(statement: &RawStatement) -> bool {
    statement.copy_data.is_some() || copies_to_stdout(&statement.text)
}

/// `COPY ... TO STDOUT`: the words `TO STDOUT` after a leading `COPY`.
fn copies_to_stdout(text: &str) -> bool {
    let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
    words.first().is_some_and(|w| w == "copy")
        && words.windows(2).any(|w| w[0] == "to" && w[1].trim_end_matches(';') == "stdout")
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::copies_to_stdout;

    #[test]
    fn copy_to_stdout_is_recognised() {
        assert!(copies_to_stdout("COPY t TO STDOUT"));
        assert!(copies_to_stdout("copy (select 1) to\n  stdout with (format csv)"));
        assert!(!copies_to_stdout("COPY t FROM STDIN"));
        assert!(!copies_to_stdout("COPY t TO '/tmp/file'"));
        assert!(!copies_to_stdout("SELECT 'copy to stdout'"));
    }
}
