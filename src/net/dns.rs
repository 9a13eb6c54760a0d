//! Name resolution on a small pool of worker threads, so the loop thread never blocks.
//!
//! `getaddrinfo` cannot be cancelled; the loop enforces the deadline itself and
//! ignores answers that arrive late. Workers exit after a short idle period, so
//! an idle process keeps no resolver threads.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const MAX_WORKERS: usize = 4;
const IDLE_EXIT: Duration = Duration::from_secs(5);

/// Receives the outcome of one lookup, on a resolver thread.
pub type Reply = Box<dyn FnOnce(io::Result<Vec<SocketAddr>>) + Send>;

struct Job {
    host: String,
    port: u16,
    reply: Reply,
}

#[derive(Default)]
struct Pool {
    queue: VecDeque<Job>,
    idle: usize,
    workers: usize,
    shutdown: bool,
}

/// A shared handle to the resolver pool of one loop.
#[derive(Clone, Default)]
pub struct Resolver {
    inner: Arc<(Mutex<Pool>, Condvar)>,
}

/// Parses an IP literal, which needs no lookup.
pub fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port))
}

impl Resolver {
    /// Queues a lookup; `reply` runs on a worker thread when it finishes.
    pub fn resolve(&self, host: &str, port: u16, reply: Reply) {
        let (lock, cv) = &*self.inner;
        let mut pool = lock.lock().unwrap_or_else(|e| e.into_inner());
        pool.queue.push_back(Job { host: host.to_string(), port, reply });
        if pool.idle == 0 && pool.workers < MAX_WORKERS {
            pool.workers += 1;
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("livefeed-dns".into())
                .spawn(move || worker(&inner));
            if let Err(e) = spawned {
                pool.workers -= 1;
                log::error!("cannot start a resolver thread: {e}");
                if pool.workers == 0 {
                    // Nobody will ever take these jobs: fail them now rather than hang.
                    let jobs: Vec<Job> = pool.queue.drain(..).collect();
                    drop(pool);
                    for job in jobs {
                        (job.reply)(Err(io::Error::other("no resolver thread")));
                    }
                    return;
                }
            }
        }
        cv.notify_one();
    }

    /// Asks idle workers to exit; queued lookups are abandoned.
    pub fn shutdown(&self) {
        let (lock, cv) = &*self.inner;
        let mut pool = lock.lock().unwrap_or_else(|e| e.into_inner());
        pool.shutdown = true;
        pool.queue.clear();
        cv.notify_all();
    }
}

fn worker(inner: &(Mutex<Pool>, Condvar)) {
    let (lock, cv) = inner;
    let mut pool = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if pool.shutdown {
            break;
        }
        if let Some(job) = pool.queue.pop_front() {
            drop(pool);
            let result = (job.host.as_str(), job.port).to_socket_addrs().map(|a| a.collect());
            (job.reply)(result);
            pool = lock.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        pool.idle += 1;
        let (guard, timeout) = cv.wait_timeout(pool, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        pool = guard;
        pool.idle -= 1;
        if timeout.timed_out() && pool.queue.is_empty() {
            break;
        }
    }
    pool.workers -= 1;
}

/// Orders addresses so the families alternate, starting with the resolver's first choice.
pub fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(|a| a.is_ipv6());
    let (mut a, mut b): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(a.len() + b.len());
    loop {
        match (a.pop_front(), b.pop_front()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn resolves_localhost_off_thread() {
        let r = Resolver::default();
        let (tx, rx) = mpsc::channel();
        r.resolve("localhost", 80, Box::new(move |res| tx.send(res).unwrap()));
        let addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }

    #[test]
    fn interleaves_families() {
        let v4 = |n| SocketAddr::from(([127, 0, 0, n], 1));
        let v6 = |n| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, n], 1));
        assert_eq!(interleave(vec![v6(1), v6(2), v4(1), v4(2)]), vec![v6(1), v4(1), v6(2), v4(2)]);
        assert_eq!(literal("::1", 5), Some(v6(1)).map(|a| SocketAddr::new(a.ip(), 5)));
        assert_eq!(literal("example.com", 5), None);
    }
}
