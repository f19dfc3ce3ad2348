//! The SSRF guard as the deliver worker uses it: the rules themselves live in `openwa-ssrf`
//! (shared with the API, which checks URLs at creation) and are re-exported here so
//! `openwa_deliver::{AllowList, Resolver, SsrfGuard, SystemResolver}` keep working; this module
//! adds the HTTP client's filtering DNS resolver.

use std::net::SocketAddr;

pub use openwa_ssrf::{AllowList, Resolver, SsrfGuard, SystemResolver};

use openwa_core::error::Error;

/// The guard as the HTTP client's DNS resolver: every connection goes to an address that passed
/// the rules at connect time. Refused addresses are dropped; a host left with none fails.
pub struct FilteringResolver(pub SsrfGuard);

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all = guard
                .resolver()
                .resolve(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let allowed: Vec<SocketAddr> = all
                .into_iter()
                .filter(|ip| guard.refusal(Some(&host), *ip).is_none())
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                let e = Error::invalid(
                    "url",
                    format!(
                        "refused by the SSRF guard: {host} resolves only to forbidden addresses"
                    ),
                );
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
