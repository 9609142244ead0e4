//! Message templates per number (name, default language, per-language approved text, Content
//! SID and WhatsApp approval status), admin CRUD and sync from Twilio's Content API.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use switchboard_domain::template::{ApprovalStatus, ContentKind, ContentSid, Language, Localization, Template};
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// A stored template.
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub id: switchboard_domain::ids::TemplateId,
    pub number_id: switchboard_domain::ids::NumberId,
    pub template: Template,
    /// Per language, the Content type's own fields (buttons, list items, media), as Twilio
    /// has them; synced templates only.
    pub contents: BTreeMap<String, serde_json::Value>,
}

/// One template as fetched from Twilio.
#[derive(Debug, Clone)]
pub struct SyncedTemplate {
    pub content_sid: String,
    pub name: String,
    pub language: String,
    pub text: String,
    pub status: String,
    /// `twilio/quick-reply`, …
    pub content_type: String,
    /// That type's fields.
    pub content: serde_json::Value,
}

fn parse_status(raw: &str) -> Result<ApprovalStatus, SessionError> {
    match raw {
        "unsubmitted" | "pending" | "approved" | "rejected" | "paused" | "disabled" => Ok(ApprovalStatus::from_twilio(raw)),
        other => Err(SessionError::invalid(format!("unknown approval status {other:?}"))),
    }
}

/// Builds and validates a template from raw input.
pub fn build_template(
    name: &str,
    default_language: &str,
    localizations: &[(String, String, String, String, String)],
) -> Result<Template, SessionError> {
    let default_language = Language::parse(default_language).map_err(|e| SessionError::invalid(e.to_string()))?;
    let mut map = BTreeMap::new();
    for (language, text, content_sid, status, content_type) in localizations {
        let kind = if content_type.is_empty() {
            ContentKind::Text
        } else {
            match ContentKind::from_twilio(content_type) {
                ContentKind::Other => return Err(SessionError::invalid(format!("unknown content type {content_type:?}"))),
                kind => kind,
            }
        };
        let language = Language::parse(language).map_err(|e| SessionError::invalid(e.to_string()))?;
        let content_sid = if content_sid.is_empty() {
            None
        } else {
            Some(ContentSid::parse(content_sid).map_err(|e| SessionError::invalid(e.to_string()))?)
        };
        let status = if status.is_empty() {
            ApprovalStatus::Unsubmitted
        } else {
            parse_status(status)?
        };
        if map
            .insert(
                language.clone(),
                Localization {
                    text: text.clone(),
                    content_sid,
                    status,
                    kind,
                },
            )
            .is_some()
        {
            return Err(SessionError::invalid(format!("language {language} is listed twice")));
        }
    }
    if !map.contains_key(&default_language) {
        return Err(SessionError::invalid(format!(
            "the default language {default_language} needs a text"
        )));
    }
    let template = Template {
        name: name.trim().to_owned(),
        default_language,
        localizations: map,
    };
    template.validate().map_err(|e| SessionError::invalid(e.to_string()))?;
    Ok(template)
}

async fn write_localizations(conn: &mut PgConnection, id: Uuid, template: &Template) -> Result<(), SessionError> {
    sqlx::query("DELETE FROM session.template_localizations WHERE template_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (language, l) in &template.localizations {
        sqlx::query(
            "INSERT INTO session.template_localizations (template_id, language, text, content_sid, status, content_type) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(language.as_str())
        .bind(&l.text)
        .bind(l.content_sid.as_ref().map(ContentSid::as_str))
        .bind(l.status.as_str())
        .bind(l.kind.as_twilio())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

type LocalizationRow = (Uuid, String, String, Option<String>, String, String, Option<serde_json::Value>);

impl Session {
    /// Creates a template on a number.
    pub async fn create_template(&self, number_id: Uuid, template: Template) -> Result<StoredTemplate, SessionError> {
        self.number(number_id).await?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO session.templates (id, number_id, name, default_language) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(number_id)
            .bind(&template.name)
            .bind(template.default_language.as_str())
            .execute(&mut *tx)
            .await?;
        write_localizations(&mut tx, id, &template).await?;
        tx.commit().await?;
        Ok(StoredTemplate {
            id: id.into(),
            number_id: number_id.into(),
            template,
            contents: BTreeMap::new(),
        })
    }

    /// Replaces a template's name, default language and texts.
    pub async fn update_template(&self, id: Uuid, template: Template) -> Result<StoredTemplate, SessionError> {
        let mut tx = self.pool.begin().await?;
        let number_id: Uuid = sqlx::query_scalar(
            "UPDATE session.templates SET name = $2, default_language = $3, updated_at = now() WHERE id = $1 RETURNING number_id",
        )
        .bind(id)
        .bind(&template.name)
        .bind(template.default_language.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(SessionError::NotFound("template"))?;
        write_localizations(&mut tx, id, &template).await?;
        tx.commit().await?;
        Ok(StoredTemplate {
            id: id.into(),
            number_id: number_id.into(),
            template,
            contents: BTreeMap::new(),
        })
    }

    /// Deletes a template.
    pub async fn delete_template(&self, id: Uuid) -> Result<(), SessionError> {
        let deleted = sqlx::query("DELETE FROM session.templates WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(SessionError::NotFound("template"));
        }
        Ok(())
    }

    /// Returns a template.
    pub async fn template(&self, conn: &mut PgConnection, id: Uuid) -> Result<StoredTemplate, SessionError> {
        let head: Option<(Uuid, String, String)> =
            sqlx::query_as("SELECT number_id, name, default_language FROM session.templates WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let (number_id, name, default_language) = head.ok_or(SessionError::NotFound("template"))?;
        let rows: Vec<LocalizationRow> = sqlx::query_as(
            "SELECT template_id, language, text, content_sid, status, content_type, content FROM session.template_localizations WHERE template_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(StoredTemplate {
            id: id.into(),
            number_id: number_id.into(),
            template: assemble(name, &default_language, rows.iter()),
            contents: contents(rows.iter()),
        })
    }

    /// Returns the id of the template named `name` on a number.
    pub async fn template_id_by_name(&self, conn: &mut PgConnection, number_id: Uuid, name: &str) -> Result<Uuid, SessionError> {
        sqlx::query_scalar("SELECT id FROM session.templates WHERE number_id = $1 AND name = $2")
            .bind(number_id)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(SessionError::NotFound("template"))
    }

    /// Lists a number's templates.
    pub async fn list_templates(&self, number_id: Uuid) -> Result<Vec<StoredTemplate>, SessionError> {
        let heads: Vec<(Uuid, String, String)> =
            sqlx::query_as("SELECT id, name, default_language FROM session.templates WHERE number_id = $1 ORDER BY name")
                .bind(number_id)
                .fetch_all(&self.pool)
                .await?;
        let rows: Vec<LocalizationRow> = sqlx::query_as(
            "SELECT l.template_id, l.language, l.text, l.content_sid, l.status, l.content_type, l.content FROM session.template_localizations l \
             JOIN session.templates t ON t.id = l.template_id WHERE t.number_id = $1",
        )
        .bind(number_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(heads
            .into_iter()
            .map(|(id, name, lang)| StoredTemplate {
                id: id.into(),
                number_id: number_id.into(),
                template: assemble(name, &lang, rows.iter().filter(|r| r.0 == id)),
                contents: contents(rows.iter().filter(|r| r.0 == id)),
            })
            .collect())
    }

    /// Applies templates fetched from Twilio to every live number of a channel: a known Content
    /// SID or (name, language) is updated, anything else is created. Returns (created, updated).
    pub async fn sync_templates(&self, channel_id: Uuid, synced: &[SyncedTemplate]) -> Result<(u32, u32), SessionError> {
        self.channel(channel_id.into()).await?;
        let mut tx = self.pool.begin().await?;
        let numbers: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM session.numbers WHERE channel_id = $1 AND deleted_at IS NULL FOR UPDATE")
                .bind(channel_id)
                .fetch_all(&mut *tx)
                .await?;
        let (mut created, mut updated) = (0u32, 0u32);
        for item in synced {
            let Ok(language) = Language::parse(&item.language) else {
                tracing::warn!(content_sid = %item.content_sid, language = %item.language, "skipping template with an unusable language");
                continue;
            };
            if ContentSid::parse(&item.content_sid).is_err()
                || item.text.is_empty()
                || switchboard_domain::template::placeholders(&item.text).is_err()
            {
                tracing::warn!(content_sid = %item.content_sid, "skipping template without a usable SID or text");
                continue;
            }
            let status = ApprovalStatus::from_twilio(&item.status).as_str();
            for number_id in &numbers {
                let existing: Option<Uuid> = sqlx::query_scalar(
                    "SELECT t.id FROM session.templates t LEFT JOIN session.template_localizations l ON l.template_id = t.id \
                     WHERE t.number_id = $1 AND (l.content_sid = $2 OR (t.name = $3)) ORDER BY (l.content_sid = $2) DESC NULLS LAST LIMIT 1",
                )
                .bind(number_id)
                .bind(&item.content_sid)
                .bind(&item.name)
                .fetch_optional(&mut *tx)
                .await?;
                let template_id = match existing {
                    Some(id) => {
                        updated += 1;
                        id
                    }
                    None => {
                        created += 1;
                        let id = Uuid::now_v7();
                        sqlx::query("INSERT INTO session.templates (id, number_id, name, default_language) VALUES ($1, $2, $3, $4)")
                            .bind(id)
                            .bind(number_id)
                            .bind(&item.name)
                            .bind(language.as_str())
                            .execute(&mut *tx)
                            .await?;
                        id
                    }
                };
                sqlx::query(
                    "INSERT INTO session.template_localizations (template_id, language, text, content_sid, status, content_type, content) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (template_id, language) DO UPDATE SET text = EXCLUDED.text, \
                     content_sid = EXCLUDED.content_sid, status = EXCLUDED.status, content_type = EXCLUDED.content_type, content = EXCLUDED.content",
                )
                .bind(template_id)
                .bind(language.as_str())
                .bind(&item.text)
                .bind(&item.content_sid)
                .bind(status)
                .bind(ContentKind::from_twilio(&item.content_type).as_twilio())
                .bind(&item.content)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok((created, updated))
    }
}

fn contents<'a>(rows: impl Iterator<Item = &'a LocalizationRow>) -> BTreeMap<String, serde_json::Value> {
    rows.filter_map(|(_, lang, _, _, _, _, content)| Some((lang.clone(), content.clone()?)))
        .collect()
}

fn assemble<'a>(name: String, default_language: &str, rows: impl Iterator<Item = &'a LocalizationRow>) -> Template {
    let localizations = rows
        .filter_map(|(_, lang, text, sid, status, content_type, _)| {
            Some((
                Language::parse(lang).ok()?,
                Localization {
                    text: text.clone(),
                    content_sid: sid.as_deref().and_then(|s| ContentSid::parse(s).ok()),
                    status: ApprovalStatus::from_twilio(status),
                    kind: ContentKind::from_twilio(content_type),
                },
            ))
        })
        .collect();
    Template {
        name,
        default_language: Language::parse(default_language).unwrap_or_else(|_| Language::parse("en").unwrap_or_else(|_| unreachable!())),
        localizations,
    }
}
