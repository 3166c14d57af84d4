//! Where the problem is: a project (小区), then a building and unit, or a common area.

/// Ids and short codes only: an address is not personal data, but the owner living there is,
/// and that binding lives on the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Location {
    /// The project (小区) code, e.g. `hy-garden`.
    pub project: String,
    /// Building (楼栋), e.g. `3`.
    pub building: Option<String>,
    /// Unit (房号), e.g. `2-1502`.
    pub unit: Option<String>,
    /// Common area (公共区域), e.g. `B2 水泵房`.
    pub area: Option<String>,
}

impl Location {
    pub fn unit(project: &str, building: &str, unit: &str) -> Self {
        Location {
            project: project.to_owned(),
            building: Some(building.to_owned()),
            unit: Some(unit.to_owned()),
            area: None,
        }
    }

    pub fn common_area(project: &str, area: &str) -> Self {
        Location { project: project.to_owned(), building: None, unit: None, area: Some(area.to_owned()) }
    }
}
