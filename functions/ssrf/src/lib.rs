//! openwa-ssrf: the SSRF guard — which URLs a webhook delivery may reach, checked when the
//! webhook is created (by the API) and at every attempt (by the deliver worker).
//!
//! A URL passes when its scheme is http(s), it carries no credentials, and every address its
//! host resolves to is public ([`openwa_core::webhook::guard::forbidden_reason`]) or covered by
//! the allowlist. The deliver worker runs the same rule ([`SsrfGuard::refusal`]) again inside
//! its HTTP client's DNS resolver (`openwa_deliver::guard::FilteringResolver`), so the
//! connection goes only to an address that was checked at connect time: a DNS answer that
//! changed since creation (rebinding) is caught there, and IP literals are checked before any
//! request is built. Cloud metadata addresses are refused even when an allowlist covers them.
//!
//! It is its own crate so that the API (and its Lambda) can check URLs without depending on
//! the deliver worker, its HTTP client and the embedded backend the worker binary opens.
//!
//! Layout (one file): [`Resolver`] and [`SystemResolver`], [`AllowList`], [`SsrfGuard`] (also
//! the core [`UrlGuard`] port).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use openwa_core::error::{Error, Result};
use openwa_core::webhook::UrlGuard;
use openwa_core::webhook::guard::{forbidden_reason, is_metadata};
pub use url::Url;

/// Name resolution, injectable so tests can change DNS answers between create and delivery.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// Every address of `host`; `Unavailable` if resolution failed.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>>;
}

/// The system resolver (getaddrinfo on a blocking thread, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| Error::unavailable(format!("cannot resolve {host}: {e}")))?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// Exceptions for local development and tests: networks and host names that may be reached
/// even though they are private. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub networks: Vec<IpNet>,
    /// Lower-case host names whose addresses are all allowed.
    pub hosts: BTreeSet<String>,
}

impl AllowList {
    /// Parses a comma-separated list of CIDRs, IPs and host names (`127.0.0.0/8,localhost`).
    pub fn parse(raw: &str) -> Result<Self> {
        let mut out = Self::default();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                out.networks.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                out.networks.push(IpNet::from(ip));
            } else if item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                out.hosts.insert(item.to_ascii_lowercase());
            } else {
                return Err(Error::invalid(
                    "webhook_allowlist",
                    format!("{item:?} is not a CIDR, IP or host name"),
                ));
            }
        }
        Ok(out)
    }

    /// Loopback only: what tests with local receivers use.
    pub fn loopback() -> Self {
        let v4 = ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::new(127, 0, 0, 0), 8);
        let v6 = ipnet::Ipv6Net::new_assert(std::net::Ipv6Addr::LOCALHOST, 128);
        Self {
            networks: vec![IpNet::V4(v4), IpNet::V6(v6)],
            hosts: BTreeSet::new(),
        }
    }
}

/// The guard: scheme and host rules, the resolver, the allowlist.
#[derive(Clone)]
pub struct SsrfGuard {
    resolver: Arc<dyn Resolver>,
    allow: Arc<AllowList>,
}

impl SsrfGuard {
    pub fn new(resolver: Arc<dyn Resolver>, allow: AllowList) -> Self {
        Self {
            resolver,
            allow: Arc::new(allow),
        }
    }

    pub fn system(allow: AllowList) -> Self {
        Self::new(Arc::new(SystemResolver), allow)
    }

    pub fn resolver(&self) -> Arc<dyn Resolver> {
        self.resolver.clone()
    }

    /// Why `ip` may not be reached from `host`, or `None`.
    pub fn refusal(&self, host: Option<&str>, ip: IpAddr) -> Option<String> {
        if is_metadata(ip) {
            return Some(format!("{ip} is a cloud metadata address"));
        }
        let reason = forbidden_reason(ip)?;
        let allowed = self.allow.networks.iter().any(|n| n.contains(&ip))
            || host.is_some_and(|h| self.allow.hosts.contains(&h.to_ascii_lowercase()));
        if allowed {
            None
        } else {
            Some(format!("{ip} is a {reason} address"))
        }
    }

    /// Parses the URL and applies the scheme rules; returns the parsed URL.
    pub fn parse(url: &str) -> Result<Url> {
        let parsed = Url::parse(url).map_err(|_| Error::invalid("url", "is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid("url", "must be an http(s) URL"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::invalid("url", "must not carry credentials"));
        }
        if parsed.host().is_none() {
            return Err(Error::invalid("url", "needs a host"));
        }
        Ok(parsed)
    }

    /// The addresses the URL's host may be reached at; `Invalid` if any resolved address is
    /// refused (one bad answer is enough to refuse: the client could pick it).
    pub async fn check_url(&self, url: &Url) -> Result<Vec<IpAddr>> {
        let refuse =
            |why: String| Error::invalid("url", format!("refused by the SSRF guard: {why}"));
        let raw = url
            .host_str()
            .ok_or_else(|| Error::invalid("url", "needs a host"))?;
        // `Url` normalises every IPv4 spelling (decimal, octal, hex) to dotted form.
        let literal = raw
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let (host, addrs) = match literal {
            Some(ip) => (None, vec![ip]),
            None => (Some(raw), self.resolver.resolve(raw).await?),
        };
        if addrs.is_empty() {
            return Err(Error::unavailable("the host resolved to no address"));
        }
        for ip in &addrs {
            if let Some(why) = self.refusal(host, *ip) {
                return Err(refuse(why));
            }
        }
        Ok(addrs)
    }
}

#[async_trait]
impl UrlGuard for SsrfGuard {
    async fn check(&self, url: &str) -> Result<()> {
        let parsed = Self::parse(url)?;
        self.check_url(&parsed).await.map(|_| ())
    }
}
