//! Automated messages: built-in defaults, channel-wide settings and per-number overrides
//! (a number's setting replaces the channel's), each activatable, localizable by language.

use sqlx::PgConnection;
use switchboard_domain::automated::Trigger;
use uuid::Uuid;

use crate::app::Session;
use crate::config_cache::AutomatedRow;
use crate::error::SessionError;

/// The effective automated message for one trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub trigger: Trigger,
    pub language: String,
    pub text: String,
    pub active: bool,
    /// builtin, channel or number.
    pub source: &'static str,
}

/// An automated-message setting.
#[derive(Debug, Clone)]
pub struct Setting {
    pub channel_id: Uuid,
    pub number_id: Option<Uuid>,
    pub trigger: Trigger,
    pub language: String,
    pub text: String,
    pub active: bool,
}

/// Parses a trigger name.
pub fn parse_trigger(raw: &str) -> Result<Trigger, SessionError> {
    Trigger::parse(raw).ok_or_else(|| {
        let all: Vec<_> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
        SessionError::invalid(format!("unknown trigger {raw:?}; one of {}", all.join(", ")))
    })
}

impl Session {
    /// Returns the effective message for `trigger` on a number: in the first of `languages`
    /// that has one, else one for any language (""), the number's setting before the channel's.
    pub async fn effective_automated(
        &self,
        conn: &mut PgConnection,
        channel_id: Uuid,
        number_id: Uuid,
        trigger: Trigger,
        languages: &[String],
    ) -> Result<Effective, SessionError> {
        let stored = self.config.automated(conn, channel_id).await?;
        Ok(match pick_automated(&stored, number_id, trigger, languages) {
            Some(row) => Effective {
                trigger,
                language: row.language.clone(),
                text: row.text.clone(),
                active: row.active,
                source: if row.number_id.is_some() { "number" } else { "channel" },
            },
            None => Effective {
                trigger,
                language: String::new(),
                text: trigger.default_text().into(),
                active: true,
                source: "builtin",
            },
        })
    }

    /// Lists the effective messages of every trigger for a channel or one of its numbers.
    pub async fn list_automated(&self, channel_id: Uuid, number_id: Option<Uuid>) -> Result<Vec<(Setting, &'static str)>, SessionError> {
        self.channel(channel_id.into()).await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for trigger in Trigger::ALL {
            let effective = match number_id {
                Some(n) => self.effective_automated(&mut conn, channel_id, n, trigger, &[]).await?,
                None => self.effective_automated(&mut conn, channel_id, Uuid::nil(), trigger, &[]).await?,
            };
            out.push((
                Setting {
                    channel_id,
                    number_id,
                    trigger,
                    language: effective.language,
                    text: effective.text,
                    active: effective.active,
                },
                effective.source,
            ));
        }
        Ok(out)
    }

    /// Creates or replaces a setting.
    pub async fn set_automated(&self, setting: &Setting) -> Result<(), SessionError> {
        self.channel(setting.channel_id.into()).await?;
        if let Some(number) = setting.number_id {
            let n = self.number(number).await?;
            if n.channel_id != setting.channel_id.into() {
                return Err(SessionError::invalid("number_id belongs to another channel"));
            }
        }
        if setting.text.trim().is_empty() || setting.text.chars().count() > 1_600 {
            return Err(SessionError::invalid("text must have 1 to 1,600 characters"));
        }
        if !setting.language.is_empty() {
            switchboard_domain::template::Language::parse(&setting.language).map_err(|e| SessionError::invalid(e.to_string()))?;
        }
        sqlx::query(
            "INSERT INTO session.automated_messages (channel_id, number_id, trigger, language, text, active) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (channel_id, number_id, trigger, language) DO UPDATE SET text = EXCLUDED.text, active = EXCLUDED.active",
        )
        .bind(setting.channel_id)
        .bind(setting.number_id)
        .bind(setting.trigger.as_str())
        .bind(&setting.language)
        .bind(&setting.text)
        .bind(setting.active)
        .execute(&self.pool)
        .await?;
        self.config.invalidation.invalidate();
        Ok(())
    }

    /// Removes a setting (the channel's or the built-in one applies again).
    pub async fn delete_automated(
        &self,
        channel_id: Uuid,
        number_id: Option<Uuid>,
        trigger: Trigger,
        language: &str,
    ) -> Result<(), SessionError> {
        let deleted = sqlx::query(
            "DELETE FROM session.automated_messages WHERE channel_id = $1 AND number_id IS NOT DISTINCT FROM $2 AND trigger = $3 AND language = $4",
        )
        .bind(channel_id)
        .bind(number_id)
        .bind(trigger.as_str())
        .bind(language)
        .execute(&self.pool)
        .await?;
        self.config.invalidation.invalidate();
        if deleted.rows_affected() == 0 {
            return Err(SessionError::NotFound("automated message"));
        }
        Ok(())
    }
}

/// The stored message for `trigger` on `number_id`: in the first of `languages` that has one
/// (compared without case), else one for any language (""); the number's before the channel's.
fn pick_automated<'a>(stored: &'a [AutomatedRow], number_id: Uuid, trigger: Trigger, languages: &[String]) -> Option<&'a AutomatedRow> {
    let wanted: Vec<String> = languages.iter().map(|l| l.to_ascii_lowercase()).collect();
    stored
        .iter()
        .filter(|row| row.trigger == trigger.as_str() && row.number_id.is_none_or(|n| n == number_id))
        .filter_map(|row| {
            let position = wanted.iter().position(|l| *l == row.language.to_ascii_lowercase());
            (position.is_some() || row.language.is_empty()).then_some((position.unwrap_or(usize::MAX), row.number_id.is_none(), row))
        })
        .min_by_key(|(position, channel_wide, _)| (*position, *channel_wide))
        .map(|(_, _, row)| row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: Option<Uuid>, language: &str, text: &str) -> AutomatedRow {
        AutomatedRow {
            number_id: number,
            trigger: Trigger::ALL[0].as_str().into(),
            language: language.into(),
            text: text.into(),
            active: true,
        }
    }

    #[test]
    fn the_first_language_wins_then_the_number_then_any_language() {
        let (number, other) = (Uuid::now_v7(), Uuid::now_v7());
        let trigger = Trigger::ALL[0];
        let stored = vec![
            row(None, "", "channel, any"),
            row(None, "pt-BR", "channel, pt-BR"),
            row(Some(number), "es", "number, es"),
            row(Some(number), "", "number, any"),
            row(Some(other), "pt-br", "another number, pt-br"),
        ];
        let pick = |languages: &[&str]| {
            let languages: Vec<String> = languages.iter().map(|l| (*l).to_owned()).collect();
            pick_automated(&stored, number, trigger, &languages).map(|r| r.text.as_str())
        };
        assert_eq!(pick(&["PT-br", "es"]), Some("channel, pt-BR"), "first language, case aside");
        assert_eq!(pick(&["es", "pt-BR"]), Some("number, es"));
        assert_eq!(
            pick(&["fr"]),
            Some("number, any"),
            "the number's any-language one before the channel's"
        );
        assert_eq!(pick(&[]), Some("number, any"));
        let channel_only = [row(None, "", "channel, any")];
        assert_eq!(
            pick_automated(&channel_only, number, trigger, &[]).map(|r| r.text.as_str()),
            Some("channel, any")
        );
        let other_trigger = AutomatedRow {
            trigger: Trigger::ALL[1].as_str().into(),
            ..row(None, "", "other trigger")
        };
        assert_eq!(
            pick_automated(&[other_trigger], number, trigger, &[]).map(|r| r.text.as_str()),
            None
        );
    }
}
