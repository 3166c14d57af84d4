//! The owner's signature at completion (业主签字确认) and an organization's rules for when one
//! is needed.
//!
//! The owner signs on the technician's phone; the phone keeps the picture as an attachment of
//! kind `signature` and completes the order naming it (the completion entry's `signature`: the
//! picture's SHA-256), in one change. An organization may require that signature for completion
//! per kind and category ([`SignatureRules`], the `signature-rules` setting), or require it only
//! when the owner cannot confirm in the app (anyone but the reporting owner registered the
//! order: the hotline, the front desk, an inspection round). The server applies the rules to each open order and
//! records the outcome in its document (`signature_required`, which only the server writes), so
//! a phone offline knows before the technician leaves; the fold of the transition log then lets
//! a completion without a signature take no effect ([`crate::Supersession::SignatureRequired`]).
//! docs/lifecycle.md describes the rule.

use std::fmt;

use crate::classification::{Category, Kind};
use crate::error::DocumentError;
use crate::lifecycle::{Action, OrderState, Status, Supersession, Verdict};
use crate::work_order::WorkOrder;

crate::classification::vocabulary!(
    /// What one of an organization's rules asks of a completion.
    Proof {
        /// Nothing beyond the lifecycle (the owner confirms afterwards, or is called back).
        None => "none", "无需签字", "no signature";
        /// The owner's signature on the technician's phone.
        Signature => "signature", "须业主签字", "the owner's signature";
        /// The owner's signature, unless the reporting owner registered the order themselves
        /// (in the app, where they confirm it).
        SignatureUnlessApp => "signature_unless_app", "须业主签字(App报事的由业主在App确认)", "the owner's signature, unless they confirm in the app";
    }
);

/// The most rules an organization keeps.
pub const MAX_RULES: usize = 200;

/// One rule: the orders it matches (absent: any) and what their completion needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "SignatureRule"))]
#[serde(deny_unknown_fields)]
pub struct SignatureRule {
    /// A kind code (`repair`, `complaint`, ...); absent: every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A category code (`water_electric`, `custom:...`); absent: every category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `none`, `signature` or `signature_unless_app`.
    pub require: String,
}

/// An organization's rules, first match wins; an order no rule matches needs no signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "SignatureRules"))]
#[serde(deny_unknown_fields)]
pub struct SignatureRules {
    pub rules: Vec<SignatureRule>,
}

/// Why rules are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRulesFault {
    #[error("at most {MAX_RULES} rules")]
    TooMany,
    #[error("rule {0}: `{1}` is not a kind code")]
    UnknownKind(usize, String),
    #[error("rule {0}: `{1}` is not a category code")]
    UnknownCategory(usize, String),
    #[error("rule {0}: `{1}` is not one of none, signature, signature_unless_app")]
    UnknownProof(usize, String),
}

impl SignatureRules {
    /// Every code known; rules numbered from 1 in faults.
    pub fn check(&self) -> Result<(), SignatureRulesFault> {
        if self.rules.len() > MAX_RULES {
            return Err(SignatureRulesFault::TooMany);
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let n = i + 1;
            if let Some(kind) = &rule.kind {
                Kind::from_code(kind).map_err(|_| SignatureRulesFault::UnknownKind(n, kind.clone()))?;
            }
            if let Some(category) = &rule.category {
                Category::from_code(category).map_err(|_| SignatureRulesFault::UnknownCategory(n, category.clone()))?;
            }
            Proof::from_code(&rule.require).map_err(|_| SignatureRulesFault::UnknownProof(n, rule.require.clone()))?;
        }
        Ok(())
    }

    /// What the first rule matching the order asks (`Proof::None` if none matches, or the
    /// matching rule does not read).
    pub fn proof(&self, kind: Kind, category: &Category) -> Proof {
        let category = category.code();
        self.rules
            .iter()
            .find(|r| {
                r.kind.as_deref().is_none_or(|k| k == kind.code())
                    && r.category.as_deref().is_none_or(|c| c == category.as_str())
            })
            .and_then(|r| Proof::from_code(&r.require).ok())
            .unwrap_or(Proof::None)
    }

    /// Whether completing an order of this kind and category needs the owner's signature
    /// (`by_owner`: the reporting owner registered it themselves, in the app; the channel a
    /// registration claims does not count, since staff may register for the app too).
    pub fn required(&self, kind: Kind, category: &Category, by_owner: bool) -> bool {
        match self.proof(kind, category) {
            Proof::None => false,
            Proof::Signature => true,
            Proof::SignatureUnlessApp => !by_owner,
        }
    }
}

/// What the server records in an order's document when it looks at the order (`state`: the
/// document's fold): the requirement the rules give (`Some`) when the document says otherwise,
/// else `None`.
/// - While the work is under way and nothing was ever completed (the technician's phone learns
///   before completing).
/// - An order seen for the first time (`first_look`) already awaiting confirmation (registered
///   and completed offline): judged too, so no device escapes the rule by completing before the
///   server saw the order.
/// - Never once a completion took effect otherwise (a rule changed later does not undo history:
///   an order in rework after a completion keeps its record), and never lifted while an unsigned
///   completion stands superseded for want of a signature (lifting it would revive that
///   completion after the fact).
pub fn to_record(rules: &SignatureRules, order: &WorkOrder, state: &OrderState, first_look: bool) -> Option<bool> {
    let completions = state
        .history
        .iter()
        .filter(|f| f.verdict == Verdict::Applied && matches!(f.transition.action, Action::Complete))
        .count();
    let waiting_unsigned = state
        .superseded()
        .any(|(t, why)| matches!(t.action, Action::Complete) && why == Supersession::SignatureRequired);
    let under_way = state.status.is_open() && state.status != Status::AwaitingConfirmation && completions == 0;
    let first_completion = first_look && state.status == Status::AwaitingConfirmation && completions == 1;
    if !(under_way || first_completion) {
        return None;
    }
    let required = rules.required(order.kind().ok()?, &order.category().ok()?, order.reported_by_owner());
    if required == order.signature_required() || (!required && waiting_unsigned) {
        return None;
    }
    Some(required)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: Option<&str>, category: Option<&str>, require: &str) -> SignatureRule {
        SignatureRule { kind: kind.map(str::to_owned), category: category.map(str::to_owned), require: require.into() }
    }

    #[test]
    fn first_matching_rule_decides_and_the_app_exempts_only_where_the_rule_says() {
        let rules = SignatureRules {
            rules: vec![
                rule(Some("repair"), Some("water_electric"), "signature"),
                rule(Some("repair"), None, "signature_unless_app"),
                rule(None, None, "none"),
            ],
        };
        rules.check().expect("valid");
        let water = Category::WaterElectric;
        let doors = Category::DoorsWindows;
        assert!(rules.required(Kind::Repair, &water, true));
        assert!(rules.required(Kind::Repair, &doors, false));
        assert!(!rules.required(Kind::Repair, &doors, true));
        assert!(!rules.required(Kind::Complaint, &water, false));
        assert!(!SignatureRules::default().required(Kind::Repair, &water, false));
    }

    #[test]
    fn unknown_codes_are_refused_naming_the_rule() {
        let bad = |r: SignatureRule| SignatureRules { rules: vec![rule(None, None, "none"), r] }.check();
        assert_eq!(
            bad(rule(Some("urgent"), None, "signature")),
            Err(SignatureRulesFault::UnknownKind(2, "urgent".into()))
        );
        assert_eq!(
            bad(rule(None, Some("custom:"), "signature")),
            Err(SignatureRulesFault::UnknownCategory(2, "custom:".into()))
        );
        assert_eq!(bad(rule(None, None, "always")), Err(SignatureRulesFault::UnknownProof(2, "always".into())));
        let many = SignatureRules { rules: vec![rule(None, None, "none"); MAX_RULES + 1] };
        assert_eq!(many.check(), Err(SignatureRulesFault::TooMany));
    }
}
