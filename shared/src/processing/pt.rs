//! The privacy notice and the record of processing in (European) Portuguese. Legal bases are cited as
//! the Portuguese text of the GDPR (RGPD) cites them: «artigo 6.º, n.º 1, alínea a)».

use super::NoticeTexts;
use crate::i18n::Lang;

pub static NOTICE_PT: NoticeTexts = NoticeTexts {
    lang: Lang::Pt,
    title: "Política de privacidade",
    version_line: "Versão {version}, em vigor desde {date}.",
    placeholder: "Esta é uma instalação local. O responsável pelo tratamento indicado abaixo é provisório: defina QCHAT_CONTROLLER_NAME e QCHAT_CONTROLLER_EMAIL para indicar o verdadeiro.",
    controller_label: "Responsável pelo tratamento",
    email_label: "E-mail",
    address_label: "Endereço postal",
    collected_title: "O que é recolhido, para quê e durante quanto tempo",
    collected_intro: "Todos os dados pessoais são guardados cifrados (AES-256-GCM com uma chave própria da respetiva conta) ou apenas como hash unidirecional ou com chave. Não são guardados nomes, fotografias de perfil nem o texto das suas mensagens.",
    leads_title: "Se escrever a uma página no Messenger",
    leads_intro: "A empresa que gere a página decide para que são usados os seus dados; o qchat guarda-os para essa empresa:",
    holders_title: "Se tiver uma conta qchat",
    kinds_label: "Tipos de dados",
    basis_label: "Fundamento jurídico",
    kept_label: "Conservação",
    recipients_title: "Quem os recebe",
    recipients_intro: "Nenhum dado é vendido nem usado para publicidade ou definição de perfis. Apenas estes subcontratantes os recebem, para prestar o serviço:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "entrega as mensagens do Messenger entre uma página e as pessoas que lhe escrevem",
        ),
        (
            "Amazon Web Services",
            "aloja o serviço e a sua base de dados cifrada (na região da AWS escolhida pelo operador), gere as chaves de cifragem e envia os e-mails",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Apenas um cookie, qchat_session, mantém a sessão de um titular de conta iniciada: até o navegador ser fechado (no servidor, {hours} horas) ou durante {days} dias com «manter sessão iniciada». Nenhum cookie de rastreamento ou de publicidade.",
    authority_label: "Autoridade de controlo competente para o responsável pelo tratamento",
    record_link: "Cada valor guardado, a sua proteção e o seu prazo de conservação: o registo das atividades de tratamento",
    record_title: "Registo das atividades de tratamento",
    record_intro: "O registo das atividades de tratamento do operador (artigo 30.º do RGPD), gerado a partir do inventário de dados que o código impõe: cada valor guardado, porque é guardado, como é protegido e durante quanto tempo. As descrições de cada valor vêm do código e estão em inglês.",
    record_columns: [
        "registo",
        "valor",
        "categoria",
        "pessoal",
        "proteção",
        "finalidade",
        "conservação",
    ],
    record_activities_title: "Atividades de tratamento",
    record_types_title: "Cada valor guardado",
    back_to_notice: "Voltar à política de privacidade",
    yes: "sim",
    no: "não",
    purposes: &[
        (
            "consent",
            "Registar as suas escolhas de subscrição e guardar a prova delas",
        ),
        (
            "messages",
            "Enviar-lhe as respostas que pediu e as mensagens que subscreveu",
        ),
        (
            "deletion_requests",
            "Apagar os seus dados quando o pedir à Meta",
        ),
        (
            "account",
            "Fornecer a sua conta: início de sessão, as suas páginas e as suas difusões",
        ),
        ("security", "Manter as contas seguras"),
        (
            "notices",
            "Informá-lo por e-mail sobre a sua conta, alterações das políticas e violações de dados pessoais",
        ),
        (
            "operation",
            "Fazer funcionar o serviço (chaves de cifragem, tarefas em segundo plano, ritmo de envio)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "o seu identificador do Messenger para a página (cifrado), o seu estado e quando escreveu pela última vez",
        ),
        (
            "consent_record",
            "o que aceitou ou recusou, quando e através de quê",
        ),
        ("unsubscribe_link", "o hash do seu link de cancelamento"),
        (
            "lead_lookup",
            "um hash com chave do seu identificador na página, para encontrar os seus dados, com a sua chave aleatória própria, de que a cifragem dos seus dados precisa",
        ),
        (
            "lead_keys",
            "o mesmo hash e uma chave aleatória própria, de que a cifragem dos seus dados precisa e que é destruída com eles",
        ),
        (
            "meta_deletion_subject",
            "o seu identificador específico da aplicação (cifrado), até os seus dados serem encontrados",
        ),
        (
            "reply",
            "as respostas do qchat para si (cifradas), até serem enviadas",
        ),
        ("delivery", "que difusões lhe chegaram"),
        (
            "webhook_event",
            "uma marca de que o evento da Meta foi tratado (sem conteúdo)",
        ),
        (
            "account",
            "o seu endereço de e-mail, o seu nome (cifrados) e o hash da sua palavra-passe",
        ),
        (
            "email_claim",
            "um hash com chave do seu endereço de e-mail, para encontrar a sua conta",
        ),
        (
            "email_verification",
            "um endereço a aguardar confirmação (cifrado)",
        ),
        (
            "password_reset",
            "um link para redefinir a palavra-passe (apenas o hash)",
        ),
        (
            "page",
            "as suas páginas ligadas e os respetivos tokens de acesso (cifrados)",
        ),
        (
            "broadcast",
            "as suas difusões e o respetivo texto (cifrado)",
        ),
        (
            "session",
            "as suas sessões iniciadas (apenas um hash do token)",
        ),
        (
            "security_event",
            "o seu registo de segurança: inícios de sessão com a rede de onde vieram e alterações das credenciais",
        ),
        (
            "attempt_slot",
            "tentativas de início de sessão contadas, para o bloqueio",
        ),
        (
            "mail_throttle",
            "que foi enviado um e-mail para um endereço nos últimos 15 minutos",
        ),
        ("audit_entry", "as ações do operador"),
        ("outbox", "os avisos que lhe foram enviados por e-mail"),
        (
            "mail_suppression",
            "um endereço cujo e-mail foi devolvido ou que denunciou spam",
        ),
        ("breach_notice", "avisos de violação (sem dados pessoais)"),
        (
            "policy",
            "versões publicadas das políticas (sem dados pessoais)",
        ),
        ("data_key", "chaves de cifragem, protegidas pelo KMS"),
        (
            "job",
            "tarefas em segundo plano e comprovativos de eliminação (apenas contagens e identificadores de páginas)",
        ),
        ("pace", "o ritmo de envio de cada página"),
    ],
    purpose_label: "Finalidade",
    subject_label: "Titulares dos dados",
    bases: [
        "o seu consentimento, dado à empresa que gere a página (artigo 6.º, n.º 1, alínea a), do RGPD), e o dever desta de o demonstrar (artigo 7.º, n.º 1); o qchat trata os dados por conta dessa empresa (artigo 28.º)",
        "o contrato da sua conta (artigo 6.º, n.º 1, alínea b), do RGPD)",
        "o contrato da sua conta e obrigações jurídicas, como a de o informar de uma violação de dados pessoais (artigo 6.º, n.º 1, alíneas b) e c), e artigo 34.º do RGPD)",
        "o interesse legítimo num serviço seguro (artigo 6.º, n.º 1, alínea f), do RGPD)",
        "nenhum dado pessoal",
    ],
    categories: [
        "identificadores",
        "dados de contacto",
        "conteúdo das mensagens",
        "credenciais",
        "registos de segurança",
        "dados técnicos",
    ],
    kept_while_owner_exists: "enquanto existir a conta, a página ou a pessoa a que diz respeito; eliminação juntamente com ela",
    kept_until_expiry: "até expirar (ver o registo); depois, eliminação",
    kept_while_in_use: "enquanto estiver subscrito e a página estiver ligada; caso contrário, {days} dias após a sua última mensagem ou alteração do consentimento; depois, eliminação",
    kept_for: "{n} {unit}; depois, eliminação",
    days: ["dia", "dias", "dias"],
    hours: ["hora", "horas", "horas"],
    minutes: ["minuto", "minutos", "minutos"],
};
