//! What a person's words or button taps ask for: stop, start, yes/no to the consent question, a summary
//! of their data, erasure. Keywords are matched on the whole message (trimmed, case-insensitive, accents
//! folded for the common translations), so "stop" inside a sentence never unsubscribes by accident.

/// Payload of the "Yes" quick reply of the consent question.
pub const CONSENT_YES: &str = "QCHAT_CONSENT_YES";
/// Payload of the "No" quick reply of the consent question.
pub const CONSENT_NO: &str = "QCHAT_CONSENT_NO";
/// Payload of the unsubscribe quick reply or postback.
pub const UNSUBSCRIBE: &str = qchat_shared::broadcast::sender::UNSUBSCRIBE_PAYLOAD;

/// What the person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Stop,
    Start,
    Yes,
    No,
    MyData,
    DeleteMyData,
    /// Anything else: an ordinary message.
    None,
}

const STOP_WORDS: &[&str] = &[
    "stop",
    "unsubscribe",
    "stopp",        // de, sv, no, da
    "arret",        // fr (arrêt, folded)
    "alto",         // es
    "parar",        // es, pt
    "pare",         // pt
    "basta",        // it, es
    "abmelden",     // de
    "desinscribir", // es
    "desuscribir",  // es
    "desabonner",   // fr (désabonner)
    "se desabonner",
    "desinscrever", // pt
    "cancelar",     // es, pt
    "annulla",      // it
    "disiscriviti", // it
    "afmelden",     // nl
    "uitschrijven", // nl
    "stoppen",      // nl, de
    "avsluta",      // sv
    "wypisz",       // pl
];

const START_WORDS: &[&str] = &[
    "start",
    "subscribe",
    "anmelden",   // de
    "abonnieren", // de
    "demarrer",   // fr (démarrer)
    "sabonner",   // fr (s'abonner, apostrophe dropped)
    "abonner",    // fr, da, no
    "empezar",    // es
    "suscribir",  // es
    "suscribirse",
    "iniciar",   // es, pt
    "comecar",   // pt (começar)
    "inizia",    // it
    "iscriviti", // it
    "aanmelden", // nl
];

/// Lowercases, trims, folds the accents of the words above and drops punctuation around them.
fn normalise(text: &str) -> String {
    let folded: String = text
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' => Some('a'),
            'è' | 'é' | 'ê' | 'ë' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' => Some('i'),
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => Some('o'),
            'ù' | 'ú' | 'û' | 'ü' => Some('u'),
            'ç' => Some('c'),
            '\'' | '’' | '.' | '!' | '?' | ',' => None,
            c if c.is_whitespace() => Some(' '),
            c => Some(c),
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The intent of a quick-reply or postback payload, if it is one of qchat's own.
pub fn of_payload(payload: &str) -> Option<Intent> {
    match payload {
        CONSENT_YES => Some(Intent::Yes),
        CONSENT_NO => Some(Intent::No),
        UNSUBSCRIBE => Some(Intent::Stop),
        _ => None,
    }
}

/// The intent of a message text.
pub fn of_text(text: &str) -> Intent {
    let t = normalise(text);
    if STOP_WORDS.contains(&t.as_str()) {
        Intent::Stop
    } else if START_WORDS.contains(&t.as_str()) {
        Intent::Start
    } else if t == "delete my data" {
        Intent::DeleteMyData
    } else if t == "my data" {
        Intent::MyData
    } else {
        Intent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_match_whole_messages_in_any_case_and_common_languages() {
        for t in [
            "STOP",
            " stop ",
            "Unsubscribe",
            "STOPP",
            "Arrêt",
            "ARRET",
            "alto",
            "Parar",
            "BASTA",
            "abmelden",
            "DESINSCRIBIR",
            "stop!",
        ] {
            assert_eq!(of_text(t), Intent::Stop, "{t}");
        }
        for t in ["please stop sending", "stopper", "unstoppable", ""] {
            assert_eq!(of_text(t), Intent::None, "{t}");
        }
    }

    #[test]
    fn start_data_and_payload_intents() {
        assert_eq!(of_text("Start"), Intent::Start);
        assert_eq!(of_text("SUBSCRIBE"), Intent::Start);
        assert_eq!(of_text("my data"), Intent::MyData);
        assert_eq!(of_text(" Delete  my DATA "), Intent::DeleteMyData);
        assert_eq!(of_payload(CONSENT_YES), Some(Intent::Yes));
        assert_eq!(of_payload(CONSENT_NO), Some(Intent::No));
        assert_eq!(of_payload(UNSUBSCRIBE), Some(Intent::Stop));
        assert_eq!(of_payload("GET_STARTED"), None);
    }
}
