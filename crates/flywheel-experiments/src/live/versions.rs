//! Per model version, what it served and how its lists did on finalized labels: the
//! figures an operator reads to judge a canary against the serving version.
//!
//! A request counts as served by the version its impression names when it is
//! applied; its clicks count once its windows closed (its labels are final), so a
//! fresh canary is never judged on half-labelled lists. Shadow lists are not served
//! and are not counted.

use serde::{Deserialize, Serialize};

/// One version's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionTally {
    /// Requests served (impressions logged).
    pub requests: u64,
    /// Requests whose attribution windows closed.
    pub finalized_requests: u64,
    /// Slots of the finalized requests.
    pub finalized_slots: u64,
    /// Slots of the finalized requests clicked at least once.
    pub clicked_slots: u64,
    /// Finalized requests with at least one click.
    pub clicked_requests: u64,
}

impl VersionTally {
    /// Clicked slots per slot shown, on finalized labels (`None` before any closed).
    pub fn ctr(&self) -> Option<f64> {
        (self.finalized_slots > 0).then(|| self.clicked_slots as f64 / self.finalized_slots as f64)
    }

    /// Requests with a click per finalized request.
    pub fn request_ctr(&self) -> Option<f64> {
        (self.finalized_requests > 0)
            .then(|| self.clicked_requests as f64 / self.finalized_requests as f64)
    }

    /// Counts a finalized request with `slots` slots and these clicked positions.
    pub(crate) fn finalize(&mut self, slots: usize, clicked: &[usize]) {
        let mut distinct: Vec<usize> = clicked.iter().copied().filter(|&p| p < slots).collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.finalized_requests += 1;
        self.finalized_slots += slots as u64;
        self.clicked_slots += distinct.len() as u64;
        if !distinct.is_empty() {
            self.clicked_requests += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Ledger;
    use flywheel_core::{
        Action, Channel, Event, Impression, ImpressionSlot, ItemId, LogRecord, RequestId,
        Timestamp, UserId,
    };

    const HOUR: i64 = 3_600_000;

    fn served(id: &str, version: &str, at: i64) -> LogRecord {
        let slots = (0..4)
            .map(|p| ImpressionSlot {
                item_id: ItemId::new_unchecked(format!("i{p}")),
                position: p,
                score: 1.0,
                propensity: 1.0,
                propensity_kind: Default::default(),
                team: None,
                channel: Channel::Popularity,
                channel_rank: p,
                channel_score: 1.0,
                source_item: None,
                features: Vec::new(),
            })
            .collect();
        LogRecord::Impression(Impression {
            context: Default::default(),
            request_id: RequestId::new_unchecked(id),
            user_id: UserId::new_unchecked("u"),
            timestamp: Timestamp(at),
            experiments: Vec::new(),
            forced: false,
            category: None,
            count: None,
            model_version: version.into(),
            fallback: false,
            features_offset: None,
            latency_ms: None,
            slots,
        })
    }

    fn click(request: &str, position: u32, at: i64) -> LogRecord {
        LogRecord::Event(Event {
            user_id: UserId::new_unchecked("u"),
            item_id: ItemId::new_unchecked(format!("i{position}")),
            action: Action::Click,
            value: None,
            timestamp: Timestamp(at),
            request_id: Some(RequestId::new_unchecked(request)),
            position: Some(position),
            context: Default::default(),
        })
    }

    #[test]
    fn requests_count_at_once_and_clicks_once_the_labels_are_final() {
        let mut ledger = Ledger::new(0);
        for record in [
            served("a", "v1", HOUR),
            served("b", "v2", HOUR),
            served("c", "v2", HOUR),
            click("b", 1, HOUR + 1),
            click("b", 1, HOUR + 2),
            click("b", 3, HOUR + 3),
        ] {
            ledger.apply(&record);
        }
        let v2 = &ledger.joiner.versions["v2"];
        assert_eq!((v2.requests, v2.finalized_requests, v2.ctr()), (2, 0, None));
        // An event a day later closes every window.
        ledger.apply(&click("none", 0, 30 * HOUR));
        let v2 = &ledger.joiner.versions["v2"];
        assert_eq!((v2.finalized_slots, v2.clicked_slots), (8, 2));
        assert_eq!((v2.ctr(), v2.request_ctr()), (Some(0.25), Some(0.5)));
        assert_eq!(ledger.joiner.versions["v1"].ctr(), Some(0.0));
    }
}
