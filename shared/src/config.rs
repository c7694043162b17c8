//! Typed configuration, read once at start-up from the environment (names as in `template.yaml` and
//! SPEC §5). Nothing else in the code reads the environment. Errors name the variable and the rule, never
//! the value; secrets are held in `secrecy` types.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::domain::EmailAddress;

/// Where data, keys, mail and messages go.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded default: SQLite store, local keyring, file outboxes, all under `data_dir`.
    Local { data_dir: PathBuf },
    /// DynamoDB, KMS and SES in the deployment's AWS account. `key_table` is the key store: the data
    /// keys and the email lookups, in a table the main table's backups do not reach.
    Aws {
        table: String,
        key_table: String,
        kms_key_id: String,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (CloudWatch), chosen automatically inside Lambda.
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

/// Meta (Graph API) settings.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Send API base URL. `None` locally means "write to the Messenger outbox file instead".
    pub base_url: Option<String>,
    /// Graph API version, e.g. `v21.0`.
    pub version: String,
    /// The app secret: verifies webhook signatures and signs `appsecret_proof`.
    pub app_secret: Option<SecretString>,
    /// The token Meta echoes in the webhook verification handshake.
    pub verify_token: Option<SecretString>,
    /// The Secrets Manager secret holding both (AWS): read at run time instead of the two values above.
    pub secret_arn: Option<String>,
}

/// Who is responsible for the personal data this deployment holds: named in the privacy notice and the
/// terms, with how to reach them. Published by design, so not held as a personal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// The person or organisation running this deployment (the controller of account holders' data).
    pub name: String,
    /// Where people write about their data (rights requests, complaints, breaches).
    pub email: String,
    /// An optional postal address, on one line.
    pub postal_address: Option<String>,
    /// The data protection supervisory authority competent for the controller (name, and where to reach
    /// it), on one line; unset, the notice points to the authority of the person's own EU country.
    pub supervisory_authority: Option<String>,
    /// True when the local defaults are in use: the notice then says the details are placeholders.
    pub placeholder: bool,
}

/// The local defaults: recognisably not a real controller, so a local notice never looks finished.
const LOCAL_CONTROLLER_NAME: &str =
    "The operator of this local qchat (placeholder: set QCHAT_CONTROLLER_NAME)";
const LOCAL_CONTROLLER_EMAIL: &str = "controller@localhost.localdomain";

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    /// Address the local server listens on (ignored in Lambda).
    pub addr: SocketAddr,
    /// Public base URL of the API, for links in emails and Messenger (unsubscribe, status pages).
    pub public_url: String,
    /// The email address of the account that gets the operator role.
    pub operator_email: Option<EmailAddress>,
    /// The `From` address of notices (an SES-verified identity in AWS).
    pub mail_from: String,
    /// The SES configuration set every mail is sent with (its bounce and complaint events reach notify).
    pub ses_configuration_set: Option<String>,
    /// Who is responsible for the data, as the privacy notice and terms name them.
    pub controller: Controller,
    pub graph: GraphConfig,
    pub log_format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `qchat_shared=debug`.
    pub log_filter: String,
}

/// A configuration variable that is missing or invalid. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: &'static str,
}

/// Variable names, shared with `template.yaml` (a test checks the template sets the AWS ones).
pub mod vars {
    pub const BACKEND: &str = "QCHAT_BACKEND";
    pub const DATA_DIR: &str = "QCHAT_DATA_DIR";
    pub const TABLE_NAME: &str = "QCHAT_TABLE_NAME";
    pub const KEY_TABLE_NAME: &str = "QCHAT_KEY_TABLE_NAME";
    pub const KMS_KEY_ID: &str = "QCHAT_KMS_KEY_ID";
    pub const ADDR: &str = "QCHAT_ADDR";
    pub const PUBLIC_URL: &str = "QCHAT_PUBLIC_URL";
    pub const OPERATOR_EMAIL: &str = "QCHAT_OPERATOR_EMAIL";
    pub const MAIL_FROM: &str = "QCHAT_MAIL_FROM";
    pub const SES_CONFIGURATION_SET: &str = "QCHAT_SES_CONFIGURATION_SET";
    pub const CONTROLLER_NAME: &str = "QCHAT_CONTROLLER_NAME";
    pub const CONTROLLER_EMAIL: &str = "QCHAT_CONTROLLER_EMAIL";
    pub const CONTROLLER_ADDRESS: &str = "QCHAT_CONTROLLER_ADDRESS";
    pub const SUPERVISORY_AUTHORITY: &str = "QCHAT_SUPERVISORY_AUTHORITY";
    pub const GRAPH_URL: &str = "QCHAT_GRAPH_URL";
    pub const GRAPH_VERSION: &str = "QCHAT_GRAPH_VERSION";
    pub const FB_APP_SECRET: &str = "QCHAT_FB_APP_SECRET";
    pub const FB_VERIFY_TOKEN: &str = "QCHAT_FB_VERIFY_TOKEN";
    pub const META_SECRET_ARN: &str = "QCHAT_META_SECRET_ARN";
    pub const LOG: &str = "QCHAT_LOG";
    /// Set by the Lambda runtime; its presence selects JSON logs.
    pub const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
}

/// The Graph API version used when `QCHAT_GRAPH_VERSION` is unset (the template's default too).
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let require = |name: &'static str| {
            get(name).ok_or(ConfigError {
                variable: name,
                problem: "must be set when QCHAT_BACKEND=aws",
            })
        };

        let backend = match get(vars::BACKEND).as_deref() {
            None | Some("local") => Backend::Local {
                data_dir: PathBuf::from(get(vars::DATA_DIR).unwrap_or_else(|| ".qchat".to_owned())),
            },
            Some("aws") => Backend::Aws {
                table: require(vars::TABLE_NAME)?,
                key_table: require(vars::KEY_TABLE_NAME)?,
                kms_key_id: require(vars::KMS_KEY_ID)?,
            },
            Some(_) => {
                return Err(ConfigError {
                    variable: vars::BACKEND,
                    problem: "must be local or aws",
                });
            }
        };

        let addr = match get(vars::ADDR) {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v.parse().map_err(|_| ConfigError {
                variable: vars::ADDR,
                problem: "must be an address like 127.0.0.1:3000",
            })?,
        };

        let public_url = match (get(vars::PUBLIC_URL), &backend) {
            (None, Backend::Local { .. }) => format!("http://{addr}"),
            (None, Backend::Aws { .. }) => {
                return Err(ConfigError {
                    variable: vars::PUBLIC_URL,
                    problem: "must be set when QCHAT_BACKEND=aws",
                });
            }
            (Some(v), _) if v.starts_with("https://") || v.starts_with("http://") => {
                v.trim_end_matches('/').to_owned()
            }
            (Some(_), _) => {
                return Err(ConfigError {
                    variable: vars::PUBLIC_URL,
                    problem: "must start with https:// or http://",
                });
            }
        };

        let operator_email = get(vars::OPERATOR_EMAIL)
            .map(|v| EmailAddress::parse(&v))
            .transpose()
            .map_err(|_| ConfigError {
                variable: vars::OPERATOR_EMAIL,
                problem: "must be an email address",
            })?;

        let mail_from = match (&backend, get(vars::MAIL_FROM)) {
            (_, Some(v)) => {
                EmailAddress::parse(&v).map_err(|_| ConfigError {
                    variable: vars::MAIL_FROM,
                    problem: "must be an email address",
                })?;
                v
            }
            (Backend::Local { .. }, None) => "qchat@localhost.localdomain".to_owned(),
            (Backend::Aws { .. }, None) => require(vars::MAIL_FROM)?,
        };

        let controller = controller(&backend, &get)?;

        let graph_base = get(vars::GRAPH_URL);
        if let Some(url) = &graph_base
            && !(url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost"))
        {
            return Err(ConfigError {
                variable: vars::GRAPH_URL,
                problem: "must be an https:// URL (plain http only on 127.0.0.1 or localhost)",
            });
        }
        let graph_base = match (&backend, graph_base) {
            (_, Some(u)) => Some(u.trim_end_matches('/').to_owned()),
            (Backend::Aws { .. }, None) => Some("https://graph.facebook.com".to_owned()),
            (Backend::Local { .. }, None) => None,
        };
        let version = get(vars::GRAPH_VERSION).unwrap_or_else(|| DEFAULT_GRAPH_VERSION.to_owned());
        let version_ok = version.strip_prefix('v').is_some_and(|rest| {
            rest.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
        });
        if !version_ok {
            return Err(ConfigError {
                variable: vars::GRAPH_VERSION,
                problem: "must look like v21.0",
            });
        }

        let log_format = if get(vars::LAMBDA_FUNCTION_NAME).is_some() {
            LogFormat::Json
        } else {
            LogFormat::Text
        };

        Ok(Self {
            backend,
            addr,
            public_url,
            operator_email,
            mail_from,
            ses_configuration_set: get(vars::SES_CONFIGURATION_SET),
            controller,
            graph: GraphConfig {
                base_url: graph_base,
                version,
                app_secret: get(vars::FB_APP_SECRET).map(SecretString::from),
                verify_token: get(vars::FB_VERIFY_TOKEN).map(SecretString::from),
                secret_arn: get(vars::META_SECRET_ARN),
            },
            log_format,
            log_filter: get(vars::LOG).unwrap_or_else(|| "info".to_owned()),
        })
    }
}

/// A line of text shown to people: trimmed, 1 to `max` characters, no control or bidi/format characters
/// (which could reorder or hide what the notice says).
fn shown_text(value: &str, max: usize) -> Option<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.chars().count() <= max
        && !v.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
        });
    ok.then(|| v.to_owned())
}

/// The controller's identity: required in AWS (the template's required parameters), clearly marked
/// placeholders locally when unset.
fn controller(
    backend: &Backend,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Controller, ConfigError> {
    let missing = |variable| ConfigError {
        variable,
        problem: "must be set when QCHAT_BACKEND=aws",
    };
    let name = match (get(vars::CONTROLLER_NAME), backend) {
        (Some(v), _) => Some(shown_text(&v, 200).ok_or(ConfigError {
            variable: vars::CONTROLLER_NAME,
            problem: "must be 1 to 200 characters without control characters",
        })?),
        (None, Backend::Local { .. }) => None,
        (None, Backend::Aws { .. }) => return Err(missing(vars::CONTROLLER_NAME)),
    };
    let email = match (get(vars::CONTROLLER_EMAIL), backend) {
        (Some(v), _) => Some(
            EmailAddress::parse(&v)
                .map_err(|_| ConfigError {
                    variable: vars::CONTROLLER_EMAIL,
                    problem: "must be an email address",
                })?
                .expose()
                .to_owned(),
        ),
        (None, Backend::Local { .. }) => None,
        (None, Backend::Aws { .. }) => return Err(missing(vars::CONTROLLER_EMAIL)),
    };
    let postal_address = get(vars::CONTROLLER_ADDRESS)
        .map(|v| {
            shown_text(&v, 300).ok_or(ConfigError {
                variable: vars::CONTROLLER_ADDRESS,
                problem: "must be 1 to 300 characters on one line",
            })
        })
        .transpose()?;
    let supervisory_authority = get(vars::SUPERVISORY_AUTHORITY)
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            shown_text(&v, 300).ok_or(ConfigError {
                variable: vars::SUPERVISORY_AUTHORITY,
                problem: "must be 1 to 300 characters on one line",
            })
        })
        .transpose()?;
    let placeholder = name.is_none() || email.is_none();
    Ok(Controller {
        name: name.unwrap_or_else(|| LOCAL_CONTROLLER_NAME.to_owned()),
        email: email.unwrap_or_else(|| LOCAL_CONTROLLER_EMAIL.to_owned()),
        postal_address,
        supervisory_authority,
        placeholder,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_safe_local_defaults() {
        let c = from(&[]).expect("defaults");
        assert!(
            matches!(c.backend, Backend::Local { ref data_dir } if data_dir == &PathBuf::from(".qchat"))
        );
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
        assert!(c.graph.base_url.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.controller.placeholder);
        assert!(c.controller.name.contains("placeholder"));
        assert!(c.controller.email.ends_with(".localdomain"));
        assert_eq!(c.controller.postal_address, None);
    }

    #[test]
    fn the_controller_is_read_and_required_in_aws_mode() {
        let aws = [
            ("QCHAT_BACKEND", "aws"),
            ("QCHAT_TABLE_NAME", "qchat"),
            ("QCHAT_KEY_TABLE_NAME", "qchat-keys"),
            ("QCHAT_KMS_KEY_ID", "k"),
            ("QCHAT_MAIL_FROM", "notices@example.com"),
            ("QCHAT_PUBLIC_URL", "https://chat.example.com"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = aws.to_vec();
            pairs.extend_from_slice(extra);
            from(&pairs)
        };
        assert_eq!(
            with(&[("QCHAT_CONTROLLER_EMAIL", "privacy@example.com")])
                .err()
                .map(|e| e.variable),
            Some(vars::CONTROLLER_NAME)
        );
        assert_eq!(
            with(&[("QCHAT_CONTROLLER_NAME", "Ana Bakery Ltd")])
                .err()
                .map(|e| e.variable),
            Some(vars::CONTROLLER_EMAIL)
        );
        let c = with(&[
            ("QCHAT_CONTROLLER_NAME", " Ana Bakery Ltd "),
            ("QCHAT_CONTROLLER_EMAIL", "Privacy@Example.com"),
            (
                "QCHAT_CONTROLLER_ADDRESS",
                "1 Flour Street, 1000 Brussels, Belgium",
            ),
        ])
        .expect("aws config")
        .controller;
        assert_eq!(
            c,
            Controller {
                name: "Ana Bakery Ltd".to_owned(),
                email: "privacy@example.com".to_owned(),
                postal_address: Some("1 Flour Street, 1000 Brussels, Belgium".to_owned()),
                supervisory_authority: None,
                placeholder: false,
            }
        );
        // An empty address (the template's default) is no address.
        let c = with(&[
            ("QCHAT_CONTROLLER_NAME", "Ana Bakery Ltd"),
            ("QCHAT_CONTROLLER_EMAIL", "privacy@example.com"),
            ("QCHAT_CONTROLLER_ADDRESS", ""),
            ("QCHAT_SUPERVISORY_AUTHORITY", ""),
        ])
        .expect("aws config");
        assert_eq!(c.controller.postal_address, None);
        assert_eq!(c.controller.supervisory_authority, None);
        let c = with(&[
            ("QCHAT_CONTROLLER_NAME", "Ana Bakery Ltd"),
            ("QCHAT_CONTROLLER_EMAIL", "privacy@example.com"),
            (
                "QCHAT_SUPERVISORY_AUTHORITY",
                "Autorité de protection des données, https://www.autoriteprotectiondonnees.be",
            ),
        ])
        .expect("aws config");
        assert!(
            c.controller
                .supervisory_authority
                .is_some_and(|a| a.starts_with("Autorité"))
        );
    }

    #[test]
    fn a_controller_text_that_could_hide_or_reorder_what_the_notice_says_is_refused() {
        for (variable, value) in [
            ("QCHAT_CONTROLLER_NAME", "Ana\u{202E}yrekaB"),
            ("QCHAT_CONTROLLER_NAME", "\u{200B}\u{200B}"),
            ("QCHAT_CONTROLLER_NAME", "Ana\nBakery"),
            ("QCHAT_CONTROLLER_ADDRESS", "1 Flour Street\n1000 Brussels"),
            ("QCHAT_CONTROLLER_EMAIL", "not an address"),
        ] {
            let err = from(&[(variable, value)]).err();
            assert_eq!(
                err.as_ref().map(|e| e.variable),
                Some(variable),
                "{value:?}"
            );
            assert!(
                !err.map(|e| e.to_string())
                    .unwrap_or_default()
                    .contains(value)
            );
        }
        let long = "x".repeat(201);
        assert!(from(&[("QCHAT_CONTROLLER_NAME", long.as_str())]).is_err());
    }

    #[test]
    fn aws_mode_names_the_missing_variable() {
        let err = from(&[("QCHAT_BACKEND", "aws"), ("QCHAT_TABLE_NAME", "t")]).err();
        assert_eq!(err.map(|e| e.variable), Some(vars::KEY_TABLE_NAME));
        let err = from(&[
            ("QCHAT_BACKEND", "aws"),
            ("QCHAT_TABLE_NAME", "t"),
            ("QCHAT_KEY_TABLE_NAME", "k"),
        ])
        .err();
        assert_eq!(err.map(|e| e.variable), Some(vars::KMS_KEY_ID));
    }

    #[test]
    fn aws_mode_keeps_the_key_store_in_its_own_table() {
        let c = from(&[
            ("QCHAT_BACKEND", "aws"),
            ("QCHAT_TABLE_NAME", "qchat"),
            ("QCHAT_KEY_TABLE_NAME", "qchat-keys"),
            ("QCHAT_KMS_KEY_ID", "k"),
            ("QCHAT_MAIL_FROM", "notices@example.com"),
            ("QCHAT_PUBLIC_URL", "https://chat.example.com"),
            ("QCHAT_CONTROLLER_NAME", "Ana Bakery Ltd"),
            ("QCHAT_CONTROLLER_EMAIL", "privacy@example.com"),
        ])
        .expect("aws config");
        assert!(matches!(
            c.backend,
            Backend::Aws { ref table, ref key_table, .. } if table == "qchat" && key_table == "qchat-keys"
        ));
    }

    #[test]
    fn aws_mode_reads_everything_and_logs_json_in_lambda() {
        let c = from(&[
            ("QCHAT_BACKEND", "aws"),
            ("QCHAT_TABLE_NAME", "qchat"),
            ("QCHAT_KEY_TABLE_NAME", "qchat-keys"),
            ("QCHAT_KMS_KEY_ID", "arn:aws:kms:eu-west-1:1:key/x"),
            ("QCHAT_MAIL_FROM", "notices@example.com"),
            ("QCHAT_PUBLIC_URL", "https://chat.example.com/"),
            ("QCHAT_CONTROLLER_NAME", "Ana Bakery Ltd"),
            ("QCHAT_CONTROLLER_EMAIL", "privacy@example.com"),
            ("AWS_LAMBDA_FUNCTION_NAME", "qchat-account"),
        ])
        .expect("aws config");
        assert!(matches!(c.backend, Backend::Aws { .. }));
        assert_eq!(
            c.graph.base_url.as_deref(),
            Some("https://graph.facebook.com")
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.public_url, "https://chat.example.com");
    }

    #[test]
    fn invalid_values_are_refused_without_echoing_them() {
        let err = from(&[("QCHAT_OPERATOR_EMAIL", "not-an-address-secret")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("configuration variable QCHAT_OPERATOR_EMAIL must be an email address")
        );
        assert!(from(&[("QCHAT_GRAPH_URL", "http://evil.example")]).is_err());
        assert!(from(&[("QCHAT_GRAPH_VERSION", "21")]).is_err());
        assert!(from(&[("QCHAT_BACKEND", "cloud")]).is_err());
        assert!(from(&[("QCHAT_ADDR", "nowhere")]).is_err());
    }
}
