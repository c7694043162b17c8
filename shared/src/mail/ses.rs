//! The SES mailer: one `SendEmail` call per message, UTF-8 subject and text body.
//!
//! SES failures are classified into [`MailError`] here and nowhere else. The SDK error is kept whole as the
//! `source` (its chain names the SES error code for operators); the `reason` is a fixed phrase, so neither
//! carries the recipient's address.

use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::operation::send_email::SendEmailError;
use aws_sdk_ses::types::{Body, Content, Destination, Message};
use tracing::instrument;

use super::{Email, MailError, Mailer, SentEmail};

/// Sends through Amazon SES (API v1 `SendEmail`).
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_ses::Client,
    /// The verified identity mail is sent from (`noreply@example.com` or `Name <noreply@example.com>`).
    sender: String,
    /// The configuration set whose event destinations publish bounces and complaints.
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `sender` must be an identity SES has verified (or an address in a verified domain); SES refuses
    /// everything else with `MessageRejected`.
    pub fn new(client: aws_sdk_ses::Client, sender: String) -> Self {
        Self {
            client,
            sender,
            configuration_set: None,
        }
    }

    /// Sends every message with this SES configuration set, so its bounces and complaints are published
    /// to its event destination ([`super::suppression`] acts on them).
    #[must_use]
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }
}

const CHARSET: &str = "UTF-8";

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset(CHARSET)
        .build()
        .map_err(|e| MailError::Permanent {
            reason: "the SES request could not be built",
            source: Some(Box::new(e)),
        })
}

#[async_trait::async_trait]
impl Mailer for SesMailer {
    #[instrument(name = "mail.ses.send", skip_all, fields(reference = %email.reference))]
    async fn send(&self, email: &Email) -> Result<SentEmail, MailError> {
        super::check(email)?;
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text_body)?).build())
            .build();
        let result = self
            .client
            .send_email()
            .source(&self.sender)
            .destination(
                Destination::builder()
                    .to_addresses(email.to.expose())
                    .build(),
            )
            .message(message)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(out) => {
                tracing::debug!(outcome = "sent", "email handed to SES");
                Ok(SentEmail {
                    provider_id: out.message_id,
                })
            }
            Err(err) => {
                let error = classify(err);
                tracing::warn!(
                    outcome = if error.is_permanent() {
                        "refused"
                    } else {
                        "failed"
                    },
                    reason = error_reason(&error),
                    "SES did not send the email"
                );
                Err(error)
            }
        }
    }
}

fn error_reason(e: &MailError) -> &'static str {
    match e {
        MailError::Transient { reason, .. } | MailError::Permanent { reason, .. } => reason,
    }
}

/// What a failure means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Transient(&'static str),
    Permanent(&'static str),
}

/// Classifies an SES error by its code and HTTP status (the part that needs no SDK types, so it is tested
/// row by row). Permanent means this message cannot go out until a person changes something (the message,
/// the sender identity, the SES account or its configuration); transient means the same call may succeed
/// later without anyone acting.
fn classify_code(code: Option<&str>, status: Option<u16>) -> Verdict {
    use Verdict::{Permanent, Transient};
    match code {
        Some("MessageRejected") => Permanent("SES rejected the message"),
        Some("MailFromDomainNotVerifiedException") => {
            Permanent("the MAIL FROM domain is not verified in SES")
        }
        // Paused by AWS (reputation) or by an operator: lifting it takes a person, and by then the
        // account notices this message was for have usually expired, so it is not retried.
        Some("AccountSendingPausedException") => Permanent("SES sending is paused for the account"),
        Some("ConfigurationSetDoesNotExist" | "ConfigurationSetDoesNotExistException") => {
            Permanent("the SES configuration set does not exist")
        }
        Some("ConfigurationSetSendingPausedException") => {
            Permanent("SES sending is paused for the configuration set")
        }
        // SES reports both the per-second rate and the daily quota as `Throttling`.
        Some(
            "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => Transient("SES is throttling sends"),
        // Temporary credentials that lapsed between refresh and use are renewed by the SDK on the next call.
        Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired") => {
            Transient("the AWS credentials expired")
        }
        Some("ServiceUnavailable" | "InternalFailure" | "InternalError") => {
            Transient("SES is unavailable")
        }
        _ => match status {
            Some(429) => Transient("SES is throttling sends"),
            Some(s) if s >= 500 => Transient("SES is unavailable"),
            Some(_) => Permanent("SES refused the request"),
            None => Transient("SES gave no usable answer"),
        },
    }
}

/// Maps the SDK's error into a [`MailError`], keeping the SDK error as the source.
fn classify(err: SdkError<SendEmailError>) -> MailError {
    let verdict = match &err {
        SdkError::ServiceError(service) => {
            let code = match service.err() {
                // Matched by variant first: the modelled errors do not depend on the wire spelling.
                SendEmailError::MessageRejected(_) => Some("MessageRejected"),
                SendEmailError::MailFromDomainNotVerifiedException(_) => {
                    Some("MailFromDomainNotVerifiedException")
                }
                SendEmailError::AccountSendingPausedException(_) => {
                    Some("AccountSendingPausedException")
                }
                SendEmailError::ConfigurationSetDoesNotExistException(_) => {
                    Some("ConfigurationSetDoesNotExist")
                }
                SendEmailError::ConfigurationSetSendingPausedException(_) => {
                    Some("ConfigurationSetSendingPausedException")
                }
                other => other.code(),
            };
            classify_code(code, Some(service.raw().status().as_u16()))
        }
        // The SDK already retried these with backoff; they are still worth another try later.
        SdkError::TimeoutError(_) => Verdict::Transient("SES did not answer in time"),
        SdkError::DispatchFailure(_) => Verdict::Transient("SES could not be reached"),
        SdkError::ResponseError(_) => Verdict::Transient("SES gave no usable answer"),
        // Serialisation of our own input failed: the same input fails again.
        SdkError::ConstructionFailure(_) => {
            Verdict::Permanent("the SES request could not be built")
        }
        _ => Verdict::Transient("SES failed in an unexpected way"),
    };
    let source: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    match verdict {
        Verdict::Transient(reason) => MailError::Transient {
            reason,
            source: Some(source),
        },
        Verdict::Permanent(reason) => MailError::Permanent {
            reason,
            source: Some(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_known_code() {
        use Verdict::{Permanent, Transient};
        let permanent = |v: Verdict| matches!(v, Permanent(_));
        let rows: &[(Option<&str>, Option<u16>, bool)] = &[
            (Some("MessageRejected"), Some(400), true),
            (Some("MailFromDomainNotVerifiedException"), Some(400), true),
            (Some("AccountSendingPausedException"), Some(400), true),
            (Some("ConfigurationSetDoesNotExist"), Some(400), true),
            (
                Some("ConfigurationSetSendingPausedException"),
                Some(400),
                true,
            ),
            (Some("Throttling"), Some(400), false),
            (Some("ThrottlingException"), Some(400), false),
            (Some("ExpiredToken"), Some(403), false),
            (Some("ServiceUnavailable"), Some(503), false),
            (Some("InternalFailure"), Some(500), false),
            (Some("InvalidParameterValue"), Some(400), true),
            (Some("AccessDenied"), Some(403), true),
            (None, Some(502), false),
            (None, Some(429), false),
            (None, Some(400), true),
            (None, None, false),
        ];
        for &(code, status, expect_permanent) in rows {
            let v = classify_code(code, status);
            assert_eq!(
                permanent(v),
                expect_permanent,
                "{code:?} {status:?} -> {v:?}"
            );
            let (Transient(reason) | Permanent(reason)) = v;
            assert!(!reason.is_empty());
        }
    }
}

/// End-to-end classification through the real SDK against a fake SES endpoint on 127.0.0.1.
#[cfg(all(test, feature = "test-support"))]
mod wire_tests {
    use std::error::Error as _;

    use aws_sdk_ses::config::{BehaviorVersion, Credentials, Region};
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::EmailAddress;

    fn client(endpoint: &str) -> aws_sdk_ses::Client {
        let config = aws_sdk_ses::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(endpoint)
            .http_client(crate::https::sdk_http_client())
            // The SDK's own retries would multiply the calls and slow the test; classification is the subject.
            .retry_config(aws_sdk_ses::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_ses::Client::from_conf(config)
    }

    fn email() -> Option<Email> {
        Some(Email {
            to: EmailAddress::parse("person@example.com").ok()?,
            subject: "Subject".to_owned(),
            text_body: "Body".to_owned(),
            reference: "ref-1".to_owned(),
        })
    }

    fn error_xml(code: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>details</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        )
    }

    async fn send_against(status: u16, body: String) -> Result<SentEmail, MailError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("content-type", "text/xml")
                    .set_body_string(body),
            )
            .mount(&server)
            .await;
        let Some(email) = email() else {
            panic!("test email must parse");
        };
        SesMailer::new(client(&server.uri()), "noreply@example.com".to_owned())
            .send(&email)
            .await
    }

    #[tokio::test]
    async fn ses_error_codes_map_to_transient_or_permanent_with_the_sdk_error_as_source() {
        let cases = [
            (400, "MessageRejected", true),
            (400, "MailFromDomainNotVerifiedException", true),
            (400, "AccountSendingPausedException", true),
            (400, "ConfigurationSetDoesNotExist", true),
            (400, "ConfigurationSetSendingPausedException", true),
            (400, "Throttling", false),
            (503, "ServiceUnavailable", false),
            (500, "SomethingNew", false),
        ];
        for (status, code, permanent) in cases {
            let result = send_against(status, error_xml(code)).await;
            let Err(err) = result else {
                panic!("{code} must fail");
            };
            assert_eq!(err.is_permanent(), permanent, "{code}: {err}");
            let source = err.source().map(|s| format!("{s:?}")).unwrap_or_default();
            assert!(source.contains(code), "{code}: the SDK error is the source");
            assert!(!err.to_string().contains("person@example.com"));
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_transient() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let Some(email) = email() else {
            panic!("test email must parse");
        };
        let result = SesMailer::new(
            client(&format!("http://127.0.0.1:{port}")),
            "noreply@example.com".to_owned(),
        )
        .send(&email)
        .await;
        assert!(matches!(
            result,
            Err(MailError::Transient {
                source: Some(_),
                ..
            })
        ));
    }
}
