//! Session store checks, including the lease: claim races, expiry, fencing by epoch.

use std::collections::BTreeSet;

use chrono::Duration;
use openwa_core::Error;
use openwa_core::page::PageRequest;
use openwa_core::ports::SessionFilter;
use openwa_core::session::{DesiredState, Me, Qr, RuntimeUpdate, SessionStatus};

use super::Fixture;
use super::fixtures::{at, base_time, chat, session, session_id, stopped_session};
use crate::assert_err;

pub async fn a_created_session_reads_back_unchanged(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let s = session(&session_id("a"), base_time());

    fx.backend.sessions.create(&s).await.unwrap();

    assert_eq!(fx.backend.sessions.get(&s.id).await.unwrap(), s);
}

pub async fn creating_a_session_twice_is_a_conflict(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let s = session(&session_id("a"), base_time());
    fx.backend.sessions.create(&s).await.unwrap();

    assert_err!(fx.backend.sessions.create(&s).await, Error::Conflict { .. });
}

pub async fn operations_on_an_unknown_session_are_not_found(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let s = session(&session_id("ghost"), base_time());
    let now = base_time();

    assert_err!(sessions.get(&s.id).await, Error::NotFound { .. });
    assert_err!(sessions.update(&s).await, Error::NotFound { .. });
    assert_err!(sessions.delete(&s.id).await, Error::NotFound { .. });
    assert_err!(
        sessions
            .claim(&s.id, "r1", now, now + Duration::seconds(30))
            .await,
        Error::NotFound { .. }
    );
}

pub async fn an_update_bumps_the_version_and_a_stale_version_conflicts(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let s = stopped_session(&session_id("a"), base_time());
    sessions.create(&s).await.unwrap();

    let mut edit = s.clone();
    edit.name = Some("Renamed".into());
    edit.desired = DesiredState::Running;
    edit.updated_at = at(s.created_at, 1000);
    let stored = sessions.update(&edit).await.unwrap();

    assert_eq!(stored.version, s.version + 1);
    assert_eq!(stored.name.as_deref(), Some("Renamed"));
    assert_eq!(stored.desired, DesiredState::Running);
    assert_eq!(sessions.get(&s.id).await.unwrap(), stored);
    // `edit` still carries the old version.
    assert_err!(sessions.update(&edit).await, Error::Conflict { .. });

    sessions.delete(&s.id).await.unwrap();
    assert_err!(sessions.get(&s.id).await, Error::NotFound { .. });
}

pub async fn sessions_list_newest_first_with_status_and_allowlist_filters(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let base = base_time();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut s = session(&session_id(&format!("s{i}")), at(base, i * 10));
        if i % 2 == 0 {
            s.status = SessionStatus::Connected;
        }
        sessions.create(&s).await.unwrap();
        ids.push(s.id);
    }

    let all = sessions
        .list(&SessionFilter::default(), &PageRequest::first(100))
        .await
        .unwrap();
    let listed: Vec<_> = all.items.iter().map(|s| s.id.clone()).collect();
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    assert_eq!(all.next_cursor, None);

    let connected = SessionFilter {
        status: Some(SessionStatus::Connected),
        ..Default::default()
    };
    let page = sessions
        .list(&connected, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);

    let only = SessionFilter {
        only: Some(BTreeSet::from([ids[1].clone(), ids[2].clone()])),
        status: None,
    };
    let page = sessions
        .list(&only, &PageRequest::first(100))
        .await
        .unwrap();
    let listed: Vec<_> = page.items.iter().map(|s| s.id.clone()).collect();
    assert_eq!(listed, vec![ids[2].clone(), ids[1].clone()]);

    let nothing = SessionFilter {
        only: Some(BTreeSet::new()),
        status: None,
    };
    assert!(
        sessions
            .list(&nothing, &PageRequest::first(100))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let first = sessions
        .list(&SessionFilter::default(), &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let next = PageRequest::parse(Some(2), first.next_cursor).unwrap();
    let second = sessions
        .list(&SessionFilter::default(), &next)
        .await
        .unwrap();
    assert_eq!(second.items[0].id, ids[2]);
}

pub async fn only_running_sessions_without_a_live_lease_are_claimable(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let now = base_time();
    let free = session(&session_id("free"), now);
    let held = session(&session_id("held"), now);
    let stopped = stopped_session(&session_id("stopped"), now);
    for s in [&free, &held, &stopped] {
        sessions.create(s).await.unwrap();
    }
    sessions
        .claim(&held.id, "r1", now, now + Duration::seconds(30))
        .await
        .unwrap();

    let claimable = sessions.claimable(now, 100).await.unwrap();
    assert!(claimable.contains(&free.id));
    assert!(!claimable.contains(&held.id));
    assert!(!claimable.contains(&stopped.id));

    let later = sessions
        .claimable(now + Duration::seconds(31), 100)
        .await
        .unwrap();
    assert!(
        later.contains(&held.id),
        "an expired lease makes the session claimable again"
    );
    assert_eq!(sessions.claimable(now, 1).await.unwrap().len(), 1);
}

pub async fn of_two_concurrent_claimers_exactly_one_wins(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let s = session(&session_id("race"), base_time());
    fx.backend.sessions.create(&s).await.unwrap();
    let now = base_time();

    let claim = |owner: &'static str| {
        let (store, id) = (fx.backend.sessions.clone(), s.id.clone());
        tokio::spawn(async move {
            store
                .claim(&id, owner, now, now + Duration::seconds(30))
                .await
        })
    };
    let (a, b) = (claim("runner-a"), claim("runner-b"));
    let results = [a.await.unwrap(), b.await.unwrap()];

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Error::Conflict { .. }))),
        "{results:?}"
    );
    let winner = winners[0];
    assert_eq!(winner.lease.epoch, s.lease.epoch + 1);
    assert_eq!(
        fx.backend.sessions.get(&s.id).await.unwrap().lease.owner,
        winner.lease.owner
    );
}

pub async fn after_expiry_another_runner_claims_and_fences_the_old_one(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let s = session(&session_id("fence"), base_time());
    sessions.create(&s).await.unwrap();
    let t0 = base_time();
    let old = sessions
        .claim(&s.id, "r1", t0, t0 + Duration::seconds(30))
        .await
        .unwrap();
    assert_err!(
        sessions
            .claim(
                &s.id,
                "r2",
                t0 + Duration::seconds(5),
                t0 + Duration::seconds(35)
            )
            .await,
        Error::Conflict { .. }
    );
    sessions
        .renew(&s.id, "r1", old.lease.epoch, t0 + Duration::seconds(40))
        .await
        .unwrap();

    let t1 = t0 + Duration::seconds(41);
    let new = sessions
        .claim(&s.id, "r2", t1, t1 + Duration::seconds(30))
        .await
        .unwrap();

    assert!(new.lease.epoch > old.lease.epoch);
    assert_eq!(new.lease.owner.as_deref(), Some("r2"));
    let stale = old.lease.epoch;
    assert_err!(
        sessions
            .renew(&s.id, "r1", stale, t1 + Duration::seconds(60))
            .await,
        Error::StaleEpoch { .. }
    );
    let update = RuntimeUpdate {
        status: Some(SessionStatus::Connected),
        ..Default::default()
    };
    assert_err!(
        sessions.update_runtime(&s.id, stale, &update).await,
        Error::StaleEpoch { .. }
    );
    assert_err!(
        sessions.release(&s.id, "r1", stale).await,
        Error::StaleEpoch { .. }
    );
    // The right epoch with the wrong owner is no better.
    assert_err!(
        sessions
            .renew(&s.id, "r1", new.lease.epoch, t1 + Duration::seconds(60))
            .await,
        Error::StaleEpoch { .. }
    );
    let current = sessions.get(&s.id).await.unwrap();
    assert_eq!(current.lease, new.lease);
    assert_ne!(current.status, SessionStatus::Connected);
}

pub async fn a_released_lease_is_claimable_and_the_epoch_keeps_growing(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let s = session(&session_id("rel"), base_time());
    sessions.create(&s).await.unwrap();
    let now = base_time();
    let first = sessions
        .claim(&s.id, "r1", now, now + Duration::seconds(30))
        .await
        .unwrap();

    sessions
        .release(&s.id, "r1", first.lease.epoch)
        .await
        .unwrap();

    let released = sessions.get(&s.id).await.unwrap();
    assert_eq!(released.lease.owner, None);
    assert_eq!(released.lease.epoch, first.lease.epoch);
    assert!(sessions.claimable(now, 100).await.unwrap().contains(&s.id));
    let second = sessions
        .claim(&s.id, "r2", now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(second.lease.epoch, first.lease.epoch + 1);
}

pub async fn a_session_not_meant_to_run_cannot_be_claimed(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let s = stopped_session(&session_id("off"), base_time());
    fx.backend.sessions.create(&s).await.unwrap();
    let now = base_time();

    assert_err!(
        fx.backend
            .sessions
            .claim(&s.id, "r1", now, now + Duration::seconds(30))
            .await,
        Error::Conflict { .. }
    );
}

pub async fn runtime_updates_set_and_clear_fields_with_the_current_epoch(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let sessions = &fx.backend.sessions;
    let s = session(&session_id("rt"), base_time());
    sessions.create(&s).await.unwrap();
    let now = base_time();
    let epoch = sessions
        .claim(&s.id, "r1", now, now + Duration::seconds(30))
        .await
        .unwrap()
        .lease
        .epoch;
    let qr = Qr {
        payload: "2@abc".into(),
        expires_at: at(now, 20_000),
    };

    let set = RuntimeUpdate {
        status: Some(SessionStatus::Qr),
        qr: Some(Some(qr.clone())),
        last_error: Some(Some("flaky".into())),
        ..Default::default()
    };
    let after_set = sessions.update_runtime(&s.id, epoch, &set).await.unwrap();
    assert_eq!(after_set.status, SessionStatus::Qr);
    assert_eq!(after_set.qr, Some(qr));

    let me = Me {
        jid: chat(1),
        push_name: Some("Sales".into()),
    };
    let clear = RuntimeUpdate {
        status: Some(SessionStatus::Connected),
        me: Some(Some(me.clone())),
        qr: Some(None),
        last_error: Some(None),
        ..Default::default()
    };
    let after_clear = sessions.update_runtime(&s.id, epoch, &clear).await.unwrap();

    assert_eq!(after_clear.status, SessionStatus::Connected);
    assert_eq!(after_clear.me, Some(me));
    assert_eq!(after_clear.qr, None);
    assert_eq!(after_clear.last_error, None);
    assert_eq!(
        after_clear.name, s.name,
        "runtime writes leave user fields alone"
    );
    assert_eq!(sessions.get(&s.id).await.unwrap(), after_clear);
}
