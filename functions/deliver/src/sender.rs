//! One HTTP attempt: the signed request, the guarded client, and what the answer means.
//!
//! Only 2xx succeeds. 3xx fails (redirects are never followed: a redirect could point anywhere,
//! past the guard). 410 means "gone": the subscription is disabled. 429 and 503 may carry
//! `Retry-After` (seconds or an HTTP date), which replaces the schedule's next delay. Anything
//! else, a timeout, a refused connection or a guard refusal is a failed attempt.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use openwa_core::error::{Error, Result};
use openwa_core::id::EventId;
use openwa_core::webhook::Webhook;
use openwa_core::webhook::signature::{
    self, HEADER_HUB_SIGNATURE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use reqwest::StatusCode;

use crate::guard::{FilteringResolver, SsrfGuard};

/// Response bytes read (and thrown away) so the connection can be reused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
pub const USER_AGENT: &str = concat!("openwa-webhooks/", env!("CARGO_PKG_VERSION"));

/// What the receiver's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// 410: the receiver asked never to be called again.
    Gone,
    /// Try again later; `retry_after` is the receiver's own wish, when it gave one.
    Retry {
        retry_after: Option<Duration>,
    },
}

/// The outcome of one attempt, as recorded in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub verdict: Verdict,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
}

impl AttemptResult {
    pub fn failed(error: String, latency: Duration) -> Self {
        Self {
            verdict: Verdict::Retry { retry_after: None },
            status_code: None,
            error: Some(error),
            latency,
        }
    }
}

/// The headers of a signed delivery: Standard Webhooks (every live secret signs), the optional
/// `X-Hub-Signature-256`, then the subscription's custom headers.
pub fn delivery_headers(
    webhook: &Webhook,
    event_id: &EventId,
    now: DateTime<Utc>,
    body: &[u8],
) -> Vec<(String, String)> {
    let timestamp = now.timestamp();
    let secrets = webhook.signing_secrets(now);
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (HEADER_ID.to_owned(), event_id.to_string()),
        (HEADER_TIMESTAMP.to_owned(), timestamp.to_string()),
        (
            HEADER_SIGNATURE.to_owned(),
            signature::sign(&secrets, event_id.as_str(), timestamp, body),
        ),
    ];
    if let Some(current) = webhook.secret.as_ref().filter(|_| webhook.hub_signature) {
        headers.push((
            HEADER_HUB_SIGNATURE.to_owned(),
            signature::hub_signature(current, body),
        ));
    }
    headers.extend(webhook.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers
}

/// The guarded HTTP client.
#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    guard: SsrfGuard,
    timeout: Duration,
}

impl HttpSender {
    pub fn new(guard: SsrfGuard, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Environment proxies would connect on our behalf to addresses the guard never saw.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .dns_resolver(std::sync::Arc::new(FilteringResolver(guard.clone())))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::unexpected(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            guard,
            timeout,
        })
    }

    pub fn guard(&self) -> &SsrfGuard {
        &self.guard
    }

    /// POSTs `body` to `url`. Never fails as a call: every problem is a failed attempt.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> AttemptResult {
        let started = Instant::now();
        // The guard runs before any request exists: IP literals never reach the resolver, and
        // a refused host gets no connection attempt at all.
        let parsed = match SsrfGuard::parse(url) {
            Ok(u) => u,
            Err(e) => return AttemptResult::failed(e.to_string(), started.elapsed()),
        };
        if let Err(e) = self.guard.check_url(&parsed).await {
            return AttemptResult::failed(e.to_string(), started.elapsed());
        }
        let mut request = self.client.post(parsed).body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers(), SystemTime::now());
                let mut read = 0;
                while read < MAX_RESPONSE_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                classify(status, retry_after, started.elapsed())
            }
            Err(e) => {
                let error = if e.is_timeout() {
                    format!("timed out after {} ms", self.timeout.as_millis())
                } else if e.is_connect() {
                    format!("could not connect: {}", source_chain(&e))
                } else {
                    format!("request failed: {}", source_chain(&e))
                };
                AttemptResult::failed(error, started.elapsed())
            }
        }
    }
}

/// The error and its causes, without the URL (it may carry tokens in its query).
fn source_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![];
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    if parts.is_empty() {
        "unknown error".into()
    } else {
        parts.join(": ")
    }
}

fn classify(status: StatusCode, retry_after: Option<Duration>, latency: Duration) -> AttemptResult {
    let code = Some(status.as_u16());
    let (verdict, error) = if status.is_success() {
        (Verdict::Success, None)
    } else if status == StatusCode::GONE {
        (
            Verdict::Gone,
            Some("410 Gone: the subscription was disabled".to_owned()),
        )
    } else if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        (
            Verdict::Retry { retry_after },
            Some(format!("HTTP {}", status.as_u16())),
        )
    } else if status.is_redirection() {
        (
            Verdict::Retry { retry_after: None },
            Some(format!(
                "HTTP {} (redirects are not followed)",
                status.as_u16()
            )),
        )
    } else {
        (
            Verdict::Retry { retry_after: None },
            Some(format!("HTTP {}", status.as_u16())),
        )
    };
    AttemptResult {
        verdict,
        status_code: code,
        error,
        latency,
    }
}

/// `Retry-After` as seconds or an HTTP date (a date in the past means "now").
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn only_2xx_succeeds_and_410_is_gone() {
        let v =
            |code: u16| classify(StatusCode::from_u16(code).unwrap(), None, Duration::ZERO).verdict;
        assert_eq!(v(200), Verdict::Success);
        assert_eq!(v(204), Verdict::Success);
        assert_eq!(v(410), Verdict::Gone);
        assert_eq!(v(301), Verdict::Retry { retry_after: None });
        assert_eq!(v(500), Verdict::Retry { retry_after: None });
    }
}
