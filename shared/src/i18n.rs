//! The languages of the pages a person from the public opens from a link (the unsubscribe page, the
//! erasure status page, "Link not valid"): English, German, French, Spanish, Italian, Dutch, Polish and
//! Portuguese, chosen from the browser's `Accept-Language` (its most preferred language qchat has;
//! English when it has none of them). Every text is a whole sentence per language, with `{page}` where the
//! page's public name goes (inserted escaped by the caller), so no sentence is assembled from fragments.

/// A language qchat's public pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    It,
    Nl,
    Pl,
    Pt,
}

impl Lang {
    /// Every language, English first (the default).
    pub const ALL: [Self; 8] = [
        Self::En,
        Self::De,
        Self::Fr,
        Self::Es,
        Self::It,
        Self::Nl,
        Self::Pl,
        Self::Pt,
    ];

    /// The BCP 47 primary language subtag (`<html lang>`, `Content-Language`).
    pub const fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
            Self::Fr => "fr",
            Self::Es => "es",
            Self::It => "it",
            Self::Nl => "nl",
            Self::Pl => "pl",
            Self::Pt => "pt",
        }
    }

    /// The language with exactly this code (`de`; not `DE` or `de-AT`), if qchat has it: a stored
    /// setting, which is only ever written as a code.
    pub fn of_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The language of a language tag (`de`, `de-AT`, `PT-br`), if qchat has it.
    pub fn of_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The language to answer an `Accept-Language` header in: the one qchat has with the highest quality
    /// (the first listed among equals); English without a header, or when none listed is one qchat has.
    /// A malformed entry is skipped, never an error: the header is the browser's, not the person's words.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let mut best: Option<(Self, u16)> = None;
        for entry in header.unwrap_or_default().split(',').take(32) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), quality_millis);
            let (Some(lang), Some(q)) = (Self::of_tag(tag), quality) else {
                continue;
            };
            if q > 0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map_or(Self::En, |(lang, _)| lang)
    }

    /// The language a request asks for through `Accept-Language`.
    pub fn of_request(req: &crate::http::Request) -> Self {
        Self::from_accept_language(
            req.headers()
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// The texts of the public pages in this language.
    pub fn texts(self) -> &'static Texts {
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

/// An HTTP quality value (`0`, `0.5`, `1.000`) in thousandths; `None` if malformed.
fn quality_millis(q: &str) -> Option<u16> {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(fraction),
        "1" if fraction == 0 => Some(1000),
        _ => None,
    }
}

/// The sentences of the public pages in one language. `{page}` stands for the page's public name.
#[derive(Debug)]
pub struct Texts {
    /// The unsubscribe page's title and its button.
    pub unsubscribe: &'static str,
    /// The unsubscribe page's question: `{page}`.
    pub unsubscribe_question: &'static str,
    pub unsubscribed_title: &'static str,
    /// `{page}`.
    pub unsubscribed_body: &'static str,
    /// What a page without a public name is called.
    pub this_page: &'static str,
    pub invalid_link_title: &'static str,
    pub invalid_link_body: &'static str,
    pub failure_title: &'static str,
    pub failure_body: &'static str,
    pub deletion_title: &'static str,
    pub deletion_code: &'static str,
    pub deletion_completed: &'static str,
    pub deletion_in_progress: &'static str,
    pub deletion_stalled: &'static str,
    pub deletion_finished: &'static str,
    pub deletion_erased: &'static str,
    pub deletion_not_found_title: &'static str,
    pub deletion_not_found_body: &'static str,
    /// The label before the one page an erasure was on, and before the list of several.
    pub deletion_page: &'static str,
    pub deletion_pages: &'static str,
    /// What the status page says in place of the name of a page that is no longer connected, and of a
    /// connected page without a public name.
    pub deletion_page_gone: &'static str,
    pub deletion_page_unnamed: &'static str,
    /// Names of what an erasure counts, by the receipt's key; a key not listed is shown as it is.
    pub erased_kinds: &'static [(&'static str, &'static str)],
}

impl Texts {
    /// The name of what an erasure counted under `key`.
    pub fn erased_kind(&self, key: &str) -> String {
        self.erased_kinds
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(|| key.replace('_', " "), |(_, name)| (*name).to_owned())
    }
}

pub static EN: Texts = Texts {
    unsubscribe: "Unsubscribe",
    unsubscribe_question: "Stop receiving messages from {page}?",
    unsubscribed_title: "You are unsubscribed",
    unsubscribed_body: "You will no longer receive messages from {page} through qchat.",
    this_page: "this page",
    invalid_link_title: "Link not valid",
    invalid_link_body: "This link is not valid or has expired.",
    failure_title: "Something went wrong",
    failure_body: "Something went wrong on our side. Please try again in a moment.",
    deletion_title: "Deletion request",
    deletion_code: "Confirmation code:",
    deletion_completed: "The deletion is <strong>complete</strong>. Everything it covered has been erased \
                         and cannot be restored.",
    deletion_in_progress: "The deletion is <strong>in progress</strong>. It usually finishes within a few \
                           minutes; this page shows when it is done.",
    deletion_stalled: "The deletion <strong>stopped on an error</strong> and is waiting for the operator \
                       of this service. Nothing erased so far has been restored.",
    deletion_finished: "Finished:",
    deletion_erased: "What was erased:",
    deletion_not_found_title: "Deletion request not found",
    deletion_not_found_body: "No deletion request has this confirmation code. Codes are kept for one year \
                              after the deletion finished.",
    deletion_page: "Page:",
    deletion_pages: "Pages:",
    deletion_page_gone: "a page that is no longer connected to qchat",
    deletion_page_unnamed: "a page without a public name",
    erased_kinds: &[
        ("leads", "people"),
        ("consent_records", "consent records"),
        ("unsubscribe_links", "unsubscribe links"),
        ("pending_replies", "messages not yet sent"),
        ("broadcasts", "broadcasts"),
        ("deliveries", "delivery records"),
        ("sent_replies", "replies already sent"),
        ("account", "accounts"),
        ("pages", "pages"),
        ("sessions", "sessions"),
        ("security_events", "security log entries"),
        ("notices", "notices"),
        ("links", "links"),
        ("blind_index_entries", "lookup entries"),
        ("data_keys", "encryption keys"),
        ("lead_keys", "per-person keys"),
    ],
};

pub static DE: Texts = Texts {
    unsubscribe: "Abmelden",
    unsubscribe_question: "Keine Nachrichten mehr von {page} erhalten?",
    unsubscribed_title: "Sie sind abgemeldet",
    unsubscribed_body: "Sie erhalten über qchat keine Nachrichten mehr von {page}.",
    this_page: "dieser Seite",
    invalid_link_title: "Link ungültig",
    invalid_link_body: "Dieser Link ist ungültig oder abgelaufen.",
    failure_title: "Etwas ist schiefgelaufen",
    failure_body: "Bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es gleich noch einmal.",
    deletion_title: "Löschantrag",
    deletion_code: "Bestätigungscode:",
    deletion_completed: "Die Löschung ist <strong>abgeschlossen</strong>. Alles, was sie umfasste, wurde \
                         gelöscht und kann nicht wiederhergestellt werden.",
    deletion_in_progress: "Die Löschung <strong>läuft</strong>. Sie ist meist in wenigen Minuten fertig; \
                           diese Seite zeigt, wann sie abgeschlossen ist.",
    deletion_stalled: "Die Löschung wurde <strong>durch einen Fehler angehalten</strong> und wartet auf den \
                       Betreiber dieses Dienstes. Bereits Gelöschtes wurde nicht wiederhergestellt.",
    deletion_finished: "Abgeschlossen:",
    deletion_erased: "Was gelöscht wurde:",
    deletion_not_found_title: "Löschantrag nicht gefunden",
    deletion_not_found_body: "Zu diesem Bestätigungscode gibt es keinen Löschantrag. Codes werden ein Jahr \
                              nach Abschluss der Löschung aufbewahrt.",
    deletion_page: "Seite:",
    deletion_pages: "Seiten:",
    deletion_page_gone: "eine Seite, die nicht mehr mit qchat verbunden ist",
    deletion_page_unnamed: "eine Seite ohne öffentlichen Namen",
    erased_kinds: &[
        ("leads", "Personen"),
        ("consent_records", "Einwilligungsnachweise"),
        ("unsubscribe_links", "Abmeldelinks"),
        ("pending_replies", "noch nicht gesendete Nachrichten"),
        ("broadcasts", "Rundsendungen"),
        ("deliveries", "Zustellnachweise"),
        ("sent_replies", "bereits gesendete Antworten"),
        ("account", "Konten"),
        ("pages", "Seiten"),
        ("sessions", "Sitzungen"),
        ("security_events", "Einträge im Sicherheitsprotokoll"),
        ("notices", "Benachrichtigungen"),
        ("links", "Links"),
        ("blind_index_entries", "Sucheinträge"),
        ("data_keys", "Schlüssel"),
        ("lead_keys", "Schlüssel einzelner Personen"),
    ],
};

pub static FR: Texts = Texts {
    unsubscribe: "Se désabonner",
    unsubscribe_question: "Ne plus recevoir de messages de {page} ?",
    unsubscribed_title: "Vous êtes désabonné",
    unsubscribed_body: "Vous ne recevrez plus de messages de {page} via qchat.",
    this_page: "cette page",
    invalid_link_title: "Lien non valide",
    invalid_link_body: "Ce lien n’est pas valide ou a expiré.",
    failure_title: "Une erreur s’est produite",
    failure_body: "Une erreur s’est produite de notre côté. Veuillez réessayer dans un instant.",
    deletion_title: "Demande de suppression",
    deletion_code: "Code de confirmation :",
    deletion_completed: "La suppression est <strong>terminée</strong>. Tout ce qu’elle couvrait a été \
                         effacé et ne peut pas être restauré.",
    deletion_in_progress: "La suppression est <strong>en cours</strong>. Elle se termine généralement en \
                           quelques minutes ; cette page indique quand elle est terminée.",
    deletion_stalled: "La suppression <strong>s’est arrêtée sur une erreur</strong> et attend l’exploitant \
                       de ce service. Rien de ce qui a déjà été effacé n’a été restauré.",
    deletion_finished: "Terminée :",
    deletion_erased: "Ce qui a été effacé :",
    deletion_not_found_title: "Demande de suppression introuvable",
    deletion_not_found_body: "Aucune demande de suppression ne porte ce code de confirmation. Les codes \
                              sont conservés un an après la fin de la suppression.",
    deletion_page: "Page :",
    deletion_pages: "Pages :",
    deletion_page_gone: "une page qui n’est plus connectée à qchat",
    deletion_page_unnamed: "une page sans nom public",
    erased_kinds: &[
        ("leads", "personnes"),
        ("consent_records", "preuves de consentement"),
        ("unsubscribe_links", "liens de désabonnement"),
        ("pending_replies", "messages pas encore envoyés"),
        ("broadcasts", "diffusions"),
        ("deliveries", "preuves d’envoi"),
        ("sent_replies", "réponses déjà envoyées"),
        ("account", "comptes"),
        ("pages", "pages"),
        ("sessions", "sessions"),
        ("security_events", "entrées du journal de sécurité"),
        ("notices", "notifications"),
        ("links", "liens"),
        ("blind_index_entries", "entrées de recherche"),
        ("data_keys", "clés de chiffrement"),
        ("lead_keys", "clés propres à une personne"),
    ],
};

pub static ES: Texts = Texts {
    unsubscribe: "Darse de baja",
    unsubscribe_question: "¿Dejar de recibir mensajes de {page}?",
    unsubscribed_title: "Te has dado de baja",
    unsubscribed_body: "Ya no recibirás mensajes de {page} a través de qchat.",
    this_page: "esta página",
    invalid_link_title: "Enlace no válido",
    invalid_link_body: "Este enlace no es válido o ha caducado.",
    failure_title: "Algo salió mal",
    failure_body: "Algo salió mal por nuestra parte. Vuelve a intentarlo en un momento.",
    deletion_title: "Solicitud de eliminación",
    deletion_code: "Código de confirmación:",
    deletion_completed: "La eliminación está <strong>completada</strong>. Todo lo que abarcaba se ha \
                         borrado y no se puede restaurar.",
    deletion_in_progress: "La eliminación está <strong>en curso</strong>. Suele terminar en unos minutos; \
                           esta página muestra cuándo ha terminado.",
    deletion_stalled: "La eliminación <strong>se detuvo por un error</strong> y está a la espera del \
                       operador de este servicio. Nada de lo ya borrado se ha restaurado.",
    deletion_finished: "Terminada:",
    deletion_erased: "Qué se ha borrado:",
    deletion_not_found_title: "Solicitud de eliminación no encontrada",
    deletion_not_found_body: "Ninguna solicitud de eliminación tiene este código de confirmación. Los \
                              códigos se conservan un año después de terminar la eliminación.",
    deletion_page: "Página:",
    deletion_pages: "Páginas:",
    deletion_page_gone: "una página que ya no está conectada a qchat",
    deletion_page_unnamed: "una página sin nombre público",
    erased_kinds: &[
        ("leads", "personas"),
        ("consent_records", "registros de consentimiento"),
        ("unsubscribe_links", "enlaces de baja"),
        ("pending_replies", "mensajes aún no enviados"),
        ("broadcasts", "difusiones"),
        ("deliveries", "registros de entrega"),
        ("sent_replies", "respuestas ya enviadas"),
        ("account", "cuentas"),
        ("pages", "páginas"),
        ("sessions", "sesiones"),
        ("security_events", "entradas del registro de seguridad"),
        ("notices", "avisos"),
        ("links", "enlaces"),
        ("blind_index_entries", "entradas de búsqueda"),
        ("data_keys", "claves de cifrado"),
        ("lead_keys", "claves propias de cada persona"),
    ],
};

pub static IT: Texts = Texts {
    unsubscribe: "Annulla l’iscrizione",
    unsubscribe_question: "Non ricevere più messaggi da {page}?",
    unsubscribed_title: "Iscrizione annullata",
    unsubscribed_body: "Non riceverai più messaggi da {page} tramite qchat.",
    this_page: "questa pagina",
    invalid_link_title: "Link non valido",
    invalid_link_body: "Questo link non è valido o è scaduto.",
    failure_title: "Qualcosa è andato storto",
    failure_body: "Qualcosa è andato storto da parte nostra. Riprova tra un momento.",
    deletion_title: "Richiesta di cancellazione",
    deletion_code: "Codice di conferma:",
    deletion_completed: "La cancellazione è <strong>completata</strong>. Tutto ciò che comprendeva è stato \
                         cancellato e non può essere ripristinato.",
    deletion_in_progress: "La cancellazione è <strong>in corso</strong>. Di solito termina in pochi \
                           minuti; questa pagina mostra quando è conclusa.",
    deletion_stalled: "La cancellazione <strong>si è fermata per un errore</strong> ed è in attesa del \
                       gestore di questo servizio. Nulla di quanto già cancellato è stato ripristinato.",
    deletion_finished: "Conclusa:",
    deletion_erased: "Che cosa è stato cancellato:",
    deletion_not_found_title: "Richiesta di cancellazione non trovata",
    deletion_not_found_body: "Nessuna richiesta di cancellazione ha questo codice di conferma. I codici \
                              sono conservati per un anno dopo la fine della cancellazione.",
    deletion_page: "Pagina:",
    deletion_pages: "Pagine:",
    deletion_page_gone: "una pagina non più collegata a qchat",
    deletion_page_unnamed: "una pagina senza nome pubblico",
    erased_kinds: &[
        ("leads", "persone"),
        ("consent_records", "prove del consenso"),
        ("unsubscribe_links", "link di disiscrizione"),
        ("pending_replies", "messaggi non ancora inviati"),
        ("broadcasts", "messaggi diffusi"),
        ("deliveries", "registri di consegna"),
        ("sent_replies", "risposte già inviate"),
        ("account", "account"),
        ("pages", "pagine"),
        ("sessions", "sessioni"),
        ("security_events", "voci del registro di sicurezza"),
        ("notices", "comunicazioni"),
        ("links", "link"),
        ("blind_index_entries", "voci di ricerca"),
        ("data_keys", "chiavi di cifratura"),
        ("lead_keys", "chiavi proprie di ogni persona"),
    ],
};

pub static NL: Texts = Texts {
    unsubscribe: "Afmelden",
    unsubscribe_question: "Geen berichten meer ontvangen van {page}?",
    unsubscribed_title: "Je bent afgemeld",
    unsubscribed_body: "Je ontvangt via qchat geen berichten meer van {page}.",
    this_page: "deze pagina",
    invalid_link_title: "Link niet geldig",
    invalid_link_body: "Deze link is niet geldig of verlopen.",
    failure_title: "Er ging iets mis",
    failure_body: "Er ging bij ons iets mis. Probeer het zo meteen opnieuw.",
    deletion_title: "Verwijderverzoek",
    deletion_code: "Bevestigingscode:",
    deletion_completed: "De verwijdering is <strong>voltooid</strong>. Alles wat eronder viel is gewist en \
                         kan niet worden hersteld.",
    deletion_in_progress: "De verwijdering is <strong>bezig</strong>. Meestal is ze binnen enkele minuten \
                           klaar; deze pagina laat zien wanneer.",
    deletion_stalled: "De verwijdering is <strong>gestopt door een fout</strong> en wacht op de beheerder \
                       van deze dienst. Niets van wat al gewist is, is hersteld.",
    deletion_finished: "Voltooid:",
    deletion_erased: "Wat is gewist:",
    deletion_not_found_title: "Verwijderverzoek niet gevonden",
    deletion_not_found_body: "Geen verwijderverzoek heeft deze bevestigingscode. Codes worden een jaar na \
                              het einde van de verwijdering bewaard.",
    deletion_page: "Pagina:",
    deletion_pages: "Pagina’s:",
    deletion_page_gone: "een pagina die niet meer aan qchat gekoppeld is",
    deletion_page_unnamed: "een pagina zonder openbare naam",
    erased_kinds: &[
        ("leads", "personen"),
        ("consent_records", "toestemmingsbewijzen"),
        ("unsubscribe_links", "afmeldlinks"),
        ("pending_replies", "nog niet verzonden berichten"),
        ("broadcasts", "verzendingen"),
        ("deliveries", "afleverbewijzen"),
        ("sent_replies", "al verzonden antwoorden"),
        ("account", "accounts"),
        ("pages", "pagina’s"),
        ("sessions", "sessies"),
        ("security_events", "items in het beveiligingslogboek"),
        ("notices", "meldingen"),
        ("links", "links"),
        ("blind_index_entries", "zoekvermeldingen"),
        ("data_keys", "versleutelingssleutels"),
        ("lead_keys", "sleutels per persoon"),
    ],
};

pub static PL: Texts = Texts {
    unsubscribe: "Wypisz się",
    unsubscribe_question: "Nie otrzymywać już wiadomości od {page}?",
    unsubscribed_title: "Wypisano Cię",
    unsubscribed_body: "Nie będziesz już otrzymywać wiadomości od {page} przez qchat.",
    this_page: "tej strony",
    invalid_link_title: "Nieprawidłowy link",
    invalid_link_body: "Ten link jest nieprawidłowy lub wygasł.",
    failure_title: "Coś poszło nie tak",
    failure_body: "Coś poszło nie tak po naszej stronie. Spróbuj ponownie za chwilę.",
    deletion_title: "Wniosek o usunięcie",
    deletion_code: "Kod potwierdzenia:",
    deletion_completed: "Usuwanie jest <strong>zakończone</strong>. Wszystko, czego dotyczyło, zostało \
                         usunięte i nie może zostać przywrócone.",
    deletion_in_progress: "Usuwanie <strong>trwa</strong>. Zwykle kończy się w ciągu kilku minut; ta \
                           strona pokaże, kiedy się zakończy.",
    deletion_stalled: "Usuwanie <strong>zatrzymało się z powodu błędu</strong> i czeka na operatora tej \
                       usługi. Nic z tego, co już usunięto, nie zostało przywrócone.",
    deletion_finished: "Zakończono:",
    deletion_erased: "Co usunięto:",
    deletion_not_found_title: "Nie znaleziono wniosku o usunięcie",
    deletion_not_found_body: "Żaden wniosek o usunięcie nie ma tego kodu potwierdzenia. Kody są \
                              przechowywane przez rok od zakończenia usuwania.",
    deletion_page: "Strona:",
    deletion_pages: "Strony:",
    deletion_page_gone: "strona, która nie jest już połączona z qchat",
    deletion_page_unnamed: "strona bez nazwy publicznej",
    erased_kinds: &[
        ("leads", "osoby"),
        ("consent_records", "dowody zgody"),
        ("unsubscribe_links", "linki do wypisania"),
        ("pending_replies", "jeszcze niewysłane wiadomości"),
        ("broadcasts", "wysyłki"),
        ("deliveries", "potwierdzenia doręczenia"),
        ("sent_replies", "już wysłane odpowiedzi"),
        ("account", "konta"),
        ("pages", "strony"),
        ("sessions", "sesje"),
        ("security_events", "wpisy w dzienniku bezpieczeństwa"),
        ("notices", "powiadomienia"),
        ("links", "linki"),
        ("blind_index_entries", "wpisy wyszukiwania"),
        ("data_keys", "klucze szyfrowania"),
        ("lead_keys", "klucze poszczególnych osób"),
    ],
};

pub static PT: Texts = Texts {
    unsubscribe: "Cancelar subscrição",
    unsubscribe_question: "Deixar de receber mensagens de {page}?",
    unsubscribed_title: "A sua subscrição foi cancelada",
    unsubscribed_body: "Deixará de receber mensagens de {page} através do qchat.",
    this_page: "esta página",
    invalid_link_title: "Link inválido",
    invalid_link_body: "Este link não é válido ou expirou.",
    failure_title: "Algo correu mal",
    failure_body: "Algo correu mal do nosso lado. Tente novamente daqui a pouco.",
    deletion_title: "Pedido de eliminação",
    deletion_code: "Código de confirmação:",
    deletion_completed: "A eliminação está <strong>concluída</strong>. Tudo o que abrangia foi apagado e \
                         não pode ser restaurado.",
    deletion_in_progress: "A eliminação está <strong>em curso</strong>. Normalmente termina em poucos \
                           minutos; esta página mostra quando estiver concluída.",
    deletion_stalled: "A eliminação <strong>parou devido a um erro</strong> e aguarda o operador deste \
                       serviço. Nada do que já foi apagado foi restaurado.",
    deletion_finished: "Concluída:",
    deletion_erased: "O que foi apagado:",
    deletion_not_found_title: "Pedido de eliminação não encontrado",
    deletion_not_found_body: "Nenhum pedido de eliminação tem este código de confirmação. Os códigos são \
                              guardados durante um ano após o fim da eliminação.",
    deletion_page: "Página:",
    deletion_pages: "Páginas:",
    deletion_page_gone: "uma página que já não está ligada ao qchat",
    deletion_page_unnamed: "uma página sem nome público",
    erased_kinds: &[
        ("leads", "pessoas"),
        ("consent_records", "registos de consentimento"),
        ("unsubscribe_links", "links de cancelamento"),
        ("pending_replies", "mensagens ainda não enviadas"),
        ("broadcasts", "difusões"),
        ("deliveries", "registos de entrega"),
        ("sent_replies", "respostas já enviadas"),
        ("account", "contas"),
        ("pages", "páginas"),
        ("sessions", "sessões"),
        ("security_events", "entradas do registo de segurança"),
        ("notices", "avisos"),
        ("links", "links"),
        ("blind_index_entries", "entradas de pesquisa"),
        ("data_keys", "chaves de cifragem"),
        ("lead_keys", "chaves próprias de cada pessoa"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_preferred_language_qchat_has_is_chosen() {
        let pick = |h: &str| Lang::from_accept_language(Some(h));
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(pick("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(pick("ja,fr;q=0.5,en;q=0.4"), Lang::Fr);
        assert_eq!(pick("en;q=0.2, pt-BR"), Lang::Pt);
        assert_eq!(
            pick("nl;q=0.7, pl;q=0.7"),
            Lang::Nl,
            "the first among equals"
        );
        assert_eq!(pick("es;q=0, it"), Lang::It, "q=0 means not acceptable");
        assert_eq!(pick("ja, zh"), Lang::En);
        assert_eq!(pick("*"), Lang::En);
        assert_eq!(
            pick("de;q=2, fr;q=abc, it;q=0.5"),
            Lang::It,
            "malformed entries skipped"
        );
        assert_eq!(pick("DE_at"), Lang::De);
        assert_eq!(pick(""), Lang::En);
    }

    #[test]
    fn every_language_has_every_sentence_with_its_placeholders() {
        for lang in Lang::ALL {
            let t = lang.texts();
            assert!(t.unsubscribe_question.contains("{page}"), "{lang:?}");
            assert!(t.unsubscribed_body.contains("{page}"), "{lang:?}");
            for s in [
                t.unsubscribe,
                t.unsubscribed_title,
                t.this_page,
                t.invalid_link_title,
                t.invalid_link_body,
                t.failure_title,
                t.failure_body,
                t.deletion_title,
                t.deletion_code,
                t.deletion_completed,
                t.deletion_in_progress,
                t.deletion_stalled,
                t.deletion_finished,
                t.deletion_erased,
                t.deletion_not_found_title,
                t.deletion_not_found_body,
                t.deletion_page,
                t.deletion_pages,
                t.deletion_page_gone,
                t.deletion_page_unnamed,
            ] {
                assert!(!s.trim().is_empty() && !s.contains('{'), "{lang:?}: {s}");
            }
            let keys: Vec<_> = t.erased_kinds.iter().map(|(k, _)| *k).collect();
            let english: Vec<_> = EN.erased_kinds.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, english, "{lang:?} names every kind English names");
            if lang != Lang::En {
                assert_ne!(t.unsubscribe, EN.unsubscribe, "{lang:?} is translated");
                assert_ne!(t.deletion_page_gone, EN.deletion_page_gone, "{lang:?}");
                assert_ne!(
                    t.deletion_page_unnamed, EN.deletion_page_unnamed,
                    "{lang:?}"
                );
            }
        }
        assert_eq!(EN.erased_kind("leads"), "people");
        assert_eq!(DE.erased_kind("new_kind"), "new kind");
    }
}
