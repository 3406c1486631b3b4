//! The satisfaction survey after a completed visit (`data/survey.toml`): its items,
//! the check of an answer, and what one answered survey adds to the scorecard's
//! satisfaction rate (Qingpu 2020 work plan, item 10).

use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::Id;

/// One question, answered 1 to 5.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub key: String,
    pub zh: String,
    pub en: String,
}

/// The survey.
#[derive(Debug, Clone, Deserialize)]
pub struct Survey {
    /// An answer this high or higher counts as satisfied.
    pub satisfied_from: u8,
    /// The longest comment kept, in characters.
    pub comment_chars: usize,
    /// Days after a visit its survey may be answered.
    pub answer_within_days: i64,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
}

/// The survey in force.
pub fn survey() -> &'static Survey {
    static SURVEY: OnceLock<Survey> = OnceLock::new();
    SURVEY.get_or_init(|| {
        toml::from_str(include_str!("../../../data/survey.toml"))
            .expect("data/survey.toml is valid")
    })
}

/// What is wrong with an answer, naming the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// An item not answered.
    Missing(String),
    /// An item answered outside 1–5.
    OutOfRange(String),
    /// A key that is not an item of the survey.
    Unknown(String),
    /// The comment is longer than the survey keeps.
    CommentTooLong(usize),
}

impl Survey {
    /// Check answers (item key, the text given) and the comment: every item answered
    /// once, 1 to 5; the scores in the survey's item order.
    pub fn check(
        &self,
        answers: &[(String, String)],
        comment: &str,
    ) -> Result<Vec<(String, u8)>, Invalid> {
        if let Some((k, _)) = answers
            .iter()
            .find(|(k, _)| !self.items.iter().any(|i| &i.key == k))
        {
            return Err(Invalid::Unknown(k.clone()));
        }
        if comment.chars().count() > self.comment_chars {
            return Err(Invalid::CommentTooLong(self.comment_chars));
        }
        self.items
            .iter()
            .map(|item| {
                let given: Vec<&String> = answers
                    .iter()
                    .filter(|(k, _)| *k == item.key)
                    .map(|(_, v)| v)
                    .collect();
                match given.as_slice() {
                    [] => Err(Invalid::Missing(item.key.clone())),
                    [v] if v.trim().is_empty() => Err(Invalid::Missing(item.key.clone())),
                    [v] => match v.trim().parse::<u8>() {
                        Ok(n @ 1..=5) => Ok((item.key.clone(), n)),
                        _ => Err(Invalid::OutOfRange(item.key.clone())),
                    },
                    _ => Err(Invalid::OutOfRange(item.key.clone())),
                }
            })
            .collect()
    }

    /// The answers that count as satisfied, and all answers.
    pub fn satisfied(&self, scores: &[(String, u8)]) -> (i64, i64) {
        (
            scores
                .iter()
                .filter(|(_, s)| *s >= self.satisfied_from)
                .count() as i64,
            scores.len() as i64,
        )
    }
}

/// One answered survey as the indicators count it: the institution visited, the day
/// of the visit, its satisfied answers of all its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurveyFact {
    pub org_id: Id,
    pub day: NaiveDate,
    pub satisfied: i64,
    pub answers: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_item_is_answered_once_from_1_to_5() {
        let s = survey();
        let all: Vec<(&str, &str)> = s.items.iter().map(|i| (i.key.as_str(), "4")).collect();
        let scores = s.check(&answers(&all), "").unwrap();
        assert_eq!(scores.len(), s.items.len());
        assert_eq!(s.satisfied(&scores), (6, 6));
        let mut one_off = all.clone();
        one_off[0].1 = "6";
        assert_eq!(
            s.check(&answers(&one_off), ""),
            Err(Invalid::OutOfRange("booking".into()))
        );
        one_off[0].1 = "0";
        assert!(s.check(&answers(&one_off), "").is_err());
        one_off[0].1 = "";
        assert_eq!(
            s.check(&answers(&one_off), ""),
            Err(Invalid::Missing("booking".into()))
        );
        assert_eq!(
            s.check(&answers(&all[1..]), ""),
            Err(Invalid::Missing("booking".into()))
        );
        let mut twice = all.clone();
        twice.push(("overall", "5"));
        assert_eq!(
            s.check(&answers(&twice), ""),
            Err(Invalid::OutOfRange("overall".into()))
        );
        let mut odd = all.clone();
        odd.push(("price", "5"));
        assert_eq!(
            s.check(&answers(&odd), ""),
            Err(Invalid::Unknown("price".into()))
        );
        let long = "好".repeat(s.comment_chars + 1);
        assert_eq!(
            s.check(&answers(&all), &long),
            Err(Invalid::CommentTooLong(s.comment_chars))
        );
        let mixed: Vec<(&str, &str)> = s
            .items
            .iter()
            .zip(["5", "3", "4", "2", "1", "4"])
            .map(|(i, v)| (i.key.as_str(), v))
            .collect();
        let scores = s.check(&answers(&mixed), "").unwrap();
        assert_eq!(s.satisfied(&scores), (3, 6), "4 and 5 are satisfied");
    }
}
