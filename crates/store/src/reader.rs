//! Grouped stream reads: what group commit does for appends, done for the command path's reads.
//! Every command reads its stream before deciding. One task takes the reads waiting at a moment
//! and answers them all with one query (`stream_id = ANY(…)`), so the database parses, plans
//! and answers once for many commands. Up to [`IN_FLIGHT`] queries run at once. A read that
//! comes while every slot is busy waits for one, and so joins the next group.
//!
//! Each read is as fresh as a read of its own. Its group's query starts after the read was
//! asked for, so it sees every append committed before that. Reads of the same stream in one
//! group (the session, read by every dossier command) are asked for once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::{ReplayEvent, StoreError};

/// The most queries of grouped reads running at once.
pub const IN_FLIGHT: usize = 4;
/// The most reads answered by one query.
pub const MAX_GROUP: usize = 256;

struct Read {
    stream_id: Uuid,
    reply: oneshot::Sender<Result<Vec<ReplayEvent>, StoreError>>,
}

/// The handle callers read streams through.
#[derive(Clone)]
pub(crate) struct GroupedReads {
    reads: mpsc::Sender<Read>,
}

impl GroupedReads {
    /// Starts the task. `query` reads every event of the given streams (each id once),
    /// ordered by stream version within each stream.
    pub(crate) fn spawn<Q, F>(query: Q) -> Self
    where
        Q: Fn(Vec<Uuid>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<ReplayEvent>, StoreError>> + Send + 'static,
    {
        let (sender, mut receiver) = mpsc::channel::<Read>(4 * MAX_GROUP);
        let query = Arc::new(query);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut group = Vec::with_capacity(MAX_GROUP);
            while let Some(first) = receiver.recv().await {
                // Wait for a slot before taking the others: reads arriving meanwhile join.
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                group.push(first);
                while group.len() < MAX_GROUP {
                    match receiver.try_recv() {
                        Ok(read) => group.push(read),
                        Err(_) => break,
                    }
                }
                let reads = std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP));
                let query = query.clone();
                tokio::spawn(async move {
                    answer(reads, &*query).await;
                    drop(slot);
                });
            }
        });
        Self { reads: sender }
    }

    pub(crate) async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<ReplayEvent>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.reads.send(Read { stream_id, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn answer<Q, F>(reads: Vec<Read>, query: &Q)
where
    Q: Fn(Vec<Uuid>) -> F,
    F: Future<Output = Result<Vec<ReplayEvent>, StoreError>>,
{
    let mut ids: Vec<Uuid> = reads.iter().map(|r| r.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    match query(ids).await {
        Ok(events) => {
            let mut streams: HashMap<Uuid, Vec<ReplayEvent>> = HashMap::new();
            for event in events {
                streams.entry(event.stream_id).or_default().push(event);
            }
            // How many reads still want each stream: the last one takes the events, the others
            // get a copy.
            let mut wanted: HashMap<Uuid, usize> = HashMap::new();
            for read in &reads {
                *wanted.entry(read.stream_id).or_default() += 1;
            }
            for read in reads {
                let left = wanted.get_mut(&read.stream_id).map(|n| {
                    *n -= 1;
                    *n
                });
                let events = match left {
                    Some(0) => streams.remove(&read.stream_id).unwrap_or_default(),
                    _ => streams.get(&read.stream_id).cloned().unwrap_or_default(),
                };
                let _ = read.reply.send(Ok(events));
            }
        }
        Err(error) => {
            for read in reads {
                let _ = read.reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(stream_id: Uuid, stream_version: i64) -> ReplayEvent {
        ReplayEvent {
            position: stream_version,
            stream_id,
            stream_type: "dossier".into(),
            stream_version,
            event_type: "Transferred".into(),
            schema_version: 1,
            payload: bytes::Bytes::from_static(b"{}"),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_share_queries_and_each_gets_its_own_stream() {
        let streams: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = queries.clone();
        let reads = GroupedReads::spawn(move |ids: Vec<Uuid>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // Slow enough for the other reads to pile up behind the busy slots.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(ids.iter().flat_map(|id| (1..=3).map(|v| event(*id, v))).collect())
            }
        });
        // 200 reads of 8 streams (each read many times in a group), all at once.
        let answers = futures::future::join_all((0..200).map(|n| {
            let (reads, id) = (reads.clone(), streams[n % 8]);
            async move { (id, reads.read_stream(id).await) }
        }))
        .await;
        for (id, answer) in answers {
            let events = answer.expect("events");
            assert_eq!(
                events.iter().map(|e| (e.stream_id, e.stream_version)).collect::<Vec<_>>(),
                vec![(id, 1), (id, 2), (id, 3)]
            );
        }
        let queries = queries.load(Ordering::SeqCst);
        assert!(queries < 200 / 2, "200 reads took {queries} queries");
    }

    #[tokio::test]
    async fn a_stream_without_events_reads_empty_and_an_error_reaches_every_read() {
        let reads = GroupedReads::spawn(|_ids: Vec<Uuid>| async { Ok(Vec::new()) });
        assert!(reads.read_stream(Uuid::new_v4()).await.expect("no events").is_empty());
        let failing = GroupedReads::spawn(|_ids: Vec<Uuid>| async { Err(StoreError::Closed) });
        let answers = futures::future::join_all((0..10).map(|_| failing.read_stream(Uuid::new_v4()))).await;
        assert!(answers.iter().all(|a| matches!(a, Err(StoreError::Closed))));
    }
}
