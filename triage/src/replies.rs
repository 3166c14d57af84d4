//! Suggested replies to owners: a template per kind (and per category where it says more),
//! with slots filled from the order. An organization may write its own ([`OwnTemplate`]; the
//! server keeps them as the setting `reply-templates`): [`template`] picks the one in force.
//!
//! Slots: `{number}` the order's number, `{category}` its category's label, `{promise}` when
//! the company promises to respond and `{arrival}` to be on site (the SLA book's deadlines on
//! its calendars), `{assignee}` the technician's name or 维修师傅, `{next}` the next step.

use std::collections::BTreeMap;

use loopwork_sync_core::{Category, Kind};

/// The built-in template for `kind` and `category` (zh-CN).
pub fn built_in(kind: Kind, category: &Category) -> &'static str {
    match (kind, category) {
        (Kind::Repair, Category::Elevator) => {
            "您好，您反映的电梯问题已登记（工单{number}），电梯维保人员将于{arrival}前到场处理。如有人员被困，请保持冷静，按下轿厢内警铃，不要强行扒门。"
        }
        (Kind::Repair, _) => {
            "您好，您的报修已登记（工单{number}，{category}），我们将于{promise}前响应，{assignee}会先与您电话联系确认上门时间。{next}"
        }
        (Kind::Complaint, _) => {
            "您好，非常抱歉给您带来不便，您的投诉已登记（工单{number}），我们将于{promise}前给您答复，处理结果会第一时间告知您。{next}"
        }
        (Kind::Inquiry, _) => "您好，您的咨询已收到（工单{number}），客服将于{promise}前给您答复。",
        (Kind::Maintenance, _) => "您好，计划维保工单{number}已安排，将于{promise}前完成。",
        (Kind::Suggestion, _) => "您好，感谢您的宝贵建议（工单{number}），我们会认真研究，并在{promise}前给您回复。",
        (Kind::Praise, _) => {
            "您好，感谢您的肯定与鼓励（工单{number}）！我们会把您的表扬转达给相关同事，继续为您做好服务。"
        }
    }
}

/// An organization's own template: for a kind, and one category of it or (`None`) every one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTemplate {
    pub kind: Kind,
    pub category: Option<Category>,
    pub text: String,
}

/// The template in force for `kind` and `category`: the organization's for both, else its for
/// the kind, else the built-in one.
pub fn template<'a>(kind: Kind, category: &Category, own: &'a [OwnTemplate]) -> &'a str {
    own.iter()
        .find(|t| t.kind == kind && t.category.as_ref() == Some(category))
        .or_else(|| own.iter().find(|t| t.kind == kind && t.category.is_none()))
        .map_or_else(|| built_in(kind, category), |t| t.text.as_str())
}

/// The slots a template names that are not [`SLOTS`] (a typo such as `{promse}`), in order.
pub fn unknown_slots(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !SLOTS.contains(&name) && !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    out
}

/// `template` with its slots filled; an unknown slot is left as written.
pub fn render(template: &str, slots: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match after.find('}') {
            Some(close) => {
                let name = &after[1..close];
                match slots.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&after[..=close]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

/// Every slot name a template may use.
pub const SLOTS: &[&str] = &["number", "category", "promise", "arrival", "assignee", "next"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_filled_and_unknown_ones_kept() {
        let slots = BTreeMap::from([("number", "BX-20261206-0001".to_owned()), ("promise", "今天 21:30".to_owned())]);
        assert_eq!(
            render("工单{number}，{promise}前响应，{who}", &slots),
            "工单BX-20261206-0001，今天 21:30前响应，{who}"
        );
        assert_eq!(render("没有结尾{number", &slots), "没有结尾{number");
        for kind in Kind::ALL {
            assert!(built_in(*kind, &Category::Other).contains("{number}"));
            assert!(unknown_slots(built_in(*kind, &Category::Elevator)).is_empty());
        }
    }

    #[test]
    fn the_organization_s_template_for_the_category_then_the_kind_then_the_built_in() {
        let own = [
            OwnTemplate { kind: Kind::Repair, category: None, text: "报修{number}".into() },
            OwnTemplate { kind: Kind::Repair, category: Some(Category::Elevator), text: "电梯{number}".into() },
        ];
        assert_eq!(template(Kind::Repair, &Category::Elevator, &own), "电梯{number}");
        assert_eq!(template(Kind::Repair, &Category::Noise, &own), "报修{number}");
        assert_eq!(template(Kind::Complaint, &Category::Noise, &own), built_in(Kind::Complaint, &Category::Noise));
        assert_eq!(template(Kind::Complaint, &Category::Noise, &[]), built_in(Kind::Complaint, &Category::Noise));
        assert_eq!(unknown_slots("{number}{promse}{x}{promse}{"), ["promse", "x"]);
    }
}
