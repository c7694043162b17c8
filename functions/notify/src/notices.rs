//! The wording of every account notice: one function per [`Notice`], each giving a subject and a plain-text
//! body.
//!
//! Invariants: subjects are fixed phrases (no line breaks, nothing from the store), and no notice contains
//! personal data beyond what the recipient already knows about their own account — never a name, an
//! address, a network address or another person's data. Links point at the service's own public URL or at
//! the policy URL the operator published.

use qchat_shared::clock::Timestamp;
use qchat_shared::outbox::Notice;

/// A notice ready to send. Its `Debug` shows sizes only, so it can never leak wording into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rendered {{ subject: {} chars, body: {} chars }}",
            self.subject.chars().count(),
            self.body.chars().count()
        )
    }
}

/// What a notice needs beyond its own parameters, looked up by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The service's public base URL, without a trailing slash.
    pub public_url: &'a str,
    /// The operator's text of the breach notice, for [`Notice::BreachNotice`].
    pub breach_summary: Option<&'a str>,
    /// The single-use token of the link a confirmation or reset mail carries.
    pub link_token: Option<&'a str>,
}

/// Why a notice could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the breach notice's text was not provided")]
    MissingBreachSummary,
    #[error("the link of a confirmation or reset mail was not provided")]
    MissingLink,
}

/// Renders any notice.
pub fn render(notice: &Notice, ctx: &Context<'_>) -> Result<Rendered, RenderError> {
    let base = ctx.public_url;
    Ok(match notice {
        Notice::AccountCreated => account_created(base),
        Notice::PasswordChanged { at } => password_changed(base, *at),
        Notice::EmailChanged { at } => email_changed(base, *at),
        Notice::NewNetworkSignIn { at } => new_network_sign_in(base, *at),
        Notice::PageSendingStopped { page_id, reason } => {
            page_sending_stopped(base, page_id, reason)
        }
        Notice::PolicyUpdated {
            kind,
            version,
            url,
            summary,
        } => policy_updated(base, kind, version, url, summary),
        Notice::BreachNotice { .. } => breach_notice(
            base,
            ctx.breach_summary
                .ok_or(RenderError::MissingBreachSummary)?,
        ),
        Notice::ConfirmRegistration => {
            confirm_registration(base, ctx.link_token.ok_or(RenderError::MissingLink)?)
        }
        Notice::RegistrationAddressTaken => registration_address_taken(base),
        Notice::ConfirmEmailChange => {
            confirm_email_change(base, ctx.link_token.ok_or(RenderError::MissingLink)?)
        }
        Notice::PasswordReset => {
            password_reset(base, ctx.link_token.ok_or(RenderError::MissingLink)?)
        }
        Notice::AccountErased { code } => account_erased(base, code),
    })
}

/// `2026-11-29 at 20:23 UTC`: unambiguous for every reader, whatever their locale.
pub fn when(at: Timestamp) -> String {
    let iso = at.to_rfc3339();
    match (iso.get(..10), iso.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} at {time} UTC"),
        _ => iso,
    }
}

/// The closing every notice shares: why it was sent, and where the privacy notice is.
fn footer(base: &str) -> String {
    format!(
        "\n\n--\nqchat\nYou receive this message because it concerns your qchat account; such notices are \
         sent whatever your other email choices.\nHow we handle your data: {base}/privacy\n"
    )
}

fn notice(subject: &str, body: String, base: &str) -> Rendered {
    Rendered {
        subject: subject.to_owned(),
        body: format!("Hello,\n\n{body}{}", footer(base)),
    }
}

pub fn account_created(base: &str) -> Rendered {
    notice(
        "Your qchat account is ready",
        "your address is confirmed and your qchat account is created. Sign in with this address and the \
         password you chose.\n\n\
         If you did not create it, someone else knows a password for an account under your address: ask \
         for a password reset (POST /api/password-resets with this address), which signs out everyone \
         else."
            .to_owned(),
        base,
    )
}

/// The receipt of an account's erasure: the confirmation code and where its status is shown. Written
/// before anything is erased and sent whether or not the account still exists; it names nothing of the
/// account but the address it goes to.
pub fn account_erased(base: &str, code: &str) -> Rendered {
    notice(
        "Your qchat account is being erased",
        format!(
            "you asked us to erase your qchat account. It is being erased now, with its pages, leads, \
             broadcasts, sessions, security log and notices, and finally its encryption key, which makes \
             any copy in our backups unreadable. This cannot be undone.\n\n\
             Confirmation code: {code}\n\
             Where the erasure stands (and, once done, what was erased, as counts): {base}/deletion/{code}\n\n\
             The address this message was sent to is free again: it can be used to register a new account."
        ),
        base,
    )
}

pub fn confirm_registration(base: &str, token: &str) -> Rendered {
    notice(
        "Confirm your email address for qchat",
        format!(
            "someone asked to create a qchat account with this address. To confirm it is yours and \
             finish creating the account, open this link within 24 hours and press Confirm:\n\n\
             {base}/verify-email/{token}\n\n\
             If it was not you, ignore this message: no account is created without the confirmation, and \
             what was typed is deleted after 24 hours."
        ),
        base,
    )
}

pub fn registration_address_taken(base: &str) -> Rendered {
    notice(
        "Someone tried to register your address at qchat",
        "someone asked to create a qchat account with this address, which already has one, so nothing \
         was created.\n\n\
         If it was you: sign in with your password. If you forgot it, ask for a reset (POST \
         /api/password-resets with this address).\n\
         If it was not you, there is nothing to do: your account is unchanged."
            .to_owned(),
        base,
    )
}

pub fn confirm_email_change(base: &str, token: &str) -> Rendered {
    notice(
        "Confirm your new email address for qchat",
        format!(
            "someone asked to make this the address of their qchat account. To confirm it is yours, open \
             this link within 24 hours and press Confirm:\n\n\
             {base}/verify-email/{token}\n\n\
             If it was not you, ignore this message: nothing changes without the confirmation."
        ),
        base,
    )
}

pub fn password_reset(base: &str, token: &str) -> Rendered {
    notice(
        "Reset your qchat password",
        format!(
            "someone asked to reset the password of the qchat account of this address. To choose a new \
             password, open this link within one hour:\n\n\
             {base}/reset-password/{token}\n\n\
             Setting a new password signs every device out of the account. If it was not you, ignore this \
             message: your password stays as it is."
        ),
        base,
    )
}

pub fn password_changed(base: &str, at: Timestamp) -> Rendered {
    notice(
        "Your qchat password was changed",
        format!(
            "the password of your qchat account was changed on {}. Every other session was signed out.\n\n\
             If this was you, there is nothing more to do.\n\
             If it was not you, someone else may be able to sign in to your account: contact the operator \
             of this qchat service at once.",
            when(at)
        ),
        base,
    )
}

pub fn email_changed(base: &str, at: Timestamp) -> Rendered {
    notice(
        "The email address of your qchat account was changed",
        format!(
            "on {}, the email address of your qchat account was changed. This message goes to the \
             previous address, and notices will now go to the new one.\n\n\
             If this was you, there is nothing more to do.\n\
             If it was not you, someone else may have taken over your account: contact the operator of \
             this qchat service at once.",
            when(at)
        ),
        base,
    )
}

pub fn new_network_sign_in(base: &str, at: Timestamp) -> Rendered {
    notice(
        "New sign-in to your qchat account",
        format!(
            "your qchat account was signed in to on {} from a network it had not been used from \
             before.\n\n\
             If this was you, there is nothing more to do.\n\
             If it was not you: change your password now (this signs out every other session), sign \
             out everywhere, and check your account's security log for other sign-ins you do not \
             recognise.",
            when(at)
        ),
        base,
    )
}

/// The reason codes the broadcast runner records, in words; an unknown code gets a general sentence
/// rather than being echoed.
fn stop_reason(reason: &str) -> &'static str {
    match reason {
        "token_invalid" | "token" => {
            "the page access token stopped working (it expired, or was revoked on Facebook)"
        }
        "permission" | "permission_missing" => {
            "qchat no longer has permission to send messages for the page"
        }
        "policy_block" | "blocked" | "policy_enforcement" => {
            "Meta blocked the page from sending messages"
        }
        _ => "Meta refused to deliver messages from the page",
    }
}

pub fn page_sending_stopped(base: &str, page_id: &str, reason: &str) -> Rendered {
    notice(
        "qchat stopped sending for one of your Pages",
        format!(
            "qchat stopped sending Messenger messages for your Facebook Page {page_id}: {}.\n\n\
             Nothing more is sent for this page until you give it a new page access token \
             (PUT /api/pages/{page_id}/access-token), which keeps its leads. Its broadcasts are \
             paused meanwhile and carry on where they stopped once sending resumes.",
            stop_reason(reason)
        ),
        base,
    )
}

fn policy_name(kind: &str) -> &'static str {
    match kind {
        "privacy" => "privacy policy",
        "terms" => "terms of service",
        _ => "policy",
    }
}

pub fn policy_updated(base: &str, kind: &str, version: &str, url: &str, summary: &str) -> Rendered {
    let name = policy_name(kind);
    let subject = match kind {
        "privacy" => "We updated our privacy policy",
        "terms" => "We updated our terms of service",
        _ => "We updated our policies",
    };
    notice(
        subject,
        format!(
            "version {version} of our {name} is now in force.\n\n\
             What changed:\n{}\n\n\
             Read it in full: {url}",
            summary.trim()
        ),
        base,
    )
}

pub fn breach_notice(base: &str, summary: &str) -> Rendered {
    notice(
        "Important: a personal data breach that may concern your qchat account",
        format!(
            "we are writing to tell you about a personal data breach that may concern your qchat \
             account.\n\n{}",
            summary.trim()
        ),
        base,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://api.example.test";
    const AT: Timestamp = Timestamp::from_millis(1_795_000_000_000);
    const TOKEN: &str = "tok3n-of-43-characters-base64url-xxxxxxxxxx";

    fn every_notice() -> Vec<Notice> {
        vec![
            Notice::AccountCreated,
            Notice::PasswordChanged { at: AT },
            Notice::EmailChanged { at: AT },
            Notice::NewNetworkSignIn { at: AT },
            Notice::PageSendingStopped {
                page_id: "1234567890".into(),
                reason: "token_invalid".into(),
            },
            Notice::PolicyUpdated {
                kind: "privacy".into(),
                version: "2".into(),
                url: "https://example.test/privacy-v2".into(),
                summary: "We now keep logs for 30 days.".into(),
            },
            Notice::BreachNotice {
                notice_id: "n1".into(),
            },
            Notice::ConfirmRegistration,
            Notice::RegistrationAddressTaken,
            Notice::ConfirmEmailChange,
            Notice::PasswordReset,
            Notice::AccountErased {
                code: "01jobcode".into(),
            },
        ]
    }

    fn ctx() -> Context<'static> {
        Context {
            public_url: BASE,
            breach_summary: Some("A backup was exposed for two hours."),
            link_token: Some(TOKEN),
        }
    }

    #[test]
    fn every_notice_has_a_one_line_subject_a_body_and_the_privacy_link() {
        for n in every_notice() {
            let r = render(&n, &ctx()).map_err(|e| e.to_string());
            let Ok(r) = r else {
                panic!("{} did not render", n.name());
            };
            assert!(!r.subject.trim().is_empty(), "{}", n.name());
            assert!(!r.subject.chars().any(char::is_control), "{}", n.name());
            assert!(r.body.len() > 40, "{}", n.name());
            assert!(
                r.body.contains(&format!("{BASE}/privacy")),
                "{} links the privacy notice",
                n.name()
            );
        }
    }

    #[test]
    fn time_bound_notices_say_when_in_utc() {
        for n in [
            Notice::PasswordChanged { at: AT },
            Notice::EmailChanged { at: AT },
            Notice::NewNetworkSignIn { at: AT },
        ] {
            let body = render(&n, &ctx()).map(|r| r.body).unwrap_or_default();
            assert!(body.contains(&when(AT)), "{}", n.name());
        }
        assert_eq!(when(AT), "2026-11-18 at 11:06 UTC");
    }

    #[test]
    fn the_new_network_notice_tells_what_to_do_if_it_was_not_them() {
        let r = new_network_sign_in(BASE, AT);
        assert!(r.body.contains("If it was not you"));
        assert!(r.body.contains("change your password"));
    }

    #[test]
    fn the_policy_notice_carries_version_summary_and_url() {
        let r = policy_updated(BASE, "terms", "7", "https://example.test/t7", "Shorter.");
        assert_eq!(r.subject, "We updated our terms of service");
        assert!(r.body.contains("version 7 of our terms of service"));
        assert!(r.body.contains("Shorter."));
        assert!(r.body.contains("https://example.test/t7"));
    }

    #[test]
    fn a_breach_notice_needs_its_text() {
        let n = Notice::BreachNotice {
            notice_id: "n1".into(),
        };
        let missing = Context {
            public_url: BASE,
            breach_summary: None,
            link_token: None,
        };
        assert_eq!(render(&n, &missing), Err(RenderError::MissingBreachSummary));
        let body = render(&n, &ctx()).map(|r| r.body).unwrap_or_default();
        assert!(body.contains("A backup was exposed for two hours."));
    }

    #[test]
    fn link_mails_carry_their_link_and_need_it() {
        for (notice, path) in [
            (Notice::ConfirmRegistration, "verify-email"),
            (Notice::ConfirmEmailChange, "verify-email"),
            (Notice::PasswordReset, "reset-password"),
        ] {
            let body = render(&notice, &ctx()).map(|r| r.body).unwrap_or_default();
            assert!(
                body.contains(&format!("{BASE}/{path}/{TOKEN}")),
                "{}",
                notice.name()
            );
            let missing = Context {
                link_token: None,
                ..ctx()
            };
            assert_eq!(render(&notice, &missing), Err(RenderError::MissingLink));
        }
    }

    #[test]
    fn an_unknown_stop_reason_is_not_echoed() {
        let r = page_sending_stopped(BASE, "42", "weird <b>free text</b>");
        assert!(!r.body.contains("weird"));
        assert!(r.body.contains("Page 42"));
    }

    #[test]
    fn debug_shows_sizes_not_wording() {
        let r = account_created(BASE);
        let debug = format!("{r:?}");
        assert!(!debug.contains("created"));
        assert!(debug.contains("chars"));
    }
}
