//! The port conformance suite: what every adapter family (embedded, AWS) must do to stand
//! behind the core ports. Written once, run against each backend.
//!
//! Each check is a `pub async fn` taking a factory that produces a fresh [`Fixture`] (an empty
//! backend plus whatever keeps it alive, e.g. a temp dir). Checks panic on a broken contract,
//! like tests do. [`conformance_tests!`](crate::conformance_tests) turns the whole list into
//! `#[tokio::test]`s for one factory:
//!
//! ```text
//! async fn fresh() -> Fixture { /* a new backend */ }
//! openwa_infra::conformance_tests!(fresh);
//! ```
//!
//! Queue checks use real time with one-second visibility timeouts and delays (SQS's
//! granularity), so the backend's clock must be the system clock.
//!
//! Layout:
//! - [`fixtures`]: entity builders
//! - [`sessions`]: sessions and the lease
//! - [`messages`]: messages, idempotency, status, pagination
//! - [`records`]: API keys, audit, webhooks, deliveries, events
//! - [`batches`]: fan-out's and delivery's batch operations (stores and queue)
//! - [`queue`]: the job queue
//! - [`other`]: blobs, secrets, rate limiter

pub mod batches;
pub mod fixtures;
pub mod messages;
pub mod other;
pub mod queue;
pub mod records;
pub mod sessions;

use std::any::Any;

use openwa_core::Error;
use openwa_core::ports::Backend;

/// Moves whatever the backend's stores wrote into their outbox on to the events queue (the
/// AWS family's stream relay); the embedded family's outbox is its queue, so it needs none.
pub type OutboxDrain = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// A fresh backend for one check.
pub struct Fixture {
    pub backend: Backend,
    /// How many receives the queue allows before dead-lettering a job.
    pub max_receives: u32,
    outbox: Option<OutboxDrain>,
    /// Dropped with the fixture, after the backend (temp dirs, test prefixes).
    _guard: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    pub fn new(backend: Backend, max_receives: u32, guard: impl Any + Send + Sync) -> Self {
        Self {
            backend,
            max_receives,
            outbox: None,
            _guard: Box::new(guard),
        }
    }

    /// Sets how this backend's outbox reaches the events queue.
    pub fn with_outbox_drain(mut self, drain: OutboxDrain) -> Self {
        self.outbox = Some(drain);
        self
    }

    /// Runs the outbox relay once, if the backend has one.
    pub async fn drain_outbox(&self) {
        if let Some(drain) = &self.outbox {
            drain().await;
        }
    }
}

/// Asserts that `result` failed with an error matching `pattern`.
#[macro_export]
#[doc(hidden)]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {:?}", stringify!($pattern), other),
        }
    };
}

/// `true` for a `Conflict`.
pub fn is_conflict<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

/// Expands to one `#[tokio::test]` per conformance check, each calling the check with
/// `$make`, an `async fn() -> Fixture`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::__conformance_cases! { $make;
            sessions::a_created_session_reads_back_unchanged,
            sessions::creating_a_session_twice_is_a_conflict,
            sessions::operations_on_an_unknown_session_are_not_found,
            sessions::an_update_bumps_the_version_and_a_stale_version_conflicts,
            sessions::sessions_list_newest_first_with_status_and_allowlist_filters,
            sessions::only_running_sessions_without_a_live_lease_are_claimable,
            sessions::of_two_concurrent_claimers_exactly_one_wins,
            sessions::after_expiry_another_runner_claims_and_fences_the_old_one,
            sessions::a_released_lease_is_claimable_and_the_epoch_keeps_growing,
            sessions::a_session_not_meant_to_run_cannot_be_claimed,
            sessions::runtime_updates_set_and_clear_fields_with_the_current_epoch,
            messages::a_message_reads_back_with_its_fingerprint,
            messages::a_reused_idempotency_key_returns_the_first_message,
            messages::ten_parallel_inserts_with_one_key_create_exactly_one_message,
            messages::a_duplicate_message_id_is_a_conflict,
            messages::statuses_only_move_forward,
            messages::messages_are_found_by_whatsapp_id,
            messages::pagination_walks_every_message_once_newest_first,
            messages::message_lists_filter_by_chat_direction_and_status,
            messages::a_cursor_that_does_not_decode_is_invalid,
            messages::deleting_a_session_removes_only_its_messages,
            messages::an_accepted_send_stores_its_message_audit_entry_and_event,
            messages::accepting_for_an_unknown_session_writes_nothing,
            messages::a_replayed_acceptance_writes_no_second_audit_entry_or_event,
            records::api_keys_are_found_by_the_hash_of_their_secret,
            records::a_duplicate_api_key_is_a_conflict,
            records::the_first_revocation_wins_and_touch_records_use,
            records::api_keys_list_newest_first,
            records::audit_entries_filter_by_action_key_session_and_time,
            records::webhooks_keep_their_signing_secrets,
            records::webhook_lookups_include_all_session_subscriptions,
            records::unknown_webhooks_are_not_found,
            records::a_delivery_is_created_once_per_webhook_and_event,
            records::delivery_updates_and_attempts_are_stored,
            records::deliveries_list_by_status_and_range,
            records::events_are_stored_once,
            batches::a_fanout_batch_stores_each_event_and_delivery_once,
            batches::a_large_fanout_batch_is_stored_whole,
            batches::deliveries_and_webhooks_are_read_in_batches,
            batches::an_outcome_records_the_attempt_and_the_delivery_together,
            batches::outcomes_of_a_batch_are_recorded_each_with_its_delivery,
            batches::a_batch_send_enqueues_every_job_and_fails_alone,
            batches::a_batch_ack_deletes_every_job_and_refuses_stale_receipts,
            queue::sending_to_a_queue_never_ensured_is_not_found,
            queue::an_acked_job_is_gone,
            queue::an_unacked_job_comes_back_after_its_visibility_timeout,
            queue::a_stale_receipt_is_a_conflict_everywhere,
            queue::fifo_groups_are_received_in_order_one_at_a_time,
            queue::a_busy_group_does_not_block_other_groups,
            queue::a_delayed_job_stays_hidden_until_its_delay_passes,
            queue::a_duplicate_dedup_id_is_dropped_on_fifo_queues,
            queue::a_job_received_too_often_moves_to_the_dead_letters,
            queue::an_explicitly_dead_lettered_job_is_listed_with_its_reason,
            queue::retry_later_and_extend_move_the_visibility,
            queue::a_long_poll_wakes_when_a_job_is_sent,
            queue::depth_counts_waiting_jobs_but_not_in_flight_ones,
            queue::a_deleted_queue_is_gone_with_its_jobs,
            other::blobs_round_trip_with_their_content_type,
            other::missing_blobs_are_not_found_and_delete_is_idempotent,
            other::blob_keys_that_could_escape_the_root_are_refused,
            other::secrets_round_trip_and_unknown_names_are_absent,
            other::the_rate_limiter_allows_the_budget_then_advises_a_wait,
        }
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_cases {
    ($make:path; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::conformance::$module::$check($make).await;
            }
        )*
    };
}
