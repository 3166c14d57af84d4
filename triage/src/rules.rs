//! Life-safety rules: above the model, never abstained.
//!
//! A message that matches one of these is always `urgent`, at least the rule's grade, and never
//! left for a person to decide: a gas leak must reach someone in minutes even if the model has
//! never seen the wording. Each rule is: every group must match (any of its phrases), and a
//! phrase does not count when a negation (没/无/未/不是) stands in the three characters before it.

use loopwork_sync_core::{Category, Grade};

/// One life-safety situation.
#[derive(Debug)]
pub struct Rule {
    /// A stable code, reported with the classification (`rule`).
    pub code: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
    /// The least grade a matching message gets.
    pub grade: Grade,
    /// The category when the model is unsure of its own.
    pub category: Category,
    /// Every group must match one of its phrases.
    pub all: &'static [&'static [&'static str]],
}

/// The table. Order matters only for which rule is reported when several match (the first).
pub static LIFE_SAFETY: &[Rule] = &[
    Rule {
        code: "injury",
        label_zh: "有人受伤或昏迷",
        label_en: "someone hurt or unconscious",
        grade: Grade::Critical,
        category: Category::Other,
        all: &[&[
            "受伤",
            "流血",
            "出血",
            "晕倒",
            "昏倒",
            "昏迷",
            "不省人事",
            "骨折",
            "喘不上气",
            "呼吸困难",
            "被电到",
            "触电",
            "砸伤",
            "烧伤",
            "摔伤",
            "血止不住",
            "是血",
            "大口子",
            "叫不醒",
            "躺着不动",
            "躺在地上",
            "送医院",
            "送医",
            "心脏",
            "站不起来",
            "头晕",
            "被撞",
            "撞伤",
            "撞倒",
            "喘不过气",
            "呼吸不上来",
            "要生了",
            "中毒",
            "抽搐",
        ]],
    },
    Rule {
        code: "lift_trapped",
        label_zh: "电梯困人",
        label_en: "people trapped in a lift",
        grade: Grade::Severe,
        category: Category::Elevator,
        all: &[
            &["电梯", "电涕", "电t", "轿厢", "梯"],
            &[
                "困人",
                "被困",
                "困在",
                "困住",
                "关在里面",
                "关在电梯",
                "关里面",
                "关在梯",
                "出不来",
                "卡在里面",
                "里面有人",
                "人在里面",
                "卡住了人",
                "夹住",
                "夹到人",
                "门开着就在动",
                "往下掉",
                "坠落",
                "下坠",
                "关了",
                "困梯",
                "内有",
                "困了",
                "没关好就",
                "开着门在",
            ],
        ],
    },
    Rule {
        code: "gas",
        label_zh: "燃气泄漏",
        label_en: "gas smell or leak",
        grade: Grade::Severe,
        category: Category::WaterElectric,
        all: &[&[
            "煤气味",
            "燃气味",
            "天然气味",
            "液化气味",
            "煤气泄漏",
            "燃气泄漏",
            "煤气泄露",
            "燃气泄露",
            "漏气",
            "臭鸡蛋味",
            "闻到煤气",
            "闻到燃气",
            "闻到天然气",
            "有煤气",
            "嘶嘶",
        ]],
    },
    Rule {
        code: "fire_smoke",
        label_zh: "起火或冒烟",
        label_en: "fire or smoke",
        grade: Grade::Severe,
        category: Category::Security,
        all: &[&[
            "着火",
            "起火",
            "失火",
            "火灾",
            "冒烟",
            "浓烟",
            "黑烟",
            "烟很大",
            "烟味很重",
            "很重的烟味",
            "烧起来",
            "火苗",
            "明火",
            "火很大",
            "都是烟",
            "全是烟",
        ]],
    },
    Rule {
        code: "burst_pipe",
        label_zh: "爆管或水淹",
        label_en: "burst pipe or flooding",
        grade: Grade::Severe,
        category: Category::WaterElectric,
        all: &[&[
            "爆管",
            "水管爆",
            "管道爆",
            "管子爆",
            "水管破裂",
            "管道破裂",
            "水管裂开",
            "爆裂",
            "水漫",
            "淹了",
            "被淹",
            "水淹",
            "要淹",
            "喷水",
            "水喷",
            "像下雨一样",
            "到处是水",
            "到处都是水",
            "往外冒水",
            "水一直往外冒",
            "关不掉",
            "哗哗流",
            "哗哗地流",
            "管子破了",
            "水管破了",
            "水管断了",
            "龙头断了",
        ]],
    },
    Rule {
        code: "live_wire",
        label_zh: "裸露带电或打火",
        label_en: "exposed live wire or sparks",
        grade: Grade::Severe,
        category: Category::WaterElectric,
        all: &[&[
            "电线裸露",
            "裸露的电线",
            "裸露电线",
            "电线露",
            "漏电",
            "火花",
            "火星",
            "打火",
            "电线烧",
            "烧焦",
            "烧黑",
            "电线掉",
            "带电",
        ]],
    },
    Rule {
        code: "falling",
        label_zh: "高空坠物",
        label_en: "objects falling from height",
        grade: Grade::Severe,
        category: Category::Security,
        all: &[&[
            "高空抛物",
            "高空坠物",
            "高空掉",
            "往下扔",
            "往下丢",
            "往下砸",
            "楼上扔",
            "楼上丢",
            "楼上掉",
            "砸到人",
            "砸到车",
            "差点砸",
            "砸中",
            "瓷砖掉",
            "玻璃掉",
            "会掉下去",
            "掉下去砸",
            "掉下去",
            "要掉下来",
            "随时会掉",
            "砸在",
            "砸下来",
            "挂在半空",
            "悬在半空",
            "斜挂",
            "随时要倒",
            "要倒了",
            "快倒了",
        ]],
    },
    Rule {
        code: "sewage_flood",
        label_zh: "污水倒灌",
        label_en: "sewage flooding",
        grade: Grade::Severe,
        category: Category::WaterElectric,
        all: &[
            &["污水", "粪水", "化粪池", "粪便", "脏水"],
            &["淹", "漫", "倒灌", "涌", "满地", "流到", "冒出来", "冒污水", "全是", "哗哗"],
        ],
    },
    Rule {
        code: "open_manhole",
        label_zh: "井盖缺失",
        label_en: "open manhole",
        grade: Grade::Severe,
        category: Category::PublicFacilities,
        all: &[&["井盖没了", "井盖不见", "井盖丢", "没有井盖", "井盖被偷", "井盖翻", "会掉人", "掉进去"]],
    },
    Rule {
        code: "violence",
        label_zh: "暴力或持械",
        label_en: "violence or a weapon",
        grade: Grade::Severe,
        category: Category::Security,
        all: &[&["打人", "拿着刀", "持刀", "拿刀", "动手打", "砍人", "打起来了", "斗殴"]],
    },
    Rule {
        code: "collapse",
        label_zh: "坍塌",
        label_en: "collapse",
        grade: Grade::Severe,
        category: Category::PublicFacilities,
        all: &[&["坍塌", "倒塌", "塌了", "塌下来", "掉了一大块", "怕塌", "要塌", "承重墙", "裂缝"]],
    },
];

/// A negation in the three characters before a phrase cancels it ("没有人被困", "无煤气味").
const NEGATIONS: &[&str] = &["没", "无", "未", "不是"];
/// So does a question about what would happen, or a story of the past, earlier in the same
/// sentence ("万一困人怎么办", "上周我家燃气味…").
const HYPOTHETICAL: &[&str] =
    &["万一", "如果", "要是", "假如", "是怎么处理", "怎么处理", "上周", "上个月", "以前", "之前有一次", "去年"];

/// The first life-safety rule `text` matches.
pub fn life_safety(text: &str) -> Option<&'static Rule> {
    let text: String = text.chars().map(crate::features::fold).filter(|c| !c.is_whitespace()).collect();
    let text = text.to_lowercase();
    LIFE_SAFETY.iter().find(|rule| rule.all.iter().all(|group| group.iter().any(|p| affirmed(&text, p))))
}

/// Whether `phrase` occurs in `text` at least once without a negation right before it.
fn affirmed(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before: String = text[..at].chars().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
        let sentence = text[..at].rsplit(['。', '！', '!', '？', '?', '；', ';']).next().unwrap_or("");
        !NEGATIONS.iter().any(|n| before.contains(n)) && !HYPOTHETICAL.iter().any(|h| sentence.contains(h))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<&'static str> {
        life_safety(text).map(|r| r.code)
    }

    #[test]
    fn every_situation_of_the_issue_is_caught() {
        assert_eq!(code("3栋电梯又坏了有人困在里面"), Some("lift_trapped"));
        assert_eq!(code("电梯卡在12楼，里面有人"), Some("lift_trapped"));
        assert_eq!(code("厨房一股煤气味"), Some("gas"));
        assert_eq!(code("楼道里冒烟了"), Some("fire_smoke"));
        assert_eq!(code("水管爆了，到处是水"), Some("burst_pipe"));
        assert_eq!(code("插座冒火花"), Some("live_wire"));
        assert_eq!(code("有人高空抛物"), Some("falling"));
        assert_eq!(code("化粪池的污水倒灌进家里"), Some("sewage_flood"));
        assert_eq!(code("老人摔倒了，头在流血"), Some("injury"));
        assert_eq!(code("阳台天花板塌了"), Some("collapse"));
    }

    #[test]
    fn negated_and_ordinary_messages_are_not_caught() {
        assert_eq!(code("电梯坏了，没有人被困"), None);
        assert_eq!(code("检查过了，没有煤气味"), None);
        assert_eq!(code("电梯按钮不灵"), None);
        assert_eq!(code("请问物业费怎么交"), None);
        assert_eq!(code("燃气开户要找谁"), None);
        assert_eq!(code("电梯里的应急电话是坏的，万一困人怎么办"), None);
        assert_eq!(code("上周我家燃气味，你们十分钟就到了"), None);
        assert_eq!(code("楼道烟感一直响，也没看到着火"), None);
        assert_eq!(code("厨房水龙头一直滴水"), None);
    }

    #[test]
    fn full_width_and_spaces_do_not_hide_a_rule() {
        assert_eq!(code("煤 气 味很重"), Some("gas"));
        assert_eq!(code("电梯困人！！"), Some("lift_trapped"));
    }

    #[test]
    fn every_rule_is_at_least_severe() {
        for rule in LIFE_SAFETY {
            assert!(rule.grade >= Grade::Severe, "{}", rule.code);
            assert!(!rule.all.is_empty() && rule.all.iter().all(|g| !g.is_empty()), "{}", rule.code);
        }
    }
}
