//! SQLite backend of the item store: the embedded default of local mode, one durable file with the same
//! semantics as the DynamoDB backend (the conformance suite runs against both).
//!
//! Invariants:
//! - several processes may share one file: WAL mode, a busy timeout, and every write (conditional or not)
//!   runs inside one `BEGIN IMMEDIATE` transaction, so a condition is checked and the write applied under
//!   the same write lock;
//! - an item whose `ttl` (epoch seconds) is at or before the clock's current second is absent to every read
//!   and every condition, exactly like the DynamoDB backend's expressions; expired rows stay in the file
//!   until they are overwritten or deleted, or the retention sweep removes them (`remove_expired`);
//! - the schema version lives in `PRAGMA user_version`; migrations run once, under the write lock;
//! - reads never wait for a write or a checkpoint: each runs inline on the calling thread (a statement
//!   takes microseconds; handing it to another thread would cost two thread wake-ups, ~100 µs on a
//!   2-vCPU VM) on a connection of its own from a pool, and WAL gives it the last commit while a write
//!   or a checkpoint goes on;
//! - writes go to one writer thread that owns the write connection: it takes every write queued meanwhile
//!   and applies them in one transaction (a write whose condition fails, or that fails, leaves nothing
//!   and does not touch the others: see `commit_group`), and answers each once the commit is done. So
//!   a caller never holds a thread while the write lock is busy (a restarting checkpoint, another
//!   process), concurrent requests share one commit instead of queueing behind a mutex, and SQLite's
//!   work runs on a core of its own. The order of writes is the order they were queued in.
//!
//! `synchronous = NORMAL` in WAL mode: a commit survives a crash of the process; a power loss may lose the
//! last commits but never corrupts the file. That keeps a write at microseconds, which local mode needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::cursor::CursorPosition;
use super::{
    Condition, Cursor, GroupFailed, Index, Item, ItemKey, ItemStore, KeyRange, Order, Page, Query,
    Removed, StoreError, Value, WriteOp, checks,
};
use crate::clock::{Clock, Timestamp};

/// How long a writer waits for another process's write lock before answering a retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Past this many WAL pages (256 MiB) the WAL file is restarted: under a steady stream of writes a
/// passive checkpoint never finds the WAL fully copied at the moment a writer begins, so the file would
/// only grow. The checkpointer sees it and the writer thread restarts it between two groups (a
/// checkpoint that waits for readers to leave the WAL): the checkpointer itself cannot, as a restart
/// needs the write lock, and under load the writer hands it from one group to the next without a gap
/// (the WAL grew to 700 MiB in a 15 s load run). The restart copies what the checkpointer has not copied
/// yet and syncs it, holding the next group for that long — the only moment a writer waits for a
/// checkpoint. A growing WAL costs more: each write into a new block of the file has the kernel zero
/// the rest of the block first (17 % of the writer thread under load). Not smaller: webhook batches
/// back to back ran ~13 % faster than with a restart every 16 MiB (5 paired runs). 256 MiB rather than
/// 64: a restart held the writer ~25 ms on average and up to ~180 ms in 40–60 s runs at 10 messages a
/// body, whatever the WAL's size (not waiting for readers: the busy handler was not called; and with
/// next to nothing left to copy after the checkpointer's catch-up, so its `fsync`s), and at 64 MiB
/// there were ~5 a second across the two stores; at 256 MiB a quarter as many. Paired 20 s runs of the
/// load bench (after the reply hand-off): p99 51–61 ms against 64–70 ms at 10 messages a body,
/// 9.3–10.3 ms against 13.7–16.1 ms at 1. The file stays at the size it reached (a restart reuses it
/// from the start): about 256 MiB after a long burst of writes, and as much again for the key store.
const RESTART_WAL_PAGES: i64 = 65_536;

/// Checkpoints begin at least this far apart. Each copies every page committed since the one before and
/// then fsyncs the database file, so a page that several commits changed meanwhile (inner index pages,
/// the last table and index pages) is copied and synced once. Webhook batches back to back on 20 000 and
/// 100 000 leads: ~25 % more events per CPU-second than checkpointing after every commit, and events/s
/// the same or better (10, 30, 50, 60 and 100 ms measured; the gain levels off past ~50 ms; with the
/// WAL restart at 16 MiB, 50 ms had cost ~10 % of events/s). Commits stay durable in the WAL meanwhile;
/// only the copy into the database file waits.
const CHECKPOINT_SPACING: Duration = Duration::from_millis(50);

/// The writer checkpoints by itself only past this many WAL pages (1 GiB): a backstop for a
/// checkpointer that cannot keep up (e.g. its checkpoints keep failing), never the normal path.
const WRITER_CHECKPOINT_PAGES: i64 = 262_144;

/// The writer's page cache between transactions (SQLite's default is 2 MiB): the key index's inner pages
/// and the hot ends of the table and of the time-ordered indexes. Not larger: a commit after any page
/// split scans SQLite's whole page-cache hash (the split moves a page through a temporary page number
/// far past the file's end), work that grows with the cache. With 16 MiB it took 9 % of the writer
/// thread under the load bench at 10 messages a body (`pcache1TruncateUnsafe` under `perf record`), with
/// 4 MiB 6 %, at the same events/s (three rounds of alternating 10 s runs, within the VM's noise) and
/// ~30 MiB less RSS. The pages a transaction dirties stay in memory up to [`SPILL_KIB`] whatever this
/// size.
const PAGE_CACHE_KIB: i64 = 4 * 1024;

/// SQLite's default page size, which the store keeps (1, 2 and 8 KiB measured no better).
const PAGE_KIB: i64 = 4;

/// How many KiB of pages a write transaction holds before SQLite spills dirty pages into the WAL
/// mid-transaction (which writes a page again if it changes again before the commit): a group of writes
/// under load dirties a few MiB; a migration or a large sweep may dirty more, and spills past this.
const SPILL_KIB: i64 = 16 * 1024;

/// The schema, one migration per `user_version` step. Never edit a shipped step; append a new one.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        t TEXT NOT NULL,
        v INTEGER,
        ttl INTEGER,
        gsi1pk TEXT,
        gsi1sk TEXT,
        attrs BLOB NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk)
        WHERE gsi1pk IS NOT NULL;",
    // 2: rows in insertion order (a rowid table), found by a unique index on the key. Keys are hashes,
    // so a table clustered on them put each new item on a random leaf of ~8 whole items and split it
    // every few inserts (~15 WAL pages per webhook event). Appended rows share the last page and the key
    // index holds ~50 entries per leaf: ~9 pages per event, measured by the webhook benchmark.
    "CREATE TABLE items_by_row (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        t TEXT NOT NULL,
        v INTEGER,
        ttl INTEGER,
        gsi1pk TEXT,
        gsi1sk TEXT,
        attrs BLOB NOT NULL
    );
    INSERT INTO items_by_row (pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs)
        SELECT pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs FROM items;
    DROP TABLE items;
    ALTER TABLE items_by_row RENAME TO items;
    CREATE UNIQUE INDEX items_key ON items (pk, sk);
    CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;",
    // 3: the retention sweep finds expired rows by their `ttl` without reading the whole table.
    "CREATE INDEX items_ttl ON items (ttl) WHERE ttl IS NOT NULL;",
];

/// The retention sweep's deletion: the oldest expired rows first, through `items_ttl`.
const REMOVE_EXPIRED: &str = "DELETE FROM items WHERE rowid IN (
        SELECT rowid FROM items WHERE ttl IS NOT NULL AND ttl <= ?1 ORDER BY ttl LIMIT ?2)";

/// Why the SQLite backend failed, when SQLite itself did not say (kept as the error's source).
#[derive(Debug, thiserror::Error)]
enum LocalError {
    #[error("the database schema is version {found}; this build knows versions up to {known}")]
    SchemaTooNew { found: i64, known: usize },
    #[error("journal mode is {0:?}, not WAL")]
    NotWal(String),
    #[error("the store's checkpoint or writer thread could not start")]
    Thread(#[source] std::io::Error),
    #[error("the store's writer thread has stopped")]
    WriterGone,
    #[error("the write transaction could not be committed")]
    CommitFailed,
}

fn local(operation: &'static str, error: LocalError) -> StoreError {
    StoreError::Backend {
        operation,
        retryable: false,
        source: Box::new(error),
    }
}

/// Maps a SQLite error; a busy or locked database (another process holding the write lock past the
/// timeout) may succeed when retried.
fn sql(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| {
        let retryable = matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        StoreError::Backend {
            operation,
            retryable,
            source: Box::new(error),
        }
    }
}

/// The item store in one SQLite file.
pub struct SqliteStore {
    /// Queues writes for the writer thread; dropping it stops the thread (after a last checkpoint).
    writer: mpsc::Sender<Job>,
    readers: Readers,
    clock: Arc<dyn Clock>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens a connection with the store's settings: the busy timeout first (switching to WAL and migrating
/// may wait for another process), WAL, `synchronous = NORMAL`.
fn connect(path: &Path, operation: &'static str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(sql(operation))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(operation))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql(operation))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(local(operation, LocalError::NotWal(mode)));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql(operation))?;
    // The query planner's stability guarantee: a statement's plan never depends on the values bound to
    // it. Without it, the bundled SQLite (built with STAT4) marks a statement whose plan could depend on
    // a bound value (a `LIMIT ?`, a range bound) to be prepared again each time that value is bound:
    // every query was parsed and planned anew (6 % of the request threads under load). The plans are the
    // same either way: nothing here runs ANALYZE, so there are no statistics to choose by.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(sql(operation))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates its schema.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        const OP: &str = "open";
        let mut conn = connect(path, OP)?;
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(sql(OP))?;
        // Negative: KiB rather than pages.
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            .map_err(sql(OP))?;
        // In pages. SQLite also reads the number as a boolean byte (4096: 0, off), so spilling is
        // turned on again after.
        conn.pragma_update(None, "cache_spill", SPILL_KIB / PAGE_KIB)
            .map_err(sql(OP))?;
        // "ON", not `true`: rusqlite writes that as 1, which SQLite takes as a spill size of 1 page.
        conn.pragma_update(None, "cache_spill", "ON")
            .map_err(sql(OP))?;
        // Only this connection deletes. With secure_delete, a deleted row's bytes are overwritten with
        // zeros in its page, so what an erasure or the sweep removed leaves the main file at the next
        // checkpoint instead of lingering in free space until reused. The WAL still holds the page
        // images written before the deletion until it is restarted and overwritten.
        conn.pragma_update(None, "secure_delete", true)
            .map_err(sql(OP))?;
        // When a write of a group broke, the group runs again with each write under a savepoint (see
        // `commit_group`), and SQLite journals every page a savepoint changes first (to undo it) in a
        // statement journal: by default a temporary file once it passes 64 KiB, which under load took
        // twice the writes of the WAL itself (`strace` of the writer: 2 pages to the journal files for
        // each page to the WAL). In memory it is a copy, not a system call; it holds one savepoint's
        // pages at a time.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql(OP))?;
        migrate(&mut conn)?;
        let checkpointer = Checkpointer::start(path)?;
        let (writer, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("qchat-sqlite-writer".to_owned())
            .spawn(move || write_loop(conn, &jobs, &checkpointer))
            .map_err(|e| local(OP, LocalError::Thread(e)))?;
        Ok(Self {
            writer,
            readers: Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            },
            clock,
            path: path.to_owned(),
        })
    }

    /// Runs `work` on the writer thread, inside the next group's transaction, and answers once that
    /// transaction committed. An error from `work` undoes its writes only (see [`commit_group`]), and
    /// `work` may run twice, the first run undone: it must answer a condition failure only before it
    /// writes anything.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(work)?.await.map_err(|_| writer_gone())?
    }

    /// Queues `work` for the writer thread ([`Self::write`]); its answer comes on the receiver.
    fn queue<T: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let unit = Pending {
            work,
            result: None,
            reply,
        };
        self.writer
            .send(Job::Unit(Box::new(unit)))
            .map_err(|_| writer_gone())?;
        Ok(answer)
    }

    /// Runs `work` with a reader connection, inline (see the module's invariants).
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.read(work)
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().secs()
    }
}

fn writer_gone() -> StoreError {
    local("write", LocalError::WriterGone)
}

/// Reader connections not in use. One is opened when none is free, so there are as many as reads ever ran
/// at once (at most one per thread that calls the store), and at most [`MAX_IDLE_READERS`] are kept.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// More than the threads of a tokio runtime that read at once, on the 2-core machines qchat runs on.
const MAX_IDLE_READERS: usize = 16;

impl Readers {
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let free = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match free {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path, "read")?;
                // A reader must never write, whatever a bug asks of it.
                conn.pragma_update(None, "query_only", true)
                    .map_err(sql("read"))?;
                conn
            }
        };
        let result = work(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// Work for the writer thread.
enum Job {
    /// A write: applied inside a group's transaction.
    Unit(Box<dyn Unit>),
    /// Runs on its own, outside any group (a migration opens its own transaction).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// What applying a queued write did to the group's open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// It wrote what it had to.
    Done,
    /// Its condition did not hold, judged before it wrote anything: it wrote nothing.
    Refused,
    /// It failed or panicked, perhaps part-way through its writes.
    Broken,
}

/// A queued write, type-erased.
trait Unit: Send {
    /// Runs the write inside the group's open transaction. It may run a second time, in a fresh
    /// transaction under a savepoint of its own, when a write of its group broke (see [`commit_group`]).
    fn apply(&mut self, conn: &Connection) -> Applied;
    /// Answers the caller once the group's commit is known (`Some`: the commit failed).
    fn finish(self: Box<Self>, commit_failed: Option<StoreError>);
}

struct Pending<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Unit for Pending<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn apply(&mut self, conn: &Connection) -> Applied {
        let result = (self.work)(conn);
        let applied = match &result {
            Ok(_) => Applied::Done,
            Err(StoreError::ConditionFailed | StoreError::TransactionConditionFailed { .. }) => {
                Applied::Refused
            }
            Err(_) => Applied::Broken,
        };
        self.result = Some(result);
        applied
    }

    fn finish(self: Box<Self>, commit_failed: Option<StoreError>) {
        let result = match (self.result, commit_failed) {
            // A write that failed by itself wrote nothing: its own error says why.
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(_)), Some(commit)) => Err(commit),
            (Some(Ok(value)), None) => Ok(value),
            (None, commit) => Err(commit.unwrap_or_else(writer_gone)),
        };
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = self.reply.send(result);
    }
}

/// The most writes one transaction takes: a group's callers wait for its whole commit. Under load the
/// writer is the busiest thread, and each commit rewrites the pages its writes share (the ends of the
/// table and of its time-ordered indexes, their parents) once: the load bench at 10 messages a body
/// with the reply sender at 256 at once (`./infra/load.sh`, 2 vCPUs) had a p999 of 400–900 ms with 64
/// and about 150 ms with 256, at 5 400–6 800 events/s against ~5 000.
const MAX_GROUP: usize = 256;

/// The writer thread: takes the next write and every write queued behind it (up to [`MAX_GROUP`]),
/// commits them together, answers, nudges the checkpointer. Ends when the store is dropped.
fn write_loop(mut conn: Connection, jobs: &mpsc::Receiver<Job>, checkpointer: &Checkpointer) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(mpsc::RecvError) => return,
            },
        };
        match job {
            Job::Alone(work) => work(&mut conn),
            Job::Unit(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Unit(unit)) => group.push(unit),
                        Ok(alone) => {
                            next = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, group);
            }
        }
        checkpointer.nudge();
        if checkpointer.restart_due() {
            restart_wal(&conn);
        }
    }
}

/// Copies the rest of the WAL into the database file and starts the WAL again from its beginning (see
/// [`RESTART_WAL_PAGES`]). A failure is logged; the checkpointer asks again.
fn restart_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "SQLite WAL restart failed; retrying later");
    }
}

/// Commits `group` in one write transaction, then answers every write.
///
/// First without savepoints: a write runs its reads and checks its conditions before it writes, so one
/// that is refused wrote nothing, and the others need no protection from it. A savepoint costs two
/// statements and a copy of every page the write then changes (SQLite's statement journal, to undo
/// it): 13 % of the writer thread under the load bench (`perf record`). Only when a write breaks (an
/// SQLite error or a panic, perhaps after some of its writes) is that transaction rolled back and the
/// whole group run again, each write under a savepoint of its own, so the broken one is undone alone and
/// the others still commit.
fn commit_group(conn: &mut Connection, mut group: Vec<Box<dyn Unit>>) {
    let outcome = match commit_together(conn, &mut group) {
        Ok(true) => Ok(()),
        Ok(false) => commit_each_undoable(conn, &mut group),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => group.into_iter().for_each(|unit| unit.finish(None)),
        Err(error) => {
            let retryable = error.is_retryable();
            tracing::warn!(error = %error, writes = group.len(), "SQLite group commit failed");
            for unit in group {
                unit.finish(Some(StoreError::Backend {
                    operation: "commit",
                    retryable,
                    source: Box::new(LocalError::CommitFailed),
                }));
            }
        }
    }
}

/// Applies `unit`; a panic counts as [`Applied::Broken`]. A panicking write must not take the writer
/// thread (and every later write) with it: its caller hears that the write failed.
fn apply_caught(unit: &mut Box<dyn Unit>, conn: &Connection) -> Applied {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unit.apply(conn)))
        .unwrap_or(Applied::Broken)
}

/// Every write of `group` in one transaction, no savepoints: `Ok(true)` once committed, `Ok(false)` if a
/// write broke (the transaction is rolled back as it is dropped: nothing of the group stands).
fn commit_together(conn: &mut Connection, group: &mut [Box<dyn Unit>]) -> Result<bool, StoreError> {
    const OP: &str = "commit";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(OP))?;
    for unit in group.iter_mut() {
        if apply_caught(unit, &tx) == Applied::Broken {
            return Ok(false);
        }
    }
    tx.commit().map_err(sql(OP))?;
    Ok(true)
}

/// Every write of `group` in one transaction, each under a savepoint of its own: a write that is refused
/// or breaks leaves nothing and does not touch the others.
fn commit_each_undoable(
    conn: &mut Connection,
    group: &mut [Box<dyn Unit>],
) -> Result<(), StoreError> {
    const OP: &str = "commit";
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(OP))?;
    for unit in group.iter_mut() {
        let savepoint = tx.savepoint().map_err(sql(OP))?;
        if apply_caught(unit, &savepoint) == Applied::Done {
            savepoint.commit().map_err(sql(OP))?;
        }
        // Else dropped: rolled back.
    }
    tx.commit().map_err(sql(OP))
}

/// Copies committed WAL frames into the database file on a thread of its own, with its own connection,
/// so that no request pays for a checkpoint. (SQLite's default runs one inside the commit that crosses
/// 1 000 WAL pages: two fsyncs and a copy of every page, measured at a third of a webhook event's time.)
/// Woken by a committed write, at most once per [`CHECKPOINT_SPACING`]; a PASSIVE checkpoint never waits
/// for, nor blocks, a writer or a reader. Idle, the thread sleeps.
struct Checkpointer {
    /// A nudge after each write; dropping it makes the thread checkpoint once more and exit.
    wake: mpsc::SyncSender<()>,
    /// Set by the thread when the WAL has grown past [`RESTART_WAL_PAGES`], for the writer.
    restart: Arc<AtomicBool>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        const OP: &str = "open";
        let conn = Connection::open(path).map_err(sql(OP))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(OP))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(OP))?;
        // One pending nudge is enough: the checkpoint that follows copies every commit before it.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let restart = Arc::new(AtomicBool::new(false));
        let wanted = restart.clone();
        std::thread::Builder::new()
            .name("qchat-sqlite-checkpoint".to_owned())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let began = Instant::now();
                    if checkpoint(&conn) {
                        wanted.store(true, Ordering::Relaxed);
                    }
                    // Commits made meanwhile wait for the next checkpoint, which copies them together.
                    if let Some(rest) = CHECKPOINT_SPACING.checked_sub(began.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                checkpoint(&conn);
            })
            .map_err(|e| local(OP, LocalError::Thread(e)))?;
        Ok(Self { wake, restart })
    }

    /// Whether the WAL should be restarted now (once per time the thread asked).
    fn restart_due(&self) -> bool {
        self.restart.swap(false, Ordering::Relaxed)
    }

    /// Tells the thread that a write committed.
    fn nudge(&self) {
        // Full: a checkpoint is already due. Disconnected: cannot happen while the store lives.
        let _ = self.wake.try_send(());
    }
}

/// Before it asks the writer for a restart, the checkpointer copies back to back until a pass copies
/// fewer than this many pages, or no fewer than three quarters of the pass before (what is left is not
/// shrinking: the writer commits as fast as the checkpointer copies), at most [`CATCH_UP_PASSES`]
/// passes. Each pass copies what was committed during the one before, so what is left shrinks; the
/// restart then copies and syncs only that rest while every write waits (an `fsync` of a few hundred
/// random database pages takes ~5 ms on the test machine's disk, of 2 000 ~20 ms). Load bench at 10
/// messages a body: restarts of 16–18 ms on average against ~28 ms when the restart followed a single
/// pass. Without the second stop, a writer committing 100-event batches back to back (the webhook
/// bench) paid ~25 % more CPU per event for passes that kept copying the same hot pages.
const CATCH_UP_PAGES: i64 = 256;

/// See [`CATCH_UP_PAGES`].
const CATCH_UP_PASSES: usize = 10;

/// What a passive checkpoint reports: the WAL's pages, and how many of them are now copied (both -1
/// when another connection was checkpointing).
struct Progress {
    wal_pages: i64,
    copied: i64,
}

fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<Progress> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Progress {
            wal_pages: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

/// One passive checkpoint; whether the WAL has grown past [`RESTART_WAL_PAGES`] (then the writer
/// restarts it, once this thread has caught up: see [`CATCH_UP_PAGES`]). A failure (e.g. a full disk)
/// is retried after the next write; the WAL keeps every commit meanwhile.
fn checkpoint(conn: &Connection) -> bool {
    match passive_checkpoint(conn) {
        Ok(progress) if progress.wal_pages > RESTART_WAL_PAGES => {
            let mut copied = progress.copied;
            let mut last_pass = i64::MAX;
            for _ in 0..CATCH_UP_PASSES {
                let Ok(pass) = passive_checkpoint(conn) else {
                    break;
                };
                let this_pass = pass.copied - copied;
                copied = pass.copied;
                if this_pass < CATCH_UP_PAGES || this_pass >= last_pass / 4 * 3 {
                    break;
                }
                last_pass = this_pass;
            }
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying after the next write");
            false
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    const OP: &str = "migrate";
    let known = MIGRATIONS.len();
    let version = |c: &Connection| -> Result<i64, StoreError> {
        c.pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql(OP))
    };
    let current = version(conn)?;
    if usize::try_from(current).is_ok_and(|v| v == known) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(OP))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current = version(&tx)?;
    let Ok(done) = usize::try_from(current) else {
        return Err(local(
            OP,
            LocalError::SchemaTooNew {
                found: current,
                known,
            },
        ));
    };
    if done > known {
        return Err(local(
            OP,
            LocalError::SchemaTooNew {
                found: current,
                known,
            },
        ));
    }
    for step in &MIGRATIONS[done..] {
        tx.execute_batch(step).map_err(sql(OP))?;
    }
    tx.pragma_update(None, "user_version", known as i64)
        .map_err(sql(OP))?;
    tx.commit().map_err(sql(OP))
}

/// The version of the live item at `key` (`Some(None)`: live without a version), or `None` if absent.
fn live_version(
    conn: &Connection,
    key: &ItemKey,
    now: i64,
    operation: &'static str,
) -> Result<Option<Option<i64>>, StoreError> {
    conn.prepare_cached(
        "SELECT v FROM items WHERE pk = ?1 AND sk = ?2 AND (ttl IS NULL OR ttl > ?3)",
    )
    .and_then(|mut stmt| {
        stmt.query_row(rusqlite::params![key.pk, key.sk, now], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()
    })
    .map_err(sql(operation))
}

fn holds(
    conn: &Connection,
    key: &ItemKey,
    condition: Condition,
    now: i64,
    operation: &'static str,
) -> Result<bool, StoreError> {
    if condition == Condition::Always {
        return Ok(true);
    }
    let live = live_version(conn, key, now, operation)?;
    Ok(match condition {
        Condition::Always => true,
        Condition::NotExists => live.is_none(),
        Condition::Exists => live.is_some(),
        Condition::VersionIs(expected) => {
            matches!(live, Some(Some(v)) if i64::try_from(expected).is_ok_and(|e| e == v))
        }
    })
}

/// The index of the first operation of a transaction whose condition does not hold, judged against the
/// state before any of them is applied (as DynamoDB does; the keys are distinct, so checking all first
/// and then writing is the same thing).
fn failing_condition(
    conn: &Connection,
    ops: &[ReadyOp],
    now: i64,
    operation: &'static str,
) -> Result<Option<usize>, StoreError> {
    for (index, op) in ops.iter().enumerate() {
        if !holds(conn, op.key(), op.condition(), now, operation)? {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// The columns of an item's row that take work to make, made on the caller's thread before the write is
/// queued: an item that cannot be stored is refused before the writer sees it, so a queued write fails
/// only if SQLite does, and the writer thread (the busiest under load) only binds them.
struct Encoded {
    version: Option<i64>,
    ttl: Option<i64>,
    attrs: Vec<u8>,
}

impl Encoded {
    fn of(item: &Item) -> Result<Self, StoreError> {
        Ok(Self {
            version: item
                .version()
                .map(i64::try_from)
                .transpose()
                .map_err(|_| StoreError::InvalidRequest("version out of range"))?,
            ttl: item.expires().map(Timestamp::secs),
            attrs: codec::encode(item.attributes())?,
        })
    }
}

/// A [`WriteOp`] ready for the writer thread: a put carries its row's [`Encoded`] columns.
enum ReadyOp {
    Put {
        item: Item,
        row: Encoded,
        condition: Condition,
    },
    /// A delete or a check.
    Other(WriteOp),
}

impl ReadyOp {
    fn all(ops: Vec<WriteOp>) -> Result<Vec<Self>, StoreError> {
        ops.into_iter()
            .map(|op| match op {
                WriteOp::Put { item, condition } => Ok(Self::Put {
                    row: Encoded::of(&item)?,
                    item,
                    condition,
                }),
                other => Ok(Self::Other(other)),
            })
            .collect()
    }

    fn key(&self) -> &ItemKey {
        match self {
            Self::Put { item, .. } => item.key(),
            Self::Other(op) => op.key(),
        }
    }

    fn condition(&self) -> Condition {
        match self {
            Self::Put { condition, .. } => *condition,
            Self::Other(op) => op.condition(),
        }
    }
}

/// Writes a transaction's operations whose conditions were found to hold.
fn apply(conn: &Connection, ops: &[ReadyOp], operation: &'static str) -> Result<(), StoreError> {
    for op in ops {
        match op {
            ReadyOp::Put { item, row, .. } => write_item(conn, item, row, operation)?,
            ReadyOp::Other(WriteOp::Delete { key, .. }) => delete_row(conn, key, operation)?,
            ReadyOp::Other(WriteOp::Check { .. }) => {}
            // `ReadyOp::all` makes every put a `ReadyOp::Put`; were one not, it is still written.
            ReadyOp::Other(WriteOp::Put { item, .. }) => {
                write_item(conn, item, &Encoded::of(item)?, operation)?;
            }
        }
    }
    Ok(())
}

fn write_item(
    conn: &Connection,
    item: &Item,
    row: &Encoded,
    operation: &'static str,
) -> Result<(), StoreError> {
    let key = item.key();
    let (gpk, gsk) = item.gsi1().unzip();
    // An upsert, not `INSERT OR REPLACE`: replacing deletes the row and appends a new one, which
    // rewrites the old row's page, the table's last page and every index entry of the row; an update
    // in place leaves the key index alone and moves only the index entries whose columns changed.
    conn.prepare_cached(
        "INSERT INTO items (pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (pk, sk) DO UPDATE SET t = excluded.t, v = excluded.v, ttl = excluded.ttl,
             gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk, attrs = excluded.attrs",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            key.pk,
            key.sk,
            item.item_type().name,
            row.version,
            row.ttl,
            gpk,
            gsk,
            row.attrs
        ])
    })
    .map_err(sql(operation))?;
    Ok(())
}

fn delete_row(conn: &Connection, key: &ItemKey, operation: &'static str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut stmt| stmt.execute(rusqlite::params![key.pk, key.sk]))
        .map_err(sql(operation))?;
    Ok(())
}

const COLUMNS: &str = "pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs";

/// The live row at `key` (absent once its `ttl` is at or before `now_secs`).
fn read_live(
    conn: &Connection,
    key: &ItemKey,
    now_secs: i64,
) -> rusqlite::Result<Option<StoredRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM items
             WHERE pk = ?1 AND sk = ?2 AND (ttl IS NULL OR ttl > ?3)"
    ))?
    .query_row(rusqlite::params![key.pk, key.sk, now_secs], read_row)
    .optional()
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        pk: row.get(0)?,
        sk: row.get(1)?,
        t: row.get(2)?,
        v: row.get(3)?,
        ttl: row.get(4)?,
        gsi1pk: row.get(5)?,
        gsi1sk: row.get(6)?,
        attrs: row.get(7)?,
    })
}

struct StoredRow {
    pk: String,
    sk: String,
    t: String,
    v: Option<i64>,
    ttl: Option<i64>,
    gsi1pk: Option<String>,
    gsi1sk: Option<String>,
    attrs: Vec<u8>,
}

impl StoredRow {
    fn into_item(self) -> Result<Item, StoreError> {
        let version = self
            .v
            .map(u64::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("negative version"))?;
        let gsi1 = match (self.gsi1pk, self.gsi1sk) {
            (Some(p), Some(s)) => Some((p, s)),
            (None, None) => None,
            _ => return Err(StoreError::Corrupt("one index key without the other")),
        };
        Ok(Item::from_stored(
            &self.t,
            ItemKey::new(self.pk, self.sk),
            version,
            self.ttl.map(Timestamp::from_secs),
            gsi1,
            codec::decode(&self.attrs)?,
        )?)
    }
}

/// One end of the sort-key range a page reads.
enum Bound {
    /// The sort key itself, inclusive or not.
    Key(String, bool),
    /// Past a cursor's item of the index: its index sort key, then its table key (index sort keys need
    /// not be unique; the table key breaks ties, as in DynamoDB).
    Row(String, String, String),
}

/// The tighter of a range's end and a cursor's. SQLite seeks the index by one lower (or upper) bound
/// and filters by any other, so `sk >= 'LEAD#' AND sk > <cursor>` would read every entry from the start
/// of the range to the cursor: page N of a list cost N pages. One bound per end makes every page one
/// seek and `limit + 1` entries. A cursor normally lies inside the range; a forged one outside it is
/// dropped, the range's end then implying the cursor's.
fn tighter(
    range_end: Option<(String, bool)>,
    cursor: Option<Bound>,
    ascending: bool,
) -> Option<Bound> {
    let Some(cursor) = cursor else {
        return range_end.map(|(key, inclusive)| Bound::Key(key, inclusive));
    };
    let Some((end, inclusive)) = range_end else {
        return Some(cursor);
    };
    let at = match &cursor {
        Bound::Key(key, _) | Bound::Row(key, _, _) => key.as_str(),
    };
    let cursor_wins = match at.cmp(end.as_str()) {
        std::cmp::Ordering::Greater => ascending,
        std::cmp::Ordering::Less => !ascending,
        // At the end's own key the cursor excludes as much, except an index cursor against an exclusive
        // end: (key, pk, sk) > (end, ..) still takes keys equal to the end, which the end excludes.
        std::cmp::Ordering::Equal => inclusive || matches!(cursor, Bound::Key(..)),
    };
    if cursor_wins {
        Some(cursor)
    } else {
        Some(Bound::Key(end, inclusive))
    }
}

/// The SQL and parameters of one query page (asking for one item more than the page, to know whether
/// another page follows).
fn page_sql(query: &Query, position: Option<&CursorPosition>, now: i64) -> (String, Vec<SqlValue>) {
    let (partition_col, sort_col) = match query.index {
        Index::Table => ("pk", "sk"),
        Index::Gsi1 => ("gsi1pk", "gsi1sk"),
    };
    let (low, high) = match &query.range {
        KeyRange::All => (None, None),
        KeyRange::Prefix(prefix) => (
            Some((prefix.clone(), true)),
            checks::prefix_successor(prefix).map(|successor| (successor, false)),
        ),
        KeyRange::Between(low, high) => (Some((low.clone(), true)), Some((high.clone(), true))),
        KeyRange::AtLeast(low) => (Some((low.clone(), true)), None),
        KeyRange::AtMost(high) => (None, Some((high.clone(), true))),
    };
    let after = position.map(|pos| match (&query.index, &pos.gsi1) {
        (Index::Gsi1, Some((_, gsk))) => Bound::Row(gsk.clone(), pos.pk.clone(), pos.sk.clone()),
        _ => Bound::Key(pos.sk.clone(), false),
    });
    let ascending = query.order == Order::Ascending;
    let (low, high) = if ascending {
        (
            tighter(low, after, true),
            high.map(|(k, i)| Bound::Key(k, i)),
        )
    } else {
        (
            low.map(|(k, i)| Bound::Key(k, i)),
            tighter(high, after, false),
        )
    };
    let mut sql = format!("SELECT {COLUMNS} FROM items WHERE {partition_col} = ?");
    let mut params = vec![SqlValue::Text(query.partition.clone())];
    for (bound, above) in [(low, true), (high, false)] {
        match bound {
            None => {}
            Some(Bound::Key(key, inclusive)) => {
                let op = match (above, inclusive) {
                    (true, true) => ">=",
                    (true, false) => ">",
                    (false, true) => "<=",
                    (false, false) => "<",
                };
                sql.push_str(&format!(" AND {sort_col} {op} ?"));
                params.push(SqlValue::Text(key));
            }
            Some(Bound::Row(gsk, pk, sk)) => {
                let op = if above { ">" } else { "<" };
                sql.push_str(&format!(" AND (gsi1sk, pk, sk) {op} (?, ?, ?)"));
                params.extend([gsk, pk, sk].map(SqlValue::Text));
            }
        }
    }
    let direction = if ascending { "ASC" } else { "DESC" };
    sql.push_str(" AND (ttl IS NULL OR ttl > ?)");
    params.push(SqlValue::Integer(now));
    match query.index {
        Index::Table => sql.push_str(&format!(" ORDER BY sk {direction}")),
        Index::Gsi1 => sql.push_str(&format!(
            " ORDER BY gsi1sk {direction}, pk {direction}, sk {direction}"
        )),
    }
    sql.push_str(" LIMIT ?");
    params.push(SqlValue::Integer(
        i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    (sql, params)
}

#[async_trait::async_trait]
impl ItemStore for SqliteStore {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job::Alone(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(migrate(conn));
        }));
        self.writer.send(job).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        const OP: &str = "get";
        checks::key(key)?;
        let now = self.now_secs();
        let row = self.read(|conn| read_live(conn, key, now).map_err(sql(OP)))?;
        row.map(StoredRow::into_item).transpose()
    }

    /// All keys in one read transaction on one connection: one snapshot, and the pages every lookup
    /// passes through (the index's root and inner pages) read once, not once per key (a reader's page
    /// cache starts empty in each transaction after another connection committed).
    async fn get_many(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        const OP: &str = "get_many";
        let keys = checks::distinct_keys(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_secs();
        let rows = self.read(|conn| {
            let tx = conn.unchecked_transaction().map_err(sql(OP))?;
            let mut rows = Vec::with_capacity(keys.len());
            for key in &keys {
                rows.extend(read_live(&tx, key, now).map_err(sql(OP))?);
            }
            // Read only: ending it either way releases the snapshot.
            tx.commit().map_err(sql(OP))?;
            Ok(rows)
        })?;
        rows.into_iter().map(StoredRow::into_item).collect()
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        const OP: &str = "put";
        checks::item(&item)?;
        let row = Encoded::of(&item)?;
        let now = self.now_secs();
        self.write(move |conn| {
            if !holds(conn, item.key(), condition, now, OP)? {
                return Err(StoreError::ConditionFailed);
            }
            write_item(conn, &item, &row, OP)
        })
        .await
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        const OP: &str = "delete";
        checks::key(key)?;
        let now = self.now_secs();
        let key = key.clone();
        self.write(move |conn| {
            if !holds(conn, &key, condition, now, OP)? {
                return Err(StoreError::ConditionFailed);
            }
            delete_row(conn, &key, OP)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        const OP: &str = "query";
        let position = checks::query(query)?;
        let (statement, params) = page_sql(query, position.as_ref(), self.now_secs());
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&statement).map_err(sql(OP))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), read_row)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(sql(OP))?;
            Ok(rows)
        })?;
        let items = rows
            .into_iter()
            .map(StoredRow::into_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, query))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        const OP: &str = "transact";
        checks::transaction(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let ops = ReadyOp::all(ops)?;
        let now = self.now_secs();
        self.write(move |conn| {
            if let Some(index) = failing_condition(conn, &ops, now, OP)? {
                return Err(StoreError::TransactionConditionFailed { index });
            }
            apply(conn, &ops, OP)
        })
        .await
    }

    /// One write transaction for every group: the groups before a failing one are committed, the
    /// failing one wrote nothing (its conditions are all judged before any of its writes).
    async fn transact_each(&self, groups: Vec<Vec<WriteOp>>) -> Result<(), GroupFailed> {
        const OP: &str = "transact_each";
        checks::groups(&groups).map_err(GroupFailed::before_any)?;
        if groups.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let groups = groups
            .into_iter()
            .map(ReadyOp::all)
            .collect::<Result<Vec<_>, _>>()
            .map_err(GroupFailed::before_any)?;
        let now = self.now_secs();
        let failed = self
            .write(move |conn| {
                for (group, ops) in groups.iter().enumerate() {
                    if let Some(index) = failing_condition(conn, ops, now, OP)? {
                        return Ok(Some((group, index)));
                    }
                    apply(conn, ops, OP)?;
                }
                Ok(None)
            })
            .await
            .map_err(GroupFailed::before_any)?;
        match failed {
            None => Ok(()),
            Some((applied, index)) => Err(GroupFailed {
                applied,
                error: StoreError::TransactionConditionFailed { index },
            }),
        }
    }

    async fn remove_expired(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError> {
        checks::sweep(from, limit)?;
        self.remove_expired_rows(limit).await
    }

    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        const OP: &str = "delete_many";
        let keys = checks::distinct_keys(keys)?;
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<ItemKey> = keys.into_iter().cloned().collect();
        self.write(move |conn| {
            for key in &keys {
                delete_row(conn, key, OP)?;
            }
            Ok(())
        })
        .await
    }
}

impl SqliteStore {
    /// [`ItemStore::remove_expired`]: one statement on the writer thread, so it is judged and applied
    /// under the write lock like every conditional write (a row a queued write makes live again is
    /// either deleted before that write, which then finds nothing to replace, or not expired any more).
    async fn remove_expired_rows(&self, limit: usize) -> Result<Removed, StoreError> {
        const OP: &str = "remove_expired";
        let now = self.now_secs();
        let bound = i64::try_from(limit).unwrap_or(i64::MAX);
        let removed = self
            .write(move |conn| {
                conn.prepare_cached(REMOVE_EXPIRED)
                    .and_then(|mut stmt| stmt.execute(rusqlite::params![now, bound]))
                    .map_err(sql(OP))
            })
            .await?;
        // The rows go oldest first, so the next call needs no position: a cursor only says "more".
        let next =
            (removed >= limit).then(|| Cursor::after_key(&ItemKey::new("ttl", now.to_string())));
        Ok(Removed { removed, next })
    }
}

/// The compact binary form of an item's declared attributes (the `attrs` column).
///
/// `0x01` (format version), then per attribute: name length (u16 LE), name (UTF-8), a tag and the value:
/// `S` length (u32 LE) + UTF-8, `N` i64 LE, `B` length (u32 LE) + bytes, `T`/`F` for booleans.
mod codec {
    use super::{BTreeMap, StoreError, Value};

    const FORMAT: u8 = 1;

    fn put_len<T: TryFrom<usize>>(len: usize) -> Result<T, StoreError> {
        T::try_from(len).map_err(|_| StoreError::InvalidRequest("attribute too large"))
    }

    pub(super) fn encode(attrs: &BTreeMap<String, Value>) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT);
        for (name, value) in attrs {
            out.extend_from_slice(&put_len::<u16>(name.len())?.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            match value {
                Value::S(s) => {
                    out.push(b'S');
                    out.extend_from_slice(&put_len::<u32>(s.len())?.to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                Value::N(n) => {
                    out.push(b'N');
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Value::B(b) => {
                    out.push(b'B');
                    out.extend_from_slice(&put_len::<u32>(b.len())?.to_le_bytes());
                    out.extend_from_slice(b);
                }
                Value::Bool(b) => out.push(if *b { b'T' } else { b'F' }),
            }
        }
        Ok(out)
    }

    const MALFORMED: StoreError = StoreError::Corrupt("attribute encoding");

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
            if self.0.len() < n {
                return Err(MALFORMED);
            }
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            Ok(head)
        }
        fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
            self.take(N)?.try_into().map_err(|_| MALFORMED)
        }
        fn string(&mut self, len: usize) -> Result<String, StoreError> {
            String::from_utf8(self.take(len)?.to_vec()).map_err(|_| MALFORMED)
        }
        fn len32(&mut self) -> Result<usize, StoreError> {
            usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| MALFORMED)
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<BTreeMap<String, Value>, StoreError> {
        let mut reader = Reader(bytes);
        if reader.array::<1>()? != [FORMAT] {
            return Err(StoreError::Corrupt("unknown attribute format"));
        }
        let mut attrs = BTreeMap::new();
        while !reader.0.is_empty() {
            let name_len = usize::from(u16::from_le_bytes(reader.array()?));
            let name = reader.string(name_len)?;
            let value = match reader.array::<1>()? {
                [b'S'] => {
                    let len = reader.len32()?;
                    Value::S(reader.string(len)?)
                }
                [b'N'] => Value::N(i64::from_le_bytes(reader.array()?)),
                [b'B'] => {
                    let len = reader.len32()?;
                    Value::B(reader.take(len)?.to_vec())
                }
                [b'T'] => Value::Bool(true),
                [b'F'] => Value::Bool(false),
                _ => return Err(MALFORMED),
            };
            attrs.insert(name, value);
        }
        Ok(attrs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_every_value_kind_and_refuses_truncation() {
            let mut attrs = BTreeMap::new();
            attrs.insert("s".to_owned(), Value::S("héllo".into()));
            attrs.insert("e".to_owned(), Value::S(String::new()));
            attrs.insert("n".to_owned(), Value::N(i64::MIN));
            attrs.insert("b".to_owned(), Value::B(vec![0, 255, 7]));
            attrs.insert("t".to_owned(), Value::Bool(true));
            attrs.insert("f".to_owned(), Value::Bool(false));
            let bytes = encode(&attrs).unwrap_or_default();
            assert_eq!(decode(&bytes).ok(), Some(attrs));
            for cut in 0..bytes.len() - 1 {
                let truncated = decode(&bytes[..cut]);
                // A cut between two attributes is a valid shorter encoding; anything else is refused.
                if let Ok(shorter) = truncated {
                    assert!(shorter.len() < 6);
                }
            }
            assert!(decode(&[]).is_err());
            assert!(decode(&[2]).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Holds the writer thread until the returned sender is dropped, so the writes queued meanwhile
    /// are taken as one group.
    fn hold_writer(store: &SqliteStore) -> mpsc::Sender<()> {
        let (release, held) = mpsc::channel::<()>();
        let job = Job::Alone(Box::new(move |_: &mut Connection| {
            let _ = held.recv();
        }));
        store
            .writer
            .send(job)
            .unwrap_or_else(|_| panic!("the writer thread stopped"));
        release
    }

    fn job_item(name: &str) -> Item {
        Item::new(
            &crate::inventory::JOB,
            ItemKey::new(format!("JOB#{name}"), "JOB"),
        )
        .plain("params", Value::S(name.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// How a test write ends once it has written its item.
    #[derive(Clone, Copy)]
    enum Ending {
        Succeeds,
        Breaks,
        Panics,
    }

    type Answer = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;

    /// Queues a write of the item `name` that then ends as `ending`; counts its runs.
    fn queue_write(store: &SqliteStore, name: &str, ending: Ending) -> (Answer, Arc<AtomicUsize>) {
        let item = job_item(name);
        let row = Encoded::of(&item).unwrap_or_else(|e| panic!("{e}"));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let answer = store
            .queue(move |conn| {
                counted.fetch_add(1, Ordering::SeqCst);
                write_item(conn, &item, &row, "test")?;
                match ending {
                    Ending::Succeeds => Ok(()),
                    Ending::Breaks => Err(StoreError::InvalidRequest("broken on purpose")),
                    Ending::Panics => panic!("a write that panics after writing"),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        (answer, runs)
    }

    async fn stored(store: &SqliteStore, name: &str) -> bool {
        let key = ItemKey::new(format!("JOB#{name}"), "JOB");
        store
            .get(&key)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some()
    }

    /// A store in a file of a fresh temporary folder (removed when the folder is dropped).
    fn temp_store(name: &str) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let store = SqliteStore::open(&dir.path().join(format!("{name}.sqlite3")), clock)
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    #[tokio::test]
    async fn the_writer_spills_only_past_its_spill_size() {
        let (_dir, store) = temp_store("spill");
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job::Alone(Box::new(move |conn: &mut Connection| {
            let _ = reply
                .send(conn.pragma_query_value(None, "cache_spill", |row| row.get::<_, i64>(0)));
        }));
        store
            .writer
            .send(job)
            .unwrap_or_else(|_| panic!("the writer thread stopped"));
        let spill = answer
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        // 0 would be spilling turned off.
        assert_eq!(spill, SPILL_KIB / PAGE_KIB);
    }

    /// The options `.cargo/config.toml` passes to the bundled SQLite's build took effect.
    #[test]
    fn the_bundled_sqlite_has_no_global_page_cache_or_memory_statistics() {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let mut statement = conn
            .prepare("PRAGMA compile_options")
            .unwrap_or_else(|e| panic!("{e}"));
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_write_leaves_its_group_in_one_pass_and_a_broken_one_is_undone_alone() {
        let (_dir, store) = temp_store("groups");
        store
            .put(job_item("taken"), Condition::Always)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // A group with a write whose condition fails: one pass, the others committed.
        let release = hold_writer(&store);
        let (first, first_runs) = queue_write(&store, "first", Ending::Succeeds);
        let taken_key = ItemKey::new("JOB#taken", "JOB");
        let now = store.now_secs();
        let refused = store
            .queue(move |conn| {
                if !holds(conn, &taken_key, Condition::NotExists, now, "test")? {
                    return Err(StoreError::ConditionFailed);
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let (last, last_runs) = queue_write(&store, "last", Ending::Succeeds);
        drop(release);
        assert!(matches!(first.await, Ok(Ok(()))));
        assert!(matches!(
            refused.await,
            Ok(Err(StoreError::ConditionFailed))
        ));
        assert!(matches!(last.await, Ok(Ok(()))));
        assert_eq!(first_runs.load(Ordering::SeqCst), 1);
        assert_eq!(last_runs.load(Ordering::SeqCst), 1);
        assert!(stored(&store, "first").await && stored(&store, "last").await);

        // A group with writes that fail or panic after writing: run again, each under a savepoint.
        let release = hold_writer(&store);
        let (before, before_runs) = queue_write(&store, "before", Ending::Succeeds);
        let (broken, _) = queue_write(&store, "broken", Ending::Breaks);
        let (panicked, _) = queue_write(&store, "panicked", Ending::Panics);
        let (after, _) = queue_write(&store, "after", Ending::Succeeds);
        drop(release);
        assert!(matches!(before.await, Ok(Ok(()))));
        assert!(matches!(
            broken.await,
            Ok(Err(StoreError::InvalidRequest("broken on purpose")))
        ));
        // A panicking write's caller hears that it failed.
        assert!(!matches!(panicked.await, Ok(Ok(()))));
        assert!(matches!(after.await, Ok(Ok(()))));
        assert_eq!(before_runs.load(Ordering::SeqCst), 2, "the group ran again");
        assert!(stored(&store, "before").await && stored(&store, "after").await);
        assert!(!stored(&store, "broken").await, "a broken write is undone");
        assert!(
            !stored(&store, "panicked").await,
            "a panicked write is undone"
        );
    }

    const ITEMS: usize = 4_000;

    /// A deleted item's bytes are gone from the database file once the WAL is checkpointed into it.
    #[tokio::test]
    async fn a_deleted_items_bytes_leave_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("secure.sqlite3");
        let marker = "deleted-marker-7f3a9c";
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let store = SqliteStore::open(&path, clock).unwrap_or_else(|e| panic!("{e}"));
        let key = ItemKey::new("JOB#secure", "JOB");
        let kept = ItemKey::new("JOB#kept", "JOB");
        for (k, params) in [(&key, marker), (&kept, "kept")] {
            let item = Item::new(&crate::inventory::JOB, k.clone())
                .plain("params", Value::S(params.to_owned()))
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .put(item, Condition::Always)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Until a checkpoint copies the whole log: the store's own checkpointer may hold the lock.
        let checkpoint = || {
            let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            conn.busy_timeout(BUSY_TIMEOUT)
                .unwrap_or_else(|e| panic!("{e}"));
            for _ in 0..200 {
                let (busy, log, done): (i64, i64, i64) = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
                if busy == 0 && log == done {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("the log was never checkpointed");
        };
        let in_file = || {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
            bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
        };
        checkpoint();
        assert!(in_file(), "the value is in the file while it is stored");
        store
            .delete(&key, Condition::Always)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        checkpoint();
        assert!(!in_file(), "the deleted value's bytes stay in the file");
    }

    /// A partition of [`ITEMS`] items under `LEAD#`, with neighbours before and after the prefix, all
    /// in the index partition `G` too.
    fn filled() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        let tx = conn.transaction().unwrap_or_else(|e| panic!("{e}"));
        for (prefix, n) in [("A#", 500), ("LEAD#", ITEMS), ("Z#", 500)] {
            for i in 0..n {
                let sk = format!("{prefix}{i:05}");
                tx.execute(
                    "INSERT INTO items (pk, sk, t, gsi1pk, gsi1sk, attrs) VALUES ('P', ?1, 't', 'G', ?1, x'01')",
                    [&sk],
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        conn
    }

    /// How many rows and VM steps one page of `query` from `cursor_at` (an item's number) takes.
    fn cost(conn: &Connection, query: &Query, cursor_at: Option<usize>) -> (usize, i32) {
        let position = cursor_at.map(|i| {
            let sk = format!("LEAD#{i:05}");
            CursorPosition {
                pk: "P".to_owned(),
                sk: sk.clone(),
                gsi1: (query.index == Index::Gsi1).then(|| ("G".to_owned(), sk)),
            }
        });
        let (statement, params) = page_sql(query, position.as_ref(), 0);
        let mut stmt = conn.prepare(&statement).unwrap_or_else(|e| panic!("{e}"));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |_| Ok(()))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            rows.len(),
            stmt.get_status(rusqlite::StatementStatus::VmStep),
        )
    }

    /// SQLite seeks by one bound of a column: with the range's start and the cursor both as lower
    /// bounds it read from the range's start up to the cursor, so the last page of a long list cost
    /// as much as reading the whole list. Every page now costs the same, in every range and order.
    #[test]
    fn a_page_far_into_a_range_costs_what_the_first_page_costs() {
        let conn = filled();
        let ranges = [
            KeyRange::Prefix("LEAD#".to_owned()),
            KeyRange::Between("LEAD#".to_owned(), "LEAD#~".to_owned()),
            KeyRange::AtLeast("LEAD#".to_owned()),
            KeyRange::AtMost("LEAD#~".to_owned()),
        ];
        for index in [Index::Table, Index::Gsi1] {
            for range in &ranges {
                for order in [Order::Ascending, Order::Descending] {
                    let query = Query {
                        index,
                        partition: if index == Index::Table { "P" } else { "G" }.to_owned(),
                        range: range.clone(),
                        order,
                        limit: 50,
                        cursor: None,
                    };
                    let (near, far) = match order {
                        Order::Ascending => (10, ITEMS - 200),
                        Order::Descending => (ITEMS - 10, 200),
                    };
                    let (rows_near, steps_near) = cost(&conn, &query, Some(near));
                    let (rows_far, steps_far) = cost(&conn, &query, Some(far));
                    assert_eq!(
                        (rows_near, rows_far),
                        (51, 51),
                        "{index:?} {range:?} {order:?}"
                    );
                    assert!(
                        steps_far < 2 * steps_near,
                        "{index:?} {range:?} {order:?}: {steps_far} steps far in, {steps_near} near the start"
                    );
                }
            }
        }
    }

    /// The retention sweep reads expired rows through the `ttl` index, never the whole table.
    #[test]
    fn the_sweep_finds_expired_rows_through_the_ttl_index() {
        let conn = filled();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {REMOVE_EXPIRED}"))
            .and_then(|mut stmt| {
                stmt.query_map(rusqlite::params![0, 10], |row| row.get::<_, String>(3))?
                    .collect()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.iter().any(|step| step.contains("items_ttl")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN items")),
            "{plan:?}"
        );
    }

    /// A cursor from outside the range (forged) cannot widen it: the range's end still holds.
    #[test]
    fn a_cursor_outside_the_range_does_not_widen_it() {
        let conn = filled();
        for index in [Index::Table, Index::Gsi1] {
            let query = Query {
                index,
                partition: if index == Index::Table { "P" } else { "G" }.to_owned(),
                range: KeyRange::Prefix("LEAD#".to_owned()),
                order: Order::Ascending,
                limit: 1000,
                cursor: None,
            };
            let position = CursorPosition {
                pk: "P".to_owned(),
                sk: "A#00001".to_owned(),
                gsi1: (index == Index::Gsi1).then(|| ("G".to_owned(), "A#00001".to_owned())),
            };
            let (statement, params) = page_sql(&query, Some(&position), 0);
            let mut stmt = conn.prepare(&statement).unwrap_or_else(|e| panic!("{e}"));
            let first: String = stmt
                .query_row(rusqlite::params_from_iter(params), |row| row.get(1))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(first, "LEAD#00000", "{index:?}");
        }
    }
}
