//! The default configuration and its documentation stay in step: `config default`
//! parses to `Config::default()`, and every key it contains is documented in
//! `docs/configuration.md`.

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use provmesh_node::config::{Config, default_toml};

/// Every dotted key (`metrics.listen`) of a TOML document, tables included.
fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            keys(inner, &dotted, out);
        }
        out.push(dotted);
    }
}

#[test]
fn config_default_output_parses_to_config_default() {
    let out = common::run(&["config", "default"]);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, default_toml());
    assert_eq!(Config::parse(&printed).unwrap(), Config::default());
}

#[test]
fn every_default_key_is_documented() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let docs = std::fs::read_to_string(docs_path).expect("docs/configuration.md exists");
    let table: toml::Table = toml::from_str(&default_toml()).unwrap();
    let mut all = Vec::new();
    keys(&table, "", &mut all);
    assert!(all.len() >= 10, "{all:?}");
    let missing: Vec<_> = all
        .iter()
        .filter(|key| {
            // A table (top-level or nested) is documented by its `[table]` heading.
            let is_table = table_at(&table, key).is_some();
            let documented = if is_table {
                docs.contains(&format!("`[{key}]`"))
            } else {
                docs.contains(&format!("`{key}`"))
            };
            !documented
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md (write `table.key` or `[table]`): {missing:?}"
    );
}

#[test]
fn every_default_value_is_documented_beside_its_key() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let docs = std::fs::read_to_string(docs_path).expect("docs/configuration.md exists");
    let table: toml::Table = toml::from_str(&default_toml()).unwrap();
    let mut all = Vec::new();
    keys(&table, "", &mut all);
    for key in all {
        let Some(value) = value_at(&table, &key) else {
            continue;
        };
        if matches!(value, toml::Value::Table(_)) {
            continue;
        }
        assert!(key.contains('.'), "top-level key {key} is not a table");
        let dotted = format!("`{key}`");
        let default = format!("`{value}`");
        assert!(
            docs.lines()
                .any(|line| line.contains(&dotted) && line.contains(&default)),
            "docs/configuration.md has no line documenting {dotted} with its default {default}"
        );
    }
}

/// The value at a dotted key.
fn value_at<'t>(table: &'t toml::Table, dotted: &str) -> Option<&'t toml::Value> {
    let (head, rest) = match dotted.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (dotted, None),
    };
    let value = table.get(head)?;
    match (rest, value) {
        (None, value) => Some(value),
        (Some(rest), toml::Value::Table(inner)) => value_at(inner, rest),
        (Some(_), _) => None,
    }
}

/// The table at a dotted key, if the key names a table.
fn table_at<'t>(table: &'t toml::Table, dotted: &str) -> Option<&'t toml::Table> {
    match value_at(table, dotted)? {
        toml::Value::Table(inner) => Some(inner),
        _ => None,
    }
}
