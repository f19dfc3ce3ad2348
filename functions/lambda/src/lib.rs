//! openwa-lambda: the serverless half — one handler module per Lambda function, each binary in
//! `src/bin/` a thin main around it. Handlers are plain async functions over recorded event
//! types, so tests call them with fixtures from `tests/data` without a Lambda runtime.

pub mod api;
pub mod authorizer;
pub mod deliver;
pub mod fanout;
pub mod ingress;
pub mod sqs_event;
