//! What the hub lets each party do, as `nats-server` configuration: the entries `deskhand pair
//! --hub` prints for the hub's `users.conf`, and the tests load. Each person (or household) is
//! one NATS account, so other people's subjects do not exist for them at all; inside an account,
//! a desktop may use everything, and a phone only its own agent's job subject, API subject,
//! events, state and files.

use crate::queue::nats::Names;

/// The inbox prefix a device's page uses for replies, so no other phone can read them.
pub fn inbox_prefix(device_id: &str) -> String {
    format!("_INBOX_{}", sanitize(device_id))
}

/// The `users` entry for an agent's desktop, authenticated by its nkey (`U…`).
pub fn desktop_user(nkey: &str) -> String {
    format!("{{ nkey: {nkey} }}")
}

/// The `users` entry for a phone paired with agent `agent` as device `device_id`, authenticated
/// by the nkey derived from its device key (`U…`): it may send jobs and signed API requests to
/// that agent, read its presence, job state and files, follow its events, and nothing else.
/// `domain` is the desktop's JetStream domain when it runs a leaf node (its state and files are
/// there, reached through the hub).
pub fn phone_user(agent: &str, device_id: &str, nkey: &str, domain: Option<&str>) -> String {
    let n = Names::for_agent(agent);
    let inbox = inbox_prefix(device_id);
    let api = js_api(domain);
    format!(
        "{{ nkey: {nkey}, permissions: {{ \
         publish: {{ allow: [\"{jobs}\", \"{agent_api}\", \"{api}.STREAM.MSG.GET.KV_{bucket}\", \"{api}.STREAM.MSG.GET.OBJ_{files}\"] }}, \
         subscribe: {{ allow: [\"{events}.>\", \"{inbox}.>\"] }} }} }}",
        jobs = n.jobs,
        agent_api = n.api,
        bucket = n.bucket,
        files = n.files,
        events = n.events,
    )
}

/// The JetStream API prefix of a domain (`$JS.API` for the server's own).
pub fn js_api(domain: Option<&str>) -> String {
    match domain.filter(|d| !d.is_empty()) {
        Some(d) => format!("$JS.{d}.API"),
        None => "$JS.API".into(),
    }
}

/// An `accounts` block with JetStream for one account holding `users` entries.
pub fn account(name: &str, users: &[String]) -> String {
    let mut s = format!(
        "  {}: {{\n    jetstream: enabled\n    users: [\n",
        sanitize(name)
    );
    for u in users {
        s.push_str("      ");
        s.push_str(u);
        s.push('\n');
    }
    s.push_str("    ]\n  }\n");
    s
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_gets_only_its_own_agents_subjects() {
        let u = phone_user("desk one", "dev-7", "UABC", None);
        for want in [
            "nkey: UABC",
            "\"deskhand.desk_one.jobs\"",
            "\"deskhand.desk_one.api\"",
            "\"$JS.API.STREAM.MSG.GET.KV_deskhand_desk_one_jobs\"",
            "\"$JS.API.STREAM.MSG.GET.OBJ_deskhand_desk_one_files\"",
            "\"deskhand.desk_one.events.>\"",
            "\"_INBOX_dev-7.>\"",
        ] {
            assert!(u.contains(want), "{want} not in {u}");
        }
        // Nothing broader than the agent's own names.
        assert!(
            !u.contains("deskhand.>") && !u.contains("$JS.API.>") && !u.contains("\"_INBOX.>\"")
        );
        let leaf = phone_user("desk", "dev-7", "UABC", Some("desk"));
        assert!(leaf.contains("\"$JS.desk.API.STREAM.MSG.GET.KV_deskhand_desk_jobs\""));
        let a = account("ada", &[desktop_user("UDESK"), u]);
        assert!(a.starts_with("  ada: {\n    jetstream: enabled\n"));
    }
}
