//! The deadline rules, as pure functions of the channel, the decisive date or instant and the
//! deadline. Every verdict carries what decided it, so pages and auditors can say why.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::time::{end_of_paris_day, format_date, format_instant, paris_date};

/// How a dossier reached the Centre de Gestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Uploaded in the candidate space and closed with *Clôturer mon inscription*.
    Online,
    /// By post: the postmark date decides.
    Post,
    /// Handed in at the counter (*accueil*) during opening hours.
    Counter,
}

impl Channel {
    /// The stable code stored in read models.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Post => "post",
            Channel::Counter => "counter",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Channel::Online => "en ligne",
            Channel::Post => "par voie postale",
            Channel::Counter => "à l'accueil",
        }
    }
}

/// The rule that decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineRule {
    /// *Le cachet de la poste faisant foi*: the postmark date must be on or before the deadline.
    Postmark,
    /// Handed in at the counter on or before the deadline day (during opening hours).
    CounterByDeadlineDay,
    /// Closed online strictly before midnight, Paris time, at the end of the deadline day.
    OnlineBeforeMidnight,
}

/// The date or instant that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Decisive {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

/// On time or late, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: DeadlineRule,
    pub decisive: Decisive,
    pub deadline: NaiveDate,
    pub on_time: bool,
}

impl Verdict {
    pub fn channel(&self) -> Channel {
        match self.rule {
            DeadlineRule::Postmark => Channel::Post,
            DeadlineRule::CounterByDeadlineDay => Channel::Counter,
            DeadlineRule::OnlineBeforeMidnight => Channel::Online,
        }
    }

    /// The explanation in French, e.g.
    /// « Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023 », or
    /// « Cachet de la poste du 05/07/2023, dans les délais (date limite : 06/07/2023) ».
    pub fn explanation(&self) -> String {
        let deadline = format_date(self.deadline);
        let decisive = match self.decisive {
            Decisive::Date(d) => format_date(d),
            Decisive::Instant(t) => format_instant(t),
        };
        match (self.rule, self.on_time) {
            (DeadlineRule::Postmark, true) => {
                format!("Cachet de la poste du {decisive}, dans les délais (date limite : {deadline})")
            }
            (DeadlineRule::Postmark, false) => {
                format!("Cachet de la poste du {decisive}, postérieur à la date limite du {deadline}")
            }
            (DeadlineRule::CounterByDeadlineDay, true) => {
                format!("Dépôt à l'accueil le {decisive}, dans les délais (date limite : {deadline})")
            }
            (DeadlineRule::CounterByDeadlineDay, false) => {
                format!("Dépôt à l'accueil le {decisive}, postérieur à la date limite du {deadline}")
            }
            (DeadlineRule::OnlineBeforeMidnight, true) => {
                format!(
                    "Inscription clôturée en ligne le {decisive}, dans les délais (date limite : {deadline}, avant \
                     minuit)"
                )
            }
            (DeadlineRule::OnlineBeforeMidnight, false) => {
                format!(
                    "Clôture en ligne le {decisive}, postérieure à la date limite du {deadline} (inscription à \
                     clôturer avant minuit)"
                )
            }
        }
    }

    /// The verdict the same decisive fact would get under another deadline (a deadline
    /// extension), by the same rule.
    pub fn under(&self, deadline: NaiveDate) -> Verdict {
        match (self.rule, self.decisive) {
            (DeadlineRule::Postmark, Decisive::Date(postmark)) => judge_postmark(postmark, deadline),
            (DeadlineRule::CounterByDeadlineDay, Decisive::Instant(at)) => judge_counter(at, deadline),
            (DeadlineRule::OnlineBeforeMidnight, Decisive::Instant(at)) => judge_online_closure(at, deadline),
            // A rule always goes with its kind of decisive fact; keep the deadline consistent anyway.
            _ => Verdict { deadline, ..*self },
        }
    }

    /// The explanation inside a sentence, after a colon, where French writes no capital:
    /// « … hors délai : cachet de la poste du 07/07/2023, postérieur à la date limite … ».
    pub fn explanation_after_colon(&self) -> String {
        let explanation = self.explanation();
        let mut chars = explanation.chars();
        chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
    }
}

/// By post, the postmark date decides, not the arrival date.
pub fn judge_postmark(postmark: NaiveDate, deadline: NaiveDate) -> Verdict {
    Verdict {
        rule: DeadlineRule::Postmark,
        decisive: Decisive::Date(postmark),
        deadline,
        on_time: postmark <= deadline,
    }
}

/// At the counter, the Paris date of the receipt must be on or before the deadline day. (Whether
/// the counter was open at that moment is checked by `decide`: a receipt outside opening hours
/// cannot be recorded at all.)
pub fn judge_counter(received_at: DateTime<Utc>, deadline: NaiveDate) -> Verdict {
    Verdict {
        rule: DeadlineRule::CounterByDeadlineDay,
        decisive: Decisive::Instant(received_at),
        deadline,
        on_time: paris_date(received_at) <= deadline,
    }
}

/// Online, the closure must happen strictly before midnight, Paris time, ending the deadline day.
pub fn judge_online_closure(closed_at: DateTime<Utc>, deadline: NaiveDate) -> Verdict {
    Verdict {
        rule: DeadlineRule::OnlineBeforeMidnight,
        decisive: Decisive::Instant(closed_at),
        deadline,
        on_time: closed_at < end_of_paris_day(deadline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::paris_to_utc;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn paris(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        paris_to_utc(date(y, m, d).and_hms_opt(h, min, s).unwrap())
    }

    /// (deadline, label) pairs: summer, winter, and both nights the clocks change in 2024.
    fn deadlines() -> Vec<(NaiveDate, &'static str)> {
        vec![
            (date(2023, 7, 6), "summer"),
            (date(2023, 12, 6), "winter"),
            (date(2024, 3, 30), "eve of the spring change"),
            (date(2024, 3, 31), "day of the spring change"),
            (date(2024, 10, 26), "eve of the autumn change"),
            (date(2024, 10, 27), "day of the autumn change"),
        ]
    }

    #[test]
    fn online_closure_at_23_59_59_paris_is_on_time_in_every_season() {
        for (deadline, label) in deadlines() {
            let at = paris(deadline.year_ce().1 as i32, deadline.month0() + 1, deadline.day0() + 1, 23, 59, 59);
            assert!(judge_online_closure(at, deadline).on_time, "{label}");
        }
    }

    #[test]
    fn online_closure_at_00_00_01_paris_the_next_day_is_late_in_every_season() {
        for (deadline, label) in deadlines() {
            let next = deadline.succ_opt().unwrap();
            let at = paris(next.year_ce().1 as i32, next.month0() + 1, next.day0() + 1, 0, 0, 1);
            let verdict = judge_online_closure(at, deadline);
            assert!(!verdict.on_time, "{label}");
        }
    }

    #[test]
    fn online_closure_at_exactly_midnight_is_late() {
        for (deadline, label) in deadlines() {
            assert!(!judge_online_closure(end_of_paris_day(deadline), deadline).on_time, "{label}");
        }
    }

    #[test]
    fn a_closure_at_22h30_utc_on_a_summer_deadline_day_is_late_because_paris_is_past_midnight() {
        let at: DateTime<Utc> = "2023-07-06T22:30:00Z".parse().unwrap();
        let verdict = judge_online_closure(at, date(2023, 7, 6));
        assert!(!verdict.on_time);
        assert_eq!(
            verdict.explanation(),
            "Clôture en ligne le 07/07/2023 à 00h30, postérieure à la date limite du 06/07/2023 (inscription à \
             clôturer avant minuit)"
        );
        assert_eq!(
            verdict.explanation_after_colon(),
            "clôture en ligne le 07/07/2023 à 00h30, postérieure à la date limite du 06/07/2023 (inscription à \
             clôturer avant minuit)"
        );
    }

    #[test]
    fn a_closure_at_22h30_utc_on_a_winter_deadline_day_is_on_time() {
        let at: DateTime<Utc> = "2023-12-06T22:30:00Z".parse().unwrap();
        assert!(judge_online_closure(at, date(2023, 12, 6)).on_time);
    }

    #[test]
    fn the_postmark_date_decides_not_the_arrival() {
        let deadline = date(2023, 7, 6);
        let on_time = judge_postmark(date(2023, 7, 6), deadline);
        assert!(on_time.on_time);
        assert_eq!(
            on_time.explanation(),
            "Cachet de la poste du 06/07/2023, dans les délais (date limite : 06/07/2023)"
        );
        let late = judge_postmark(date(2023, 7, 7), deadline);
        assert!(!late.on_time);
        assert_eq!(late.explanation(), "Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023");
    }

    #[test]
    fn a_counter_receipt_counts_by_its_paris_date_in_every_season() {
        for (deadline, label) in deadlines() {
            let y = deadline.year_ce().1 as i32;
            let on_day = paris(y, deadline.month0() + 1, deadline.day0() + 1, 23, 59, 59);
            assert!(judge_counter(on_day, deadline).on_time, "{label}");
            let next = deadline.succ_opt().unwrap();
            let after = paris(next.year_ce().1 as i32, next.month0() + 1, next.day0() + 1, 0, 0, 1);
            assert!(!judge_counter(after, deadline).on_time, "{label}");
        }
    }

    use chrono::Datelike;
}
