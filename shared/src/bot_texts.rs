//! The one catalogue of what qchat sends in Messenger (the consent question and its answers, the
//! subscription and unsubscription confirmations, MY DATA, DELETE MY DATA's acknowledgement and
//! confirmation, the footer and Unsubscribe quick reply of broadcasts), in each of the languages of
//! [`Lang`], chosen by the page's `language` setting (English when it has none).
//!
//! Every text is a whole sentence per language with named placeholders: `{page}` (the page's public
//! name, or the language's "this page"), `{privacy}` / `{link}` (URLs), `{status}`, `{since}`,
//! `{records}`, `{marketing}`, `{code}`. Nothing personal goes in beyond what a reply is about (the
//! person's own status). The command words (STOP, START, MY DATA, DELETE MY DATA) stay as they are in
//! every language: they are what the webhook recognises.

use crate::i18n::Lang;

/// The page setting that picks a page's language: its stored value is [`Lang::code`].
pub const PAGE_LANGUAGE_ATTRIBUTE: &str = "language";

/// The language a page item asks for: its `language` attribute if it names one of [`Lang::ALL`],
/// English otherwise.
pub fn page_lang(page_item: &crate::store::Item) -> Lang {
    page_item
        .get_str(PAGE_LANGUAGE_ATTRIBUTE)
        .and_then(Lang::of_code)
        .unwrap_or(Lang::En)
}

/// The Messenger texts of one language.
#[derive(Debug)]
pub struct BotTexts {
    /// What a page without a public name is called, as the subject of a sentence.
    pub this_page: &'static str,
    /// The quick replies of the consent question.
    pub yes: &'static str,
    pub no: &'static str,
    /// The Unsubscribe button and quick reply (at most 20 characters).
    pub unsubscribe: &'static str,
    /// `{page}`, `{privacy}`.
    pub question: &'static str,
    /// `{page}`, `{link}`, `{privacy}`.
    pub subscribed: &'static str,
    /// `{page}`.
    pub unsubscribed: &'static str,
    /// `{page}`.
    pub declined: &'static str,
    /// `{page}`, `{privacy}`.
    pub my_data_none: &'static str,
    /// `{page}`, `{status}`, `{since}`, `{records}`, `{marketing}`, `{privacy}`.
    pub my_data: &'static str,
    /// Lead statuses by name (`pending`, `subscribed`, `unsubscribed`, `unreachable`).
    pub statuses: [(&'static str, &'static str); 4],
    /// Marketing messages: on, off, never turned on.
    pub marketing: [&'static str; 3],
    /// `{page}`.
    pub erasure_queued: &'static str,
    /// `{page}`, `{code}`, `{link}`.
    pub erasure_done: &'static str,
    /// A broadcast's footer with the person's unsubscribe link: `{link}`.
    pub footer_link: &'static str,
    /// A broadcast's footer when the link does not fit.
    pub footer: &'static str,
}

impl BotTexts {
    /// A lead status's name in this language (the name itself if unknown).
    pub fn status<'a>(&self, name: &'a str) -> &'a str {
        self.statuses
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(name, |(_, v)| v)
    }
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

impl Lang {
    /// What qchat sends in Messenger, in this language.
    pub fn bot(self) -> &'static BotTexts {
        match self {
            Self::En => &EN,
            Self::De => &DE,
            Self::Fr => &FR,
            Self::Es => &ES,
            Self::It => &IT,
            Self::Nl => &NL,
            Self::Pl => &PL,
            Self::Pt => &PT,
        }
    }
}

pub static EN: BotTexts = BotTexts {
    this_page: "This page",
    yes: "Yes",
    no: "No",
    unsubscribe: "Unsubscribe",
    question: "Hi! {page} would like to send you updates here in Messenger. Is that OK? You can stop at \
               any time by replying STOP. How your data is handled: {privacy}",
    subscribed: "You're subscribed to messages from {page}. To stop at any time, reply STOP or open \
                 {link}. How your data is handled: {privacy}",
    unsubscribed: "You're unsubscribed: {page} will not send you messages any more. Changed your mind? \
                   Reply START.",
    declined: "OK, {page} will not send you updates. If you change your mind, reply START.",
    my_data_none: "{page} holds no data about you through qchat. How your data is handled: {privacy}",
    my_data: "What {page} holds about you through qchat: your Messenger id (encrypted); status: \
              {status}; known since {since}; consent records: {records}; marketing messages: \
              {marketing}; when you last wrote. No message text, name or picture is kept. Reply DELETE \
              MY DATA to ask for its erasure. More: {privacy}",
    statuses: [
        ("pending", "pending"),
        ("subscribed", "subscribed"),
        ("unsubscribed", "unsubscribed"),
        ("unreachable", "unreachable"),
    ],
    marketing: ["on", "off", "never turned on"],
    erasure_queued: "Your request is received: you will get no more messages from {page} through \
                     qchat, and everything qchat holds about you for this page is being erased. A \
                     message here will confirm when it is done.",
    erasure_done: "Everything qchat held about you for {page} has been erased. Confirmation code: \
                   {code}. Status: {link}",
    footer_link: "To stop these messages, reply STOP or open {link}",
    footer: "To stop these messages, reply STOP or tap Unsubscribe.",
};

pub static DE: BotTexts = BotTexts {
    this_page: "Diese Seite",
    yes: "Ja",
    no: "Nein",
    unsubscribe: "Abmelden",
    question: "Hallo! {page} möchte dir hier im Messenger Neuigkeiten senden. Ist das in Ordnung? Du \
               kannst jederzeit mit STOP aufhören. Wie deine Daten behandelt werden: {privacy}",
    subscribed: "Du erhältst jetzt Nachrichten von {page}. Zum Abmelden antworte jederzeit STOP oder \
                 öffne {link}. Wie deine Daten behandelt werden: {privacy}",
    unsubscribed: "Du bist abgemeldet: {page} sendet dir keine Nachrichten mehr. Doch anders \
                   entschieden? Antworte START.",
    declined: "In Ordnung, {page} sendet dir keine Neuigkeiten. Wenn du es dir anders überlegst, \
               antworte START.",
    my_data_none: "{page} speichert über qchat keine Daten über dich. Wie deine Daten behandelt werden: \
                   {privacy}",
    my_data: "Was {page} über qchat über dich speichert: deine Messenger-ID (verschlüsselt); Status: \
              {status}; bekannt seit {since}; Einwilligungsnachweise: {records}; Marketing-Nachrichten: \
              {marketing}; wann du zuletzt geschrieben hast. Kein Nachrichtentext, Name oder Bild wird \
              gespeichert. Antworte DELETE MY DATA, um die Löschung zu verlangen. Mehr: {privacy}",
    statuses: [
        ("pending", "Bestätigung ausstehend"),
        ("subscribed", "angemeldet"),
        ("unsubscribed", "abgemeldet"),
        ("unreachable", "nicht erreichbar"),
    ],
    marketing: ["an", "aus", "nie eingeschaltet"],
    erasure_queued: "Deine Anfrage ist eingegangen: Du erhältst über qchat keine Nachrichten mehr von \
                     {page}, und alles, was qchat für diese Seite über dich speichert, wird gelöscht. \
                     Eine Nachricht hier bestätigt, wenn es erledigt ist.",
    erasure_done: "Alles, was qchat für {page} über dich gespeichert hatte, ist gelöscht. \
                   Bestätigungscode: {code}. Status: {link}",
    footer_link: "Um diese Nachrichten abzubestellen, antworte STOP oder öffne {link}",
    footer: "Um diese Nachrichten abzubestellen, antworte STOP oder tippe auf Abmelden.",
};

pub static FR: BotTexts = BotTexts {
    this_page: "Cette page",
    yes: "Oui",
    no: "Non",
    unsubscribe: "Se désabonner",
    question: "Bonjour ! {page} aimerait vous envoyer des nouvelles ici sur Messenger. D’accord ? Vous \
               pouvez arrêter à tout moment en répondant STOP. Le traitement de vos données : {privacy}",
    subscribed: "Vous êtes abonné aux messages de {page}. Pour arrêter à tout moment, répondez STOP ou \
                 ouvrez {link}. Le traitement de vos données : {privacy}",
    unsubscribed: "Vous êtes désabonné : {page} ne vous enverra plus de messages. Vous changez d’avis ? \
                   Répondez START.",
    declined: "D’accord, {page} ne vous enverra pas de nouvelles. Si vous changez d’avis, répondez \
               START.",
    my_data_none: "{page} ne détient aucune donnée vous concernant via qchat. Le traitement de vos \
                   données : {privacy}",
    my_data: "Ce que {page} détient sur vous via qchat : votre identifiant Messenger (chiffré) ; statut : \
              {status} ; connu depuis le {since} ; preuves de consentement : {records} ; messages \
              marketing : {marketing} ; la date de votre dernier message. Aucun texte de message, nom ni \
              photo n’est conservé. Répondez DELETE MY DATA pour en demander l’effacement. Plus : \
              {privacy}",
    statuses: [
        ("pending", "en attente de confirmation"),
        ("subscribed", "abonné"),
        ("unsubscribed", "désabonné"),
        ("unreachable", "injoignable"),
    ],
    marketing: ["activés", "désactivés", "jamais activés"],
    erasure_queued: "Votre demande est reçue : vous ne recevrez plus de messages de {page} via qchat, et \
                     tout ce que qchat détient sur vous pour cette page est en cours d’effacement. Un \
                     message ici confirmera la fin.",
    erasure_done: "Tout ce que qchat détenait sur vous pour {page} a été effacé. Code de confirmation : \
                   {code}. Statut : {link}",
    footer_link: "Pour ne plus recevoir ces messages, répondez STOP ou ouvrez {link}",
    footer: "Pour ne plus recevoir ces messages, répondez STOP ou touchez Se désabonner.",
};

pub static ES: BotTexts = BotTexts {
    this_page: "Esta página",
    yes: "Sí",
    no: "No",
    unsubscribe: "Darse de baja",
    question: "¡Hola! {page} quiere enviarte novedades aquí en Messenger. ¿Te parece bien? Puedes \
               dejarlo cuando quieras respondiendo STOP. Cómo se tratan tus datos: {privacy}",
    subscribed: "Te has suscrito a los mensajes de {page}. Para dejarlo cuando quieras, responde STOP o \
                 abre {link}. Cómo se tratan tus datos: {privacy}",
    unsubscribed: "Te has dado de baja: {page} ya no te enviará mensajes. ¿Has cambiado de idea? \
                   Responde START.",
    declined: "De acuerdo, {page} no te enviará novedades. Si cambias de idea, responde START.",
    my_data_none: "{page} no guarda ningún dato sobre ti a través de qchat. Cómo se tratan tus datos: \
                   {privacy}",
    my_data: "Lo que {page} guarda sobre ti a través de qchat: tu identificador de Messenger (cifrado); \
              estado: {status}; conocido desde {since}; registros de consentimiento: {records}; mensajes \
              de marketing: {marketing}; cuándo escribiste por última vez. No se guarda texto de \
              mensajes, nombre ni foto. Responde DELETE MY DATA para pedir su eliminación. Más: \
              {privacy}",
    statuses: [
        ("pending", "pendiente de confirmación"),
        ("subscribed", "suscrito"),
        ("unsubscribed", "dado de baja"),
        ("unreachable", "inalcanzable"),
    ],
    marketing: ["activados", "desactivados", "nunca activados"],
    erasure_queued: "Hemos recibido tu solicitud: ya no recibirás mensajes de {page} a través de qchat, \
                     y todo lo que qchat guarda sobre ti para esta página se está eliminando. Un mensaje \
                     aquí confirmará cuando termine.",
    erasure_done: "Todo lo que qchat guardaba sobre ti para {page} se ha eliminado. Código de \
                   confirmación: {code}. Estado: {link}",
    footer_link: "Para dejar de recibir estos mensajes, responde STOP o abre {link}",
    footer: "Para dejar de recibir estos mensajes, responde STOP o toca Darse de baja.",
};

pub static IT: BotTexts = BotTexts {
    this_page: "Questa pagina",
    yes: "Sì",
    no: "No",
    unsubscribe: "Annulla iscrizione",
    question: "Ciao! {page} vorrebbe inviarti aggiornamenti qui su Messenger. Va bene? Puoi smettere in \
               qualsiasi momento rispondendo STOP. Come sono trattati i tuoi dati: {privacy}",
    subscribed: "Sei iscritto ai messaggi di {page}. Per smettere in qualsiasi momento, rispondi STOP o \
                 apri {link}. Come sono trattati i tuoi dati: {privacy}",
    unsubscribed: "Iscrizione annullata: {page} non ti invierà più messaggi. Hai cambiato idea? \
                   Rispondi START.",
    declined: "Va bene, {page} non ti invierà aggiornamenti. Se cambi idea, rispondi START.",
    my_data_none: "{page} non conserva alcun dato su di te tramite qchat. Come sono trattati i tuoi dati: \
                   {privacy}",
    my_data: "Cosa conserva {page} su di te tramite qchat: il tuo ID Messenger (cifrato); stato: \
              {status}; noto dal {since}; prove del consenso: {records}; messaggi di marketing: \
              {marketing}; quando hai scritto l’ultima volta. Nessun testo dei messaggi, nome o foto \
              viene conservato. Rispondi DELETE MY DATA per chiederne la cancellazione. Altro: {privacy}",
    statuses: [
        ("pending", "in attesa di conferma"),
        ("subscribed", "iscritto"),
        ("unsubscribed", "iscrizione annullata"),
        ("unreachable", "non raggiungibile"),
    ],
    marketing: ["attivi", "disattivati", "mai attivati"],
    erasure_queued: "Richiesta ricevuta: non riceverai più messaggi da {page} tramite qchat, e tutto ciò \
                     che qchat conserva su di te per questa pagina è in corso di cancellazione. Un \
                     messaggio qui confermerà quando sarà fatto.",
    erasure_done: "Tutto ciò che qchat conservava su di te per {page} è stato cancellato. Codice di \
                   conferma: {code}. Stato: {link}",
    footer_link: "Per non ricevere più questi messaggi, rispondi STOP o apri {link}",
    footer: "Per non ricevere più questi messaggi, rispondi STOP o tocca Annulla iscrizione.",
};

pub static NL: BotTexts = BotTexts {
    this_page: "Deze pagina",
    yes: "Ja",
    no: "Nee",
    unsubscribe: "Afmelden",
    question: "Hoi! {page} wil je hier in Messenger updates sturen. Is dat goed? Je kunt altijd stoppen \
               door STOP te antwoorden. Hoe er met je gegevens wordt omgegaan: {privacy}",
    subscribed: "Je bent aangemeld voor berichten van {page}. Stoppen kan altijd: antwoord STOP of open \
                 {link}. Hoe er met je gegevens wordt omgegaan: {privacy}",
    unsubscribed: "Je bent afgemeld: {page} stuurt je geen berichten meer. Toch van gedachten \
                   veranderd? Antwoord START.",
    declined: "Oké, {page} stuurt je geen updates. Als je van gedachten verandert, antwoord START.",
    my_data_none: "{page} bewaart via qchat geen gegevens over jou. Hoe er met je gegevens wordt \
                   omgegaan: {privacy}",
    my_data: "Wat {page} via qchat over jou bewaart: je Messenger-id (versleuteld); status: {status}; \
              bekend sinds {since}; toestemmingsbewijzen: {records}; marketingberichten: {marketing}; \
              wanneer je voor het laatst schreef. Er wordt geen berichttekst, naam of foto bewaard. \
              Antwoord DELETE MY DATA om wissen te vragen. Meer: {privacy}",
    statuses: [
        ("pending", "wacht op bevestiging"),
        ("subscribed", "aangemeld"),
        ("unsubscribed", "afgemeld"),
        ("unreachable", "onbereikbaar"),
    ],
    marketing: ["aan", "uit", "nooit aangezet"],
    erasure_queued: "Je verzoek is ontvangen: je krijgt via qchat geen berichten meer van {page}, en \
                     alles wat qchat voor deze pagina over jou bewaart wordt gewist. Een bericht hier \
                     bevestigt wanneer het klaar is.",
    erasure_done: "Alles wat qchat voor {page} over jou bewaarde, is gewist. Bevestigingscode: {code}. \
                   Status: {link}",
    footer_link: "Wil je deze berichten niet meer? Antwoord STOP of open {link}",
    footer: "Wil je deze berichten niet meer? Antwoord STOP of tik op Afmelden.",
};

pub static PL: BotTexts = BotTexts {
    this_page: "Ta strona",
    yes: "Tak",
    no: "Nie",
    unsubscribe: "Wypisz się",
    question: "Cześć! {page} chce wysyłać Ci tu w Messengerze nowości. Czy to w porządku? Możesz \
               zrezygnować w każdej chwili, odpowiadając STOP. Jak traktujemy Twoje dane: {privacy}",
    subscribed: "Zapisano Cię na wiadomości od {page}. Aby zrezygnować w każdej chwili, odpowiedz STOP \
                 lub otwórz {link}. Jak traktujemy Twoje dane: {privacy}",
    unsubscribed: "Wypisano Cię: {page} nie będzie już wysyłać Ci wiadomości. Zmiana zdania? Odpowiedz \
                   START.",
    declined: "W porządku, {page} nie będzie wysyłać Ci nowości. Jeśli zmienisz zdanie, odpowiedz START.",
    my_data_none: "{page} nie przechowuje przez qchat żadnych Twoich danych. Jak traktujemy Twoje dane: \
                   {privacy}",
    my_data: "Co {page} przechowuje o Tobie przez qchat: Twój identyfikator Messengera (zaszyfrowany); \
              status: {status}; znany od {since}; dowody zgody: {records}; wiadomości marketingowe: \
              {marketing}; kiedy ostatnio pisałeś. Nie przechowujemy treści wiadomości, imienia ani \
              zdjęcia. Odpowiedz DELETE MY DATA, aby poprosić o usunięcie. Więcej: {privacy}",
    statuses: [
        ("pending", "oczekuje na potwierdzenie"),
        ("subscribed", "zapisany"),
        ("unsubscribed", "wypisany"),
        ("unreachable", "nieosiągalny"),
    ],
    marketing: ["włączone", "wyłączone", "nigdy niewłączone"],
    erasure_queued: "Otrzymaliśmy Twoją prośbę: nie dostaniesz już przez qchat wiadomości od {page}, a \
                     wszystko, co qchat przechowuje o Tobie dla tej strony, jest usuwane. Wiadomość tutaj \
                     potwierdzi zakończenie.",
    erasure_done: "Wszystko, co qchat przechowywał o Tobie dla {page}, zostało usunięte. Kod \
                   potwierdzenia: {code}. Status: {link}",
    footer_link: "Aby nie otrzymywać tych wiadomości, odpowiedz STOP lub otwórz {link}",
    footer: "Aby nie otrzymywać tych wiadomości, odpowiedz STOP lub dotknij Wypisz się.",
};

pub static PT: BotTexts = BotTexts {
    this_page: "Esta página",
    yes: "Sim",
    no: "Não",
    unsubscribe: "Cancelar subscrição",
    question: "Olá! {page} gostaria de lhe enviar novidades aqui no Messenger. Pode ser? Pode parar a \
               qualquer momento respondendo STOP. Como os seus dados são tratados: {privacy}",
    subscribed: "Subscreveu as mensagens de {page}. Para parar a qualquer momento, responda STOP ou abra \
                 {link}. Como os seus dados são tratados: {privacy}",
    unsubscribed: "Subscrição cancelada: {page} não lhe enviará mais mensagens. Mudou de ideias? \
                   Responda START.",
    declined: "Está bem, {page} não lhe enviará novidades. Se mudar de ideias, responda START.",
    my_data_none: "{page} não guarda dados sobre si através do qchat. Como os seus dados são tratados: \
                   {privacy}",
    my_data: "O que {page} guarda sobre si através do qchat: o seu ID do Messenger (cifrado); estado: \
              {status}; conhecido desde {since}; registos de consentimento: {records}; mensagens de \
              marketing: {marketing}; quando escreveu pela última vez. Não se guarda texto de \
              mensagens, nome nem foto. Responda DELETE MY DATA para pedir a eliminação. Mais: \
              {privacy}",
    statuses: [
        ("pending", "a aguardar confirmação"),
        ("subscribed", "subscrito"),
        ("unsubscribed", "subscrição cancelada"),
        ("unreachable", "inacessível"),
    ],
    marketing: ["ativadas", "desativadas", "nunca ativadas"],
    erasure_queued: "O seu pedido foi recebido: deixará de receber mensagens de {page} através do qchat, \
                     e tudo o que o qchat guarda sobre si para esta página está a ser eliminado. Uma \
                     mensagem aqui confirmará quando estiver feito.",
    erasure_done: "Tudo o que o qchat guardava sobre si para {page} foi eliminado. Código de \
                   confirmação: {code}. Estado: {link}",
    footer_link: "Para deixar de receber estas mensagens, responda STOP ou abra {link}",
    footer: "Para deixar de receber estas mensagens, responda STOP ou toque em Cancelar subscrição.",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The placeholders a text holds, in order.
    fn placeholders(text: &str) -> Vec<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn every_language_has_every_text_with_the_placeholders_english_has() {
        for lang in Lang::ALL {
            let t = lang.bot();
            let pairs = [
                (t.question, EN.question),
                (t.subscribed, EN.subscribed),
                (t.unsubscribed, EN.unsubscribed),
                (t.declined, EN.declined),
                (t.my_data_none, EN.my_data_none),
                (t.my_data, EN.my_data),
                (t.erasure_queued, EN.erasure_queued),
                (t.erasure_done, EN.erasure_done),
                (t.footer_link, EN.footer_link),
                (t.footer, EN.footer),
            ];
            for (text, english) in pairs {
                let mut mine = placeholders(text);
                let mut theirs = placeholders(english);
                mine.sort_unstable();
                theirs.sort_unstable();
                assert_eq!(mine, theirs, "{lang:?}: {text}");
            }
            for s in [t.this_page, t.yes, t.no, t.unsubscribe] {
                assert!(!s.is_empty() && !s.contains('{'), "{lang:?}");
            }
            // Meta's quick reply titles are at most 20 characters.
            for title in [t.yes, t.no, t.unsubscribe] {
                assert!(title.chars().count() <= 20, "{lang:?}: {title}");
            }
            // The footer fits the room a draft leaves for it, even with a long link.
            let link = format!("https://chat.example.com/u/{}", "x".repeat(43));
            let footer = fill(t.footer_link, &[("link", &link)]);
            assert!(
                footer.encode_utf16().count() + 2 <= crate::broadcast::sender::FOOTER_RESERVE,
                "{lang:?}"
            );
            // The command words stay the ones the webhook recognises.
            assert!(t.question.contains("STOP") && t.my_data.contains("DELETE MY DATA"));
            if lang != Lang::En {
                assert_ne!(t.question, EN.question, "{lang:?} is translated");
            }
        }
    }

    #[test]
    fn a_page_item_names_its_language_by_code_and_anything_else_is_english() {
        assert_eq!(Lang::of_code("de"), Some(Lang::De));
        assert_eq!(Lang::of_code("DE"), None);
        assert_eq!(Lang::of_code("de-AT"), None);
        assert_eq!(Lang::of_code("ja"), None);
        assert_eq!(
            fill("{page} and {page}: {x}", &[("page", "Ana"), ("x", "1")]),
            "Ana and Ana: 1"
        );
        assert_eq!(DE.status("subscribed"), "angemeldet");
        assert_eq!(DE.status("new_state"), "new_state");
    }
}
