//! Automatic presence (Dynamics §2.3): Away, Offline and Do-not-disturb set by hand stay;
//! otherwise presence follows capacity: exhausted → Busy-DND, partly used → Busy, free → Available.

use super::Presence;

/// A capacity profile's use for one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLoad {
    /// Work items allowed.
    pub limit: i32,
    /// Work items held.
    pub used: i32,
    /// "Assignment blocking": reaching the limit stops assignment.
    pub blocking: bool,
}

/// An agent's capacity in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    /// Unit capacity (0: none configured).
    pub capacity_units: i32,
    /// Units held (can exceed capacity after a pick or a supervisor assignment).
    pub used_units: i32,
    /// The capacity profiles the agent has, each with its limit and use.
    pub profiles: Vec<ProfileLoad>,
}

impl Load {
    /// Returns whether no more work can be assigned.
    pub fn exhausted(&self) -> bool {
        let units = self.capacity_units > 0;
        let units_full = units && self.used_units >= self.capacity_units;
        let blocking: Vec<_> = self.profiles.iter().filter(|p| p.blocking).collect();
        let profiles_full = if blocking.is_empty() {
            !self.profiles.is_empty() && self.profiles.iter().all(|p| p.used >= p.limit)
        } else {
            blocking.iter().any(|p| p.used >= p.limit)
        };
        match (units, !self.profiles.is_empty()) {
            (true, false) => units_full,
            (false, true) => profiles_full,
            (true, true) => units_full && profiles_full,
            (false, false) => true,
        }
    }

    /// Returns whether any capacity is in use.
    pub fn in_use(&self) -> bool {
        self.used_units > 0 || self.profiles.iter().any(|p| p.used > 0)
    }
}

/// Returns the presence an agent shows given what they chose (`chosen`) and their load.
pub fn recompute(chosen: Presence, load: &Load) -> Presence {
    if chosen.is_sticky() {
        chosen
    } else if load.exhausted() {
        Presence::BusyDnd
    } else if load.in_use() {
        Presence::Busy
    } else {
        Presence::Available
    }
}

/// Dynamics §2.3: an agent whose last connection drops shows Offline at once. Back within this
/// window (2.5 min), they get their presence back; after it, their conversations return to the
/// queue and their presence is recalculated from their default.
pub const RESTORE_WINDOW_SECS: i64 = 150;

/// Returns what an agent has chosen on coming back after `away_secs` without a connection:
/// what they had chosen before (`before`), or their `default` once the restore window is over.
pub fn chosen_on_return(before: Presence, default: Presence, away_secs: i64) -> Presence {
    if away_secs <= RESTORE_WINDOW_SECS { before } else { default }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_comes_back_within_the_restore_window_and_is_recalculated_after() {
        assert_eq!(chosen_on_return(Presence::Busy, Presence::Available, 0), Presence::Busy);
        assert_eq!(chosen_on_return(Presence::Busy, Presence::Available, 150), Presence::Busy);
        assert_eq!(chosen_on_return(Presence::Busy, Presence::Available, 151), Presence::Available);
        assert_eq!(chosen_on_return(Presence::Away, Presence::Offline, 3_600), Presence::Offline);
    }

    fn units(capacity: i32, used: i32) -> Load {
        Load {
            capacity_units: capacity,
            used_units: used,
            profiles: vec![],
        }
    }

    #[test]
    fn presence_follows_capacity_unless_set_by_hand() {
        assert_eq!(recompute(Presence::Available, &units(3, 0)), Presence::Available);
        assert_eq!(recompute(Presence::Available, &units(3, 1)), Presence::Busy);
        assert_eq!(recompute(Presence::Busy, &units(3, 3)), Presence::BusyDnd);
        assert_eq!(
            recompute(Presence::Busy, &units(3, 4)),
            Presence::BusyDnd,
            "negative available capacity"
        );
        assert_eq!(
            recompute(Presence::Busy, &units(3, 0)),
            Presence::Available,
            "manual Busy lasts until recomputed"
        );
        for sticky in [Presence::Away, Presence::Offline, Presence::BusyDnd] {
            assert_eq!(recompute(sticky, &units(3, 0)), sticky);
        }
    }

    #[test]
    fn profiles_units_and_blocking() {
        let p = |limit, used, blocking| ProfileLoad { limit, used, blocking };
        let both = Load {
            capacity_units: 2,
            used_units: 2,
            profiles: vec![p(5, 1, false)],
        };
        assert!(!both.exhausted(), "units and profiles: both must be exhausted");
        let non_blocking = Load {
            capacity_units: 0,
            used_units: 0,
            profiles: vec![p(1, 1, false), p(2, 1, false)],
        };
        assert!(!non_blocking.exhausted(), "several non-blocking profiles: all must be exhausted");
        let blocking = Load {
            capacity_units: 0,
            used_units: 0,
            profiles: vec![p(1, 1, true), p(9, 0, false)],
        };
        assert!(blocking.exhausted(), "a blocking profile decides");
    }
}
