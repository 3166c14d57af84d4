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

/// The longest part of a location (project, building, unit, area), in characters.
pub const MAX_LOCATION_PART_CHARS: usize = 200;

/// What makes a location unusable (see [`Location::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocationFault {
    #[error("a location needs its project (小区)")]
    MissingProject,
    #[error("a location needs a unit or a common area")]
    MissingPlace,
    #[error("a part of a location is longer than {MAX_LOCATION_PART_CHARS} characters")]
    TooLong,
}

impl Location {
    /// The one rule for a location, wherever one is written or judged: a project, a unit or a
    /// common area, and no part over [`MAX_LOCATION_PART_CHARS`].
    pub fn check(&self) -> Result<(), LocationFault> {
        if self.project.is_empty() {
            return Err(LocationFault::MissingProject);
        }
        if self.unit.is_none() && self.area.is_none() {
            return Err(LocationFault::MissingPlace);
        }
        let parts = [Some(&self.project), self.building.as_ref(), self.unit.as_ref(), self.area.as_ref()];
        if parts.into_iter().flatten().any(|p| p.chars().count() > MAX_LOCATION_PART_CHARS) {
            return Err(LocationFault::TooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_needs_a_project_and_a_place_within_bounds() {
        assert_eq!(Location::unit("hy-garden", "3", "3-1502").check(), Ok(()));
        assert_eq!(Location::common_area("hy-garden", "B2 水泵房").check(), Ok(()));
        assert_eq!(Location::unit("", "3", "3-1502").check(), Err(LocationFault::MissingProject));
        let nowhere = Location { project: "hy-garden".into(), building: Some("3".into()), unit: None, area: None };
        assert_eq!(nowhere.check(), Err(LocationFault::MissingPlace));
        let long = "楼".repeat(MAX_LOCATION_PART_CHARS + 1);
        assert_eq!(Location::common_area("hy-garden", &long).check(), Err(LocationFault::TooLong));
    }
}
