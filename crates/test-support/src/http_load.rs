//! A small HTTP/1.1 load driver for benchmarks: pre-built requests over keep-alive connections,
//! closed-loop (as fast as answers come) or open-loop at a fixed rate. In open-loop mode latency
//! is measured from when each request was *scheduled*, so a slow server shows up as latency
//! instead of as a lower offered rate (no coordinated omission). Loopback targets only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What to send, how hard, for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Target (must be a loopback address).
    pub addr: SocketAddr,
    /// Complete HTTP/1.1 requests, sent round-robin.
    pub requests: Arc<Vec<Vec<u8>>>,
    /// Keep-alive connections.
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Requests per second in total; `None` sends as fast as answers come.
    pub rate: Option<f64>,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests answered, by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection errors).
    pub failed: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of every answered request, microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

impl LoadReport {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at percentile `p` (0–100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let index = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        Duration::from_micros(self.latencies_us[index.min(self.latencies_us.len() - 1)])
    }

    /// Requests answered with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum()
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("\"{s}\":{n}")).collect();
        format!(
            "{{\"rate\":{:.0},\"ok\":{},\"answered\":{},\"failed\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"statuses\":{{{}}}}}",
            self.rate(),
            self.ok(),
            self.latencies_us.len(),
            self.failed,
            self.percentile(50.0).as_secs_f64() * 1e3,
            self.percentile(99.0).as_secs_f64() * 1e3,
            self.percentile(100.0).as_secs_f64() * 1e3,
            statuses.join(","),
        )
    }
}

/// Runs `plan` and reports.
pub async fn run(plan: LoadPlan) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(plan.addr.ip().is_loopback(), "load is only ever sent to loopback addresses");
    anyhow::ensure!(!plan.requests.is_empty() && plan.connections > 0, "nothing to send");
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + plan.duration;
    let interval = plan.rate.map(|r| Duration::from_secs_f64(plan.connections as f64 / r));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|index| {
            let plan = plan.clone();
            tokio::spawn(async move { connection(plan, index, start, deadline, interval).await })
        })
        .collect();
    let mut report = LoadReport::default();
    for task in tasks {
        let part = task.await??;
        for (status, n) in part.statuses {
            *report.statuses.entry(status).or_default() += n;
        }
        report.failed += part.failed;
        report.latencies_us.extend(part.latencies_us);
    }
    report.elapsed = Instant::now()
        .saturating_duration_since(start)
        .min(plan.duration + Duration::from_secs(30));
    report.latencies_us.sort_unstable();
    Ok(report)
}

async fn connection(
    plan: LoadPlan,
    index: usize,
    start: Instant,
    deadline: Instant,
    interval: Option<Duration>,
) -> anyhow::Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(8192);
    let stagger = interval.map_or(Duration::ZERO, |i| i.mul_f64(index as f64 / plan.connections as f64));
    let mut k: u64 = 0;
    loop {
        let scheduled = match interval {
            Some(i) => start + stagger + i.mul_f64(k as f64),
            None => Instant::now().max(start),
        };
        if scheduled >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let request = &plan.requests[(index + k as usize * plan.connections) % plan.requests.len()];
        k += 1;
        if stream.is_none() {
            match TcpStream::connect(plan.addr).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    stream = Some(s);
                }
                Err(_) => {
                    report.failed += 1;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        match exchange(s, request, &mut buf).await {
            Ok(status) => {
                *report.statuses.entry(status).or_default() += 1;
                report
                    .latencies_us
                    .push(u64::try_from(Instant::now().saturating_duration_since(scheduled).as_micros()).unwrap_or(u64::MAX));
            }
            Err(_) => {
                report.failed += 1;
                stream = None;
            }
        }
    }
    Ok(report)
}

/// Writes one request and reads one response; returns its status.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end])?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line"))?;
    let length = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Builds a complete `POST` request with a form body and extra headers.
pub fn form_post(path: &str, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: loadgen\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}
