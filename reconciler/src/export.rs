//! `teamform export`: a team's live state as team.yaml, written by a YAML
//! emitter (saphyr's) rather than by hand, so that every string reads back
//! as the same string: a name like `0x1F`, `yes`, `- x` or `a: b` is quoted
//! because the emitter knows what YAML would make of it.

use std::borrow::Cow;

use anyhow::{Result, anyhow};
use saphyr::{Mapping, Scalar, Yaml, YamlEmitter};
use teamform_core::model::ScimProvisioning;
use teamform_core::spec::{Policy, SPEC_VERSION, TeamSpec, Unmanaged};
use teamform_core::{TeamId, TeamState};

use crate::client::Client;

fn string(s: &str) -> Yaml<'static> {
    Yaml::Value(Scalar::String(Cow::Owned(s.to_owned())))
}

fn integer(n: impl Into<i64>) -> Yaml<'static> {
    Yaml::Value(Scalar::Integer(n.into()))
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Yaml<'static> {
    Yaml::Sequence(items.into_iter().map(string).collect())
}

fn map(pairs: Vec<(&str, Yaml<'static>)>) -> Yaml<'static> {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(string(k), v);
    }
    Yaml::Mapping(m)
}

/// team.yaml for `spec`, fields in the canonical order, members sorted by
/// email, roles by name. Reads back to an equal spec.
pub fn spec_yaml(spec: &TeamSpec) -> Result<String> {
    let mut top: Vec<(&str, Yaml<'static>)> = vec![
        ("version", integer(SPEC_VERSION)),
        ("team", string(spec.team.as_str())),
    ];
    if let Some(d) = &spec.display_name {
        top.push(("display_name", string(d)));
    }
    top.push(("owner", string(spec.owner.as_str())));
    if let Some(st) = &spec.settings {
        let mut fields = vec![
            ("require_2fa", Yaml::Value(Scalar::Boolean(st.require_2fa))),
            ("invitation_ttl_days", integer(st.invitation_ttl_days)),
        ];
        if let Some(limit) = st.seat_limit {
            fields.push(("seat_limit", integer(limit)));
        }
        // Only when not the default, as `TeamSpec::to_yaml` writes it.
        if st.scim_provisioning != ScimProvisioning::default() {
            fields.push(("scim_provisioning", string(st.scim_provisioning.as_str())));
        }
        top.push(("settings", map(fields)));
    }
    if let Some(roles) = &spec.roles {
        let mut m = Mapping::new();
        for (name, role) in roles {
            let mut fields = Vec::new();
            if !role.description.is_empty() {
                fields.push(("description", string(&role.description)));
            }
            fields.push((
                "permissions",
                strings(role.permissions.iter().map(|p| p.as_str())),
            ));
            m.insert(string(name.as_str()), map(fields));
        }
        top.push(("roles", Yaml::Mapping(m)));
    }
    let members = spec
        .members
        .values()
        .map(|member| {
            let mut fields = vec![("email", string(member.email.as_str()))];
            if let Some(name) = &member.name {
                fields.push(("name", string(name)));
            }
            fields.push(("roles", strings(member.roles.iter().map(|r| r.as_str()))));
            map(fields)
        })
        .collect();
    top.push(("members", Yaml::Sequence(members)));
    if spec.policy != Policy::default() {
        let unmanaged = match spec.policy.unmanaged {
            Unmanaged::Remove => "remove",
            Unmanaged::Ignore => "ignore",
        };
        let mut fields = vec![("unmanaged", string(unmanaged))];
        if let Some(limit) = &spec.policy.max_removals {
            fields.push(("max_removals", string(&limit.to_string())));
        }
        top.push(("policy", map(fields)));
    }
    let doc = map(top);
    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(&doc)
        .map_err(|e| anyhow!("cannot write team.yaml: {e}"))?;
    // The emitter opens the document with `---` and leaves the last line open.
    let mut text = out.strip_prefix("---\n").map(str::to_owned).unwrap_or(out);
    text.push('\n');
    Ok(text)
}

/// A live team as team.yaml, or `None` when the team does not exist.
pub async fn export(client: &Client, team: &TeamId) -> Result<Option<String>> {
    let live: Option<TeamState> = client.state(team).await?;
    live.map(|l| spec_yaml(&TeamSpec::from_state(&l)))
        .transpose()
}
