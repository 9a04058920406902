//! Each write as the RAPI takes it: method, route, path, body and query.

use super::*;

pub(super) fn write_request(operation: &Operation) -> Request {
    use Operation as O;
    let instance_path =
        |name: &str, action: &str| format!("/2/instances/{}{action}", segment(name));
    let node_path = |name: &str, action: &str| format!("/2/nodes/{}{action}", segment(name));
    match operation {
        O::CreateInstance(create) => Request::write(
            Method::POST,
            "/2/instances",
            "/2/instances",
            Some(create.body()),
        ),
        O::ModifyInstance { instance, change } => Request::write(
            Method::PUT,
            "/2/instances/{name}/modify",
            instance_path(instance, "/modify"),
            Some(change.body()),
        ),
        O::RebootInstance { instance, kind } => {
            let mut r = Request::write(
                Method::POST,
                "/2/instances/{name}/reboot",
                instance_path(instance, "/reboot"),
                None,
            );
            r.query
                .push(("type", json!(kind).as_str().unwrap_or("soft").to_owned()));
            r
        }
        O::StartupInstance { instance } => Request::write(
            Method::PUT,
            "/2/instances/{name}/startup",
            instance_path(instance, "/startup"),
            None,
        ),
        O::ShutdownInstance {
            instance,
            timeout_seconds,
        } => Request::write(
            Method::PUT,
            "/2/instances/{name}/shutdown",
            instance_path(instance, "/shutdown"),
            Some(timeout_seconds.map_or_else(|| json!({}), |t| json!({ "timeout": t }))),
        ),
        O::MigrateInstance {
            instance,
            mode,
            target_node,
        } => {
            let mut body = json!({ "mode": mode });
            if let Some(t) = target_node {
                body["target_node"] = json!(t);
            }
            Request::write(
                Method::PUT,
                "/2/instances/{name}/migrate",
                instance_path(instance, "/migrate"),
                Some(body),
            )
        }
        O::FailoverInstance {
            instance,
            target_node,
        } => {
            let mut body = json!({});
            if let Some(t) = target_node {
                body["target_node"] = json!(t);
            }
            Request::write(
                Method::PUT,
                "/2/instances/{name}/failover",
                instance_path(instance, "/failover"),
                Some(body),
            )
        }
        O::ReinstallInstance {
            instance,
            os,
            start,
        } => {
            // The query form: ganeti-rapi refuses a body together with query parameters
            // ("Can't combine query and body parameters"), and `reason` is one.
            let mut r = Request::write(
                Method::POST,
                "/2/instances/{name}/reinstall",
                instance_path(instance, "/reinstall"),
                None,
            );
            if let Some(os) = os {
                r.query.push(("os", os.clone()));
            }
            if !start {
                r.query.push(("nostartup", "1".into()));
            }
            r
        }
        O::RemoveInstance { instance } => Request::write(
            Method::DELETE,
            "/2/instances/{name}",
            instance_path(instance, ""),
            None,
        ),
        O::GrowDisk {
            instance,
            disk,
            amount_mib,
        } => Request::write(
            Method::POST,
            "/2/instances/{name}/disk/{disk}/grow",
            instance_path(instance, &format!("/disk/{disk}/grow")),
            Some(json!({ "amount": amount_mib })),
        ),
        O::AddTags { target, tags } | O::RemoveTags { target, tags } => {
            let method = if matches!(operation, O::AddTags { .. }) {
                Method::PUT
            } else {
                Method::DELETE
            };
            let (route, path) = match target {
                TagTarget::Cluster => ("/2/tags", "/2/tags".to_owned()),
                TagTarget::Instance(name) => {
                    ("/2/instances/{name}/tags", instance_path(name, "/tags"))
                }
                TagTarget::Node(name) => ("/2/nodes/{name}/tags", node_path(name, "/tags")),
            };
            let mut r = Request::write(method, route, path, None);
            r.query.extend(tags.iter().map(|t| ("tag", t.clone())));
            r
        }
        O::SetNodeRole { node, role } => Request::write(
            Method::PUT,
            "/2/nodes/{name}/role",
            node_path(node, "/role"),
            Some(json!(role)),
        ),
        O::MigrateNode { node, mode } => Request::write(
            Method::POST,
            "/2/nodes/{name}/migrate",
            node_path(node, "/migrate"),
            Some(json!({ "mode": mode })),
        ),
        O::EvacuateNode { node, mode } => Request::write(
            Method::POST,
            "/2/nodes/{name}/evacuate",
            node_path(node, "/evacuate"),
            Some(json!({ "mode": mode })),
        ),
        O::PowercycleNode { node } => Request::write(
            Method::POST,
            "/2/nodes/{name}/powercycle",
            node_path(node, "/powercycle"),
            None,
        ),
    }
}
