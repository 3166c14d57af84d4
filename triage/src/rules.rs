//! Life-safety rules: above the model, never abstained.
//!
//! A message that matches one of these is always `urgent`, at least the rule's grade, and never
//! left for a person to decide: a gas leak must reach someone in minutes even if the model has
//! never seen the wording. Each rule is: every group must match (any of its phrases) in the same
//! sentence. A phrase does not count:
//! - right after a negation (没/没有/无/未/不是, or 没有人/没人/无人: "没有人被困");
//! - inside one of the rule's exceptions (打火机 is not 打火; 打不着火 is not 着火);
//! - in a clause that asks what would happen or tells of the past (万一, 如果, 上周, 去年…)
//!   unless the clause also says it is happening now (现在, 今天, 又, 正在, 还在, 刚才).

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
    /// The category when the model is unsure of its own (`Other`: no opinion).
    pub category: Category,
    /// People's lives at risk (not only property: a burst pipe, sewage): a surge holding such a
    /// report is an incident of level I (docs/incidents.md).
    pub life: bool,
    /// Every group must match one of its phrases, in one sentence.
    pub all: &'static [&'static [&'static str]],
    /// Longer phrases that contain a phrase of the rule without meaning it.
    pub except: &'static [&'static str],
}

const LIFT: &[&str] = &["电梯", "电涕", "电t", "轿厢", "客梯", "货梯", "扶梯"];

/// The table. When several match, the message gets the highest grade among them and the first
/// category that is not `Other`.
#[rustfmt::skip]
pub static LIFE_SAFETY: &[Rule] = &[
    Rule {
        code: "injury", label_zh: "有人受伤或昏迷", label_en: "someone hurt or unconscious",
        grade: Grade::Critical, category: Category::Other, life: true,
        all: &[&["受伤", "流血", "出血", "血止不住", "是血", "大口子", "晕倒", "昏倒", "晕过去", "昏迷", "叫不醒",
            "不省人事", "躺着不动", "躺在地上", "骨折", "喘不上气", "喘不过气", "呼吸困难", "呼吸不上来", "被电到",
            "触电", "砸伤", "烧伤", "摔伤", "撞伤", "被撞", "送医院", "送医", "心脏病", "抽搐", "中毒", "要生了",
            "站不起来"]],
        except: &["出血点"],
    },
    Rule {
        code: "lift_trapped", label_zh: "电梯困人", label_en: "people trapped in a lift",
        grade: Grade::Severe, category: Category::Elevator, life: true,
        all: &[LIFT, &["困人", "被困", "困在", "困住", "困了", "困梯", "关在里面", "关在电梯", "关里面", "出不来",
            "卡在里面", "里面有人", "人在里面", "卡住了人", "夹住", "夹到人", "门开着就在动", "没关好就", "往下掉",
            "坠落", "下坠", "关了个", "关了人", "关着人"]],
        except: &[],
    },
    Rule {
        code: "gas", label_zh: "燃气泄漏", label_en: "gas smell or leak",
        grade: Grade::Severe, category: Category::WaterElectric, life: true,
        all: &[&["煤气味", "燃气味", "天然气味", "液化气味", "煤气泄漏", "燃气泄漏", "煤气泄露", "燃气泄露", "漏气",
            "臭鸡蛋味", "闻到煤气", "闻到燃气", "闻到天然气", "有煤气", "嘶嘶"]],
        except: &["轮胎漏气", "车胎漏气", "胎漏气", "球漏气"],
    },
    Rule {
        code: "fire_smoke", label_zh: "起火或冒烟", label_en: "fire or smoke",
        grade: Grade::Severe, category: Category::Security, life: true,
        all: &[&["着火", "起火", "失火", "火灾", "冒烟", "浓烟", "黑烟", "烟很大", "烧起来", "火苗", "明火", "火很大",
            "都是烟", "全是烟"]],
        except: &["打不着火", "点不着火", "打着火"],
    },
    Rule {
        code: "burst_pipe", label_zh: "爆管或水淹", label_en: "burst pipe or flooding",
        grade: Grade::Severe, category: Category::WaterElectric, life: false,
        all: &[&["爆管", "水管爆", "管道爆", "管子爆", "水管破裂", "管道破裂", "水管裂开", "爆裂", "水漫", "淹了",
            "被淹", "水淹", "要淹", "喷水", "水喷", "像下雨一样", "到处是水", "到处都是水", "往外冒水", "水一直往外冒",
            "水关不掉", "阀门关不掉", "关不住水", "哗哗流", "哗哗地流", "管子破了", "水管破了", "水管断了", "龙头断了"]],
        except: &["喷水头", "喷水池"],
    },
    Rule {
        code: "live_wire", label_zh: "裸露带电或打火", label_en: "exposed live wire or sparks",
        grade: Grade::Severe, category: Category::WaterElectric, life: true,
        all: &[&["电线裸露", "裸露的电线", "裸露电线", "电线露", "漏电", "火花", "火星", "打火", "电线烧", "烧焦",
            "烧黑", "电线掉", "带电"]],
        except: &["打火机", "带电动", "带电瓶", "带电脑", "带电池"],
    },
    Rule {
        code: "falling", label_zh: "高空坠物", label_en: "objects falling from height",
        grade: Grade::Severe, category: Category::Security, life: true,
        all: &[&["高空抛物", "高空坠物", "高空掉", "往下扔", "往下丢", "往下砸", "楼上扔", "楼上丢", "楼上掉", "砸到人",
            "砸到车", "差点砸", "砸中", "瓷砖掉", "玻璃掉", "会掉下去", "怕掉下去", "要掉下去", "掉下去砸", "要掉下来",
            "随时会掉", "砸在", "砸下来", "挂在半空", "悬在半空", "斜挂", "随时要倒", "要倒了", "快倒了"]],
        except: &[],
    },
    Rule {
        code: "sewage_flood", label_zh: "污水倒灌", label_en: "sewage flooding",
        grade: Grade::Severe, category: Category::WaterElectric, life: false,
        all: &[&["污水", "粪水", "化粪池", "粪便", "脏水"], &["淹", "漫", "倒灌", "涌", "满地", "冒出来", "冒污水", "全是", "哗哗"]],
        except: &[],
    },
    Rule {
        code: "open_manhole", label_zh: "井盖缺失", label_en: "open manhole",
        grade: Grade::Severe, category: Category::PublicFacilities, life: true,
        all: &[&["井盖没了", "井盖不见", "井盖丢", "没有井盖", "井盖被偷", "井盖翻", "会掉人", "掉进井"]],
        except: &[],
    },
    Rule {
        code: "violence", label_zh: "暴力或持械", label_en: "violence or a weapon",
        grade: Grade::Severe, category: Category::Security, life: true,
        all: &[&["打人", "拿着刀", "持刀", "拿刀", "动手打", "砍人", "打起来了", "斗殴"]],
        except: &[],
    },
    Rule {
        code: "collapse", label_zh: "坍塌", label_en: "collapse",
        grade: Grade::Critical, category: Category::PublicFacilities, life: true,
        all: &[&["坍塌", "倒塌", "塌了", "塌下来", "掉了一大块", "怕塌", "要塌"]],
        except: &[],
    },
];

/// Right before a phrase, these cancel it.
const NEGATIONS: &[&str] =
    &["没有人", "没人", "无人", "没看到", "没看见", "没发现", "没闻到", "没有", "没", "无", "未", "不是"];
/// In the same clause, these make a phrase a question or a story of the past...
const HYPOTHETICAL: &[&str] = &["万一", "如果", "要是", "假如", "上周", "上个月", "之前有一次", "去年", "前年"];
/// Words in which a hypothetical marker is no marker (主要是, 需要是).
const NOT_HYPOTHETICAL: &[&str] = &["主要是", "需要是", "就要是", "只要是", "还要是", "总要是", "不要是"];
/// ...unless the clause says it is happening now.
const NOW: &[&str] = &["现在", "今天", "又", "正在", "还在", "刚才", "刚刚", "马上"];

/// A text made ready for the rules: folded, without spaces, lowercase, with its clauses.
struct Prepared {
    text: String,
    /// Start of each sentence (after 。！？；).
    sentences: Vec<usize>,
    /// Start of each clause (also after ，、), and whether it is hypothetical.
    clauses: Vec<(usize, bool)>,
}

impl Prepared {
    fn new(text: &str) -> Prepared {
        // A line break ends a sentence (messages are often typed line by line); other spaces go.
        let text: String = text
            .chars()
            .map(crate::features::fold)
            .map(|c| if matches!(c, '\n' | '\r') { '。' } else { c })
            .filter(|c| !c.is_whitespace())
            .collect();
        let text = text.to_lowercase();
        let (mut sentences, mut starts) = (vec![0], vec![0]);
        for (at, c) in text.char_indices() {
            let next = at + c.len_utf8();
            if matches!(c, '。' | '！' | '!' | '？' | '?' | '；' | ';') {
                sentences.push(next);
                starts.push(next);
            } else if matches!(c, '，' | ',' | '、') {
                starts.push(next);
            }
        }
        let clauses = starts
            .iter()
            .enumerate()
            .map(|(i, start)| {
                let end = starts.get(i + 1).copied().unwrap_or(text.len());
                let clause = &text[*start..end];
                let asked = HYPOTHETICAL.iter().any(|h| {
                    clause.match_indices(h).any(|(at, _)| {
                        !NOT_HYPOTHETICAL.iter().any(|w| w.ends_with(h) && clause[..at + h.len()].ends_with(w))
                    })
                });
                (*start, asked && !NOW.iter().any(|n| clause.contains(n)))
            })
            .collect();
        Prepared { text, sentences, clauses }
    }

    fn sentence_of(&self, at: usize) -> usize {
        self.sentences.partition_point(|start| *start <= at) - 1
    }

    /// The sentences in which `phrase` occurs affirmed; `now` asks that its clause be no
    /// question or story of the past.
    fn affirmed(&self, phrase: &str, except: &[&str], now: bool) -> Vec<usize> {
        let mut found = Vec::new();
        for (at, _) in self.text.match_indices(phrase) {
            let before = &self.text[..at];
            if NEGATIONS.iter().any(|n| before.ends_with(n)) {
                continue;
            }
            let clause = self.clauses[self.clauses.partition_point(|(start, _)| *start <= at) - 1];
            if now && clause.1 {
                continue;
            }
            let inside = except.iter().any(|e| {
                e.contains(phrase)
                    && self
                        .text
                        .match_indices(e)
                        .any(|(from, whole)| from <= at && at + phrase.len() <= from + whole.len())
            });
            if !inside {
                found.push(self.sentence_of(at));
            }
        }
        found
    }

    fn matches(&self, rule: &Rule) -> bool {
        let mut sentences: Option<Vec<usize>> = None;
        // The last group is the event ("困人"); the others set the scene ("电梯"), which may be
        // named in a clause about the past ("之前有一次电梯困人，今天又困人了").
        for (i, group) in rule.all.iter().enumerate() {
            let event = i + 1 == rule.all.len();
            let mut here: Vec<usize> = group.iter().flat_map(|p| self.affirmed(p, rule.except, event)).collect();
            here.sort_unstable();
            here.dedup();
            sentences = Some(match sentences {
                None => here,
                Some(before) => before.into_iter().filter(|s| here.contains(s)).collect(),
            });
        }
        sentences.is_some_and(|s| !s.is_empty())
    }
}

/// Every life-safety rule `text` matches, in the table's order.
pub fn life_safety_all(text: &str) -> Vec<&'static Rule> {
    let prepared = Prepared::new(text);
    LIFE_SAFETY.iter().filter(|rule| prepared.matches(rule)).collect()
}

/// The first life-safety rule `text` matches.
pub fn life_safety(text: &str) -> Option<&'static Rule> {
    life_safety_all(text).into_iter().next()
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
        assert_eq!(code("东门的井盖没了，路中间一个洞"), Some("open_manhole"));
    }

    #[test]
    fn negated_and_ordinary_messages_are_not_caught() {
        assert_eq!(code("电梯坏了，没有人被困"), None);
        assert_eq!(code("检查过了，没有煤气味"), None);
        assert_eq!(code("电梯按钮不灵"), None);
        assert_eq!(code("请问物业费怎么交"), None);
        assert_eq!(code("燃气开户要找谁"), None);
        assert_eq!(code("厨房水龙头一直滴水"), None);
        assert_eq!(code("电梯里的应急电话是坏的，万一困人怎么办"), None);
        assert_eq!(code("上周我家燃气味，你们十分钟就到了"), None);
        assert_eq!(code("楼道烟感一直响，也没看到着火"), None);
    }

    /// Ordinary requests and complaints of data/LABELS.md that share words with a rule.
    #[test]
    fn words_shared_with_a_rule_do_not_make_an_emergency() {
        for text in [
            "电梯里有人抽烟，烟味很重",
            "燃气灶打不着火",
            "小孩在楼道玩打火机",
            "有人带电动车进电梯",
            "楼梯间的灯关了",
            "建议电梯内装空调",
            "楼道灯一直亮着关不掉",
            "楼上装修吵得我心脏受不了",
            "油漆味熏得人头晕",
            "外墙有几条裂缝",
            "钥匙掉下去了",
            "手机掉进去了",
            "空调的脏水流到楼下阳台",
            "我的车轮胎漏气了",
        ] {
            assert_eq!(code(text), None, "{text}");
        }
    }

    /// A comma ends a clause's question or story; a negation counts only right before its phrase.
    #[test]
    fn a_present_emergency_after_a_past_one_or_a_comma_is_caught() {
        assert_eq!(code("之前有一次电梯困人，今天又困人了"), Some("lift_trapped"));
        assert_eq!(code("上个月刚修的水管，今天又爆管了，到处是水"), Some("burst_pipe"));
        assert_eq!(code("去年装的燃气管，现在闻到煤气味很重"), Some("gas"));
        assert_eq!(code("十分钟以前开始闻到煤气味"), Some("gas"));
        assert_eq!(code("电梯没反应被困"), Some("lift_trapped"));
        assert_eq!(code("电梯门没开，人在里面"), Some("lift_trapped"));
    }

    /// A line break ends a sentence; 主要是 is no 要是; asking what to do is no hypothetical.
    #[test]
    fn questions_and_line_breaks_do_not_hide_an_emergency() {
        assert_eq!(code("如果可以请尽快派人\n厨房煤气味很重"), Some("gas"));
        assert_eq!(code("主要是厨房煤气味很重"), Some("gas"));
        assert_eq!(code("家里被水淹了怎么处理"), Some("burst_pipe"));
        assert_eq!(code("要是电梯困人了怎么办"), None);
    }

    #[test]
    fn the_groups_of_a_rule_meet_in_one_sentence() {
        assert_eq!(code("电梯昨天修好了。今天我被困在家里出不来，门锁坏了"), None);
    }

    #[test]
    fn full_width_and_spaces_do_not_hide_a_rule() {
        assert_eq!(code("煤 气 味很重"), Some("gas"));
        assert_eq!(code("电梯困人！！"), Some("lift_trapped"));
    }

    #[test]
    fn every_rule_is_at_least_severe_and_well_formed() {
        for rule in LIFE_SAFETY {
            assert!(rule.grade >= Grade::Severe, "{}", rule.code);
            assert!(!rule.all.is_empty() && rule.all.iter().all(|g| !g.is_empty()), "{}", rule.code);
        }
    }
}
