//! Ganeti's job filters (`/2/filters`, Ganeti ≥ 2.13), as far as the operator uses them:
//! the freeze that `policy.freezeDuringNodeWork` sets while nodes are upgraded. Two rules
//! with fixed UUIDs, so placing them twice replaces them instead of adding more: the
//! first accepts the operator's own creations and migrations (its jobs carry the reason
//! `ganeti-operator:<run>:<object>`, and Ganeti copies a job's reasons into the jobs it
//! spawns), the second rejects everyone else's. Both carry the reason source
//! [`FREEZE_SOURCE`], which is how they are found again after a crash.

use serde::Deserialize;
use serde_json::{Value, json};

/// The reason-trail source of the operator's filters.
pub const FREEZE_SOURCE: &str = "ganeti-operator:freeze";

/// The opcodes the freeze holds back from other clients: whatever places an instance or
/// its disks on a node (the operator's N+1 figures assume nothing else moves).
const FROZEN_OPCODES: [&str; 11] = [
    "OP_INSTANCE_CREATE",
    "OP_INSTANCE_MULTI_ALLOC",
    "OP_INSTANCE_MIGRATE",
    "OP_INSTANCE_FAILOVER",
    "OP_INSTANCE_MOVE",
    "OP_INSTANCE_REPLACE_DISKS",
    "OP_INSTANCE_RECREATE_DISKS",
    "OP_INSTANCE_CHANGE_GROUP",
    "OP_NODE_MIGRATE",
    "OP_NODE_EVACUATE",
    "OP_GROUP_EVACUATE",
];

/// Filters run in increasing priority; 0 is what `gnt-filter add` defaults to. Ours come
/// after a person's own rules at low numbers, so a queue drain they set still wins.
const ACCEPT_PRIORITY: u64 = 900;
const REJECT_PRIORITY: u64 = 901;

/// One of the freeze's two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FreezeRule {
    AcceptOperator,
    RejectOthers,
}

impl FreezeRule {
    pub const BOTH: [FreezeRule; 2] = [FreezeRule::AcceptOperator, FreezeRule::RejectOthers];

    pub fn uuid(self) -> &'static str {
        match self {
            FreezeRule::AcceptOperator => "6f7a0c1e-3b55-4c1d-9e0a-67616e657401",
            FreezeRule::RejectOthers => "6f7a0c1e-3b55-4c1d-9e0a-67616e657402",
        }
    }

    pub fn priority(self) -> u64 {
        match self {
            FreezeRule::AcceptOperator => ACCEPT_PRIORITY,
            FreezeRule::RejectOthers => REJECT_PRIORITY,
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            FreezeRule::AcceptOperator => "ACCEPT",
            FreezeRule::RejectOthers => "REJECT",
        }
    }

    /// The body of `PUT /2/filters/<uuid>`; `why` goes into the rule's reason trail.
    pub fn body(self, why: &str, now_ns: u64) -> Value {
        let opcodes: Vec<Value> = FROZEN_OPCODES
            .iter()
            .map(|op| json!(["=", "OP_ID", op]))
            .collect();
        let mut opcode = vec![json!("|")];
        opcode.extend(opcodes);
        let mut predicates = vec![json!(["opcode", opcode])];
        if self == FreezeRule::AcceptOperator {
            // The reason predicate allows comparisons only (no regular expressions): a
            // prefix is the range from "ganeti-operator:" up to the next character.
            predicates.push(json!([
                "reason",
                [
                    "&",
                    [">=", "reason", "ganeti-operator:"],
                    ["<", "reason", "ganeti-operator;"]
                ]
            ]));
        }
        json!({
            "priority": self.priority(),
            "predicates": predicates,
            "action": self.action(),
            "reason": [[FREEZE_SOURCE, why, now_ns]],
        })
    }
}

impl FreezeRule {
    /// The rule as Ganeti lists it once placed, for in-memory clusters.
    pub fn listed(self, why: &str) -> JobFilter {
        let body = self.body(why, 0);
        JobFilter {
            uuid: self.uuid().to_owned(),
            priority: Some(self.priority()),
            action: body["action"].clone(),
            predicates: body["predicates"].clone(),
            reason_trail: body["reason"].as_array().cloned().unwrap_or_default(),
        }
    }
}

/// A filter as `/2/filters?bulk=1` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobFilter {
    pub uuid: String,
    #[serde(default)]
    pub priority: Option<u64>,
    /// `"REJECT"`, or a list such as `["RATE_LIMIT", 2]`.
    #[serde(default)]
    pub action: Value,
    #[serde(default)]
    pub predicates: Value,
    #[serde(default)]
    pub reason_trail: Vec<Value>,
}

impl JobFilter {
    /// Placed by the operator's freeze, whatever its UUID.
    pub fn is_freeze(&self) -> bool {
        self.reason_trail
            .iter()
            .any(|entry| entry.get(0).and_then(Value::as_str) == Some(FREEZE_SOURCE))
    }

    /// This filter is `rule`, as the operator places it.
    pub fn is(&self, rule: FreezeRule) -> bool {
        self.uuid == rule.uuid()
            && self.priority == Some(rule.priority())
            && self.action.as_str() == Some(rule.action())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_accept_the_operator_first_and_reject_the_rest() {
        let accept = FreezeRule::AcceptOperator.body("node2 is upgraded", 7);
        let reject = FreezeRule::RejectOthers.body("node2 is upgraded", 7);
        assert!(accept["priority"].as_u64() < reject["priority"].as_u64());
        assert_eq!(accept["predicates"].as_array().unwrap().len(), 2);
        assert_eq!(reject["predicates"].as_array().unwrap().len(), 1);
        assert_eq!(reject["action"], "REJECT");
        assert_eq!(accept["reason"][0][0], FREEZE_SOURCE);
        // What the operator's reason stamps look like falls in the accepted range.
        let stamp = "ganeti-operator:1700000000-0a0b0c0d:instance/web1";
        let accepted = "ganeti-operator:".."ganeti-operator;";
        assert!(accepted.contains(&stamp));
        assert!(!accepted.contains(&"ganeti-operatorX"));
        assert!(!accepted.contains(&"gnt:client:rapi"));
    }

    #[test]
    fn a_listed_filter_is_ours_by_its_reason_source() {
        let listed: JobFilter = serde_json::from_value(json!({
            "uuid": FreezeRule::RejectOthers.uuid(),
            "priority": 901,
            "action": "REJECT",
            "predicates": [],
            "reason_trail": [[FREEZE_SOURCE, "x", 1], ["luxid", "", 2]],
            "watermark": 12,
        }))
        .unwrap();
        assert!(listed.is_freeze());
        assert!(listed.is(FreezeRule::RejectOthers));
        assert!(!listed.is(FreezeRule::AcceptOperator));
        let theirs: JobFilter = serde_json::from_value(json!({
            "uuid": "x", "action": ["RATE_LIMIT", 2], "reason_trail": [["gnt:user", "", 1]],
        }))
        .unwrap();
        assert!(!theirs.is_freeze());
    }
}
