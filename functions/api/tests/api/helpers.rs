//! `spawn_app()`: a router on a fresh embedded backend (temp dir, manual clock) with a bootstrap
//! admin key, and a small client that speaks to it in-process through `oneshot`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use openwa_api::{ApiConfig, AppState, app};
use openwa_core::apikey::Role;
use openwa_core::clock::ManualClock;
use openwa_core::ports::Backend;
use openwa_core::services::NewApiKey;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub backend: Backend,
    pub clock: Arc<ManualClock>,
    /// Secret of an admin key with no limits.
    pub admin: String,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig::default()).await
}

/// An app whose webhooks may target loopback addresses, for tests with local receivers.
pub async fn spawn_app_with_loopback_webhooks() -> TestApp {
    spawn_app_with(ApiConfig {
        webhook_allowlist: openwa_ssrf::AllowList::loopback(),
        ..ApiConfig::default()
    })
    .await
}

pub async fn spawn_app_with(config: ApiConfig) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let backend =
        openwa_infra::embedded::open(dir.path(), clock.clone()).expect("embedded backend");
    let state = AppState::new(backend.clone(), config);
    let new = NewApiKey {
        name: "bootstrap".into(),
        role: Role::Admin,
        allowed_sessions: None,
        allowed_cidrs: vec![],
        rate_limit_per_minute: Some(100_000),
        expires_at: None,
    };
    let (_, secret) = state.keys.create(None, new).await.expect("bootstrap key");
    TestApp {
        router: app(state),
        backend,
        clock,
        admin: secret.expose().to_owned(),
        _dir: dir,
    }
}

/// Test output stays silent unless `TEST_LOG` is set.
fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("debug")
            .try_init();
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Null` if it is not JSON.
    pub json: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and that the body is the error envelope with `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_envelope(self);
        assert_eq!(self.json["error"]["code"], code, "body: {}", self.text);
        self
    }

    #[track_caller]
    pub fn assert_field(&self, field: &str) -> &Self {
        assert_eq!(self.json["error"]["field"], field, "body: {}", self.text);
        self
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }
}

/// An error response has exactly the envelope shape and echoes the `x-request-id` header.
#[track_caller]
pub fn assert_envelope(res: &TestResponse) {
    let error = res
        .json
        .get("error")
        .unwrap_or_else(|| panic!("no envelope in {:?}", res.text));
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{}",
        res.text
    );
    assert!(error["message"].is_string(), "{}", res.text);
    let request_id = error["request_id"].as_str().expect("request_id");
    assert_eq!(res.header("x-request-id"), Some(request_id));
    assert_eq!(res.header("content-type"), Some("application/json"));
}

/// A request under construction.
pub struct Req {
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    pub fn key(self, secret: &str) -> Self {
        self.header("authorization", &format!("Bearer {secret}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string())
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = body.into();
        self
    }

    /// Pretends the connection came from `addr`, as `into_make_service_with_connect_info` does.
    pub fn peer(mut self, addr: &str) -> Self {
        let addr: SocketAddr = addr.parse().unwrap();
        self.builder = self.builder.extension(ConnectInfo(addr));
        self
    }

    /// Adds a request extension, as an adapter in front of the router would.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.builder = self.builder.extension(value);
        self
    }

    pub fn build(self) -> Request<Body> {
        self.builder.body(self.body).expect("request")
    }
}

impl TestApp {
    pub async fn send(&self, req: Req) -> TestResponse {
        let res = self
            .router
            .clone()
            .oneshot(req.build())
            .await
            .expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    /// A request with the admin key.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.as_key(&self.admin.clone(), method, path, body).await
    }

    pub async fn as_key(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let req = Req::new(method, path).key(secret);
        self.send(match body {
            Some(b) => req.json(&b),
            None => req,
        })
        .await
    }

    /// Creates a key through the API and returns its secret and record.
    pub async fn create_key(&self, body: Value) -> (String, Value) {
        let res = self.admin(Method::POST, "/v1/api-keys", Some(body)).await;
        res.assert_status(201);
        (
            res.json["secret"].as_str().expect("secret").to_owned(),
            res.json,
        )
    }

    pub async fn key_with_role(&self, role: &str) -> String {
        self.create_key(json!({"name": format!("{role} key"), "role": role}))
            .await
            .0
    }

    pub async fn create_session(&self, id: &str) -> Value {
        let res = self
            .admin(Method::POST, "/v1/sessions", Some(json!({"id": id})))
            .await;
        res.assert_status(201);
        res.json
    }
}

pub fn text_message(to: &str, body: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": body}})
}

/// Percent-encodes everything but unreserved characters, so any junk is a valid URI.
pub fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
