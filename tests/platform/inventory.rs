//! The data inventory is printed as a table and is internally consistent.

use qchat_shared::inventory::{self, Protection, STRUCTURAL};

#[test]
#[allow(clippy::print_stdout)] // printing the table is the point
fn the_inventory_is_printed_as_a_table_and_every_personal_attribute_is_protected() {
    let table = inventory::as_table();
    println!("{table}");
    assert!(table.lines().count() > 1, "the inventory lists attributes");
    for t in inventory::ITEM_TYPES {
        for a in t.attributes {
            assert!(
                table.contains(&format!("{} | {} |", t.name, a.name)),
                "{}.{} is in the printed table",
                t.name,
                a.name
            );
            assert!(
                !(a.personal && a.protection == Protection::Plain),
                "{}.{} is personal and plain",
                t.name,
                a.name
            );
        }
    }
    for s in STRUCTURAL {
        assert!(
            !s.personal,
            "structural attribute {} must never hold personal data",
            s.name
        );
    }
}
