//! Operating hours: weekly time slots in an IANA time zone (daylight saving handled by jiff's
//! bundled tz database) and holidays. A queue without operating hours is open all the time.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Self::Monday => Weekday::Monday,
            Self::Tuesday => Weekday::Tuesday,
            Self::Wednesday => Weekday::Wednesday,
            Self::Thursday => Weekday::Thursday,
            Self::Friday => Weekday::Friday,
            Self::Saturday => Weekday::Saturday,
            Self::Sunday => Weekday::Sunday,
        }
    }
}

/// Open from `start` to `end` on `day` (`end` ≤ `start` runs past midnight; `24:00` is the end
/// of the day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySlot {
    /// The day the slot opens on.
    pub day: Day,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
}

/// Closed from `from` to `to` (inclusive dates, in the hours' time zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holiday {
    /// `YYYY-MM-DD`.
    pub from: String,
    /// `YYYY-MM-DD`.
    pub to: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// A calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatingHours {
    /// IANA time zone, e.g. `America/Sao_Paulo`.
    pub time_zone: String,
    /// Weekly opening times.
    #[serde(default)]
    pub weekly: Vec<WeeklySlot>,
    /// Holidays.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// Whether a queue is open at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Openness {
    /// Open.
    Open,
    /// Outside the weekly hours.
    Closed,
    /// On a holiday.
    Holiday(String),
}

fn parse_time(raw: &str) -> Result<Time, String> {
    if raw == "24:00" {
        return Ok(Time::MAX);
    }
    let (h, m) = raw.split_once(':').ok_or_else(|| format!("{raw:?} is not HH:MM"))?;
    let (h, m): (i8, i8) = (
        h.parse().map_err(|_| format!("{raw:?} is not HH:MM"))?,
        m.parse().map_err(|_| format!("{raw:?} is not HH:MM"))?,
    );
    Time::new(h, m, 0, 0).map_err(|_| format!("{raw:?} is not a time of day"))
}

fn parse_date(raw: &str) -> Result<Date, String> {
    raw.parse::<Date>().map_err(|_| format!("{raw:?} is not a YYYY-MM-DD date"))
}

impl OperatingHours {
    /// Returns the first rule the calendar breaks.
    pub fn validate(&self) -> Result<(), String> {
        TimeZone::get(&self.time_zone).map_err(|_| format!("unknown time zone {:?}", self.time_zone))?;
        for slot in &self.weekly {
            let (start, end) = (parse_time(&slot.start)?, parse_time(&slot.end)?);
            if start == end {
                return Err(format!("{:?} {}–{} is empty", slot.day, slot.start, slot.end));
            }
        }
        for h in &self.holidays {
            if parse_date(&h.from)? > parse_date(&h.to)? {
                return Err(format!("holiday {:?} ends before it starts", h.reason));
            }
        }
        Ok(())
    }

    /// Returns whether the calendar is open at `at`.
    pub fn openness(&self, at: OffsetDateTime) -> Openness {
        let Ok(tz) = TimeZone::get(&self.time_zone) else {
            return Openness::Closed;
        };
        let Ok(ts) = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()) else {
            return Openness::Closed;
        };
        let zoned = ts.to_zoned(tz);
        let (date, time, weekday) = (zoned.date(), zoned.time(), zoned.weekday());
        for h in &self.holidays {
            if let (Ok(from), Ok(to)) = (parse_date(&h.from), parse_date(&h.to))
                && from <= date
                && date <= to
            {
                return Openness::Holiday(h.reason.clone());
            }
        }
        let open = self.weekly.iter().any(|slot| {
            let (Ok(start), Ok(end)) = (parse_time(&slot.start), parse_time(&slot.end)) else {
                return false;
            };
            let day = slot.day.weekday();
            if start < end {
                weekday == day && start <= time && time < end
            } else {
                (weekday == day && time >= start) || (weekday == day.next() && time < end)
            }
        });
        if open { Openness::Open } else { Openness::Closed }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn weekdays(start: &str, end: &str) -> Vec<WeeklySlot> {
        [Day::Monday, Day::Tuesday, Day::Wednesday, Day::Thursday, Day::Friday]
            .into_iter()
            .map(|day| WeeklySlot {
                day,
                start: start.into(),
                end: end.into(),
            })
            .collect()
    }

    #[test]
    fn weekly_hours_in_the_local_time_zone_with_daylight_saving() {
        let hours = OperatingHours {
            time_zone: "America/New_York".into(),
            weekly: weekdays("08:00", "17:00"),
            holidays: vec![],
        };
        hours.validate().unwrap();
        // Thursday 2026-11-26 13:00 UTC = 08:00 EST (UTC-5): just open.
        assert_eq!(hours.openness(datetime!(2026-11-26 13:00 UTC)), Openness::Open);
        assert_eq!(hours.openness(datetime!(2026-11-26 12:59 UTC)), Openness::Closed);
        assert_eq!(
            hours.openness(datetime!(2026-11-26 22:00 UTC)),
            Openness::Closed,
            "17:00 local is closed"
        );
        // In July New York is UTC-4: 12:00 UTC is 08:00 local.
        assert_eq!(hours.openness(datetime!(2026-07-09 12:00 UTC)), Openness::Open);
        // Saturday.
        assert_eq!(hours.openness(datetime!(2026-11-28 15:00 UTC)), Openness::Closed);
    }

    #[test]
    fn holidays_and_overnight_slots() {
        let hours = OperatingHours {
            time_zone: "Europe/Lisbon".into(),
            weekly: vec![WeeklySlot {
                day: Day::Friday,
                start: "22:00".into(),
                end: "06:00".into(),
            }],
            holidays: vec![Holiday {
                from: "2026-12-25".into(),
                to: "2026-12-26".into(),
                reason: "Christmas".into(),
            }],
        };
        hours.validate().unwrap();
        assert_eq!(hours.openness(datetime!(2026-11-27 23:00 UTC)), Openness::Open, "Friday night");
        assert_eq!(hours.openness(datetime!(2026-11-28 05:59 UTC)), Openness::Open, "early Saturday");
        assert_eq!(hours.openness(datetime!(2026-11-28 06:00 UTC)), Openness::Closed);
        assert_eq!(
            hours.openness(datetime!(2026-12-25 23:00 UTC)),
            Openness::Holiday("Christmas".into())
        );
    }

    #[test]
    fn invalid_calendars() {
        assert!(
            OperatingHours {
                time_zone: "Mars/Olympus".into(),
                weekly: vec![],
                holidays: vec![]
            }
            .validate()
            .is_err()
        );
        assert!(
            OperatingHours {
                time_zone: "UTC".into(),
                weekly: weekdays("9", "17:00"),
                holidays: vec![]
            }
            .validate()
            .is_err()
        );
        let h = Holiday {
            from: "2026-12-26".into(),
            to: "2026-12-25".into(),
            reason: String::new(),
        };
        assert!(
            OperatingHours {
                time_zone: "UTC".into(),
                weekly: vec![],
                holidays: vec![h]
            }
            .validate()
            .is_err()
        );
    }
}
