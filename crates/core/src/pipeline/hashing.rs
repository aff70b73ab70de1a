//! Module files hashed off the packet path. Inflating every file of a zip and hashing it is
//! most of an analysis' time (h1, gomod/h1.rs), and it needs nothing but the body's bytes: a
//! complete zip or .mod body goes to a worker thread (`Config::threads`) while packets go on,
//! and its digest comes back to the analyser, which uses it in the order the exchanges arose
//! (mod.rs, `Downstream`), so reports are the same whatever the threads' timing.
//!
//! Only zips and .mod files classified as such from their URL go to workers: a file reached
//! through a redirect gets its operation from the redirect chain, which is known only in
//! order, and is hashed there as before; .info and list files are small and read in order.

use crate::gomod::classify::Op;
use crate::gomod::h1::H1Limits;
use crate::gomod::integrity::{Digest, Integrity};
use crate::source::spill::{BodyReader, Spill};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A response body: what the parser kept in memory, then what it spilled to a file.
#[derive(Default)]
pub(super) struct Body {
    head: Vec<u8>,
    spill: Spill,
}

impl Body {
    pub(super) fn new(head: Vec<u8>, spill: Spill) -> Body {
        Body { head, spill }
    }

    /// The whole body as one seekable stream; `None` when the spill did not keep it all.
    pub(super) fn reader(&mut self) -> Option<BodyReader<'_>> {
        self.spill.reader(&self.head)
    }

    /// Bytes held in memory (the spilled part is on disk).
    pub(super) fn memory(&self) -> usize {
        self.head.len()
    }

    fn digest(mut self, op: Op, limits: &H1Limits) -> Option<Digest> {
        let mut reader = self.reader()?;
        Some(Integrity::digest(op, &mut reader, limits))
    }
}

/// A module file's digest: being computed on a worker, or in.
pub(super) enum PendingDigest {
    Ready(Option<Digest>),
    Waiting(Receiver<Option<Digest>>),
}

impl PendingDigest {
    /// Whether the digest is in (without waiting).
    pub(super) fn poll(&mut self) -> bool {
        if let PendingDigest::Waiting(reply) = self {
            *self = match reply.try_recv() {
                Ok(d) => PendingDigest::Ready(d),
                Err(TryRecvError::Empty) => return false,
                // The worker is gone without an answer (it panicked): no digest, as when the
                // body could not be read.
                Err(TryRecvError::Disconnected) => PendingDigest::Ready(None),
            };
        }
        true
    }

    /// The digest, waiting for the worker if need be.
    pub(super) fn wait(self) -> Option<Digest> {
        match self {
            PendingDigest::Ready(d) => d,
            PendingDigest::Waiting(reply) => reply.recv().ok().flatten(),
        }
    }
}

struct Job {
    op: Op,
    body: Body,
    limits: H1Limits,
    reply: SyncSender<Option<Digest>>,
}

impl Job {
    fn run(self) {
        let digest = self.body.digest(self.op, &self.limits);
        // The analyser may be gone (dropped mid-run): nobody wants the digest then.
        let _ = self.reply.send(digest);
    }
}

/// The worker threads.
pub(super) struct HashPool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl HashPool {
    /// `threads` workers (at least one); a worker that cannot be started is left out, and
    /// with none at all bodies are hashed by the caller as before.
    pub(super) fn new(threads: usize) -> HashPool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads.max(1))
            .filter_map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("modtrace-h1-{i}"))
                    .spawn(move || loop {
                        // The lock is held only to take a job, not while hashing it.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job.run(),
                            Err(_) => return,
                        }
                    })
                    .ok()
            })
            .collect();
        HashPool {
            jobs: Some(jobs),
            workers,
        }
    }

    /// Hands `body` to a worker.
    pub(super) fn submit(&self, op: Op, body: Body, limits: &H1Limits) -> PendingDigest {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            op,
            body,
            limits: limits.clone(),
            reply,
        };
        let Some(jobs) = &self.jobs else {
            return PendingDigest::Ready(job.body.digest(op, &job.limits));
        };
        match jobs.send(job) {
            Ok(()) => PendingDigest::Waiting(answer),
            // No worker runs: hash here.
            Err(mpsc::SendError(job)) => PendingDigest::Ready(job.body.digest(op, &job.limits)),
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Closing the queue ends each worker after its current job.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn inline(op: Op, bytes: &[u8]) -> Digest {
        Integrity::digest(op, &mut Cursor::new(bytes), &H1Limits::default())
    }

    #[test]
    fn workers_give_what_hashing_in_place_gives_in_any_order_of_finishing() {
        let pool = HashPool::new(3);
        let bodies: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("module example.test/m{i}\n\ngo 1.21\n").into_bytes())
            .collect();
        let pending: Vec<PendingDigest> = bodies
            .iter()
            .map(|b| {
                pool.submit(
                    Op::Mod,
                    Body::new(b.clone(), Spill::default()),
                    &H1Limits::default(),
                )
            })
            .collect();
        for (b, p) in bodies.iter().zip(pending) {
            assert_eq!(p.wait(), Some(inline(Op::Mod, b)));
        }
        // Not a zip: the worker says so as hashing in place would.
        let mut p = pool.submit(
            Op::Zip,
            Body::new(b"not a zip".to_vec(), Spill::default()),
            &H1Limits::default(),
        );
        while !p.poll() {
            std::thread::yield_now();
        }
        assert_eq!(p.wait(), Some(Digest::Zip(None)));
    }

    #[test]
    fn a_pool_without_workers_hashes_in_place() {
        let mut pool = HashPool::new(1);
        pool.jobs = None;
        let body = Body::new(b"module m\n".to_vec(), Spill::default());
        let d = pool.submit(Op::Mod, body, &H1Limits::default());
        assert!(matches!(d, PendingDigest::Ready(_)));
        assert_eq!(d.wait(), Some(inline(Op::Mod, b"module m\n")));
    }
}
