//! The consent events optin records. Both are opt-outs; they differ in who acted (`source`) and in the
//! wording that was shown, which the record keeps as part of the proof.

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::http::ApiError;
use qchat_shared::i18n::Lang;
use qchat_shared::leads::{Action, ConsentEvent};
use qchat_shared::policies::{PolicyKind, current_policy_version};
use qchat_shared::store::Item;

/// Who unsubscribed the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The person, through the confirm button of their `/u/{token}` page, shown in this language.
    Person(Lang),
    /// The page's account holder, through the API.
    AccountHolder,
}

/// The question of the unsubscribe page in `lang`; with the button's label it is recorded verbatim as
/// the wording answered.
pub fn link_question(lang: Lang, page_name: &str) -> String {
    lang.texts()
        .unsubscribe_question
        .replace("{page}", page_name)
}

const HOLDER_WORDING: &str = "Unsubscribed by the page's account holder.";

/// The name a page is shown under: its public name, or "this page" (in `lang`) when none was given.
pub fn page_name(page: &Item, lang: Lang) -> &str {
    page.get_str("name")
        .filter(|n| !n.is_empty())
        .unwrap_or(lang.texts().this_page)
}

/// A builder of the opt-out event for [`qchat_shared::leads::ops::opt_out`]: the version in force and
/// the page's consent mode are read once, the time is set when the change is written.
pub async fn opt_out(
    app: &App,
    page: &Item,
    actor: Actor,
) -> Result<impl Fn(Timestamp) -> ConsentEvent, ApiError> {
    let policy_version = current_policy_version(app, PolicyKind::Privacy).await?;
    let consent_mode = page
        .get_str("consent_mode")
        .unwrap_or("confirmed")
        .to_owned();
    let (source, wording) = match actor {
        Actor::Person(lang) => (
            "unsubscribe_link",
            format!(
                "{} [{}]",
                link_question(lang, page_name(page, lang)),
                lang.texts().unsubscribe
            ),
        ),
        Actor::AccountHolder => ("account_holder", HOLDER_WORDING.to_owned()),
    };
    Ok(move |received_at| ConsentEvent {
        action: Action::OptOut,
        source: source.to_owned(),
        meta_ref: None,
        meta_timestamp: None,
        received_at,
        policy_version: policy_version.clone(),
        consent_mode: consent_mode.clone(),
        wording: wording.clone(),
    })
}
