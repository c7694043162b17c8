//! `template.yaml` must name the same table keys, index, TTL attribute and configuration variables as the
//! code, so a deployment cannot drift from what the functions read and write.

use qchat_shared::config::vars;
use qchat_shared::store::attr;

fn template() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    std::fs::read_to_string(path).expect("template.yaml is readable")
}

/// The lines of the block that starts at the line containing `header`, up to the next line indented no
/// deeper than the header.
fn block<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(header));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let indent = first.len() - first.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect()
}

#[test]
fn the_table_keys_and_index_match_the_store() {
    let t = template();
    let table = block(&t, "  Table:").join("\n");
    for name in [attr::PK, attr::SK, attr::GSI1_PK, attr::GSI1_SK] {
        assert!(
            table.contains(&format!("- AttributeName: {name}\n")),
            "table defines attribute {name}"
        );
    }
    assert!(
        table.contains(&format!("IndexName: {}", attr::GSI1)),
        "index {} is declared",
        attr::GSI1
    );
    let ttl = block(&table, "TimeToLiveSpecification:").join("\n");
    assert!(
        ttl.contains(&format!("AttributeName: {}", attr::TTL)) && ttl.contains("Enabled: true")
    );
}

#[test]
fn the_table_is_protected_as_the_spec_requires() {
    let t = template();
    let table = block(&t, "  Table:").join("\n");
    for needed in [
        "BillingMode: PAY_PER_REQUEST",
        "PointInTimeRecoveryEnabled: true",
        "SSEType: KMS",
        "KMSMasterKeyId: !GetAtt DataKey.Arn",
        "StreamViewType:",
        "DeletionProtectionEnabled: true",
    ] {
        assert!(table.contains(needed), "table has {needed}");
    }
    let key = block(&t, "  DataKey:").join("\n");
    assert!(key.contains("EnableKeyRotation: true"));
}

#[test]
fn functions_get_the_configuration_the_code_reads_in_aws_mode() {
    let t = template();
    let globals = block(&t, "Globals:").join("\n");
    for needed in ["Runtime: provided.al2023", "Architectures: [arm64]"] {
        assert!(globals.contains(needed), "globals have {needed}");
    }
    assert!(globals.contains(&format!("{}: aws", vars::BACKEND)));
    for var in [
        vars::TABLE_NAME,
        vars::KEY_TABLE_NAME,
        vars::KMS_KEY_ID,
        vars::MAIL_FROM,
        vars::PUBLIC_URL,
        vars::CONTROLLER_NAME,
        vars::CONTROLLER_EMAIL,
        vars::CONTROLLER_ADDRESS,
    ] {
        assert!(globals.contains(&format!("{var}: ")), "globals set {var}");
    }
}

#[test]
fn the_controller_named_in_the_privacy_notice_is_a_required_parameter() {
    // The code refuses to start in AWS without these; a parameter without a default makes
    // `sam deploy` ask for them instead.
    let t = template();
    let parameters = block(&t, "Parameters:").join("\n");
    let globals = block(&t, "Globals:").join("\n");
    for (parameter, var, required) in [
        ("ControllerName", vars::CONTROLLER_NAME, true),
        ("ControllerEmail", vars::CONTROLLER_EMAIL, true),
        ("ControllerAddress", vars::CONTROLLER_ADDRESS, false),
        ("SupervisoryAuthority", vars::SUPERVISORY_AUTHORITY, false),
    ] {
        let declared = block(&parameters, &format!("  {parameter}:")).join("\n");
        assert!(
            declared.contains("Type: String"),
            "{parameter} is a parameter"
        );
        assert_eq!(
            !declared.contains("Default:"),
            required,
            "{parameter} is required: {required}"
        );
        assert!(
            globals.contains(&format!("{var}: !Ref {parameter}\n")),
            "{var} is set from {parameter}"
        );
    }
}

/// The logical ids of every `AWS::Serverless::Function` in the template.
fn function_ids(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut resource = None;
    for line in t.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 2 && trimmed.ends_with(':') {
            resource = Some(trimmed.trim_end_matches(':').to_owned());
        } else if indent == 4
            && trimmed == "Type: AWS::Serverless::Function"
            && let Some(r) = resource.take()
        {
            out.push(r);
        }
    }
    out
}

#[test]
fn every_function_that_needs_metas_secrets_reads_them_at_run_time_and_no_other_does() {
    // The app secret signs `appsecret_proof` on every Graph API call ("Require App Secret" refuses calls
    // without it) and checks webhook signatures; the verify token answers Meta's handshake. account
    // verifies page tokens with Graph, notify sends Messenger replies, webhook checks Meta's signatures,
    // broadcast sends with the Send API, erase checks the data-deletion callback's signed_request and its
    // runner asks Meta's ids_for_pages for the callback's person; optin never talks to Meta. They get the secret's ARN and may read that one secret; no value is in
    // the template or an environment variable (readable with lambda:GetFunctionConfiguration, and never
    // updated by a rotation).
    const NEEDS_SECRET: &[&str] = &[
        "AccountFunction",
        "NotifyFunction",
        "NotifySweepFunction",
        "WebhookFunction",
        "BroadcastRunnerFunction",
        "EraseFunction",
        "EraseRunnerFunction",
    ];
    let t = template();
    let functions = function_ids(&t);
    for f in NEEDS_SECRET {
        assert!(functions.iter().any(|g| g == f), "{f} is in the template");
    }
    assert!(
        functions.len() > NEEDS_SECRET.len(),
        "the template has functions without the secret too: {functions:?}"
    );
    let parameter = block(&t, "  MetaSecretArn:").join("\n");
    assert!(
        parameter.contains("AllowedPattern: \"^arn:aws"),
        "the parameter takes an ARN"
    );
    let variable = format!("{}: !Ref MetaSecretArn", vars::META_SECRET_ARN);
    let read_the_secret = "- Sid: MetaSecret\n              Effect: Allow\n              \
                           Action: secretsmanager:GetSecretValue\n              \
                           Resource: !Ref MetaSecretArn";
    for f in &functions {
        let function = block(&t, &format!("  {f}:")).join("\n");
        let variables = block(&function, "Variables:").join("\n");
        let needs = NEEDS_SECRET.contains(&f.as_str());
        assert_eq!(
            variables.contains(&variable),
            needs,
            "{f} gets {} only if it talks to Meta",
            vars::META_SECRET_ARN
        );
        let policies = block(&function, "Policies:").join("\n");
        assert_eq!(
            policies.contains(read_the_secret),
            needs,
            "{f} may read the secret only if it talks to Meta"
        );
        assert_eq!(
            policies.matches("secretsmanager:").count(),
            usize::from(needs),
            "{f} has no other Secrets Manager permission"
        );
    }
    for value in [
        vars::FB_APP_SECRET,
        vars::FB_VERIFY_TOKEN,
        "resolve:secretsmanager",
    ] {
        assert!(
            !t.contains(value),
            "{value} is nowhere in the template: values are read at run time"
        );
    }
}

/// (function logical id, method, path) of every `HttpApi` event in the template.
fn template_routes(t: &str) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    let mut function = None;
    let mut method = None;
    for line in t.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 2 && trimmed.ends_with(':') {
            function = Some(trimmed.trim_end_matches(':').to_owned());
            method = None;
        } else if let Some(m) = trimmed.strip_prefix("Method: ") {
            method = Some(m.to_owned());
        } else if let Some(p) = trimmed.strip_prefix("Path: ")
            && let (Some(f), Some(m)) = (&function, method.take())
        {
            out.insert((f.clone(), m, p.to_owned()));
        }
    }
    out
}

#[test]
fn every_route_in_the_route_table_is_an_http_api_event_of_its_function_and_nothing_else_is() {
    use qchat_shared::routes::ROUTES;
    // Every GET route answers HEAD too (the router serves it with the GET handler), so API Gateway must
    // route HEAD to the same function.
    let from_code: std::collections::BTreeSet<_> = ROUTES
        .iter()
        .flat_map(|r| {
            let name = r.function().name();
            let logical = format!("{}{}Function", name[..1].to_uppercase(), &name[1..]);
            let head = (r.method == "GET")
                .then(|| (logical.clone(), "HEAD".to_owned(), r.path.to_owned()));
            std::iter::once((logical.clone(), r.method.to_owned(), r.path.to_owned())).chain(head)
        })
        .collect();
    let from_template = template_routes(&template());
    let missing: Vec<_> = from_code.difference(&from_template).collect();
    let extra: Vec<_> = from_template.difference(&from_code).collect();
    assert!(
        missing.is_empty(),
        "routes missing from template.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "routes in template.yaml but not in shared/src/routes.rs: {extra:?}"
    );
}

#[test]
fn every_function_builds_its_own_binary_with_cargo_lambda() {
    let t = template();
    for name in [
        "account",
        "notify",
        "webhook",
        "optin",
        "broadcast",
        "erase",
    ] {
        let logical = format!("  {}{}Function:", name[..1].to_uppercase(), &name[1..]);
        let function = block(&t, &logical).join("\n");
        assert!(
            function.contains("BuildMethod: rust-cargolambda"),
            "{name} builds with cargo-lambda"
        );
        assert!(
            function.contains(&format!("Binary: {name}")),
            "{name} names its binary"
        );
        let manifest = std::fs::read_to_string(format!(
            "{}/../functions/{name}/Cargo.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("function manifest");
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "functions/{name} has a binary named {name}"
        );
        let logs = block(&t, &format!("{}Logs:", logical.trim_end_matches(':'))).join("\n");
        assert!(
            logs.contains("RetentionInDays"),
            "{name} has a log group with retention"
        );
    }
}

#[test]
fn notify_consumes_only_outbox_inserts_from_the_stream_and_sweeps_on_a_schedule() {
    let t = template();
    let stream = block(&t, "  NotifyOutboxInserts:").join("\n");
    assert!(stream.contains("FunctionName: !Ref NotifyFunction.Alias"));
    assert!(stream.contains("EventSourceArn: !GetAtt Table.StreamArn"));
    assert!(
        stream.contains(r#""eventName": ["INSERT"]"#)
            && stream.contains(r#""t": {"S": ["outbox", "reply"]}"#)
    );
    let sweep = block(&t, "  NotifySweepFunction:").join("\n");
    assert!(sweep.contains("Binary: notify"));
    assert!(sweep.contains("Type: ScheduleV2") && sweep.contains("rate(1 minute)"));
    for f in ["  NotifyFunction:", "  NotifySweepFunction:"] {
        let function = block(&t, f).join("\n");
        assert!(function.contains("ses:SendEmail"), "{f}");
        // Notify deletes one item at a time; batch deletes were the old page erasure's, now the erase
        // function's.
        assert!(!function.contains("dynamodb:BatchWriteItem"), "{f}");
    }
}

#[test]
fn broadcast_runs_every_minute_with_least_privilege() {
    let t = template();
    let routes = block(&t, "  BroadcastFunction:").join("\n");
    let runner = block(&t, "  BroadcastRunnerFunction:").join("\n");
    assert!(runner.contains("Binary: broadcast") && routes.contains("Binary: broadcast"));
    assert!(runner.contains("Type: ScheduleV2") && runner.contains("rate(1 minute)"));
    assert!(
        !routes.contains("Type: ScheduleV2"),
        "the routes' function is not scheduled"
    );
    for (function, sends) in [(&routes, false), (&runner, true)] {
        let policies = block(function, "Policies:");
        // Every action granted, as written after `Action:` or in its list.
        let actions: Vec<&str> = policies
            .iter()
            .map(|l| l.trim())
            .filter_map(|l| l.strip_prefix("Action: ").or_else(|| l.strip_prefix("- ")))
            .filter(|a| a.contains(':') && !a.contains(' '))
            .collect();
        // Sealing uses the account's existing data key: opening it is the only KMS call.
        assert!(actions.contains(&"kms:Decrypt"), "{actions:?}");
        for action in &actions {
            let allowed = matches!(
                *action,
                "kms:Decrypt"
                    | "dynamodb:GetItem"
                    | "dynamodb:PutItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:ConditionCheckItem"
                    | "dynamodb:Query"
            ) || (sends
                && matches!(
                    *action,
                    "secretsmanager:GetSecretValue" | "dynamodb:BatchGetItem"
                ));
            assert!(
                allowed,
                "broadcast is granted only what it uses, not {action}"
            );
        }
        assert!(!function.contains("Type: DynamoDB"), "no stream");
    }
}

#[test]
fn erasures_run_every_minute_with_least_privilege() {
    let t = template();
    let routes = block(&t, "  EraseFunction:").join("\n");
    let runner = block(&t, "  EraseRunnerFunction:").join("\n");
    assert!(runner.contains("Binary: erase") && routes.contains("Binary: erase"));
    assert!(runner.contains("Type: ScheduleV2") && runner.contains("rate(1 minute)"));
    assert!(runner.contains("ReservedConcurrentExecutions: 1"));
    assert!(
        !routes.contains("Type: ScheduleV2"),
        "the routes' function is not scheduled"
    );
    let actions_of = |function: &str| -> Vec<String> {
        block(function, "Policies:")
            .iter()
            .map(|l| l.trim())
            .filter_map(|l| l.strip_prefix("Action: ").or_else(|| l.strip_prefix("- ")))
            .filter(|a| a.contains(':') && !a.contains(' '))
            .map(str::to_owned)
            .collect()
    };
    // The routes read, open sealed values for the exports (a page of leads' secrets in one batch read
    // of the key table), queue erasures (transactions of puts), end an erased account's sessions at once
    // (deletes, in batches), check Meta's signed_request with the app secret and seal its app-scoped id
    // under a system key (made by the first callback).
    for action in actions_of(&routes) {
        assert!(
            matches!(
                action.as_str(),
                "kms:Decrypt"
                    | "kms:GenerateDataKey"
                    | "secretsmanager:GetSecretValue"
                    | "dynamodb:GetItem"
                    | "dynamodb:PutItem"
                    | "dynamodb:Query"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:BatchWriteItem"
                    | "dynamodb:BatchGetItem"
            ),
            "the erase routes are granted only what they use, not {action}"
        );
    }
    // The runner deletes (the retention sweep finds expired items with Scan); for Meta's data-deletion
    // requests it opens the person's app-scoped id and each page's token (Decrypt only) and calls Graph
    // with appsecret_proof. Its one key it makes is the registrations key's daily version, for that
    // owner only.
    let kms = statement(
        &block(&t, "  EraseRunnerFunction:"),
        "RegistrationsKeyVersion",
    );
    assert!(kms.contains("Action: kms:GenerateDataKey\n"), "{kms}");
    assert!(
        kms.contains("kms:EncryptionContext:owner: system:registrations"),
        "{kms}"
    );
    for action in actions_of(&runner) {
        assert!(
            matches!(
                action.as_str(),
                "kms:Decrypt"
                    | "kms:GenerateDataKey"
                    | "secretsmanager:GetSecretValue"
                    | "dynamodb:GetItem"
                    | "dynamodb:PutItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:BatchWriteItem"
                    | "dynamodb:ConditionCheckItem"
                    | "dynamodb:Query"
                    | "dynamodb:Scan"
            ),
            "the erasure runner is granted only what it uses, not {action}"
        );
    }
}

/// The statement with `sid` in a function's policies, as text.
fn statement(function: &[&str], sid: &str) -> String {
    block(&function.join("\n"), &format!("- Sid: {sid}")).join("\n")
}

#[test]
fn the_key_table_is_outside_every_backup_and_protected_against_loss() {
    let t = template();
    let keys = block(&t, "  KeyTable:").join("\n");
    assert!(!keys.is_empty(), "the template declares KeyTable");
    // The same store backend serves it: the same keys, index and TTL attribute as the main table.
    for name in [attr::PK, attr::SK, attr::GSI1_PK, attr::GSI1_SK] {
        assert!(
            keys.contains(&format!("- AttributeName: {name}\n")),
            "{name}"
        );
    }
    assert!(keys.contains(&format!("IndexName: {}", attr::GSI1)));
    // A restore of the main table must not bring back a key or a lookup that erasure deleted.
    assert!(keys.contains("PointInTimeRecoveryEnabled: false"));
    assert!(!keys.contains("PointInTimeRecoveryEnabled: true"));
    assert!(!keys.contains("StreamSpecification"), "no stream copies it");
    // Losing it loses every encrypted value: nothing in a deployment may delete it.
    let header = block(&t, "Resources:").join("\n");
    assert!(header.contains("  KeyTable:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain"));
    for needed in [
        "DeletionProtectionEnabled: true",
        "SSEType: KMS",
        "KMSMasterKeyId: !GetAtt DataKey.Arn",
        "BillingMode: PAY_PER_REQUEST",
    ] {
        assert!(keys.contains(needed), "key table has {needed}");
    }
    let globals = block(&t, "Globals:").join("\n");
    assert!(globals.contains(&format!("{}: !Ref KeyTable", vars::KEY_TABLE_NAME)));
}

#[test]
fn every_function_reaches_the_key_table_with_only_the_actions_it_uses() {
    let t = template();
    let grants = |function: &str| -> Vec<String> {
        let policies = block(&t, &format!("  {function}:"));
        let stmt = statement(&policies, "KeyTableItems");
        assert!(
            stmt.contains("Resource: !GetAtt KeyTable.Arn"),
            "{function}: the key table only"
        );
        stmt.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("- dynamodb:"))
            .map(str::to_owned)
            .collect()
    };
    let read = ["GetItem", "Query"];
    for function in function_ids(&t) {
        let expected: Vec<&str> = match function.as_str() {
            // Makes and destroys data keys; email claims, sign-in limits and mail throttles.
            "AccountFunction" => vec![
                "GetItem",
                "PutItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
            ],
            // Reads data keys; may be the first to need the blind-index key, and makes it then.
            "WebhookFunction" => vec!["GetItem", "PutItem", "Query"],
            // Reads data keys and the suppression list; writes the list on a bounce or complaint.
            "NotifyFunction" => vec!["GetItem", "PutItem", "Query"],
            // Releases an erased account's email claim (and claims its sign-in limit slots); the
            // exports read the secrets of a page of leads sealed under their own keys.
            "EraseFunction" => vec!["GetItem", "PutItem", "DeleteItem", "Query", "BatchGetItem"],
            // Destroys an erased account's data keys; the retention sweep removes expired items and
            // rotates and retires the registrations key.
            "EraseRunnerFunction" => {
                vec![
                    "GetItem",
                    "PutItem",
                    "DeleteItem",
                    "Query",
                    "BatchWriteItem",
                    "Scan",
                ]
            }
            // Reads data keys, and the secrets of a batch of leads sealed under their own keys.
            "BroadcastRunnerFunction" => vec!["GetItem", "Query", "BatchGetItem"],
            _ => read.to_vec(),
        };
        assert_eq!(grants(&function), expected, "{function}");
    }
    // No function may delete or reconfigure the table itself.
    assert!(!t.contains("dynamodb:DeleteTable"));
    assert!(!t.contains("dynamodb:UpdateTable"));
}
