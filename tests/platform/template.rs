//! `template.yaml` must name the same table keys, index, TTL attribute and configuration variables as the
//! code, so a deployment cannot drift from what the functions read and write.

use qchat_shared::config::vars;
use qchat_shared::store::attr;

fn template() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    std::fs::read_to_string(path).expect("template.yaml is readable")
}

/// The lines of the block that starts at the line containing `header`, up to the next line indented no
/// deeper than the header.
fn block<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(header));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let indent = first.len() - first.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect()
}

#[test]
fn the_table_keys_and_index_match_the_store() {
    let t = template();
    let table = block(&t, "  Table:").join("\n");
    for name in [attr::PK, attr::SK, attr::GSI1_PK, attr::GSI1_SK] {
        assert!(
            table.contains(&format!("- AttributeName: {name}\n")),
            "table defines attribute {name}"
        );
    }
    assert!(
        table.contains(&format!("IndexName: {}", attr::GSI1)),
        "index {} is declared",
        attr::GSI1
    );
    let ttl = block(&table, "TimeToLiveSpecification:").join("\n");
    assert!(
        ttl.contains(&format!("AttributeName: {}", attr::TTL)) && ttl.contains("Enabled: true")
    );
}

#[test]
fn the_table_is_protected_as_the_spec_requires() {
    let t = template();
    let table = block(&t, "  Table:").join("\n");
    for needed in [
        "BillingMode: PAY_PER_REQUEST",
        "PointInTimeRecoveryEnabled: true",
        "SSEType: KMS",
        "KMSMasterKeyId: !GetAtt DataKey.Arn",
        "StreamViewType:",
        "DeletionProtectionEnabled: true",
    ] {
        assert!(table.contains(needed), "table has {needed}");
    }
    let key = block(&t, "  DataKey:").join("\n");
    assert!(key.contains("EnableKeyRotation: true"));
}

#[test]
fn functions_get_the_configuration_the_code_reads_in_aws_mode() {
    let t = template();
    let globals = block(&t, "Globals:").join("\n");
    for needed in ["Runtime: provided.al2023", "Architectures: [arm64]"] {
        assert!(globals.contains(needed), "globals have {needed}");
    }
    assert!(globals.contains(&format!("{}: aws", vars::BACKEND)));
    for var in [vars::TABLE_NAME, vars::KMS_KEY_ID, vars::MAIL_FROM] {
        assert!(globals.contains(&format!("{var}: ")), "globals set {var}");
    }
}
