//! `template.yaml` as CloudFormation will see it: translated offline by the AWS SAM translator
//! (`infra/synth_template.py`, run with the project's `.venv`), then checked for what goes wrong only in
//! production: alarms that reach nobody, schedules that clash across stacks, failures that vanish, log
//! groups created by their functions, unthrottled routes, deployments without a way back.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use qchat_shared::config::{DEFAULT_GRAPH_VERSION, vars};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The translated template's `Resources` (translated once per test binary, in about a second).
fn resources() -> &'static serde_json::Map<String, Value> {
    static SYNTH: OnceLock<Value> = OnceLock::new();
    SYNTH
        .get_or_init(|| {
            let python = root().join(".venv/bin/python");
            let out = Command::new(&python)
                .arg(root().join("infra/synth_template.py"))
                .arg(root().join("template.yaml"))
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "could not run {}: {e}; run ./infra/test.sh once (it installs the SAM translator into .venv)",
                        python.display()
                    )
                });
            assert!(
                out.status.success(),
                "the SAM translator refused template.yaml:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("the translator prints JSON")
        })
        .get("Resources")
        .and_then(Value::as_object)
        .expect("a template with resources")
}

fn of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), &r["Properties"]))
        .collect()
}

fn resource(id: &str) -> &'static Value {
    resources()
        .get(id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

/// The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, ..]}` names.
fn target(v: &Value) -> Option<&str> {
    v.get("Ref")
        .and_then(Value::as_str)
        .or_else(|| v.get("Fn::GetAtt")?.get(0)?.as_str())
}

/// The function a reference names, through an alias if it names one.
fn function_of(v: &Value) -> Option<&str> {
    let id = target(v)?;
    match resource(id)["Type"].as_str()? {
        "AWS::Lambda::Function" => Some(id),
        "AWS::Lambda::Alias" => target(&resource(id)["Properties"]["FunctionName"]),
        _ => None,
    }
}

fn functions() -> Vec<(&'static str, &'static Value)> {
    of_type("AWS::Lambda::Function")
}

/// The binary a function runs (`sam build` builds `Metadata.BuildProperties.Binary`).
fn binary(function: &str) -> &'static str {
    resource(function)["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{function} names its binary"))
}

fn env(function: &str) -> &'static Value {
    &resource(function)["Properties"]["Environment"]["Variables"]
}

/// Every statement of the inline policies of a function's role.
fn statements(function: &str) -> Vec<&'static Value> {
    let role = target(&resource(function)["Properties"]["Role"]).expect("a role in the template");
    resource(role)["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect()
}

fn listed(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Whether a resource policy lets `service` do `action`.
fn allows(policy: &Value, service: &str, action: &str) -> bool {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            s["Effect"] == "Allow"
                && listed(&s["Principal"]["Service"]).contains(&&json!(service))
                && listed(&s["Action"]).iter().any(|a| {
                    a.as_str().is_some_and(|a| {
                        a == action || a.strip_suffix('*').is_some_and(|p| action.starts_with(p))
                    })
                })
        })
}

/// Whether `service` may publish to the topic `topic`: a topic policy allows it, and the topic is either
/// unencrypted or under a key of this template whose policy lets the service use it (the AWS-managed
/// `alias/aws/sns` key lets no service publish).
fn publishable_by(topic: &str, service: &str) -> Result<(), String> {
    let policy_allows = of_type("AWS::SNS::TopicPolicy").iter().any(|(_, p)| {
        listed(&p["Topics"])
            .iter()
            .any(|t| target(t) == Some(topic))
            && allows(&p["PolicyDocument"], service, "sns:Publish")
    });
    if !policy_allows {
        return Err(format!("no topic policy lets {service} publish to {topic}"));
    }
    match &resource(topic)["Properties"]["KmsMasterKeyId"] {
        Value::Null => Ok(()),
        key => {
            let key = target(key)
                .ok_or_else(|| format!("{topic} is under a key outside the template: {key}"))?;
            let policy = &resource(key)["Properties"]["KeyPolicy"];
            (allows(policy, service, "kms:GenerateDataKey")
                && allows(policy, service, "kms:Decrypt"))
            .then_some(())
            .ok_or_else(|| format!("{service} may not use {key}, the key of {topic}"))
        }
    }
}

#[test]
fn every_alarm_notifies_on_alarm_and_on_recovery_a_topic_cloudwatch_can_publish_to() {
    let alarms = of_type("AWS::CloudWatch::Alarm");
    assert!(alarms.len() > 10, "the template has its alarms");
    for (id, alarm) in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let topics = listed(&alarm[actions]);
            assert!(!topics.is_empty(), "{id} has {actions}");
            for topic in topics {
                let topic =
                    target(topic).unwrap_or_else(|| panic!("{id}: {actions} names a topic"));
                assert_eq!(resource(topic)["Type"], "AWS::SNS::Topic", "{id}");
                publishable_by(topic, "cloudwatch.amazonaws.com")
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
            }
        }
    }
}

#[test]
fn ses_can_publish_bounces_and_complaints_to_a_topic_that_invokes_notify() {
    let destinations = of_type("AWS::SES::ConfigurationSetEventDestination");
    assert_eq!(destinations.len(), 1);
    let destination = &destinations[0].1["EventDestination"];
    let kinds = listed(&destination["MatchingEventTypes"]);
    assert!(kinds.contains(&&json!("bounce")) && kinds.contains(&&json!("complaint")));
    let topic = target(&destination["SnsDestination"]["TopicARN"]).expect("an SNS destination");
    publishable_by(topic, "ses.amazonaws.com").unwrap();
    let subscribers: Vec<_> = of_type("AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, s)| target(&s["TopicArn"]) == Some(topic) && s["Protocol"] == "lambda")
        .filter_map(|(_, s)| function_of(&s["Endpoint"]))
        .collect();
    assert_eq!(subscribers.len(), 1, "one function handles SES feedback");
    assert_eq!(binary(subscribers[0]), "notify");
    // Every function that can send mail sends it with that configuration set.
    let set = target(&destinations[0].1["ConfigurationSetName"]).expect("a configuration set");
    for (function, _) in functions() {
        let sends = statements(function)
            .iter()
            .any(|s| listed(&s["Action"]).contains(&&json!("ses:SendEmail")));
        let configured = target(&env(function)[vars::SES_CONFIGURATION_SET]) == Some(set);
        assert_eq!(
            sends, configured,
            "{function}: sends mail only with the configuration set"
        );
    }
}

#[test]
fn every_schedule_is_named_after_its_stack() {
    let schedules = of_type("AWS::Scheduler::Schedule");
    assert!(!schedules.is_empty());
    for (id, schedule) in schedules {
        let name = schedule["Name"]["Fn::Sub"].as_str().unwrap_or_default();
        assert!(
            name.contains("${AWS::StackName}"),
            "{id} is named per stack (a second stack in the account would clash): {}",
            schedule["Name"]
        );
    }
    for (id, rule) in of_type("AWS::Events::Rule") {
        assert!(
            rule["Name"].is_null(),
            "{id}: CloudFormation names rules per stack when unnamed"
        );
    }
}

/// The binaries that call Graph with `appsecret_proof`, or check Meta's signatures: they need the app
/// secret. (A new Graph-calling function is added here.)
const GRAPH_BINARIES: &[&str] = &["account", "notify", "webhook", "broadcast", "erase"];
/// Functions that run a Graph-calling binary but never call Meta: the broadcast routes (the same binary
/// as the runner, which sends) read and write the store only.
const NEVER_CALL_GRAPH: &[&str] = &["BroadcastFunction"];

fn calls_graph(function: &str) -> bool {
    GRAPH_BINARIES.contains(&binary(function)) && !NEVER_CALL_GRAPH.contains(&function)
}

/// Whether a function can get the app secret: as a variable (resolved at deploy time), or by a role
/// allowed to read the secret named by `MetaSecretName` at run time.
fn gets_the_app_secret(function: &str) -> bool {
    let as_variable = !env(function)[vars::FB_APP_SECRET].is_null();
    let at_run_time = statements(function).iter().any(|s| {
        s["Effect"] == "Allow"
            && listed(&s["Action"]).contains(&&json!("secretsmanager:GetSecretValue"))
            && s["Resource"].to_string().contains("MetaSecret")
    });
    as_variable || at_run_time
}

#[test]
fn every_function_that_calls_graph_or_checks_meta_signatures_gets_the_app_secret_and_no_other_does()
{
    let all = functions();
    assert!(all.iter().any(|(f, _)| !calls_graph(f)));
    for (function, _) in all {
        assert_eq!(
            gets_the_app_secret(function),
            calls_graph(function),
            "{function} ({}) gets the app secret only if it calls Graph",
            binary(function)
        );
    }
}

#[test]
fn the_graph_api_version_is_a_parameter_given_to_every_graph_caller() {
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(
        t.contains(&format!(
            "  GraphApiVersion:\n    Type: String\n    Default: {DEFAULT_GRAPH_VERSION}\n"
        )),
        "GraphApiVersion defaults to the code's {DEFAULT_GRAPH_VERSION}"
    );
    for (function, _) in functions() {
        let b = binary(function);
        // webhook and erase only check Meta's signatures; they never call the Graph API.
        if !matches!(b, "webhook" | "erase") && calls_graph(function) {
            assert_eq!(
                env(function)[vars::GRAPH_VERSION],
                json!({ "Ref": "GraphApiVersion" }),
                "{function}"
            );
        }
    }
}

#[test]
fn only_the_account_function_gets_the_operator_email() {
    for (function, _) in functions() {
        assert_eq!(
            !env(function)[vars::OPERATOR_EMAIL].is_null(),
            binary(function) == "account",
            "{function}"
        );
    }
}

/// The `EventInvokeConfig` of a function's alias, if any.
fn invoke_config(function: &str) -> Option<&'static Value> {
    of_type("AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .find(|(_, c)| target(&c["FunctionName"]) == Some(function))
        .map(|(_, c)| c)
}

fn alarmed(namespace: &str, metric: &str, dimension: &str, id: &str) -> bool {
    of_type("AWS::CloudWatch::Alarm").iter().any(|(_, a)| {
        a["Namespace"] == namespace
            && a["MetricName"] == metric
            && listed(&a["Dimensions"])
                .iter()
                .any(|d| d["Name"] == dimension && target(&d["Value"]) == Some(id))
    })
}

/// A failure destination: a queue of this template whose depth is alarmed.
fn check_failure_queue(what: &str, arn: &Value) {
    let queue = target(arn).unwrap_or_else(|| panic!("{what}: a failure destination"));
    assert_eq!(resource(queue)["Type"], "AWS::SQS::Queue", "{what}");
    assert!(
        alarmed(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            queue
        ),
        "{what}: the depth of {queue} is alarmed"
    );
}

/// An asynchronously invoked function: bounded retries and age, a failure destination, an alarm on
/// dropped events.
fn check_async(what: &str, function: &str) {
    let config = invoke_config(function)
        .unwrap_or_else(|| panic!("{what}: {function} has an EventInvokeConfig"));
    let retries = config["MaximumRetryAttempts"].as_i64().unwrap_or(-1);
    assert!((0..=2).contains(&retries), "{what}: retries bounded");
    let age = config["MaximumEventAgeInSeconds"].as_i64().unwrap_or(-1);
    assert!(
        (60..=3600).contains(&age),
        "{what}: event age bounded to an hour"
    );
    check_failure_queue(
        what,
        &config["DestinationConfig"]["OnFailure"]["Destination"],
    );
    assert!(
        alarmed("AWS/Lambda", "AsyncEventsDropped", "FunctionName", function),
        "{what}: dropped events of {function} are alarmed"
    );
}

#[test]
fn every_schedule_has_bounded_retries_a_failure_queue_and_runs_one_at_a_time() {
    for (id, schedule) in of_type("AWS::Scheduler::Schedule") {
        let t = &schedule["Target"];
        let retries = t["RetryPolicy"]["MaximumRetryAttempts"]
            .as_i64()
            .unwrap_or(-1);
        assert!((0..=3).contains(&retries), "{id}: delivery retries bounded");
        check_failure_queue(id, &t["DeadLetterConfig"]["Arn"]);
        let function = function_of(&t["Arn"]).unwrap_or_else(|| panic!("{id} invokes a function"));
        assert_ne!(
            target(&t["Arn"]),
            Some(function),
            "{id} invokes the alias, which canaries move"
        );
        check_async(id, function);
        // Reserved concurrency 1: a run never overlaps the previous one.
        assert_eq!(
            resource(function)["Properties"]["ReservedConcurrentExecutions"],
            1,
            "{id}"
        );
    }
}

#[test]
fn every_sns_subscription_of_a_function_has_a_redrive_queue_and_bounded_retries() {
    let subscriptions: Vec<_> = of_type("AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, s)| s["Protocol"] == "lambda")
        .collect();
    assert!(!subscriptions.is_empty());
    for (id, s) in subscriptions {
        check_failure_queue(id, &s["RedrivePolicy"]["deadLetterTargetArn"]);
        check_async(id, function_of(&s["Endpoint"]).unwrap());
    }
}

#[test]
fn every_stream_mapping_bisects_bounds_retries_keeps_failures_and_is_watched() {
    let mappings = of_type("AWS::Lambda::EventSourceMapping");
    assert!(!mappings.is_empty());
    for (id, m) in mappings {
        let retries = m["MaximumRetryAttempts"].as_i64().unwrap_or(-1);
        assert!(
            (0..=5).contains(&retries),
            "{id}: retries bounded (unset or -1 is forever)"
        );
        let age = m["MaximumRecordAgeInSeconds"].as_i64().unwrap_or(-1);
        assert!((60..=3600).contains(&age), "{id}: record age bounded");
        assert_eq!(m["BisectBatchOnFunctionError"], true, "{id}");
        check_failure_queue(id, &m["DestinationConfig"]["OnFailure"]["Destination"]);
        let function = function_of(&m["FunctionName"]).unwrap();
        assert_ne!(
            target(&m["FunctionName"]),
            Some(function),
            "{id} invokes the alias"
        );
        assert!(
            alarmed("AWS/Lambda", "IteratorAge", "FunctionName", function),
            "{id}: the stream's lag is alarmed"
        );
    }
}

#[test]
fn no_role_reads_other_streams_than_the_tables() {
    for (id, role) in of_type("AWS::IAM::Role") {
        let managed = role["ManagedPolicyArns"].to_string();
        assert!(
            !managed.contains("AWSLambdaDynamoDBExecutionRole"),
            "{id} reads every stream"
        );
    }
    for (function, _) in functions() {
        for s in statements(function) {
            if listed(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.contains("GetRecords")))
            {
                assert_eq!(
                    s["Resource"],
                    json!({ "Fn::Sub": "${Table.Arn}/stream/*" }),
                    "{function}"
                );
            }
        }
    }
}

#[test]
fn every_log_group_exists_before_its_function_with_retention_and_json_logs() {
    for (function, p) in functions() {
        let logging = &p["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{function}");
        let group = logging["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{function} names a log group of the template"));
        let group = resource(group);
        assert_eq!(group["Type"], "AWS::Logs::LogGroup");
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{function}: retention"
        );
        // A name derived from the function would make the group wait for it (and lose the race).
        let name = group["Properties"]["LogGroupName"].to_string();
        for (other, _) in functions() {
            assert!(
                !name.contains(&format!("${{{other}}}")),
                "{function}: {name}"
            );
        }
        assert!(
            name.contains("${AWS::StackName}"),
            "{function}: named per stack: {name}"
        );
    }
}

#[test]
fn every_function_has_error_throttle_and_duration_alarms_and_a_canary_that_rolls_back_on_errors() {
    for (function, _) in functions() {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                alarmed("AWS/Lambda", metric, "FunctionName", function),
                "{function}: {metric}"
            );
        }
        let timeout_ms = resource(function)["Properties"]["Timeout"]
            .as_i64()
            .unwrap()
            * 1000;
        let near_timeout = of_type("AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
            a["MetricName"] == "Duration"
                && target(&a["Dimensions"][0]["Value"]) == Some(function)
                && a["Threshold"]
                    .as_i64()
                    .is_some_and(|t| t < timeout_ms && t >= timeout_ms / 2)
        });
        assert!(
            near_timeout,
            "{function}: duration alarmed near its timeout"
        );

        let (alias, _) = of_type("AWS::Lambda::Alias")
            .into_iter()
            .find(|(_, a)| target(&a["FunctionName"]) == Some(function))
            .unwrap_or_else(|| panic!("{function} has an alias"));
        let group = target(
            &resource(alias)["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"],
        )
        .unwrap_or_else(|| panic!("{function}: CodeDeploy moves its alias"));
        let group = &resource(group)["Properties"];
        assert_eq!(group["AutoRollbackConfiguration"]["Enabled"], true);
        let rollback: BTreeSet<_> = listed(&group["AlarmConfiguration"]["Alarms"])
            .iter()
            .filter_map(|a| target(&a["Name"]))
            .collect();
        assert!(
            rollback.iter().any(|a| {
                let p = &resource(a)["Properties"];
                p["MetricName"] == "Errors"
                    && target(&p["Dimensions"][0]["Value"]) == Some(function)
            }),
            "{function}: its errors alarm rolls a deployment back"
        );
    }
}

#[test]
fn every_route_is_throttled_and_the_costly_public_ones_strictly() {
    use qchat_shared::routes::ROUTES;
    let stages = of_type("AWS::ApiGatewayV2::Stage");
    assert_eq!(stages.len(), 1);
    let stage = stages[0].1;
    let default = &stage["DefaultRouteSettings"];
    let default_rate = default["ThrottlingRateLimit"]
        .as_f64()
        .expect("a default rate for every route");
    assert!(default["ThrottlingBurstLimit"].as_i64().is_some());
    let routes: BTreeSet<String> = ROUTES
        .iter()
        .flat_map(|r| {
            let head = (r.method == "GET").then(|| format!("HEAD {}", r.path));
            std::iter::once(format!("{} {}", r.method, r.path)).chain(head)
        })
        .collect();
    let settings = stage["RouteSettings"]
        .as_object()
        .expect("per-route settings");
    for (key, s) in settings {
        assert!(
            routes.contains(key),
            "a throttle for {key}, which is no route (a typo throttles nothing)"
        );
        assert!(
            s["ThrottlingRateLimit"].as_f64().is_some()
                && s["ThrottlingBurstLimit"].as_i64().is_some()
        );
    }
    for strict in [
        "POST /api/accounts",
        "POST /api/sessions",
        "POST /api/password-resets",
    ] {
        let rate = settings[strict]["ThrottlingRateLimit"]
            .as_f64()
            .unwrap_or(f64::MAX);
        assert!(
            rate <= 5.0 && rate < default_rate,
            "{strict} is throttled strictly: {rate}"
        );
    }
}

#[test]
fn every_public_function_has_reserved_concurrency() {
    for (function, p) in functions() {
        let public = of_type("AWS::Lambda::Permission").iter().any(|(_, perm)| {
            function_of(&perm["FunctionName"]) == Some(function)
                && perm["Principal"] == "apigateway.amazonaws.com"
        });
        if public {
            let reserved = p["ReservedConcurrentExecutions"].as_i64().unwrap_or(0);
            assert!(
                (1..=50).contains(&reserved),
                "{function}: reserved concurrency {reserved}"
            );
        }
    }
}

#[test]
fn the_api_the_table_and_the_webhook_signatures_are_alarmed() {
    let api = of_type("AWS::ApiGatewayV2::Api")[0].0;
    for metric in ["5xx", "Latency"] {
        assert!(
            alarmed("AWS/ApiGateway", metric, "ApiId", api),
            "API {metric}"
        );
    }
    for table in ["Table", "KeyTable"] {
        let throttles = of_type("AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
            let m = a["Metrics"].to_string();
            m.contains("ReadThrottleEvents")
                && m.contains("WriteThrottleEvents")
                && m.contains(&format!("\"Ref\":\"{table}\""))
        });
        assert!(throttles, "DynamoDB throttles of {table}");
    }
    for metric in ["Reputation.BounceRate", "Reputation.ComplaintRate"] {
        assert!(
            of_type("AWS::CloudWatch::Alarm")
                .iter()
                .any(|(_, a)| a["Namespace"] == "AWS/SES" && a["MetricName"] == metric),
            "{metric}"
        );
    }
    // The metric filter counts a line the webhook really writes, from the webhook's own group.
    let filters = of_type("AWS::Logs::MetricFilter");
    let (_, filter) = filters
        .iter()
        .find(|(_, f)| f["MetricTransformations"][0]["MetricName"] == "WebhookSignatureFailures")
        .expect("a signature-failure metric");
    let webhook = functions()
        .into_iter()
        .find(|(f, _)| binary(f) == "webhook")
        .unwrap()
        .1;
    assert_eq!(filter["LogGroupName"], webhook["LoggingConfig"]["LogGroup"]);
    let pattern = filter["FilterPattern"].as_str().unwrap();
    let message = pattern.split('"').nth(1).expect("a quoted message");
    let source = std::fs::read_to_string(root().join("functions/webhook/src/lib.rs")).unwrap();
    assert!(
        source.contains(&format!("\"{message}\"")),
        "the webhook logs {message:?}"
    );
    assert!(
        of_type("AWS::CloudWatch::Alarm")
            .iter()
            .any(|(_, a)| a["MetricName"] == "WebhookSignatureFailures"),
        "signature failures are alarmed"
    );
}

#[test]
fn the_outputs_give_meta_the_webhook_url() {
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let outputs = t.split("\nOutputs:\n").nth(1).expect("outputs");
    assert!(outputs.contains("  WebhookUrl:\n"));
    assert!(outputs.contains(".execute-api.${AWS::Region}.${AWS::URLSuffix}/webhook\n"));
}
