//! The preventive maintenance scheduler over two years of the 2025–2026 calendars, a short run of
//! `loopwork-sim maintenance` (docs/maintenance.md gives the long one): replicas restarted,
//! phones reporting late, the store restored; no gap over the maximum, nothing missed, nothing
//! made twice.

use loopwork_tests::maintenance_sim::{Settings, run};

#[test]
fn two_years_of_lifts_and_tanks_keep_their_gaps_through_restarts_and_restores() {
    for seed in [1, 2] {
        let settings = Settings { lifts: 30, tanks: 6, seed, ..Settings::two_years() };
        let report = run(&settings);
        assert!(report.occurrences_expected > 30 * 50, "{report:?}");
        assert_eq!((report.missed, report.duplicated, report.gaps_over_maximum), (0, 0, 0), "{report:?}");
        assert_eq!(report.made, report.occurrences_expected, "{report:?}");
        assert_eq!(report.services_missing, 0, "{report:?}");
        assert!(report.max_gap_days_lift <= 15 && report.max_gap_days_tank <= 184, "{report:?}");
        // The run did what it says: replicas down, late reports, restores, due days moved.
        assert!(report.replica_days_down > 0 && report.services_reported_late > 0, "{report:?}");
        assert_eq!(report.restores, 3, "{report:?}");
        assert!(report.dues_moved > 0 && report.makes_refused > 0, "{report:?}");
    }
}

/// Repeated-failure detection on a labelled synthetic history (a smaller estate than
/// `loopwork-sim failures`): precision at least 0.9, and most worn assets found.
#[test]
fn worn_assets_are_found_and_few_problems_are_raised_on_sound_ones() {
    use loopwork_tests::failures_sim::{Settings, run};
    for seed in [1, 2] {
        let report = run(&Settings { lifts: 150, pumps: 60, seed, ..Settings::default_history() });
        assert!(report.worn >= 5, "{report:?}");
        assert!(report.all.precision >= 0.9, "{report:?}");
        assert!(report.recall >= 0.25, "{report:?}");
    }
}
