//! The presets shipped with the binary load cleanly and reproduce, cell by
//! cell, the role tables of the products they are named after. The tables
//! are copied verbatim from the seed pages into `tests/fixtures/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::{BTreeMap, BTreeSet};

use teamform_core::catalog::PRESETS;
use teamform_core::{Catalog, RoleName};

const PRESET_NAMES: &[&str] = &["standard", "ably", "digitalocean"];

fn preset(name: &str) -> Catalog {
    match Catalog::preset(name) {
        Some(c) => c,
        None => panic!("preset `{name}` does not load"),
    }
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The permissions a role of the catalog holds, as strings.
fn permissions_of(catalog: &Catalog, role_name: &str) -> BTreeSet<String> {
    let role_name = role(role_name);
    let def = catalog
        .role(&role_name)
        .unwrap_or_else(|| panic!("catalog `{}` has no role `{role_name}`", catalog.name));
    def.permissions
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

#[test]
fn every_preset_loads() {
    for name in PRESET_NAMES {
        let catalog = Catalog::preset(name);
        assert!(catalog.is_some(), "preset `{name}` does not load");
        assert_eq!(catalog.map(|c| c.name), Some((*name).to_owned()));
    }
    let shipped: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(shipped, PRESET_NAMES);
}

#[test]
fn every_preset_source_has_no_diagnostics() {
    for (name, source) in PRESETS {
        if let Err(d) = Catalog::from_yaml(&format!("{name}.yaml"), source) {
            panic!("preset `{name}` has diagnostics:\n{d}");
        }
    }
}

#[test]
fn owner_holds_every_permission_in_every_preset() {
    for name in PRESET_NAMES {
        let catalog = preset(name);
        assert_eq!(
            catalog.roles.first().map(|r| r.name.as_str()),
            Some("owner"),
            "{name}: owner comes first"
        );
        let held = permissions_of(&catalog, "owner");
        for p in &catalog.permissions {
            assert!(
                held.contains(p.id.as_str()),
                "{name}: owner lacks `{}`",
                p.id
            );
        }
        assert_eq!(held.len(), catalog.permissions.len(), "{name}");
    }
}

#[test]
fn every_preset_has_a_real_previous_owner_role() {
    for name in PRESET_NAMES {
        let catalog = preset(name);
        assert!(catalog.has_role(&catalog.previous_owner_role), "{name}");
        assert!(!catalog.previous_owner_role.is_owner(), "{name}");
    }
}

#[test]
fn digitalocean_allows_one_role_per_member() {
    assert!(!preset("digitalocean").multiple_roles);
}

#[test]
fn ably_and_standard_allow_several_roles() {
    assert!(preset("ably").multiple_roles);
    assert!(preset("standard").multiple_roles);
}

#[test]
fn only_standard_allows_custom_roles() {
    assert!(preset("standard").custom_roles);
    assert!(!preset("ably").custom_roles);
    assert!(!preset("digitalocean").custom_roles);
}

#[test]
fn standard_has_the_roles_the_design_names() {
    let names: Vec<String> = preset("standard")
        .roles
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "owner",
            "admin",
            "developer",
            "modifier",
            "viewer",
            "billing",
            "billing_viewer"
        ]
    );
}

/// One row of Ably's permission table: `View all apps✓✓✓✓`, the label
/// followed by four cells (Developer, Billing, Admin, Owner), each ✓ or -.
fn ably_row(line: &str) -> Option<(&str, [bool; 4])> {
    let line = line.trim_end();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let split = chars.len().checked_sub(4)?;
    let (start, _) = *chars.get(split)?;
    let label = line.get(..start)?;
    let mut cells = [false; 4];
    for (cell, (_, ch)) in cells.iter_mut().zip(chars.get(split..)?) {
        *cell = match ch {
            '✓' => true,
            '-' => false,
            _ => return None,
        };
    }
    (!label.trim().is_empty()).then_some((label, cells))
}

#[test]
fn ably_preset_matches_the_ably_permission_table_cell_by_cell() {
    let catalog = preset("ably");
    let table = include_str!("fixtures/ably_seed.txt");
    let roles = ["developer", "billing", "admin", "owner"];
    let held: Vec<BTreeSet<String>> = roles.iter().map(|r| permissions_of(&catalog, r)).collect();
    let mut rows = 0;
    let mut cells = 0;
    for (label, expected) in table.lines().filter_map(ably_row) {
        let permission = catalog
            .permissions
            .iter()
            .find(|p| p.label == label)
            .unwrap_or_else(|| panic!("no permission of the ably preset is labelled `{label}`"));
        for ((role, held), want) in roles.iter().zip(&held).zip(expected) {
            assert_eq!(
                held.contains(permission.id.as_str()),
                want,
                "row `{label}` ({}), role `{role}`: the table says {}",
                permission.id,
                if want { "✓" } else { "-" }
            );
            cells += 1;
        }
        rows += 1;
    }
    assert_eq!(rows, 18, "rows compared");
    assert_eq!(cells, 72, "cells compared");
}

#[test]
fn ably_preset_declares_no_product_permission_outside_the_table() {
    let catalog = preset("ably");
    let table = include_str!("fixtures/ably_seed.txt");
    let labels: BTreeSet<&str> = table.lines().filter_map(ably_row).map(|(l, _)| l).collect();
    for p in catalog.permissions.iter().filter(|p| !p.service) {
        assert!(
            labels.contains(p.label.as_str()),
            "`{}` ({}) is not a row of the table",
            p.id,
            p.label
        );
    }
}

/// The permissions of each area of DigitalOcean's role table, and which of
/// them each access level names.
fn digitalocean_level(area: &str, level: &str) -> BTreeSet<String> {
    let all: &[&str] = match area {
        "Shared Resources" => &["resources.read", "resources.write", "resources.delete"],
        "Billing Information" => &["billing.summary.read", "billing.read", "billing.manage"],
        "Team Settings" => &["team.settings.read", "team.settings.manage"],
        other => panic!("unknown area `{other}`"),
    };
    let chosen: &[&str] = match (area, level) {
        (_, "Full access") => all,
        (_, "No access") => &[],
        ("Shared Resources", "Full access except delete") => &["resources.read", "resources.write"],
        ("Shared Resources", "Read only") => &["resources.read"],
        ("Team Settings", "Read only") => &["team.settings.read"],
        ("Billing Information", "Limited read only") => &["billing.summary.read"],
        (area, level) => panic!("no meaning for `{level}` in `{area}`"),
    };
    chosen.iter().map(|s| (*s).to_owned()).collect()
}

fn digitalocean_area_permissions(area: &str) -> BTreeSet<String> {
    digitalocean_level(area, "Full access")
}

#[test]
fn digitalocean_preset_matches_the_digitalocean_role_table_cell_by_cell() {
    let catalog = preset("digitalocean");
    let table = include_str!("fixtures/digitalocean_seed.txt");
    let mut header: Vec<&str> = Vec::new();
    let mut cells = 0;
    let mut roles_seen = Vec::new();
    for line in table.lines() {
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        // A table row: `Label | a | b | c |`, so four cells and an empty tail.
        if parts.len() != 5 || parts.last() != Some(&"") {
            continue;
        }
        let (label, row) = (parts[0], &parts[1..4]);
        if label == "Role" {
            header = row.to_vec();
            continue;
        }
        if label.starts_with('-') {
            continue;
        }
        assert_eq!(
            header,
            ["Shared Resources", "Billing Information", "Team Settings"],
            "header before rows"
        );
        let role_name = label.to_lowercase().replace(' ', "_");
        let held = permissions_of(&catalog, &role_name);
        for (area, cell) in header.iter().zip(row) {
            // `🟢 Full access`: drop the colored dot.
            let level = cell.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
            let expected = digitalocean_level(area, level);
            let area_perms = digitalocean_area_permissions(area);
            let actual: BTreeSet<String> = held.intersection(&area_perms).cloned().collect();
            assert_eq!(
                actual, expected,
                "role `{role_name}`, {area}: the table says `{level}`"
            );
            cells += 1;
        }
        roles_seen.push(role_name);
    }
    assert_eq!(cells, 18, "cells compared");
    let mut catalog_roles: Vec<String> = catalog.roles.iter().map(|r| r.name.to_string()).collect();
    catalog_roles.sort();
    roles_seen.sort();
    assert_eq!(
        roles_seen, catalog_roles,
        "the table's rows are exactly the catalog's roles"
    );
}

#[test]
fn digitalocean_area_permissions_are_declared_by_the_preset() {
    let catalog = preset("digitalocean");
    let declared: BTreeMap<&str, &str> = catalog
        .permissions
        .iter()
        .map(|p| (p.id.as_str(), p.label.as_str()))
        .collect();
    for area in ["Shared Resources", "Billing Information", "Team Settings"] {
        for p in digitalocean_area_permissions(area) {
            assert!(declared.contains_key(p.as_str()), "`{p}` is not declared");
        }
    }
}

/// The permission constants the service checks are the service permissions
/// every catalog has, each once.
#[test]
fn permission_constants_are_the_service_permissions() {
    use teamform_core::catalog::{SERVICE_PERMISSIONS, perm};
    let ids: BTreeSet<&str> = SERVICE_PERMISSIONS.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), SERVICE_PERMISSIONS.len());
    for id in [
        perm::MEMBERS_READ,
        perm::MEMBERS_INVITE,
        perm::MEMBERS_REMOVE,
        perm::MEMBERS_ROLES,
        perm::MEMBERS_SIGNIN_METHOD_READ,
        perm::ROLES_MANAGE,
        perm::API_KEYS_MANAGE,
        perm::SETTINGS_READ,
        perm::SETTINGS_MANAGE,
        perm::SECURITY_MANAGE,
        perm::AUDIT_READ,
        perm::CLOSE,
    ] {
        assert!(ids.contains(id), "{id}");
        let parsed = teamform_core::Permission::parse(id).unwrap();
        assert!(parsed.is_service(), "{id}");
        assert!(Catalog::standard().permission(id).is_some(), "{id}");
    }
}

#[test]
fn a_catalog_cannot_give_closing_a_team_to_a_role_other_than_owner() {
    let source = "name: mine\nmultiple_roles: true\ncustom_roles: false\nprevious_owner_role: admin\n\
                  roles:\n  admin:\n    permissions: [team.members.read, team.close]\n";
    let error = Catalog::from_yaml("mine.yaml", source)
        .expect_err("team.close outside owner")
        .to_string();
    assert!(
        error.contains("mine.yaml:7") && error.contains("`team.close` is held by the owner alone"),
        "{error}"
    );
    let without = source.replace(", team.close", "");
    let catalog = Catalog::from_yaml("mine.yaml", &without).expect("the same catalog without it");
    assert!(
        catalog
            .role(&role("owner"))
            .is_some_and(|owner| owner.permissions.iter().any(|p| p.as_str() == "team.close")),
        "the owner still holds it"
    );
}
