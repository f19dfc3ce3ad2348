//! Spawns the real `openwa` binary: first start, the README walkthrough, restart, SIGTERM,
//! and the admin subcommands.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Gateway, openwa};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn first_start_prints_the_admin_key_once_and_saves_it_private() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let key_file = dir.path().join("admin.key");
    let saved = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(saved.starts_with("owa_"));
    assert!(
        gw.banner.iter().any(|l| l.contains(&saved)),
        "banner shows the key: {:?}",
        gw.banner
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(gw.terminate().success());

    let again = Gateway::start(dir.path(), &[]);
    assert!(
        !again.banner.iter().any(|l| l.contains(&saved)),
        "second start must not print the key again"
    );
    let res = client()
        .get(format!("{}/v1/sessions", again.base_url))
        .bearer_auth(&saved)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_readme_walkthrough_works_against_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let admin = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let http = client();
    let url = |p: &str| format!("{}{p}", gw.base_url);

    let health: Value = http
        .get(url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    // An operator key for the integration.
    let res = http
        .post(url("/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "crm", "role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    let operator = key["secret"].as_str().unwrap().to_owned();

    let res = http
        .post(url("/v1/sessions"))
        .bearer_auth(&operator)
        .json(&json!({"id": "sales", "name": "Sales line", "start": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = http
        .post(url("/v1/sessions/sales/messages"))
        .bearer_auth(&operator)
        .header("Idempotency-Key", "order-42")
        .json(&json!({"to": "+1 555 010 9999", "type": "text", "text": {"body": "Your order shipped"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["status"], "queued");
    let id = sent["id"].as_str().unwrap().to_owned();

    let got: Value = http
        .get(url(&format!("/v1/sessions/sales/messages/{id}")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["chat_id"], "15550109999@c.us");

    assert!(
        gw.terminate().success(),
        "SIGTERM ends the gateway with status 0"
    );
    let listed = openwa(&[
        "sessions",
        "list",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(listed.lines().any(|l| l.starts_with("sales ")), "{listed}");
}

#[tokio::test]
async fn an_explicit_admin_key_from_the_environment_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let key = openwa(&["keys", "generate"]).trim().to_owned();
    let gw = Gateway::start(dir.path(), &[("OPENWA_ADMIN_KEY", key.as_str())]);
    assert!(!dir.path().join("admin.key").exists());
    let res = client()
        .get(format!("{}/v1/api-keys", gw.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_subcommands_create_list_and_revoke_keys_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let created = openwa(&[
        "keys",
        "create",
        "--data-dir",
        d,
        "--name",
        "ops",
        "--role",
        "viewer",
    ]);
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .unwrap()
        .trim()
        .to_owned();
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("secret"))
        .unwrap()
        .trim()
        .to_owned();
    let listed = openwa(&["keys", "list", "--data-dir", d]);
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "list never shows secrets");
    openwa(&["keys", "revoke", "--data-dir", d, &id]);
    assert!(openwa(&["keys", "list", "--data-dir", d]).contains("revoked"));

    // The revoked key is refused by a running gateway.
    let gw = Gateway::start(dir.path(), &[]);
    let res = client()
        .get(format!("{}/v1/sessions", gw.base_url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_key_secrets_never_appear_in_the_log_even_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("openwa.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let gw = Gateway::start_logging_to(dir.path(), log, &[("OPENWA_LOG", "debug")]);
    let admin = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let http = client();
    let url = |p: &str| format!("{}{p}", gw.base_url);

    let created: Value = http
        .post(url("/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "crm", "role": "operator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    // Good and bad requests with both keys, through both auth headers.
    for key in [&admin, &secret] {
        http.get(url("/v1/sessions"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        http.get(url("/v1/api-keys"))
            .header("X-API-Key", key.as_str())
            .send()
            .await
            .unwrap();
        http.post(url("/v1/sessions"))
            .bearer_auth(key)
            .body("{not json")
            .send()
            .await
            .unwrap();
    }
    // A key with one wrong character is refused, and its text must not be echoed either.
    let typo = format!("{}x", &secret[..secret.len() - 1]);
    let res = http
        .get(url("/v1/sessions"))
        .bearer_auth(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains(&typo[4..]),
        "error bodies do not echo the presented key"
    );
    assert!(gw.terminate().success());

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("request finished"),
        "the debug log was captured: {} bytes",
        text.len()
    );
    for s in [&admin, &secret, &typo] {
        // The random part without the public prefix: the prefix (`owa_` + 8) may be shown.
        assert!(!text.contains(&s[12..]), "a key secret appeared in the log");
    }
}
