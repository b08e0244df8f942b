//! Request counts and latencies by route, rendered in the Prometheus text format at `/metrics`.
//! Small enough to keep by hand: a handful of routes, fixed buckets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *r.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = l.entry((method.to_owned(), route.to_owned())).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP caremesh_build_info Version of the running node."
        );
        let _ = writeln!(out, "# TYPE caremesh_build_info gauge");
        let _ = writeln!(
            out,
            "caremesh_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP caremesh_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE caremesh_http_requests_total counter");
        {
            let r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "caremesh_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP caremesh_http_request_duration_seconds Time to answer HTTP requests by route."
        );
        let _ = writeln!(
            out,
            "# TYPE caremesh_http_request_duration_seconds histogram"
        );
        let l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for ((method, route), h) in l.iter() {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "caremesh_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "caremesh_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "caremesh_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "caremesh_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

/// The gauge of partners' clocks: one series per partner (the partner list bounds them).
pub fn render_partner_clocks(out: &mut String, clocks: &[(String, i64)]) {
    let _ = writeln!(
        out,
        "# HELP caremesh_partner_clock_skew_seconds A partner's clock minus this node's, from the Date of its last signed request."
    );
    let _ = writeln!(out, "# TYPE caremesh_partner_clock_skew_seconds gauge");
    for (partner, skew) in clocks {
        let _ = writeln!(
            out,
            "caremesh_partner_clock_skew_seconds{{partner=\"{}\"}} {skew}",
            escape(partner)
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Middleware recording every request under its route template (`/api/v1/admin/accounts/{username}`),
/// never the raw path, so that ids do not explode the label space.
pub async fn track(
    State(metrics): State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.observe(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, 0.003);
        m.observe("GET", "/healthz", 200, 0.2);
        let text = m.render();
        assert!(text.contains(
            "caremesh_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains(
            "caremesh_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2"
        ));
    }

    #[test]
    fn renders_partner_clocks() {
        let mut text = String::new();
        render_partner_clocks(&mut text, &[("b.example:8443".into(), -600)]);
        assert!(
            text.contains("caremesh_partner_clock_skew_seconds{partner=\"b.example:8443\"} -600")
        );
    }
}
