//! The privacy notice and the record of processing in Polish. Legal bases are cited as the Polish text of
//! the GDPR (RODO) cites them: „art. 6 ust. 1 lit. a”. Durations take Polish plural forms (1 godzina,
//! 24 godziny, 48 godzin).

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_PL: NoticeTexts = NoticeTexts {
    lang: Lang::Pl,
    title: "Polityka prywatności",
    version_line: "Wersja {version}, obowiązuje od {date}.",
    placeholder: "To jest instalacja lokalna. Wskazany niżej administrator danych jest tylko przykładem: ustaw QCHAT_CONTROLLER_NAME i QCHAT_CONTROLLER_EMAIL, aby wskazać właściwego.",
    controller_label: "Administrator danych",
    email_label: "E-mail",
    address_label: "Adres pocztowy",
    collected_title: "Co jest zbierane, w jakim celu i jak długo",
    collected_intro: "Każda dana osobowa jest przechowywana w postaci zaszyfrowanej (AES-256-GCM kluczem własnego konta) albo wyłącznie jako skrót jednokierunkowy lub skrót z kluczem. Imiona i nazwiska, zdjęcia profilowe i treść Twoich wiadomości nie są przechowywane.",
    leads_title: "Jeśli piszesz do strony w Messengerze",
    leads_intro: "Firma prowadząca stronę decyduje, do czego służą Twoje dane; qchat przechowuje je dla tej firmy:",
    holders_title: "Jeśli masz konto qchat",
    kinds_label: "Rodzaje danych",
    basis_label: "Podstawa prawna",
    kept_label: "Okres przechowywania",
    recipients_title: "Kto je otrzymuje",
    recipients_intro: "Żadne dane nie są sprzedawane ani wykorzystywane do reklamy lub profilowania. Otrzymują je wyłącznie te podmioty przetwarzające, aby usługa mogła działać:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "dostarcza wiadomości Messengera między stroną a osobami, które do niej piszą",
        ),
        (
            "Amazon Web Services",
            "utrzymuje usługę i jej zaszyfrowaną bazę danych (w regionie AWS wybranym przez operatora), zarządza kluczami szyfrowania i wysyła e-maile",
        ),
    ],
    cookies_title: "Pliki cookie",
    cookie_text: "Tylko jeden plik cookie, qchat_session, utrzymuje zalogowanie posiadacza konta: do zamknięcia przeglądarki (po stronie serwera {hours} godzin) albo przez {days} dni z opcją „nie wylogowuj mnie”. Żadnych plików cookie służących śledzeniu ani reklamie.",
    authority_label: "Organ nadzorczy właściwy dla administratora",
    record_link: "Każda przechowywana wartość, jej ochrona i okres przechowywania: rejestr czynności przetwarzania",
    record_title: "Rejestr czynności przetwarzania",
    record_intro: "Rejestr czynności przetwarzania operatora (art. 30 RODO), tworzony z inwentarza danych, którego przestrzega kod: każda przechowywana wartość, dlaczego jest przechowywana, jak jest chroniona i jak długo. Opisy poszczególnych wartości pochodzą z kodu i są w języku angielskim.",
    record_columns: [
        "wpis",
        "wartość",
        "kategoria",
        "dane osobowe",
        "ochrona",
        "cel",
        "okres przechowywania",
    ],
    record_activities_title: "Czynności przetwarzania",
    record_types_title: "Każda przechowywana wartość",
    back_to_notice: "Powrót do polityki prywatności",
    yes: "tak",
    no: "nie",
    purposes: &[
        (
            "consent",
            "Zapisywanie Twoich decyzji o subskrypcji i przechowywanie ich dowodu",
        ),
        (
            "messages",
            "Wysyłanie Ci odpowiedzi, o które prosisz, i wiadomości, które subskrybujesz",
        ),
        (
            "deletion_requests",
            "Usunięcie Twoich danych, gdy poprosisz o to Metę",
        ),
        (
            "account",
            "Zapewnienie Twojego konta: logowanie, Twoje strony i wysyłki",
        ),
        ("security", "Ochrona kont"),
        (
            "notices",
            "Informowanie Cię e-mailem o Twoim koncie, zmianach zasad i naruszeniach ochrony danych osobowych",
        ),
        (
            "operation",
            "Działanie usługi (klucze szyfrowania, zadania w tle, tempo wysyłania)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "Twój identyfikator Messengera dla strony (zaszyfrowany), Twój status i czas Twojej ostatniej wiadomości",
        ),
        (
            "consent_record",
            "Twoje zgody i odmowy: na co, kiedy i w jaki sposób",
        ),
        ("unsubscribe_link", "skrót Twojego linku do wypisania"),
        (
            "lead_lookup",
            "skrót z kluczem Twojego identyfikatora na stronie, aby odnaleźć Twoje dane, wraz z Twoim własnym losowym kluczem, którego wymaga szyfrowanie Twoich danych",
        ),
        (
            "lead_keys",
            "ten sam skrót i Twój własny losowy klucz, potrzebny do szyfrowania Twoich danych i niszczony razem z nimi",
        ),
        (
            "meta_deletion_subject",
            "Twój identyfikator w zakresie aplikacji (zaszyfrowany), do czasu odnalezienia Twoich danych",
        ),
        (
            "reply",
            "odpowiedzi qchat do Ciebie (zaszyfrowane), do czasu ich wysłania",
        ),
        ("delivery", "które wysyłki do Ciebie dotarły"),
        (
            "webhook_event",
            "znacznik, że zdarzenie od Mety zostało obsłużone (bez treści)",
        ),
        (
            "account",
            "Twój adres e-mail, imię i nazwisko (zaszyfrowane) oraz skrót hasła",
        ),
        (
            "email_claim",
            "skrót z kluczem Twojego adresu e-mail, aby odnaleźć Twoje konto",
        ),
        (
            "email_verification",
            "adres oczekujący na potwierdzenie (zaszyfrowany)",
        ),
        ("password_reset", "link do zresetowania hasła (tylko skrót)"),
        (
            "page",
            "Twoje połączone strony i ich tokeny dostępu (zaszyfrowane)",
        ),
        ("broadcast", "Twoje wysyłki i ich treść (zaszyfrowana)"),
        ("session", "Twoje sesje logowania (tylko skrót tokenu)"),
        (
            "security_event",
            "Twój dziennik bezpieczeństwa: logowania wraz z siecią, z której pochodziły, oraz zmiany danych logowania",
        ),
        (
            "attempt_slot",
            "liczone próby logowania, na potrzeby blokady",
        ),
        (
            "mail_throttle",
            "informacja, że w ciągu ostatnich 15 minut wysłano e-mail na dany adres",
        ),
        ("audit_entry", "działania operatora"),
        ("outbox", "powiadomienia wysłane do Ciebie e-mailem"),
        (
            "mail_suppression",
            "adres, na który e-mail nie dotarł lub który zgłosił spam",
        ),
        (
            "breach_notice",
            "zawiadomienia o naruszeniach (bez danych osobowych)",
        ),
        ("policy", "opublikowane wersje zasad (bez danych osobowych)"),
        ("data_key", "klucze szyfrowania, chronione przez KMS"),
        (
            "job",
            "zadania w tle i potwierdzenia usunięcia (tylko liczby i identyfikatory stron)",
        ),
        ("pace", "tempo wysyłania każdej strony"),
    ],
    purpose_label: "Cel",
    subject_label: "Osoby, których dane dotyczą",
    bases: [
        "Twoja zgoda udzielona firmie prowadzącej stronę (art. 6 ust. 1 lit. a RODO) i jej obowiązek wykazania tej zgody (art. 7 ust. 1); qchat przetwarza dane w imieniu tej firmy (art. 28)",
        "umowa dotycząca Twojego konta (art. 6 ust. 1 lit. b RODO)",
        "umowa dotycząca Twojego konta i obowiązki prawne, takie jak zawiadomienie Cię o naruszeniu ochrony danych osobowych (art. 6 ust. 1 lit. b i c oraz art. 34 RODO)",
        "prawnie uzasadniony interes w bezpiecznej usłudze (art. 6 ust. 1 lit. f RODO)",
        "brak danych osobowych",
    ],
    categories: [
        "identyfikatory",
        "dane kontaktowe",
        "treść wiadomości",
        "dane logowania",
        "rejestry bezpieczeństwa",
        "dane techniczne",
    ],
    kept_while_owner_exists: "dopóki istnieje konto, strona lub osoba, do której należą; usuwane razem z nią",
    kept_until_expiry: "do wygaśnięcia (zob. rejestr), potem usuwane",
    kept_while_in_use: "dopóki subskrybujesz, a strona jest połączona; w przeciwnym razie {days} dni od Twojej ostatniej wiadomości lub zmiany zgody, potem usuwane",
    kept_for: "{n} {unit}, potem usuwane",
    days: ["dzień", "dni", "dni"],
    hours: ["godzina", "godziny", "godzin"],
    minutes: ["minuta", "minuty", "minut"],
};
