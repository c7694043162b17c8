//! The privacy notice and the record of processing in Dutch. Legal bases are cited as the Dutch text of
//! the GDPR (AVG) cites them: "artikel 6, lid 1, punt a)".

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_NL: NoticeTexts = NoticeTexts {
    lang: Lang::Nl,
    title: "Privacyverklaring",
    version_line: "Versie {version}, geldig sinds {date}.",
    placeholder: "Dit is een lokale installatie. De hieronder genoemde verwerkingsverantwoordelijke is een tijdelijke aanduiding: stel QCHAT_CONTROLLER_NAME en QCHAT_CONTROLLER_EMAIL in om de echte te noemen.",
    controller_label: "Verwerkingsverantwoordelijke",
    email_label: "E-mail",
    address_label: "Postadres",
    collected_title: "Wat er wordt verzameld, waarom en hoelang",
    collected_intro: "Elk persoonsgegeven wordt versleuteld opgeslagen (AES-256-GCM met een sleutel van het eigen account) of alleen als eenrichtingshash of hash met sleutel. Namen, profielfoto’s en de tekst van je berichten worden niet bewaard.",
    leads_title: "Als je in Messenger een pagina een bericht stuurt",
    leads_intro: "Het bedrijf dat de pagina beheert, bepaalt waarvoor je gegevens worden gebruikt; qchat bewaart ze voor dat bedrijf:",
    holders_title: "Als je een qchat-account hebt",
    kinds_label: "Soorten gegevens",
    basis_label: "Rechtsgrond",
    kept_label: "Bewaard",
    recipients_title: "Wie ze ontvangt",
    recipients_intro: "Er worden geen gegevens verkocht of gebruikt voor reclame of profilering. Alleen deze verwerkers ontvangen ze, om de dienst te laten werken:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "bezorgt Messenger-berichten tussen een pagina en de mensen die haar schrijven",
        ),
        (
            "Amazon Web Services",
            "host de dienst en de versleutelde database ervan (in de AWS-regio die de beheerder kiest), beheert de versleutelingssleutels en verstuurt e-mail",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Slechts één cookie, qchat_session, houdt een accounthouder ingelogd: tot de browser sluit (aan de serverkant {hours} uur), of {days} dagen met ‘ingelogd blijven’. Geen tracking- of advertentiecookies.",
    authority_label: "Toezichthoudende autoriteit die bevoegd is voor de verwerkingsverantwoordelijke",
    record_link: "Elk opgeslagen gegeven, de beveiliging en de bewaartermijn ervan: het register van verwerkingsactiviteiten",
    record_title: "Register van verwerkingsactiviteiten",
    record_intro: "Het register van verwerkingsactiviteiten van de beheerder (artikel 30 AVG), gemaakt uit de gegevensinventaris die de code afdwingt: elk opgeslagen gegeven, waarom het wordt bewaard, hoe het is beveiligd en hoelang. De beschrijvingen van de afzonderlijke gegevens komen uit de code en zijn in het Engels.",
    record_columns: [
        "record",
        "gegeven",
        "categorie",
        "persoonsgegeven",
        "beveiliging",
        "doel",
        "bewaartermijn",
    ],
    record_activities_title: "Verwerkingsactiviteiten",
    record_types_title: "Elk opgeslagen gegeven",
    back_to_notice: "Terug naar de privacyverklaring",
    yes: "ja",
    no: "nee",
    purposes: &[
        (
            "consent",
            "Je abonnementskeuzes vastleggen en het bewijs ervan bewaren",
        ),
        (
            "messages",
            "Je de antwoorden sturen waar je om vroeg en de berichten waarop je bent geabonneerd",
        ),
        (
            "deletion_requests",
            "Je gegevens wissen als je Meta daarom vraagt",
        ),
        (
            "account",
            "Je account leveren: inloggen, je pagina’s en je verzendingen",
        ),
        ("security", "Accounts veilig houden"),
        (
            "notices",
            "Je per e-mail informeren over je account, wijzigingen van het beleid en inbreuken in verband met persoonsgegevens",
        ),
        (
            "operation",
            "De dienst laten werken (versleutelingssleutels, achtergrondtaken, verzendtempo)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "je Messenger-ID voor de pagina (versleuteld), je status en wanneer je voor het laatst schreef",
        ),
        (
            "consent_record",
            "waarmee je hebt ingestemd of wat je hebt geweigerd, wanneer en waarlangs",
        ),
        ("unsubscribe_link", "de hash van je afmeldlink"),
        (
            "lead_lookup",
            "een hash met sleutel van je ID op de pagina, om je gegevens te vinden, met je eigen willekeurige sleutel, die de versleuteling van je gegevens nodig heeft",
        ),
        (
            "lead_keys",
            "dezelfde hash en een eigen willekeurige sleutel, die de versleuteling van je gegevens nodig heeft en die met je gegevens wordt vernietigd",
        ),
        (
            "meta_deletion_subject",
            "je app-specifieke ID (versleuteld), tot je gegevens zijn gevonden",
        ),
        (
            "reply",
            "de antwoorden van qchat aan jou (versleuteld), tot ze zijn verzonden",
        ),
        ("delivery", "welke verzendingen je hebben bereikt"),
        (
            "webhook_event",
            "een markering dat de gebeurtenis van Meta is verwerkt (zonder inhoud)",
        ),
        (
            "account",
            "je e-mailadres, je naam (versleuteld) en de hash van je wachtwoord",
        ),
        (
            "email_claim",
            "een hash met sleutel van je e-mailadres, om je account te vinden",
        ),
        (
            "email_verification",
            "een adres dat nog bevestigd moet worden (versleuteld)",
        ),
        (
            "password_reset",
            "een link om het wachtwoord opnieuw in te stellen (alleen de hash)",
        ),
        (
            "page",
            "je gekoppelde pagina’s en hun toegangstokens (versleuteld)",
        ),
        ("broadcast", "je verzendingen en hun tekst (versleuteld)"),
        ("session", "je inlogsessies (alleen een hash van het token)"),
        (
            "security_event",
            "je beveiligingslogboek: wanneer je inlogde, met het netwerk waar dat vandaan kwam, en wijzigingen van je inloggegevens",
        ),
        ("attempt_slot", "getelde inlogpogingen, voor de blokkering"),
        (
            "mail_throttle",
            "dat er in de afgelopen 15 minuten een e-mail naar een adres ging",
        ),
        ("audit_entry", "de handelingen van de beheerder"),
        ("outbox", "de meldingen die je per e-mail zijn gestuurd"),
        (
            "mail_suppression",
            "een adres waarop een e-mail onbestelbaar was of dat spam meldde",
        ),
        (
            "breach_notice",
            "meldingen van datalekken (zonder persoonsgegevens)",
        ),
        (
            "policy",
            "gepubliceerde versies van het beleid (zonder persoonsgegevens)",
        ),
        ("data_key", "versleutelingssleutels, beschermd door KMS"),
        (
            "job",
            "achtergrondtaken en bewijzen van wissing (alleen aantallen en pagina-ID’s)",
        ),
        ("pace", "het verzendtempo van elke pagina"),
    ],
    purpose_label: "Doel",
    subject_label: "Betrokkenen",
    bases: [
        "je toestemming, gegeven aan het bedrijf dat de pagina beheert (artikel 6, lid 1, punt a), AVG), en diens plicht die aan te tonen (artikel 7, lid 1); qchat verwerkt in opdracht van dat bedrijf (artikel 28)",
        "de overeenkomst voor je account (artikel 6, lid 1, punt b), AVG)",
        "de overeenkomst voor je account en wettelijke verplichtingen, zoals je informeren over een inbreuk in verband met persoonsgegevens (artikel 6, lid 1, punten b) en c), en artikel 34 AVG)",
        "het gerechtvaardigd belang bij een veilige dienst (artikel 6, lid 1, punt f), AVG)",
        "geen persoonsgegevens",
    ],
    categories: [
        "identificatiegegevens",
        "contactgegevens",
        "inhoud van berichten",
        "inloggegevens",
        "beveiligingsgegevens",
        "technische gegevens",
    ],
    kept_while_owner_exists: "zolang het account, de pagina of de persoon waar het bij hoort bestaat; daarmee gewist",
    kept_until_expiry: "tot het verloopt (zie het register), daarna verwijderd",
    kept_while_in_use: "zolang je geabonneerd bent en de pagina gekoppeld is; anders {days} dagen na je laatste bericht of wijziging van je toestemming, daarna gewist",
    kept_for: "{n} {unit}, daarna verwijderd",
    days: ["dag", "dagen", "dagen"],
    hours: ["uur", "uur", "uur"],
    minutes: ["minuut", "minuten", "minuten"],
};
