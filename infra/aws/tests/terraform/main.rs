//! The Terraform under `terraform/` agrees with the code: it parses every `.tf` file with
//! `hcl-rs` (no Terraform, no providers, no AWS) and checks
//! - the table's key schema, GSIs and TTL against [`resources::table`];
//! - the static queues (names, FIFO flags, visibility, retention, DLQs and redrive with
//!   `max_receives`) against [`resources::static_queues`];
//! - the bucket's lifecycle prefixes and the secret names against [`resources`];
//! - every variable each binary reads ([`iam`] `env`) is set for it;
//! - every action [`iam`] declares is granted to that component's role, on its resources;
//! - no statement grants a wildcard action, and `*` resources only for unscoped actions.
//!
//! Each check returns its findings instead of panicking, so the tests at the bottom can show
//! that a broken HCL file does fail them.

mod read;

use std::collections::{BTreeMap, BTreeSet};

use hcl::Body;
use hcl::expr::Expression;
use openwa_aws::iam::{self, Component};
use openwa_aws::resources::{self, bucket, table};
use read::{
    Findings, Stack, attr, blocks, children, field, key_name, label, locals, module_source,
    number_field, object_keys, one, resolve, string_attr, strings, terraform_dir, text,
};

// ---- checks ---------------------------------------------------------------------------------

fn check_table(stack: &Stack) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    let t = one(
        stack.module("modules/table"),
        "resource",
        "aws_dynamodb_table",
    )
    .body();
    f.check(
        string_attr(t, "hash_key").as_deref() == Some(table::PK),
        || format!("hash_key is not {}", table::PK),
    );
    f.check(
        string_attr(t, "range_key").as_deref() == Some(table::SK),
        || format!("range_key is not {}", table::SK),
    );
    f.check(
        string_attr(t, "billing_mode").as_deref() == Some("PAY_PER_REQUEST"),
        || "billing_mode is not PAY_PER_REQUEST".into(),
    );
    // The outbox function reads new images from the stream (bootstrap enables the same).
    f.check(
        attr(t, "stream_enabled").map(text).as_deref() == Some("true"),
        || "stream_enabled is not true".into(),
    );
    f.check(
        string_attr(t, "stream_view_type").as_deref() == Some(table::STREAM_VIEW),
        || format!("stream_view_type is not {}", table::STREAM_VIEW),
    );

    let gsis: BTreeSet<(String, String, String, String)> = children(t, "global_secondary_index")
        .into_iter()
        .map(|g| {
            let s = |k| string_attr(g, k).unwrap_or_default();
            (
                s("name"),
                s("hash_key"),
                s("range_key"),
                s("projection_type"),
            )
        })
        .collect();
    let want: BTreeSet<_> = table::GSIS
        .iter()
        .map(|g| (g.name.into(), g.pk.into(), g.sk.into(), "ALL".to_owned()))
        .collect();
    f.check(gsis == want, || {
        format!("GSIs {gsis:?}, resources.rs has {want:?}")
    });

    let attributes: BTreeSet<(String, String)> = children(t, "attribute")
        .into_iter()
        .map(|a| {
            let s = |k| string_attr(a, k).unwrap_or_default();
            (s("name"), s("type"))
        })
        .collect();
    let mut want_attrs = BTreeSet::from([
        (table::PK.to_owned(), "S".to_owned()),
        (table::SK.to_owned(), "S".to_owned()),
    ]);
    for g in table::GSIS {
        want_attrs.insert((g.pk.into(), "S".into()));
        want_attrs.insert((g.sk.into(), "S".into()));
    }
    f.check(attributes == want_attrs, || {
        format!("attributes {attributes:?}, want exactly {want_attrs:?}")
    });

    let ttl = children(t, "ttl");
    f.check(
        ttl.len() == 1
            && string_attr(ttl[0], "attribute_name").as_deref() == Some(table::TTL)
            && attr(ttl[0], "enabled") == Some(&Expression::Bool(true)),
        || format!("TTL is not enabled on `{}`", table::TTL),
    );
    let pitr = children(t, "point_in_time_recovery");
    f.check(
        pitr.len() == 1 && attr(pitr[0], "enabled") == Some(&Expression::Bool(true)),
        || "point-in-time recovery is off".into(),
    );
    let sse = children(t, "server_side_encryption");
    f.check(
        sse.len() == 1 && attr(sse[0], "enabled") == Some(&Expression::Bool(true)),
        || "server-side encryption is off".into(),
    );
    f.into_result()
}

fn check_queues(stack: &Stack) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    let body = stack.module("modules/queues");
    let l = locals(body);
    // (suffix, fifo, dead_letter, visibility, retention)
    type Row = (String, bool, Option<String>, u64, u64);
    let mut found: Vec<Row> = Vec::new();
    if let Some(Expression::Object(dlqs)) = l.get("dead_letter_queues") {
        for (k, v) in dlqs.iter() {
            let fifo = field(v, "fifo") == Some(&Expression::Bool(true));
            let vis = number_field(v, "visibility_secs").unwrap_or(0);
            let ret = number_field(v, "retention_secs").unwrap_or(0);
            found.push((key_name(k), fifo, None, vis, ret));
        }
    }
    if let Some(Expression::Object(queues)) = l.get("queues") {
        for (k, v) in queues.iter() {
            let dlq = match field(v, "dead_letter") {
                Some(Expression::String(s)) => Some(s.clone()),
                _ => None,
            };
            let vis = number_field(v, "visibility_secs").unwrap_or(0);
            let ret = number_field(v, "retention_secs").unwrap_or(0);
            found.push((key_name(k), false, dlq, vis, ret));
        }
    }
    found.sort();
    let mut want: Vec<Row> = resources::static_queues()
        .into_iter()
        .map(|q| {
            (
                q.suffix.to_owned(),
                q.fifo,
                q.dead_letter.map(str::to_owned),
                q.visibility_secs.into(),
                q.retention_secs.into(),
            )
        })
        .collect();
    want.sort();
    f.check(found == want, || {
        format!("queues {found:?}\nresources.rs static_queues() {want:?}")
    });

    let queues = blocks(body, "resource", "aws_sqs_queue");
    let name_ok = queues.iter().all(|q| {
        attr(q.body(), "name").map(text).as_deref() == Some("\"${var.prefix}-${each.key}\"")
    });
    f.check(name_ok && !queues.is_empty(), || {
        "every queue is named \"${var.prefix}-${each.key}\"".into()
    });
    let fifo_ok = queues
        .iter()
        .filter(|q| label(q, 1) == Some("dead_letter"))
        .all(|q| attr(q.body(), "fifo_queue").map(text).as_deref() == Some("each.value.fifo"));
    f.check(fifo_ok, || "DLQs take fifo_queue from the map".into());
    let main = queues.iter().find(|q| label(q, 1) == Some("main"));
    let redrive = main
        .and_then(|q| attr(q.body(), "redrive_policy"))
        .map(text)
        .unwrap_or_default();
    for needle in [
        "deadLetterTargetArn",
        "aws_sqs_queue.dead_letter[each.value.dead_letter].arn",
        "maxReceiveCount",
        "var.max_receives",
    ] {
        f.check(redrive.contains(needle), || {
            format!("main queues' redrive_policy lacks {needle}: {redrive}")
        });
    }
    let sse_ok = queues
        .iter()
        .all(|q| attr(q.body(), "sqs_managed_sse_enabled").is_some());
    f.check(sse_ok, || "a queue without SSE".into());

    // One max_receives feeds the redrive and every binary's OPENWA_MAX_RECEIVES.
    let root = stack.module("");
    for m in ["queues", "functions", "runners"] {
        let module = root
            .blocks()
            .find(|b| b.identifier() == "module" && label(b, 0) == Some(m));
        let value = module
            .and_then(|b| attr(b.body(), "max_receives"))
            .map(text);
        f.check(value.as_deref() == Some("var.max_receives"), || {
            format!("module {m} does not get max_receives = var.max_receives")
        });
    }
    for (module, local) in [
        ("modules/functions", "settings_env"),
        ("modules/runners", "runner_env"),
    ] {
        let env = locals(stack.module(module)).get(local).cloned();
        let value = env
            .as_ref()
            .and_then(|e| field(e, "OPENWA_MAX_RECEIVES"))
            .map(text)
            .unwrap_or_default();
        f.check(value.contains("var.max_receives"), || {
            format!("{module} sets OPENWA_MAX_RECEIVES to {value:?}, not var.max_receives")
        });
    }
    f.into_result()
}

fn check_bucket_and_secrets(stack: &Stack) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    let body = stack.module("modules/bucket");
    let lifecycle = one(body, "resource", "aws_s3_bucket_lifecycle_configuration").body();
    let mut rules: BTreeMap<String, &Body> = BTreeMap::new();
    for rule in children(lifecycle, "rule") {
        for filter in children(rule, "filter") {
            if let Some(prefix) = string_attr(filter, "prefix") {
                rules.insert(prefix, rule);
            }
        }
    }
    for prefix in [bucket::MEDIA_PREFIX, bucket::OVERSIZE_PREFIX] {
        let expires = rules
            .get(prefix)
            .is_some_and(|r| !children(r, "expiration").is_empty());
        f.check(expires, || {
            format!("no expiring lifecycle rule for {prefix}")
        });
    }
    let snapshots = rules.get(bucket::SNAPSHOT_PREFIX);
    f.check(
        snapshots.is_some_and(|r| {
            !children(r, "noncurrent_version_expiration").is_empty()
                && children(r, "expiration").is_empty()
        }),
        || {
            format!(
                "{} needs noncurrent expiry and no expiry",
                bucket::SNAPSHOT_PREFIX
            )
        },
    );
    let versioning = one(body, "resource", "aws_s3_bucket_versioning").body();
    let enabled = children(versioning, "versioning_configuration")
        .first()
        .and_then(|c| string_attr(c, "status"));
    f.check(enabled.as_deref() == Some("Enabled"), || {
        "versioning is off".into()
    });
    let block = one(body, "resource", "aws_s3_bucket_public_access_block").body();
    for k in [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ] {
        f.check(attr(block, k) == Some(&Expression::Bool(true)), || {
            format!("public access block: {k} is not true")
        });
    }

    let secrets_module = stack.module("modules/secrets");
    let names = locals(secrets_module)
        .get("secrets")
        .map(object_keys)
        .unwrap_or_default();
    let want: BTreeSet<String> = resources::secrets::ALL
        .iter()
        .map(|s| s.to_string())
        .collect();
    f.check(names == want, || {
        format!("secrets {names:?}, resources.rs has {want:?}")
    });
    let secret = one(secrets_module, "resource", "aws_secretsmanager_secret").body();
    f.check(
        attr(secret, "name").map(text).as_deref() == Some("\"${var.prefix}/${each.key}\""),
        || "secrets are not named <prefix>/<name>".into(),
    );
    f.into_result()
}

fn check_environment(stack: &Stack) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    let functions = stack.module("modules/functions");
    let l = locals(functions);
    let defined = l.get("functions").map(object_keys).unwrap_or_default();
    let env = l.get("function_env").map(|e| resolve(e, &l));
    for c in iam::COMPONENTS
        .iter()
        .filter(|c| c.policy != iam::RUNNER.policy)
    {
        f.check(defined.contains(c.policy), || {
            format!("no function {}", c.policy)
        });
        let keys = env
            .as_ref()
            .and_then(|e| field(e, c.policy))
            .map(object_keys)
            .unwrap_or_default();
        for var in c.env {
            f.check(keys.contains(*var), || {
                format!("{} is not given {var}", c.binary)
            });
        }
    }
    let lambda = one(functions, "resource", "aws_lambda_function").body();
    let variables = children(lambda, "environment")
        .first()
        .and_then(|e| attr(e, "variables"))
        .map(text);
    f.check(
        variables.as_deref() == Some("local.function_env[each.key]"),
        || "aws_lambda_function environment is not local.function_env[each.key]".into(),
    );
    for (k, want) in [("runtime", "provided.al2023"), ("handler", "bootstrap")] {
        f.check(string_attr(lambda, k).as_deref() == Some(want), || {
            format!("{k} is not {want}")
        });
    }
    f.check(
        attr(lambda, "architectures").map(strings) == Some(vec!["arm64".into()]),
        || "functions are not arm64".into(),
    );
    let mappings = blocks(functions, "resource", "aws_lambda_event_source_mapping");
    for esm in &mappings {
        let name = label(esm, 1).unwrap_or_default().to_owned();
        f.check(
            attr(esm.body(), "function_response_types").map(strings)
                == Some(vec!["ReportBatchItemFailures".into()]),
            || format!("event source mapping {name} does not report batch item failures"),
        );
    }
    // The outbox function reads the table's stream, filtered to outbox inserts
    // (`dynamo::outbox::OUTBOX_PREFIX`).
    let outbox = mappings.iter().find(|b| {
        attr(b.body(), "event_source_arn")
            .map(text)
            .is_some_and(|t| t.contains("var.table_stream_arn"))
    });
    f.check(
        outbox.is_some_and(|b| {
            let filter = text(&hcl::Expression::from(b.body().clone()));
            filter.contains(openwa_aws::dynamo::outbox::OUTBOX_PREFIX) && filter.contains("INSERT")
        }),
        || "no event source mapping reads the table stream's outbox inserts".into(),
    );

    let runners = stack.module("modules/runners");
    let rl = locals(runners);
    let keys = rl.get("runner_env").map(object_keys).unwrap_or_default();
    for var in iam::RUNNER.env {
        f.check(keys.contains(*var), || {
            format!("the runner task is not given {var}")
        });
    }
    let task = one(runners, "resource", "aws_ecs_task_definition").body();
    let containers = attr(task, "container_definitions")
        .map(text)
        .unwrap_or_default();
    for needle in ["local.runner_env", "healthCheck", "/health", "stopTimeout"] {
        f.check(containers.contains(needle), || {
            format!("the runner container definition lacks {needle}")
        });
    }
    f.into_result()
}

/// One statement of a policy document.
struct Statement {
    document: String,
    allow: bool,
    actions: Vec<String>,
    resources: Expression,
}

fn statements(stack: &Stack) -> Vec<Statement> {
    let mut out = Vec::new();
    for body in stack.modules.values() {
        let l = locals(body);
        for doc in blocks(body, "data", "aws_iam_policy_document") {
            let name = label(doc, 1).unwrap_or_default().to_owned();
            let mut bodies = children(doc.body(), "statement");
            for dynamic in doc
                .body()
                .blocks()
                .filter(|b| b.identifier() == "dynamic" && label(b, 0) == Some("statement"))
            {
                bodies.extend(children(dynamic.body(), "content"));
            }
            for s in bodies {
                let actions = attr(s, "actions")
                    .map(|a| strings(&resolve(a, &l)))
                    .unwrap_or_default();
                let resources = attr(s, "resources")
                    .map(|r| resolve(r, &l))
                    .unwrap_or(Expression::Null);
                let allow = string_attr(s, "effect").is_none_or(|e| e == "Allow");
                out.push(Statement {
                    document: name.clone(),
                    allow,
                    actions,
                    resources,
                });
            }
        }
    }
    out
}

fn check_grants(stack: &Stack, components: &[Component]) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    let all = statements(stack);
    for c in components {
        let doc: Vec<&Statement> = all.iter().filter(|s| s.document == c.policy).collect();
        f.check(!doc.is_empty(), || {
            format!("no policy document {:?} for {}", c.policy, c.binary)
        });
        for grant in c.grants {
            let hints = grant.target.hints();
            for action in grant.actions {
                let granted = doc.iter().any(|s| {
                    let resources = text(&s.resources);
                    s.allow
                        && s.actions.iter().any(|a| a == action)
                        && hints.iter().all(|h| resources.contains(h.as_str()))
                });
                f.check(granted, || {
                    format!(
                        "{}: {action} is not granted on {:?} ({hints:?})",
                        c.binary, grant.target
                    )
                });
            }
        }
    }
    f.into_result()
}

fn check_no_wildcards(stack: &Stack) -> Result<(), Vec<String>> {
    let mut f = Findings::default();
    for s in statements(stack).iter().filter(|s| s.allow) {
        for a in &s.actions {
            f.check(!a.contains('*'), || {
                format!("{}: wildcard action {a}", s.document)
            });
        }
        if strings(&s.resources).iter().any(|r| r == "*") {
            for a in &s.actions {
                f.check(
                    iam::UNSCOPED_ACTIONS.contains(&a.as_str()) || a.starts_with("xray:"),
                    || format!("{}: {a} on resource *", s.document),
                );
            }
        }
    }
    f.into_result()
}

fn assert_ok(result: Result<(), Vec<String>>) {
    if let Err(findings) = result {
        panic!(
            "terraform/ disagrees with the code:\n- {}",
            findings.join("\n- ")
        );
    }
}

#[test]
fn the_table_matches_the_schema_in_resources() {
    assert_ok(check_table(&Stack::load()));
}

#[test]
fn the_queues_match_the_static_queues_and_redrive_with_max_receives() {
    assert_ok(check_queues(&Stack::load()));
}

#[test]
fn the_bucket_lifecycle_and_the_secrets_match_resources() {
    assert_ok(check_bucket_and_secrets(&Stack::load()));
}

#[test]
fn every_variable_a_binary_reads_is_set_for_it() {
    assert_ok(check_environment(&Stack::load()));
}

#[test]
fn every_declared_action_is_granted_to_its_component_on_its_resources() {
    assert_ok(check_grants(&Stack::load(), &iam::COMPONENTS));
}

#[test]
fn no_statement_grants_a_wildcard_action_or_scopable_actions_on_star() {
    assert_ok(check_no_wildcards(&Stack::load()));
}

// ---- the checks can fail --------------------------------------------------------------------

fn edited(rel: &str, edit: impl FnOnce(String) -> String) -> Stack {
    let stack = Stack::load();
    let source = module_source(&terraform_dir().join(rel));
    let changed = edit(source.clone());
    assert_ne!(changed, source, "the edit changed nothing");
    stack.with_module(rel, &changed)
}

#[test]
fn a_table_without_gsi2_fails_the_check() {
    let stack = edited("modules/table", |s| {
        let start = s.rfind("global_secondary_index {").unwrap();
        let end = start + s[start..].find('}').unwrap() + 1;
        format!("{}{}", &s[..start], &s[end..])
    });
    let findings = check_table(&stack).unwrap_err();
    assert!(findings.iter().any(|f| f.contains("gsi2")), "{findings:?}");
}

#[test]
fn a_queue_redriving_with_a_fixed_count_fails_the_check() {
    let stack = edited("modules/queues", |s| {
        s.replace(
            "maxReceiveCount     = var.max_receives",
            "maxReceiveCount     = 3",
        )
    });
    assert!(check_queues(&stack).is_err());
}

#[test]
fn a_function_missing_a_settings_variable_fails_the_check() {
    let stack = edited("modules/functions", |s| {
        s.replace(
            "    OPENWA_MAX_RECEIVES  = tostring(var.max_receives)\n",
            "",
        )
    });
    let findings = check_environment(&stack).unwrap_err();
    assert!(
        findings.iter().any(|f| f.contains("OPENWA_MAX_RECEIVES")),
        "{findings:?}"
    );
}

#[test]
fn an_action_the_code_needs_but_the_role_lacks_fails_the_check() {
    let stack = edited("modules/functions", |s| {
        s.replace("\"dynamodb:TransactWriteItems\",\n", "")
    });
    let findings = check_grants(&stack, &iam::COMPONENTS).unwrap_err();
    assert!(
        findings
            .iter()
            .any(|f| f.contains("dynamodb:TransactWriteItems")),
        "{findings:?}"
    );
}

#[test]
fn a_grant_on_the_wrong_resource_fails_the_check() {
    // The authorizer's key lookups moved off the table's indexes.
    let stack = edited("modules/functions", |s| {
        s.replace(
            "sid       = \"KeyLookup\"\n    actions   = [\"dynamodb:GetItem\", \"dynamodb:BatchGetItem\", \"dynamodb:Query\", \"dynamodb:PutItem\", \"dynamodb:UpdateItem\"]\n    resources = local.table_resources",
            "sid       = \"KeyLookup\"\n    actions   = [\"dynamodb:GetItem\", \"dynamodb:BatchGetItem\", \"dynamodb:Query\", \"dynamodb:PutItem\", \"dynamodb:UpdateItem\"]\n    resources = [var.table_arn]",
        )
    });
    assert!(check_grants(&stack, &[iam::AUTHORIZER]).is_err());
}

#[test]
fn a_wildcard_action_on_data_fails_the_check() {
    let stack = edited("modules/runners", |s| {
        s + r#"
data "aws_iam_policy_document" "too_broad" {
  statement {
    actions   = ["dynamodb:*"]
    resources = [var.table_arn]
  }
  statement {
    actions   = ["s3:GetObject"]
    resources = ["*"]
  }
}
"#
    });
    let findings = check_no_wildcards(&stack).unwrap_err();
    assert!(
        findings.iter().any(|f| f.contains("dynamodb:*")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.contains("s3:GetObject on resource *")),
        "{findings:?}"
    );
}

#[test]
fn an_outbox_mapping_without_the_outbox_filter_fails_the_check() {
    let stack = edited("modules/functions", |s| s.replace("OUTBOX#", "EVENT#"));
    let findings = check_environment(&stack).unwrap_err();
    assert!(
        findings.iter().any(|f| f.contains("outbox inserts")),
        "{findings:?}"
    );
}
