//! Admin commands on a data dir: `openwa keys create|list|revoke|generate`, `openwa sessions list`.
//! They open the embedded store directly (SQLite allows the running gateway and these commands at
//! once), so they work without a key and without the server running. Actions are audited with no
//! key attached (a local operator).

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use openwa_core::apikey::{ApiKeySecret, Role};
use openwa_core::clock::SystemClock;
use openwa_core::id::{ApiKeyId, SessionId};
use openwa_core::page::PageRequest;
use openwa_core::ports::{Backend, SessionFilter};
use openwa_core::services::{ApiKeyService, AuditLog, NewApiKey};

use crate::args::{DataDir, KeysCommand, SessionsCommand};

fn open(data_dir: &DataDir) -> anyhow::Result<(Backend, ApiKeyService)> {
    let clock = Arc::new(SystemClock);
    let backend = openwa_infra::embedded::open(&data_dir.path, clock.clone())
        .with_context(|| format!("opening the data dir {}", data_dir.path.display()))?;
    let audit = AuditLog::new(backend.audit.clone(), clock.clone());
    let keys = ApiKeyService::new(backend.keys.clone(), audit, clock);
    Ok((backend, keys))
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate => {
            println!("{}", ApiKeySecret::generate().expose());
        }
        KeysCommand::Create {
            data_dir,
            name,
            role,
            sessions,
            cidrs,
            expires_in_days,
            rate_limit_per_minute,
        } => {
            let (_, service) = open(&data_dir)?;
            let allowed_sessions = if sessions.is_empty() {
                None
            } else {
                Some(
                    sessions
                        .iter()
                        .map(|s| SessionId::parse(s))
                        .collect::<Result<BTreeSet<_>, _>>()?,
                )
            };
            let allowed_cidrs = cidrs
                .iter()
                .map(|c| {
                    c.parse::<ipnet::IpNet>()
                        .with_context(|| format!("{c:?} is not a CIDR network"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let new = NewApiKey {
                name,
                role: Role::parse(&role)?,
                allowed_sessions,
                allowed_cidrs,
                rate_limit_per_minute,
                expires_at: expires_in_days
                    .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
            };
            let (key, secret) = service.create(None, new).await?;
            println!("id      {}", key.id);
            println!("role    {}", key.role.as_str());
            println!("secret  {}", secret.expose());
            println!("(the secret is shown only now)");
        }
        KeysCommand::List { data_dir } => {
            let (backend, _) = open(&data_dir)?;
            println!(
                "{:<31} {:<9} {:<13} {:<8} NAME",
                "ID", "ROLE", "PREFIX", "STATE"
            );
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let result = backend.keys.list(&page).await?;
                for key in &result.items {
                    let state = if key.revoked_at.is_some() {
                        "revoked"
                    } else if !key.is_usable(chrono::Utc::now()) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<31} {:<9} {:<13} {:<8} {}",
                        key.id,
                        key.role.as_str(),
                        key.prefix,
                        state,
                        key.name
                    );
                }
                match result.next_cursor {
                    Some(cursor) => {
                        page = PageRequest::parse(Some(PageRequest::MAX_LIMIT), Some(cursor))?
                    }
                    None => break,
                }
            }
        }
        KeysCommand::Revoke { data_dir, id } => {
            let (_, service) = open(&data_dir)?;
            let key = service.revoke(None, &ApiKeyId::parse(&id)?).await?;
            println!("revoked {} ({})", key.id, key.name);
        }
    }
    Ok(())
}

pub async fn sessions(cmd: SessionsCommand) -> anyhow::Result<()> {
    match cmd {
        SessionsCommand::List { data_dir } => {
            let (backend, _) = open(&data_dir)?;
            println!(
                "{:<24} {:<13} {:<8} {:<20} NAME",
                "ID", "STATUS", "DESIRED", "ACCOUNT"
            );
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let result = backend
                    .sessions
                    .list(&SessionFilter::default(), &page)
                    .await?;
                for s in &result.items {
                    let account =
                        s.me.as_ref()
                            .map(|m| m.jid.to_string())
                            .unwrap_or_else(|| "-".into());
                    println!(
                        "{:<24} {:<13} {:<8} {:<20} {}",
                        s.id,
                        s.status.as_str(),
                        s.desired.as_str(),
                        account,
                        s.name.as_deref().unwrap_or("")
                    );
                }
                match result.next_cursor {
                    Some(cursor) => {
                        page = PageRequest::parse(Some(PageRequest::MAX_LIMIT), Some(cursor))?
                    }
                    None => break,
                }
            }
        }
    }
    Ok(())
}
