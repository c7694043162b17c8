//! The privacy notice and the record of processing in Italian. Legal bases are cited as the Italian text
//! of the GDPR (RGPD) cites them: «articolo 6, paragrafo 1, lettera a)».

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_IT: NoticeTexts = NoticeTexts {
    lang: Lang::It,
    title: "Informativa sulla privacy",
    version_line: "Versione {version}, in vigore dal {date}.",
    placeholder: "Questa è un’installazione locale. Il titolare del trattamento indicato sotto è un segnaposto: imposta QCHAT_CONTROLLER_NAME e QCHAT_CONTROLLER_EMAIL per indicare quello reale.",
    controller_label: "Titolare del trattamento",
    email_label: "E-mail",
    address_label: "Indirizzo postale",
    collected_title: "Quali dati sono raccolti, perché e per quanto tempo",
    collected_intro: "Ogni dato personale è conservato cifrato (AES-256-GCM con una chiave propria del suo account) o solo come hash unidirezionale o con chiave. Nomi, foto del profilo e testo dei tuoi messaggi non vengono conservati.",
    leads_title: "Se scrivi a una pagina su Messenger",
    leads_intro: "L’azienda che gestisce la pagina decide per quali scopi sono usati i tuoi dati; qchat li conserva per conto di quell’azienda:",
    holders_title: "Se hai un account qchat",
    kinds_label: "Tipi di dati",
    basis_label: "Base giuridica",
    kept_label: "Conservazione",
    recipients_title: "Chi li riceve",
    recipients_intro: "Nessun dato viene venduto o usato per pubblicità o profilazione. Solo questi responsabili del trattamento li ricevono, per far funzionare il servizio:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "recapita i messaggi di Messenger tra una pagina e le persone che le scrivono",
        ),
        (
            "Amazon Web Services",
            "ospita il servizio e il suo database cifrato (nella regione AWS scelta dal gestore), gestisce le chiavi di cifratura e invia le e-mail",
        ),
    ],
    cookies_title: "Cookie",
    cookie_text: "Un solo cookie, qchat_session, mantiene l’accesso di un titolare di account: fino alla chiusura del browser (lato server {hours} ore) oppure {days} giorni con «resta connesso». Nessun cookie di tracciamento o pubblicitario.",
    authority_label: "Autorità di controllo competente per il titolare del trattamento",
    record_link: "Ogni dato conservato, la sua protezione e la sua durata di conservazione: il registro delle attività di trattamento",
    record_title: "Registro delle attività di trattamento",
    record_intro: "Il registro delle attività di trattamento del gestore (articolo 30 del RGPD), generato dall’inventario dei dati che il codice impone: ogni dato conservato, perché è conservato, come è protetto e per quanto tempo. Le descrizioni dei singoli dati provengono dal codice e sono in inglese.",
    record_columns: [
        "voce",
        "dato",
        "categoria",
        "personale",
        "protezione",
        "finalità",
        "conservazione",
    ],
    record_activities_title: "Attività di trattamento",
    record_types_title: "Ogni dato conservato",
    back_to_notice: "Torna all’informativa sulla privacy",
    yes: "sì",
    no: "no",
    purposes: &[
        (
            "consent",
            "Registrare le tue scelte di iscrizione e conservarne la prova",
        ),
        (
            "messages",
            "Inviarti le risposte che hai chiesto e i messaggi a cui ti sei iscritto",
        ),
        (
            "deletion_requests",
            "Cancellare i tuoi dati quando lo chiedi a Meta",
        ),
        (
            "account",
            "Fornire il tuo account: accesso, le tue pagine e i tuoi messaggi diffusi",
        ),
        ("security", "Mantenere sicuri gli account"),
        (
            "notices",
            "Informarti via e-mail sul tuo account, sulle modifiche delle informative e sulle violazioni dei dati personali",
        ),
        (
            "operation",
            "Far funzionare il servizio (chiavi di cifratura, attività in background, ritmo di invio)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "il tuo ID Messenger per la pagina (cifrato), il tuo stato e quando hai scritto l’ultima volta",
        ),
        (
            "consent_record",
            "che cosa hai accettato o rifiutato, quando e con quale mezzo",
        ),
        ("unsubscribe_link", "l’hash del tuo link di disiscrizione"),
        (
            "lead_lookup",
            "un hash con chiave del tuo ID sulla pagina, per trovare i tuoi dati, con la tua chiave casuale, che serve a cifrare i tuoi dati",
        ),
        (
            "lead_keys",
            "lo stesso hash e una chiave casuale tua, che serve alla cifratura dei tuoi dati e viene distrutta con essi",
        ),
        (
            "meta_deletion_subject",
            "il tuo ID specifico per l’app (cifrato), finché i tuoi dati non sono stati trovati",
        ),
        (
            "reply",
            "le risposte di qchat a te (cifrate), finché non sono inviate",
        ),
        ("delivery", "quali messaggi diffusi ti hanno raggiunto"),
        (
            "webhook_event",
            "un segno che l’evento di Meta è stato elaborato (senza contenuto)",
        ),
        (
            "account",
            "il tuo indirizzo e-mail, il tuo nome (cifrati) e l’hash della tua password",
        ),
        (
            "email_claim",
            "un hash con chiave del tuo indirizzo e-mail, per trovare il tuo account",
        ),
        (
            "email_verification",
            "un indirizzo in attesa di conferma (cifrato)",
        ),
        (
            "password_reset",
            "un link per reimpostare la password (solo l’hash)",
        ),
        (
            "page",
            "le tue pagine collegate e i loro token di accesso (cifrati)",
        ),
        (
            "broadcast",
            "i tuoi messaggi diffusi e il loro testo (cifrato)",
        ),
        (
            "session",
            "le tue sessioni di accesso (solo un hash del token)",
        ),
        (
            "security_event",
            "il tuo registro di sicurezza: gli accessi con la rete da cui provenivano e le modifiche delle credenziali",
        ),
        (
            "attempt_slot",
            "i tentativi di accesso contati, per il blocco",
        ),
        (
            "mail_throttle",
            "che negli ultimi 15 minuti è stata inviata un’e-mail a un indirizzo",
        ),
        ("audit_entry", "le azioni del gestore"),
        (
            "outbox",
            "le comunicazioni che ti sono state inviate via e-mail",
        ),
        (
            "mail_suppression",
            "un indirizzo che ha respinto le e-mail o le ha segnalate come spam",
        ),
        (
            "breach_notice",
            "le comunicazioni di violazione (senza dati personali)",
        ),
        (
            "policy",
            "le versioni pubblicate delle informative (senza dati personali)",
        ),
        ("data_key", "le chiavi di cifratura, protette da KMS"),
        (
            "job",
            "le attività in background e le ricevute di cancellazione (solo numeri e ID delle pagine)",
        ),
        ("pace", "il ritmo di invio di ogni pagina"),
    ],
    purpose_label: "Finalità",
    subject_label: "Interessati",
    bases: [
        "il tuo consenso, dato all’azienda che gestisce la pagina (articolo 6, paragrafo 1, lettera a), del RGPD), e il suo obbligo di dimostrarlo (articolo 7, paragrafo 1); qchat tratta i dati per conto di quell’azienda (articolo 28)",
        "il contratto relativo al tuo account (articolo 6, paragrafo 1, lettera b), del RGPD)",
        "il contratto relativo al tuo account e gli obblighi legali, come quello di comunicarti una violazione dei dati personali (articolo 6, paragrafo 1, lettere b) e c), e articolo 34 del RGPD)",
        "il legittimo interesse a un servizio sicuro (articolo 6, paragrafo 1, lettera f), del RGPD)",
        "nessun dato personale",
    ],
    categories: [
        "dati identificativi",
        "dati di contatto",
        "contenuto dei messaggi",
        "credenziali",
        "registri di sicurezza",
        "dati tecnici",
    ],
    kept_while_owner_exists: "finché esiste l’account, la pagina o la persona a cui si riferisce; cancellazione insieme a essi",
    kept_until_expiry: "fino alla scadenza (vedi il registro), poi cancellazione",
    kept_while_in_use: "finché sei iscritto e la pagina è collegata; altrimenti {days} giorni dal tuo ultimo messaggio o dall’ultima modifica del consenso, poi cancellazione",
    kept_for: "{n} {unit}, poi cancellazione",
    days: ["giorno", "giorni", "giorni"],
    hours: ["ora", "ore", "ore"],
    minutes: ["minuto", "minuti", "minuti"],
};
