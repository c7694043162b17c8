//! The privacy notice and the record of processing in French. Legal bases are cited as the French text
//! of the GDPR (RGPD) cites them: « article 6, paragraphe 1, point a) ».

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_FR: NoticeTexts = NoticeTexts {
    lang: Lang::Fr,
    title: "Politique de confidentialité",
    version_line: "Version {version}, en vigueur depuis le {date}.",
    placeholder: "Ceci est une installation locale. Le responsable du traitement indiqué ci-dessous est fictif : définissez QCHAT_CONTROLLER_NAME et QCHAT_CONTROLLER_EMAIL pour indiquer le vrai.",
    controller_label: "Responsable du traitement",
    email_label: "E-mail",
    address_label: "Adresse postale",
    collected_title: "Ce qui est collecté, pourquoi et pour combien de temps",
    collected_intro: "Chaque donnée personnelle est stockée chiffrée (AES-256-GCM avec une clé propre à son compte) ou uniquement sous forme d’empreinte à sens unique ou à clé. Les noms, les photos de profil et le texte de vos messages ne sont pas conservés.",
    leads_title: "Si vous écrivez à une page dans Messenger",
    leads_intro: "L’entreprise qui gère la page décide de l’usage de vos données ; qchat les conserve pour cette entreprise :",
    holders_title: "Si vous avez un compte qchat",
    kinds_label: "Types de données",
    basis_label: "Base juridique",
    kept_label: "Conservation",
    recipients_title: "Qui les reçoit",
    recipients_intro: "Aucune donnée n’est vendue ni utilisée pour de la publicité ou du profilage. Seuls ces sous-traitants les reçoivent, pour faire fonctionner le service :",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "achemine les messages Messenger entre une page et les personnes qui lui écrivent",
        ),
        (
            "Amazon Web Services",
            "héberge le service et sa base de données chiffrée (dans la région AWS choisie par l’exploitant), gère les clés de chiffrement et envoie les e-mails",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Un seul cookie, qchat_session, maintient la connexion d’un titulaire de compte : jusqu’à la fermeture du navigateur (côté serveur {hours} heures), ou {days} jours avec « rester connecté ». Aucun cookie de suivi ni de publicité.",
    authority_label: "Autorité de contrôle compétente pour le responsable du traitement",
    record_link: "Chaque donnée stockée, sa protection et sa durée de conservation : le registre des activités de traitement",
    record_title: "Registre des activités de traitement",
    record_intro: "Le registre des activités de traitement de l’exploitant (article 30 du RGPD), généré à partir de l’inventaire des données que le code impose : chaque donnée stockée, pourquoi elle est conservée, comment elle est protégée et pour combien de temps. Les descriptions de chaque donnée proviennent du code et sont en anglais.",
    record_columns: [
        "enregistrement",
        "donnée",
        "catégorie",
        "personnelle",
        "protection",
        "finalité",
        "conservation",
    ],
    record_activities_title: "Activités de traitement",
    record_types_title: "Chaque donnée stockée",
    back_to_notice: "Retour à la politique de confidentialité",
    yes: "oui",
    no: "non",
    purposes: &[
        (
            "consent",
            "Enregistrer vos choix d’abonnement et en conserver la preuve",
        ),
        (
            "messages",
            "Vous envoyer les réponses demandées et les messages auxquels vous êtes abonné",
        ),
        (
            "deletion_requests",
            "Effacer vos données quand vous le demandez à Meta",
        ),
        (
            "account",
            "Fournir votre compte : connexion, vos pages et vos diffusions",
        ),
        ("security", "Assurer la sécurité des comptes"),
        (
            "notices",
            "Vous informer par e-mail au sujet de votre compte, des modifications des politiques et des violations de données à caractère personnel",
        ),
        (
            "operation",
            "Faire fonctionner le service (clés de chiffrement, tâches de fond, cadence d’envoi)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "votre identifiant Messenger pour la page (chiffré), votre statut et la date de votre dernier message",
        ),
        (
            "consent_record",
            "ce que vous avez accepté ou refusé, quand et par quel moyen",
        ),
        (
            "unsubscribe_link",
            "l’empreinte de votre lien de désabonnement",
        ),
        (
            "lead_lookup",
            "une empreinte à clé de votre identifiant sur la page, pour retrouver vos données, avec votre propre clé aléatoire, dont le chiffrement de vos données a besoin",
        ),
        (
            "lead_keys",
            "la même empreinte et une clé aléatoire qui vous est propre, dont le chiffrement de vos données a besoin et qui est détruite avec elles",
        ),
        (
            "meta_deletion_subject",
            "votre identifiant propre à l’application (chiffré), jusqu’à ce que vos données soient retrouvées",
        ),
        (
            "reply",
            "les réponses de qchat qui vous sont destinées (chiffrées), jusqu’à leur envoi",
        ),
        ("delivery", "les diffusions qui vous sont parvenues"),
        (
            "webhook_event",
            "une marque indiquant que l’événement de Meta a été traité (sans contenu)",
        ),
        (
            "account",
            "votre adresse e-mail, votre nom (chiffrés) et l’empreinte de votre mot de passe",
        ),
        (
            "email_claim",
            "une empreinte à clé de votre adresse e-mail, pour retrouver votre compte",
        ),
        (
            "email_verification",
            "une adresse en attente de confirmation (chiffrée)",
        ),
        (
            "password_reset",
            "un lien de réinitialisation du mot de passe (empreinte uniquement)",
        ),
        (
            "page",
            "vos pages connectées et leurs jetons d’accès (chiffrés)",
        ),
        ("broadcast", "vos diffusions et leur texte (chiffré)"),
        (
            "session",
            "vos sessions de connexion (uniquement une empreinte du jeton)",
        ),
        (
            "security_event",
            "votre journal de sécurité : les connexions avec le réseau d’où elles provenaient, et les changements d’identifiants",
        ),
        (
            "attempt_slot",
            "les tentatives de connexion comptées, pour le blocage",
        ),
        (
            "mail_throttle",
            "le fait qu’un e-mail a été envoyé à une adresse dans les 15 dernières minutes",
        ),
        ("audit_entry", "les actions de l’exploitant"),
        (
            "outbox",
            "les notifications qui vous ont été envoyées par e-mail",
        ),
        (
            "mail_suppression",
            "une adresse dont un e-mail est revenu en erreur ou qui a signalé un spam",
        ),
        (
            "breach_notice",
            "les notifications de violation (sans données personnelles)",
        ),
        (
            "policy",
            "les versions publiées des politiques (sans données personnelles)",
        ),
        ("data_key", "les clés de chiffrement, protégées par KMS"),
        (
            "job",
            "les tâches de fond et les reçus d’effacement (des nombres et des identifiants de page uniquement)",
        ),
        ("pace", "la cadence d’envoi de chaque page"),
    ],
    purpose_label: "Finalité",
    subject_label: "Personnes concernées",
    bases: [
        "votre consentement, donné à l’entreprise qui gère la page (article 6, paragraphe 1, point a), du RGPD), et son obligation de le démontrer (article 7, paragraphe 1) ; qchat traite les données pour le compte de cette entreprise (article 28)",
        "le contrat relatif à votre compte (article 6, paragraphe 1, point b), du RGPD)",
        "le contrat relatif à votre compte et des obligations légales, comme celle de vous informer d’une violation de données à caractère personnel (article 6, paragraphe 1, points b) et c), et article 34 du RGPD)",
        "l’intérêt légitime à disposer d’un service sûr (article 6, paragraphe 1, point f), du RGPD)",
        "aucune donnée personnelle",
    ],
    categories: [
        "identifiants",
        "coordonnées",
        "contenu des messages",
        "identifiants de connexion",
        "journaux de sécurité",
        "données techniques",
    ],
    kept_while_owner_exists: "tant que le compte, la page ou la personne concernée existe ; effacement en même temps",
    kept_until_expiry: "jusqu’à expiration (voir le registre), puis suppression",
    kept_while_in_use: "tant que vous êtes abonné et que la page est connectée ; sinon {days} jours après votre dernier message ou votre dernier changement de consentement, puis effacement",
    kept_for: "{n} {unit}, puis suppression",
    days: ["jour", "jours", "jours"],
    hours: ["heure", "heures", "heures"],
    minutes: ["minute", "minutes", "minutes"],
};
