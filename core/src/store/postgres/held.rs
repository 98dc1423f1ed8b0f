//! The connections the PostgreSQL store runs its statements on.
//!
//! sqlx's pool tests every connection it gets back with a ping (a Sync message and
//! its ReadyForQuery: one more round trip per checkout, on a spawned task that
//! competes for the CPU with the work itself). On the benchmark machine that ping
//! alone cost 4–5 % of linear latency and of throughput (docs/benchmarks.md). The
//! store keeps its own idle connections instead and trusts a connection only when it
//! knows the connection's state:
//! - a connection goes back to the idle list only through [`HeldConnection::release`],
//!   which callers reach after their last statement succeeded (a committed
//!   transaction, a fully read result);
//! - one dropped without it (an error, a cancelled future in the middle of a
//!   statement) is closed, so a half-read result or an open transaction never
//!   reaches the next caller; the server rolls back what it had open;
//! - a broken idle connection (the server restarted) fails its next statement and is
//!   closed the same way; the caller's retry opens a fresh one.
//!
//! At most `size` connections are checked out at once; a caller waits up to
//! [`ACQUIRE_TIMEOUT`] for one. The sqlx pool remains for migrations and LISTEN.

use super::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a statement waits for a free connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The idle connections and the bound on connections in use.
#[derive(Debug)]
pub(super) struct HeldConnections {
    options: PgConnectOptions,
    idle: Arc<Mutex<Vec<PgConnection>>>,
    permits: Arc<Semaphore>,
}

impl HeldConnections {
    /// Up to `size` connections to the database `options` names, opened on demand.
    pub(super) fn new(options: PgConnectOptions, size: u32) -> Self {
        Self {
            options,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(size.max(1) as usize)),
        }
    }

    /// An idle connection, or a new one when none is idle.
    pub(super) async fn acquire(&self) -> Result<HeldConnection, StoreError> {
        let permit = match tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(StoreError::Closed),
            Err(_elapsed) => return Err(StoreError::Backend(sqlx::Error::PoolTimedOut)),
        };
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => PgConnection::connect_with(&self.options).await?,
        };
        Ok(HeldConnection {
            conn: Some(conn),
            idle: self.idle.clone(),
            _permit: permit,
        })
    }

    /// Refuses further checkouts and closes the idle connections.
    pub(super) async fn close(&self) {
        self.permits.close();
        let idle: Vec<PgConnection> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

/// A checked-out connection: closed when dropped, reused after [`Self::release`].
#[derive(Debug)]
pub(super) struct HeldConnection {
    conn: Option<PgConnection>,
    idle: Arc<Mutex<Vec<PgConnection>>>,
    _permit: OwnedSemaphorePermit,
}

impl HeldConnection {
    /// Hands the connection back for reuse. Call only when its last statement
    /// completed and no transaction is open on it.
    pub(super) fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

impl Deref for HeldConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("a held connection is present until released")
    }
}

impl DerefMut for HeldConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a held connection is present until released")
    }
}
