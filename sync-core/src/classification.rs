//! How a request is classified (投诉分级分类): its kind, category, grade and channel.
//!
//! Documents store the stable ASCII `code()` of each value; labels are for people, zh-CN first.

use std::fmt;

use crate::error::DocumentError;

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal, $zh:literal, $en:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code stored in documents and used on the wire.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            pub fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en),+ }
            }

            pub fn from_code(code: &str) -> Result<Self, DocumentError> {
                match code {
                    $($code => Ok($name::$variant),)+
                    other => Err(DocumentError::InvalidField {
                        field: stringify!($name),
                        value: other.chars().take(64).collect(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// What the owner asks for.
    Kind {
        Repair => "repair", "报修", "repair";
        Complaint => "complaint", "投诉", "complaint";
        Inquiry => "inquiry", "咨询", "inquiry";
        Suggestion => "suggestion", "建议", "suggestion";
        Praise => "praise", "表扬", "praise";
        /// Planned work the server makes from an asset's maintenance plan (计划维保): never
        /// reported by an owner (docs/maintenance.md).
        Maintenance => "maintenance", "计划维保", "preventive maintenance";
    }
);

impl Kind {
    /// The kinds someone reports (an owner, a caller, a dispatcher for them): every kind but
    /// the planned [`Kind::Maintenance`]. The assistant classifies into these.
    pub const REPORTED: &'static [Kind] =
        &[Kind::Repair, Kind::Complaint, Kind::Inquiry, Kind::Suggestion, Kind::Praise];
}

vocabulary!(
    /// Severity; each grade has a handling authority (处理权限界定).
    Grade {
        Minor => "minor", "一般", "minor";
        Serious => "serious", "较重", "serious";
        Severe => "severe", "严重", "severe";
        Critical => "critical", "重大", "critical";
    }
);

vocabulary!(
    /// How the request reached the company.
    Channel {
        App => "app", "业主App", "app";
        Hotline => "hotline", "24小时热线", "phone hotline";
        WalkIn => "walk_in", "前台来访", "walk-in";
        Inspection => "inspection", "巡检发现", "inspection";
        /// Made by the server from a maintenance plan; no one else registers through it.
        Plan => "plan", "维保计划", "maintenance plan";
    }
);

/// The trade a request belongs to. The built-in list is what every company uses; a company can
/// add its own (`Custom`), stored by a code of its choosing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    WaterElectric,
    DoorsWindows,
    PublicFacilities,
    Elevator,
    Security,
    Cleaning,
    Greening,
    Parking,
    Noise,
    Other,
    /// An organization's own category: a lowercase ASCII code, `custom:` prefixed in documents.
    Custom(String),
}

impl Category {
    pub const BUILT_IN: &'static [Category] = &[
        Category::WaterElectric,
        Category::DoorsWindows,
        Category::PublicFacilities,
        Category::Elevator,
        Category::Security,
        Category::Cleaning,
        Category::Greening,
        Category::Parking,
        Category::Noise,
        Category::Other,
    ];

    pub fn code(&self) -> String {
        match self {
            Category::Custom(code) => format!("custom:{code}"),
            other => other.builtin_code().to_owned(),
        }
    }

    fn builtin_code(&self) -> &'static str {
        match self {
            Category::WaterElectric => "water_electric",
            Category::DoorsWindows => "doors_windows",
            Category::PublicFacilities => "public_facilities",
            Category::Elevator => "elevator",
            Category::Security => "security",
            Category::Cleaning => "cleaning",
            Category::Greening => "greening",
            Category::Parking => "parking",
            Category::Noise => "noise",
            Category::Other | Category::Custom(_) => "other",
        }
    }

    pub fn label_zh(&self) -> &str {
        match self {
            Category::WaterElectric => "水电",
            Category::DoorsWindows => "门窗",
            Category::PublicFacilities => "公共设施",
            Category::Elevator => "电梯",
            Category::Security => "安防",
            Category::Cleaning => "保洁",
            Category::Greening => "绿化",
            Category::Parking => "停车",
            Category::Noise => "噪音",
            Category::Other => "其他",
            Category::Custom(code) => code,
        }
    }

    pub fn label_en(&self) -> &str {
        match self {
            Category::WaterElectric => "water & electricity",
            Category::DoorsWindows => "doors & windows",
            Category::PublicFacilities => "public facilities",
            Category::Elevator => "elevator",
            Category::Security => "security",
            Category::Cleaning => "cleaning",
            Category::Greening => "greening",
            Category::Parking => "parking",
            Category::Noise => "noise",
            Category::Other => "other",
            Category::Custom(code) => code,
        }
    }

    /// A custom category: 1 to 32 characters of `a-z`, `0-9` and `_`.
    pub fn custom(code: &str) -> Result<Self, DocumentError> {
        let valid = !code.is_empty()
            && code.len() <= 32
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Category::Custom(code.to_owned()))
        } else {
            Err(DocumentError::InvalidField { field: "Category", value: code.chars().take(64).collect() })
        }
    }

    pub fn from_code(code: &str) -> Result<Self, DocumentError> {
        if let Some(custom) = code.strip_prefix("custom:") {
            return Category::custom(custom);
        }
        Category::BUILT_IN
            .iter()
            .find(|c| c.builtin_code() == code)
            .cloned()
            .ok_or_else(|| DocumentError::InvalidField { field: "Category", value: code.chars().take(64).collect() })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_code(k.code()), Ok(*k));
        }
        for g in Grade::ALL {
            assert_eq!(Grade::from_code(g.code()), Ok(*g));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::from_code(c.code()), Ok(*c));
        }
        for c in Category::BUILT_IN {
            assert_eq!(Category::from_code(&c.code()).as_ref(), Ok(c));
        }
        let lift_cards = Category::custom("access_cards").unwrap();
        assert_eq!(Category::from_code(&lift_cards.code()), Ok(lift_cards));
    }

    #[test]
    fn unknown_and_malformed_codes_are_typed_errors() {
        assert!(Kind::from_code("urgent").is_err());
        assert!(Category::from_code("custom:").is_err());
        assert!(Category::from_code("custom:Bad Code").is_err());
        assert!(Category::custom(&"x".repeat(33)).is_err());
    }
}
