//! A loopback TCP proxy that can sever every open connection or refuse new ones, so tests
//! simulate a broker (or database) outage without stopping the shared server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy from a local port to `target`.
pub struct TcpProxy {
    addr: SocketAddr,
    blocked: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `target` (host:port) on 127.0.0.1 with an OS-chosen port.
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let blocked = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let (generation, _) = watch::channel(0u64);
        let target = target.to_owned();
        let task = {
            let (blocked, refused) = (blocked.clone(), refused.clone());
            let generation = generation.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if blocked.load(Ordering::Acquire) {
                        refused.fetch_add(1, Ordering::AcqRel);
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let mut cut = generation.subscribe();
                    tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        let (mut ri, mut wi) = inbound.into_split();
                        let (mut ro, mut wo) = outbound.into_split();
                        tokio::select! {
                            _ = tokio::io::copy(&mut ri, &mut wo) => {}
                            _ = tokio::io::copy(&mut ro, &mut wi) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            addr,
            blocked,
            refused,
            generation,
            task,
        }
    }

    /// Returns the proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns `url` with its `host:port` replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str, target: &str) -> String {
        url.replacen(target, &self.addr.to_string(), 1)
    }

    /// Closes every connection open through the proxy.
    pub fn sever(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Severs every connection and refuses new ones until [`TcpProxy::unblock`].
    pub fn block(&self) {
        self.blocked.store(true, Ordering::Release);
        self.sever();
    }

    /// Returns how many connections were refused while blocked.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Acquire)
    }

    /// Accepts connections again.
    pub fn unblock(&self) {
        self.blocked.store(false, Ordering::Release);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.sever();
    }
}
