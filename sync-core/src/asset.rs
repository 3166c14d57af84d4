//! Assets (设备台账, docs/maintenance.md): equipment at a place of a project, what kind it is,
//! and what the register takes of its names. The server keeps them; preventive plans
//! (`maintenance`) and repeated failures (`failures`) are by asset.

use std::fmt;

use crate::classification::{Category, vocabulary};
use crate::error::DocumentError;

vocabulary!(
    /// What kind of equipment an asset is (设备类型): its peers for the failure rules.
    AssetType {
        Elevator => "elevator", "电梯", "lift";
        WaterPump => "water_pump", "水泵", "water pump";
        WaterTank => "water_tank", "二次供水水箱", "water tank";
        FireSystem => "fire_system", "消防系统", "fire system";
        Power => "power", "配电设备", "power distribution";
        Gate => "gate", "门禁道闸", "gate and access control";
        Other => "other", "其他设备", "other";
    }
);

impl AssetType {
    /// The trade of the asset's work orders.
    pub fn category(self) -> Category {
        match self {
            AssetType::Elevator => Category::Elevator,
            AssetType::WaterPump | AssetType::WaterTank | AssetType::Power => Category::WaterElectric,
            AssetType::Gate => Category::Security,
            AssetType::FireSystem | AssetType::Other => Category::PublicFacilities,
        }
    }
}

/// The longest name, place or make, in characters.
pub const MAX_TEXT_CHARS: usize = 64;
/// The most items of a plan's checklist, and the longest item in characters.
pub const MAX_CHECKLIST_ITEMS: usize = 50;
pub const MAX_CHECKLIST_ITEM_CHARS: usize = 200;

/// A name, place or make as the register keeps it: trimmed, without control characters, at
/// most [`MAX_TEXT_CHARS`]; `None` when it is not (or, for a required one, empty).
pub fn clean_text(raw: &str, required: bool) -> Option<String> {
    let text = raw.trim();
    if (required && text.is_empty()) || text.chars().count() > MAX_TEXT_CHARS || text.chars().any(char::is_control) {
        return None;
    }
    Some(text.to_owned())
}

/// A checklist as kept: items trimmed, none empty, at most [`MAX_CHECKLIST_ITEMS`] of at most
/// [`MAX_CHECKLIST_ITEM_CHARS`] characters.
pub fn clean_checklist(items: &[String]) -> Option<Vec<String>> {
    if items.len() > MAX_CHECKLIST_ITEMS {
        return None;
    }
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            (!item.is_empty()
                && item.chars().count() <= MAX_CHECKLIST_ITEM_CHARS
                && !item.chars().any(char::is_control))
            .then(|| item.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checklists_are_kept_trimmed_and_bounded() {
        assert_eq!(clean_text("  3号电梯 ", true).as_deref(), Some("3号电梯"));
        assert_eq!(clean_text("", true), None);
        assert_eq!(clean_text("", false).as_deref(), Some(""));
        assert_eq!(clean_text(&"梯".repeat(65), true), None);
        assert_eq!(clean_text("a\u{7}b", true), None);
        assert_eq!(
            clean_checklist(&["检查曳引机 ".into(), "润滑导轨".into()]),
            Some(vec!["检查曳引机".into(), "润滑导轨".into()])
        );
        assert_eq!(clean_checklist(&[" ".into()]), None);
        assert_eq!(clean_checklist(&vec!["x".to_owned(); 51]), None);
        assert_eq!(AssetType::from_code("elevator").map(|t| t.label_zh()), Ok("电梯"));
        assert!(AssetType::from_code("spaceship").is_err());
    }
}
