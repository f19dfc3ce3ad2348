//! The `api` Lambda: the same axum router as `openwa up` ([`openwa_api::app`]), served through
//! `lambda_http` behind an API Gateway HTTP API (payload format 2.0).
//!
//! [`service`] puts one step, [`from_gateway`], in front of the router. From the request
//! context `lambda_http` attaches, it
//! - makes `requestContext.http.sourceIp` the client address (as `ConnectInfo`), so CIDR checks,
//!   audit entries and everything else that wants the caller's address see the address API
//!   Gateway saw, never a client-supplied header;
//! - turns `requestContext.authorizer.lambda` (the openwa authorizer's context, see
//!   [`crate::authorizer`]) into an [`openwa_api::auth::GatewayIdentity`] extension, which the
//!   API uses only when [`ApiConfig::trust_gateway_authorizer`] is set, and otherwise ignores;
//! - removes a named stage's `/<stage>` prefix from the path (with the `$default` stage there is
//!   none), so the routes match on any stage.
//!
//! Requests, responses and errors are otherwise exactly the router's: the same envelope, the
//! same `x-request-id`, the same rate limits.
//!
//! The request context is written by API Gateway, never by the client, so trusting it is sound
//! as long as API Gateway is the only way in: no function URL, and invoke permission for the
//! API and whoever deploys. A request that reaches a trusting function without the
//! authorizer's context (a route without the authorizer, a direct invoke) is a 401.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use lambda_http::request::RequestContext;
use lambda_http::tower::ServiceBuilder;
use lambda_http::tower::util::MapRequest;
use lambda_http::{Request, RequestExt};
use openwa_api::auth::GatewayIdentity;
use openwa_api::{ApiConfig, AppState};
use openwa_core::Error;
use openwa_core::ports::Backend;
use openwa_ssrf::AllowList;

use crate::authorizer::AuthorizerContext;

/// Environment variable names the `api` Lambda reads (besides `openwa_aws::settings::env` and
/// the AWS SDK's own).
pub mod env {
    /// Requests per minute for keys without their own limit.
    pub const RATE_LIMIT_PER_MINUTE: &str = "OPENWA_RATE_LIMIT_PER_MINUTE";
    /// Largest accepted request body, in bytes.
    pub const BODY_LIMIT_BYTES: &str = "OPENWA_BODY_LIMIT_BYTES";
    /// Where clients reach the API (links in the OpenAPI document).
    pub const PUBLIC_BASE_URL: &str = "OPENWA_PUBLIC_BASE_URL";
    /// Private networks / host names webhook targets may reach anyway (comma-separated).
    pub const WEBHOOK_ALLOWLIST: &str = "OPENWA_WEBHOOK_ALLOWLIST";
    /// `true` (default) or `false`: take the caller from the authorizer's context.
    pub const TRUST_GATEWAY_AUTHORIZER: &str = "OPENWA_TRUST_GATEWAY_AUTHORIZER";
}

/// Largest body API Gateway hands a Lambda (its 6 MB invocation payload, less base64's third).
pub const LAMBDA_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The API's settings in the Lambda, from `OPENWA_*` variables (see [`env`]); unset ones keep
/// [`ApiConfig::default`]'s values, except that the gateway authorizer is trusted and the body
/// limit is [`LAMBDA_BODY_LIMIT`]. `X-Forwarded-For` is never trusted: the gateway's
/// `sourceIp` is the client address.
pub fn config_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, Error> {
    let number = |name: &'static str| -> Result<Option<u64>, Error> {
        lookup(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::invalid(name, "must be a whole number"))
            })
            .transpose()
    };
    let mut config = ApiConfig {
        trust_forwarded_for: false,
        trust_gateway_authorizer: true,
        body_limit_bytes: LAMBDA_BODY_LIMIT,
        ..ApiConfig::default()
    };
    if let Some(n) = number(env::RATE_LIMIT_PER_MINUTE)? {
        config.default_rate_limit_per_minute = u32::try_from(n)
            .map_err(|_| Error::invalid(env::RATE_LIMIT_PER_MINUTE, "is too large"))?;
    }
    if let Some(n) = number(env::BODY_LIMIT_BYTES)? {
        config.body_limit_bytes = usize::try_from(n)
            .map_err(|_| Error::invalid(env::BODY_LIMIT_BYTES, "is too large"))?;
    }
    config.public_base_url = lookup(env::PUBLIC_BASE_URL).filter(|v| !v.trim().is_empty());
    if let Some(raw) = lookup(env::WEBHOOK_ALLOWLIST) {
        config.webhook_allowlist = AllowList::parse(&raw)?;
    }
    if let Some(raw) = lookup(env::TRUST_GATEWAY_AUTHORIZER) {
        config.trust_gateway_authorizer = parse_bool(env::TRUST_GATEWAY_AUTHORIZER, &raw)?;
    }
    Ok(config)
}

fn parse_bool(name: &'static str, raw: &str) -> Result<bool, Error> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(name, "must be true or false")),
    }
}

/// The service `lambda_http::run` serves: [`from_gateway`], then the router.
pub type ApiService = MapRequest<axum::Router, fn(Request) -> Request>;

/// The router over `backend`, behind [`from_gateway`].
pub fn service(backend: Backend, config: ApiConfig) -> ApiService {
    let router = openwa_api::app(AppState::new(backend, config));
    ServiceBuilder::new()
        .map_request(from_gateway as fn(Request) -> Request)
        .service(router)
}

/// Moves what API Gateway established (client address, authorizer context, stage) from the
/// `lambda_http` request context into what the router reads. Requests without an API Gateway
/// v2 context pass unchanged.
pub fn from_gateway(mut req: Request) -> Request {
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
        return req;
    };
    let source_ip = ctx
        .http
        .source_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let identity = ctx
        .authorizer
        .as_ref()
        .filter(|a| !a.fields.is_empty())
        .map(|a| {
            AuthorizerContext::from_fields(&a.fields).and_then(|c| c.into_principal(source_ip))
        });
    let stage = ctx.stage.clone().filter(|s| s != "$default");

    if let Some(ip) = source_ip {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    match identity {
        Some(Ok(principal)) => {
            req.extensions_mut().insert(GatewayIdentity(principal));
        }
        // Fails closed: without the extension a trusting API answers 401.
        Some(Err(error)) => tracing::warn!(%error, "unreadable authorizer context ignored"),
        None => {}
    }
    if let Some(stage) = stage {
        strip_stage(&mut req, &stage);
    }
    req
}

/// `/prod/v1/sessions` -> `/v1/sessions` on stage `prod`.
fn strip_stage(req: &mut Request, stage: &str) {
    let uri = req.uri();
    let Some(rest) = uri.path().strip_prefix(&format!("/{stage}")) else {
        return;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return,
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_trusts_the_authorizer_unless_told_otherwise() {
        let config = config_from_lookup(|_| None).unwrap();
        assert!(config.trust_gateway_authorizer);
        assert!(!config.trust_forwarded_for);
        assert_eq!(config.body_limit_bytes, LAMBDA_BODY_LIMIT);

        let off = config_from_lookup(|name| {
            (name == env::TRUST_GATEWAY_AUTHORIZER).then(|| "false".to_owned())
        })
        .unwrap();
        assert!(!off.trust_gateway_authorizer);
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        let err = config_from_lookup(|name| {
            (name == env::RATE_LIMIT_PER_MINUTE).then(|| "lots".to_owned())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains(env::RATE_LIMIT_PER_MINUTE),
            "{err}"
        );
    }

    #[test]
    fn a_named_stage_is_stripped_from_the_path() {
        let mut req = Request::new(lambda_http::Body::Empty);
        *req.uri_mut() = "https://x.example/prod/v1/sessions?limit=2"
            .parse()
            .unwrap();
        strip_stage(&mut req, "prod");
        assert_eq!(req.uri().path(), "/v1/sessions");
        assert_eq!(req.uri().query(), Some("limit=2"));

        let mut other = Request::new(lambda_http::Body::Empty);
        *other.uri_mut() = "/production/x".parse().unwrap();
        strip_stage(&mut other, "prod");
        assert_eq!(other.uri().path(), "/production/x");
    }
}
