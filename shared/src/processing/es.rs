//! The privacy notice and the record of processing in Spanish. Legal bases are cited as the Spanish text
//! of the GDPR (RGPD) cites them: «artículo 6, apartado 1, letra a)».

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_ES: NoticeTexts = NoticeTexts {
    lang: Lang::Es,
    title: "Política de privacidad",
    version_line: "Versión {version}, en vigor desde el {date}.",
    placeholder: "Esta es una instalación local. El responsable del tratamiento indicado abajo es provisional: define QCHAT_CONTROLLER_NAME y QCHAT_CONTROLLER_EMAIL para indicar el real.",
    controller_label: "Responsable del tratamiento",
    email_label: "Correo electrónico",
    address_label: "Dirección postal",
    collected_title: "Qué se recoge, para qué y durante cuánto tiempo",
    collected_intro: "Todos los datos personales se guardan cifrados (AES-256-GCM con una clave propia de su cuenta) o solo como un hash unidireccional o con clave. No se guardan nombres, fotos de perfil ni el texto de tus mensajes.",
    leads_title: "Si escribes a una página en Messenger",
    leads_intro: "La empresa que gestiona la página decide para qué se usan tus datos; qchat los guarda para esa empresa:",
    holders_title: "Si tienes una cuenta de qchat",
    kinds_label: "Tipos de datos",
    basis_label: "Base jurídica",
    kept_label: "Conservación",
    recipients_title: "Quién los recibe",
    recipients_intro: "Ningún dato se vende ni se usa para publicidad o elaboración de perfiles. Solo estos encargados del tratamiento los reciben, para prestar el servicio:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "entrega los mensajes de Messenger entre una página y las personas que le escriben",
        ),
        (
            "Amazon Web Services",
            "aloja el servicio y su base de datos cifrada (en la región de AWS que elige el operador), gestiona las claves de cifrado y envía los correos electrónicos",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Solo una cookie, qchat_session, mantiene la sesión de un titular de cuenta: hasta que se cierra el navegador (en el servidor, {hours} horas) o {days} días con «mantener la sesión iniciada». Ninguna cookie de seguimiento ni de publicidad.",
    authority_label: "Autoridad de control competente para el responsable del tratamiento",
    record_link: "Cada dato guardado, su protección y su plazo de conservación: el registro de actividades de tratamiento",
    record_title: "Registro de actividades de tratamiento",
    record_intro: "El registro de actividades de tratamiento del operador (artículo 30 del RGPD), generado a partir del inventario de datos que el código impone: cada dato guardado, por qué se guarda, cómo se protege y durante cuánto tiempo. Las descripciones de cada dato proceden del código y están en inglés.",
    record_columns: [
        "registro",
        "dato",
        "categoría",
        "personal",
        "protección",
        "finalidad",
        "conservación",
    ],
    record_activities_title: "Actividades de tratamiento",
    record_types_title: "Cada dato guardado",
    back_to_notice: "Volver a la política de privacidad",
    yes: "sí",
    no: "no",
    purposes: &[
        (
            "consent",
            "Registrar tus decisiones de suscripción y conservar su prueba",
        ),
        (
            "messages",
            "Enviarte las respuestas que pediste y los mensajes a los que te suscribiste",
        ),
        (
            "deletion_requests",
            "Borrar tus datos cuando se lo pides a Meta",
        ),
        (
            "account",
            "Prestar tu cuenta: inicio de sesión, tus páginas y tus difusiones",
        ),
        ("security", "Mantener seguras las cuentas"),
        (
            "notices",
            "Informarte por correo electrónico sobre tu cuenta, los cambios de las políticas y las violaciones de la seguridad de los datos personales",
        ),
        (
            "operation",
            "Hacer funcionar el servicio (claves de cifrado, tareas en segundo plano, ritmo de envío)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "tu identificador de Messenger para la página (cifrado), tu estado y cuándo escribiste por última vez",
        ),
        (
            "consent_record",
            "lo que aceptaste o rechazaste, cuándo y por qué medio",
        ),
        ("unsubscribe_link", "el hash de tu enlace de baja"),
        (
            "lead_lookup",
            "un hash con clave de tu identificador en la página, para encontrar tus datos, con tu clave aleatoria propia, que el cifrado de tus datos necesita",
        ),
        (
            "lead_keys",
            "el mismo hash y una clave aleatoria propia, que el cifrado de tus datos necesita y que se destruye con ellos",
        ),
        (
            "meta_deletion_subject",
            "tu identificador propio de la aplicación (cifrado), hasta que se encuentran tus datos",
        ),
        (
            "reply",
            "las respuestas de qchat para ti (cifradas), hasta que se envían",
        ),
        ("delivery", "qué difusiones te llegaron"),
        (
            "webhook_event",
            "una marca de que el evento de Meta se procesó (sin contenido)",
        ),
        (
            "account",
            "tu dirección de correo electrónico, tu nombre (cifrados) y el hash de tu contraseña",
        ),
        (
            "email_claim",
            "un hash con clave de tu dirección de correo electrónico, para encontrar tu cuenta",
        ),
        (
            "email_verification",
            "una dirección pendiente de confirmar (cifrada)",
        ),
        (
            "password_reset",
            "un enlace para restablecer la contraseña (solo el hash)",
        ),
        (
            "page",
            "tus páginas conectadas y sus tokens de acceso (cifrados)",
        ),
        ("broadcast", "tus difusiones y su texto (cifrado)"),
        ("session", "tus sesiones iniciadas (solo un hash del token)"),
        (
            "security_event",
            "tu registro de seguridad: inicios de sesión con la red de la que procedían y cambios de credenciales",
        ),
        (
            "attempt_slot",
            "los intentos de inicio de sesión contados, para el bloqueo",
        ),
        (
            "mail_throttle",
            "que se envió un correo a una dirección en los últimos 15 minutos",
        ),
        ("audit_entry", "las acciones del operador"),
        (
            "outbox",
            "los avisos que se te enviaron por correo electrónico",
        ),
        (
            "mail_suppression",
            "una dirección que rebotó o que denunció correo no deseado",
        ),
        (
            "breach_notice",
            "avisos de violaciones de seguridad (sin datos personales)",
        ),
        (
            "policy",
            "versiones publicadas de las políticas (sin datos personales)",
        ),
        ("data_key", "claves de cifrado, protegidas por KMS"),
        (
            "job",
            "tareas en segundo plano y justificantes de borrado (solo cifras e identificadores de página)",
        ),
        ("pace", "el ritmo de envío de cada página"),
    ],
    purpose_label: "Finalidad",
    subject_label: "Interesados",
    bases: [
        "tu consentimiento, dado a la empresa que gestiona la página (artículo 6, apartado 1, letra a), del RGPD), y su obligación de demostrarlo (artículo 7, apartado 1); qchat trata los datos por cuenta de esa empresa (artículo 28)",
        "el contrato de tu cuenta (artículo 6, apartado 1, letra b), del RGPD)",
        "el contrato de tu cuenta y obligaciones legales, como comunicarte una violación de la seguridad de los datos personales (artículo 6, apartado 1, letras b) y c), y artículo 34 del RGPD)",
        "el interés legítimo en un servicio seguro (artículo 6, apartado 1, letra f), del RGPD)",
        "ningún dato personal",
    ],
    categories: [
        "identificadores",
        "datos de contacto",
        "contenido de mensajes",
        "credenciales",
        "registros de seguridad",
        "datos técnicos",
    ],
    kept_while_owner_exists: "mientras exista la cuenta, la página o la persona a la que pertenece; se borra con ella",
    kept_until_expiry: "hasta que caduca (ver el registro); después se elimina",
    kept_while_in_use: "mientras estés suscrito y la página esté conectada; si no, {days} días después de tu último mensaje o cambio de consentimiento; después se borra",
    kept_for: "{n} {unit}; después se elimina",
    days: ["día", "días", "días"],
    hours: ["hora", "horas", "horas"],
    minutes: ["minuto", "minutos", "minutos"],
};
