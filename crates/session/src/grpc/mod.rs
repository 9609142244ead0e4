//! The `session.v1.SessionService` server: decode, call the application, encode.

pub mod convert;
mod files;
mod media;
mod status;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_domain::conversation::ConversationStatus;
use switchboard_proto::closed_sets::{read_author, read_filter};

use secrecy::{ExposeSecret, SecretString};
use switchboard_domain::automated::RenderContext;
use switchboard_domain::indicators::AgentActivity;
use switchboard_proto::common::v1::Empty;
use switchboard_proto::session::v1 as pb;
use switchboard_proto::session::v1::channel_directory_server::ChannelDirectory;
use switchboard_proto::session::v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use crate::app::Session;
use crate::automated::{Setting, parse_trigger};
use crate::channels::{ChannelUpdate, NewChannel};
use crate::conversations::{ConversationFilter, TransitionInput, parse_transition};
use crate::error::{SessionError, parse_id};
use crate::messages::{AutomatedOutcome, SendContent, SendRequest};
use crate::templates::SyncedTemplate;
use convert::optional_id;

/// The gRPC face of the session service.
#[derive(Clone)]
pub struct SessionGrpc {
    session: Arc<Session>,
}

impl SessionGrpc {
    /// Serves `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }

    fn channel_pb(&self, c: &crate::channels::Channel) -> pb::Channel {
        convert::channel(
            c,
            self.session.inbound_url(c.id),
            self.session.status_url(c.id),
            self.session.fallback_url(c.id),
        )
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(value: T) -> Reply<T> {
    Ok(Response::new(value))
}

#[tonic::async_trait]
impl ChannelDirectory for SessionGrpc {
    async fn resolve_channel(&self, request: Request<pb::ResolveChannelRequest>) -> Reply<pb::ResolveChannelResponse> {
        let id = parse_id(&request.get_ref().channel_id, "channel_id")?;
        let resolved = self.session.resolve_channel(id.into()).await?;
        ok(pb::ResolveChannelResponse {
            channel_id: resolved.channel.id.to_string(),
            account_sid: resolved.channel.account_sid,
            auth_token: resolved.auth_token.expose_secret().to_owned(),
            active: resolved.channel.active,
            sandbox: resolved.channel.sandbox,
            webhook_keys: resolved
                .webhook_keys
                .iter()
                .map(|(key, secret)| pb::WebhookKeySecret {
                    key: key.clone(),
                    secret: secret.expose_secret().to_owned(),
                })
                .collect(),
        })
    }

    async fn read_file(&self, request: Request<pb::ReadFileRequest>) -> Reply<files::ChunkStream> {
        ok(files::read_signed(self.session.clone(), request.into_inner()).await?)
    }

    async fn resolve_bot(&self, request: Request<pb::ResolveBotRequest>) -> Reply<pb::ResolveBotResponse> {
        let (bot, secret) = self.session.resolve_bot(parse_id(&request.get_ref().bot_id, "bot_id")?).await?;
        ok(pb::ResolveBotResponse {
            bot: Some(convert::bot(&bot)),
            signing_secret: secret.expose_secret().to_owned(),
        })
    }
}

#[tonic::async_trait]
impl SessionService for SessionGrpc {
    async fn create_channel(&self, request: Request<pb::CreateChannelRequest>) -> Reply<pb::Channel> {
        let r = request.into_inner();
        let channel = self
            .session
            .create_channel(NewChannel {
                name: r.name,
                account_sid: r.account_sid,
                auth_token: SecretString::from(r.auth_token),
                sandbox: r.sandbox,
                sandbox_join_code: r.sandbox_join_code,
                skip_credential_check: r.skip_credential_check,
            })
            .await?;
        ok(self.channel_pb(&channel))
    }

    async fn get_channel(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Channel> {
        let channel = self.session.channel(parse_id(&request.get_ref().id, "id")?.into()).await?;
        ok(self.channel_pb(&channel))
    }

    async fn list_channels(&self, request: Request<pb::ListChannelsRequest>) -> Reply<pb::ListChannelsResponse> {
        let (limit, token) = convert::page(request.get_ref().page.as_ref());
        let channels = self.session.list_channels(optional_id(&token, "page_token")?, limit).await?;
        ok(pb::ListChannelsResponse {
            page: convert::page_info(channels.len(), limit, channels.last().map(|c| c.id)),
            channels: channels.iter().map(|c| self.channel_pb(c)).collect(),
        })
    }

    async fn update_channel(&self, request: Request<pb::UpdateChannelRequest>) -> Reply<pb::Channel> {
        let r = request.into_inner();
        let update = ChannelUpdate {
            name: r.name,
            auth_token: r.auth_token.map(SecretString::from),
            sandbox: r.sandbox,
            sandbox_join_code: r.sandbox_join_code,
            active: r.active,
            skip_credential_check: r.skip_credential_check,
        };
        let channel = self.session.update_channel(parse_id(&r.id, "id")?.into(), update).await?;
        ok(self.channel_pb(&channel))
    }

    async fn delete_channel(&self, request: Request<pb::GetByIdRequest>) -> Reply<Empty> {
        self.session.delete_channel(parse_id(&request.get_ref().id, "id")?.into()).await?;
        ok(Empty {})
    }

    async fn add_webhook_key(&self, request: Request<pb::AddWebhookKeyRequest>) -> Reply<pb::WebhookKey> {
        ok(webhooks::add_key(&self.session, request.into_inner()).await?)
    }

    async fn list_webhook_keys(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::ListWebhookKeysResponse> {
        ok(webhooks::list_keys(&self.session, request.get_ref()).await?)
    }

    async fn delete_webhook_key(&self, request: Request<pb::DeleteWebhookKeyRequest>) -> Reply<Empty> {
        webhooks::delete_key(&self.session, request.get_ref()).await?;
        ok(Empty {})
    }

    async fn set_up_webhook_signing(&self, request: Request<pb::SetUpWebhookSigningRequest>) -> Reply<pb::WebhookSigning> {
        ok(webhooks::set_up_signing(&self.session, request.get_ref()).await?)
    }

    async fn get_webhook_signing(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::WebhookSigning> {
        ok(webhooks::get_signing(&self.session, request.get_ref()).await?)
    }

    async fn check_channel(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Channel> {
        let id = parse_id(&request.get_ref().id, "id")?;
        self.session.check_channel_health(id.into()).await?;
        ok(self.channel_pb(&self.session.channel(id.into()).await?))
    }

    async fn channel_webhooks(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::ChannelWebhooksResponse> {
        let report = self.session.webhook_report(parse_id(&request.get_ref().id, "id")?.into()).await?;
        ok(convert::webhooks(&report))
    }

    async fn configure_channel_webhooks(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::ChannelWebhooksResponse> {
        let report = self
            .session
            .configure_webhooks(parse_id(&request.get_ref().id, "id")?.into())
            .await?;
        ok(convert::webhooks(&report))
    }

    async fn add_note(&self, request: Request<pb::AddNoteRequest>) -> Reply<pb::Message> {
        let r = request.get_ref();
        let note = self
            .session
            .add_note(parse_id(&r.conversation_id, "conversation_id")?.into(), &r.text)
            .await?;
        ok(convert::message(&note))
    }

    async fn record_agent_activity(&self, request: Request<pb::AgentActivityRequest>) -> Reply<pb::AgentActivityResponse> {
        let r = request.get_ref();
        let activity = match r.activity() {
            pb::AgentActivity::Opened => AgentActivity::Opened,
            pb::AgentActivity::Typing => AgentActivity::Typing,
            pb::AgentActivity::Unspecified => return Err(SessionError::invalid("activity is opened or typing").into()),
        };
        let outcome = self
            .session
            .record_agent_activity(
                parse_id(&r.conversation_id, "conversation_id")?.into(),
                parse_id(&r.agent_id, "agent_id")?.into(),
                activity,
            )
            .await?;
        ok(pb::AgentActivityResponse {
            indicator_sent: outcome.indicator_sent,
            marked_read: outcome.marked_read,
            read_receipts: outcome.policy.as_str().into(),
        })
    }

    async fn create_bot(&self, request: Request<pb::CreateBotRequest>) -> Reply<pb::Bot> {
        let r = request.into_inner();
        let bot = self
            .session
            .create_bot(crate::bots::NewBot {
                name: r.name,
                endpoint: r.endpoint,
                secret: SecretString::from(r.signing_secret),
                timeout_ms: if r.timeout_ms == 0 { 5_000 } else { r.timeout_ms },
                max_attempts: if r.max_attempts == 0 { 2 } else { r.max_attempts },
            })
            .await?;
        ok(convert::bot(&bot))
    }

    async fn get_bot(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Bot> {
        ok(convert::bot(&self.session.bot(parse_id(&request.get_ref().id, "id")?).await?))
    }

    async fn list_bots(&self, _request: Request<Empty>) -> Reply<pb::ListBotsResponse> {
        let bots = self.session.list_bots().await?;
        ok(pb::ListBotsResponse {
            bots: bots.iter().map(convert::bot).collect(),
        })
    }

    async fn update_bot(&self, request: Request<pb::UpdateBotRequest>) -> Reply<pb::Bot> {
        let r = request.into_inner();
        let update = crate::bots::BotUpdate {
            name: r.name,
            endpoint: r.endpoint,
            secret: r.signing_secret.map(SecretString::from),
            timeout_ms: r.timeout_ms,
            max_attempts: r.max_attempts,
            active: r.active,
        };
        ok(convert::bot(&self.session.update_bot(parse_id(&r.id, "id")?, update).await?))
    }

    async fn delete_bot(&self, request: Request<pb::GetByIdRequest>) -> Reply<Empty> {
        self.session.delete_bot(parse_id(&request.get_ref().id, "id")?).await?;
        ok(Empty {})
    }

    async fn rotate_token_encryption(&self, _request: Request<Empty>) -> Reply<pb::RotateTokenEncryptionResponse> {
        ok(pb::RotateTokenEncryptionResponse {
            reencrypted: self.session.rotate_token_encryption().await?,
        })
    }

    async fn create_number(&self, request: Request<pb::CreateNumberRequest>) -> Reply<pb::Number> {
        let r = request.into_inner();
        let number = self
            .session
            .create_number(
                parse_id(&r.channel_id, "channel_id")?,
                &r.phone,
                &r.display_name,
                convert::settings_from(r.settings)?,
                r.skip_sender_check,
            )
            .await?;
        ok(convert::number(&number))
    }

    async fn get_number(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Number> {
        ok(convert::number(&self.session.number(parse_id(&request.get_ref().id, "id")?).await?))
    }

    async fn list_numbers(&self, request: Request<pb::ListNumbersRequest>) -> Reply<pb::ListNumbersResponse> {
        let r = request.get_ref();
        let (limit, token) = convert::page(r.page.as_ref());
        let numbers = self
            .session
            .list_numbers(optional_id(&r.channel_id, "channel_id")?, optional_id(&token, "page_token")?, limit)
            .await?;
        ok(pb::ListNumbersResponse {
            page: convert::page_info(numbers.len(), limit, numbers.last().map(|n| n.id)),
            numbers: numbers.iter().map(convert::number).collect(),
        })
    }

    async fn update_number(&self, request: Request<pb::UpdateNumberRequest>) -> Reply<pb::Number> {
        let r = request.into_inner();
        let settings = r.settings.map(|s| convert::settings_from(Some(s))).transpose()?;
        let number = self
            .session
            .update_number(parse_id(&r.id, "id")?, r.display_name.as_deref(), r.active, settings)
            .await?;
        ok(convert::number(&number))
    }

    async fn delete_number(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::DeleteNumberResponse> {
        let report = self.session.delete_number(parse_id(&request.get_ref().id, "id")?).await?;
        ok(pb::DeleteNumberResponse {
            conversations_closed: report.conversations_closed,
            messages_failed: report.messages_failed,
            templates_removed: report.templates_removed,
        })
    }

    async fn create_template(&self, request: Request<pb::TemplateInput>) -> Reply<pb::Template> {
        let r = request.into_inner();
        let stored = self
            .session
            .create_template(parse_id(&r.number_id, "number_id")?, convert::template_from(&r)?)
            .await?;
        ok(convert::template(&stored))
    }

    async fn get_template(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Template> {
        let mut conn = self.session.pool.acquire().await.map_err(SessionError::from)?;
        ok(convert::template(
            &self.session.template(&mut conn, parse_id(&request.get_ref().id, "id")?).await?,
        ))
    }

    async fn list_templates(&self, request: Request<pb::ListTemplatesRequest>) -> Reply<pb::ListTemplatesResponse> {
        let templates = self
            .session
            .list_templates(parse_id(&request.get_ref().number_id, "number_id")?)
            .await?;
        ok(pb::ListTemplatesResponse {
            templates: templates.iter().map(convert::template).collect(),
        })
    }

    async fn update_template(&self, request: Request<pb::UpdateTemplateRequest>) -> Reply<pb::Template> {
        let r = request.into_inner();
        let input = r.template.ok_or_else(|| SessionError::invalid("template is required"))?;
        ok(convert::template(
            &self
                .session
                .update_template(parse_id(&r.id, "id")?, convert::template_from(&input)?)
                .await?,
        ))
    }

    async fn delete_template(&self, request: Request<pb::GetByIdRequest>) -> Reply<Empty> {
        self.session.delete_template(parse_id(&request.get_ref().id, "id")?).await?;
        ok(Empty {})
    }

    async fn sync_templates(&self, request: Request<pb::SyncTemplatesRequest>) -> Reply<pb::SyncTemplatesResponse> {
        let r = request.into_inner();
        let items: Vec<SyncedTemplate> = r
            .templates
            .into_iter()
            .map(|t| SyncedTemplate {
                content_sid: t.content_sid,
                name: t.name,
                language: t.language,
                text: t.text,
                status: t.status,
                content_type: t.content_type,
                content: serde_json::from_str(&t.content_json).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        let (created, updated) = self.session.sync_templates(parse_id(&r.channel_id, "channel_id")?, &items).await?;
        ok(pb::SyncTemplatesResponse { created, updated })
    }

    async fn list_automated_messages(
        &self,
        request: Request<pb::ListAutomatedMessagesRequest>,
    ) -> Reply<pb::ListAutomatedMessagesResponse> {
        let r = request.get_ref();
        let list = self
            .session
            .list_automated(parse_id(&r.channel_id, "channel_id")?, optional_id(&r.number_id, "number_id")?)
            .await?;
        ok(pb::ListAutomatedMessagesResponse {
            messages: list
                .into_iter()
                .map(|(s, source)| pb::AutomatedMessage {
                    channel_id: s.channel_id.to_string(),
                    number_id: s.number_id.map(|n| n.to_string()).unwrap_or_default(),
                    trigger: s.trigger.as_str().into(),
                    language: s.language,
                    text: s.text,
                    active: s.active,
                    source: source.into(),
                })
                .collect(),
        })
    }

    async fn set_automated_message(&self, request: Request<pb::AutomatedMessage>) -> Reply<pb::AutomatedMessage> {
        let r = request.into_inner();
        let setting = Setting {
            channel_id: parse_id(&r.channel_id, "channel_id")?,
            number_id: optional_id(&r.number_id, "number_id")?,
            trigger: parse_trigger(&r.trigger)?,
            language: r.language.clone(),
            text: r.text.clone(),
            active: r.active,
        };
        self.session.set_automated(&setting).await?;
        ok(pb::AutomatedMessage {
            source: if setting.number_id.is_some() { "number" } else { "channel" }.into(),
            ..r
        })
    }

    async fn list_unroutable_messages(
        &self,
        request: Request<pb::ListUnroutableMessagesRequest>,
    ) -> Reply<pb::ListUnroutableMessagesResponse> {
        let r = request.get_ref();
        let limit = if r.limit == 0 { 100 } else { i64::from(r.limit) };
        let rows = self
            .session
            .list_unroutable(optional_id(&r.channel_id, "channel_id")?, limit)
            .await?;
        ok(pb::ListUnroutableMessagesResponse {
            messages: rows
                .into_iter()
                .map(|m| pb::UnroutableMessage {
                    id: m.id.to_string(),
                    channel_id: m.channel_id.to_string(),
                    message_sid: m.message_sid,
                    to: m.to_number,
                    from: m.from_address,
                    reason: m.reason,
                    body: m.body,
                    received_at: Some(convert::timestamp(m.received_at)),
                })
                .collect(),
        })
    }

    async fn delete_automated_message(&self, request: Request<pb::DeleteAutomatedMessageRequest>) -> Reply<Empty> {
        let r = request.get_ref();
        self.session
            .delete_automated(
                parse_id(&r.channel_id, "channel_id")?,
                optional_id(&r.number_id, "number_id")?,
                parse_trigger(&r.trigger)?,
                &r.language,
            )
            .await?;
        ok(Empty {})
    }

    async fn get_conversation(&self, request: Request<pb::GetByIdRequest>) -> Reply<pb::Conversation> {
        let view = self.session.conversation(parse_id(&request.get_ref().id, "id")?.into()).await?;
        ok(convert::conversation(&view, self.session.now()))
    }

    async fn list_conversations(&self, request: Request<pb::ListConversationsRequest>) -> Reply<pb::ListConversationsResponse> {
        let r = request.get_ref();
        let (limit, token) = convert::page(r.page.as_ref());
        // The typed statuses when the caller sent them, else the text (each checked).
        let statuses = read_filter::<ConversationStatus>(&r.status_codes, &r.statuses).map_err(SessionError::Invalid)?;
        let filter = ConversationFilter {
            statuses,
            number_id: optional_id(&r.number_id, "number_id")?,
            agent_id: optional_id(&r.agent_id, "agent_id")?,
            queue_id: optional_id(&r.queue_id, "queue_id")?,
            customer_id: optional_id(&r.customer_id, "customer_id")?,
            before: optional_id(&token, "page_token")?,
            limit,
        };
        let list = self.session.list_conversations(&filter).await?;
        let now = self.session.now();
        ok(pb::ListConversationsResponse {
            page: convert::page_info(list.len(), limit, list.last().map(|c| c.row.id)),
            conversations: list.iter().map(|c| convert::conversation(c, now)).collect(),
        })
    }

    async fn list_messages(&self, request: Request<pb::ListMessagesRequest>) -> Reply<pb::ListMessagesResponse> {
        let r = request.get_ref();
        let limit = i64::from(if r.limit == 0 { 100 } else { r.limit.min(1_000) });
        let messages = self
            .session
            .list_messages(parse_id(&r.conversation_id, "conversation_id")?.into(), r.after_seq, limit)
            .await?;
        ok(pb::ListMessagesResponse {
            messages: messages.iter().map(convert::message).collect(),
        })
    }

    async fn send_message(&self, request: Request<pb::SendMessageRequest>) -> Reply<pb::Message> {
        let r = request.into_inner();
        let content = match r.content {
            Some(pb::send_message_request::Content::Text(t)) => SendContent::Text(t.body),
            Some(pb::send_message_request::Content::Media(m)) => match optional_id(&m.file_id, "file_id")? {
                Some(file_id) if m.url.is_empty() => SendContent::File {
                    file_id,
                    caption: (!m.caption.is_empty()).then_some(m.caption),
                },
                Some(_) => return Err(SessionError::invalid("give a media url or a file_id, not both").into()),
                None => SendContent::Media {
                    url: m.url,
                    content_type: m.content_type,
                    size_bytes: (m.size_bytes > 0).then_some(m.size_bytes),
                    caption: (!m.caption.is_empty()).then_some(m.caption),
                },
            },
            Some(pb::send_message_request::Content::Template(t)) => SendContent::Template {
                template_id: optional_id(&t.template_id, "template_id")?,
                name: (!t.name.is_empty()).then_some(t.name),
                language: (!t.language.is_empty()).then_some(t.language),
                variables: t.variables.into_iter().collect::<BTreeMap<_, _>>(),
            },
            None => {
                return Err(SessionError::invalid("content (text, media or template) is required").into());
            }
        };
        let message = self
            .session
            .send_message(SendRequest {
                conversation_id: parse_id(&r.conversation_id, "conversation_id")?,
                author: read_author(r.author_kind_code, &r.author_kind).map_err(SessionError::Invalid)?,
                author_id: optional_id(&r.author_id, "author_id")?,
                content,
                client_message_id: (!r.client_message_id.is_empty()).then(|| r.client_message_id.into()),
            })
            .await?;
        ok(convert::message(&message))
    }

    async fn transition_conversation(&self, request: Request<pb::TransitionRequest>) -> Reply<pb::Conversation> {
        let r = request.into_inner();
        let input = TransitionInput {
            transition: parse_transition(&r.transition)?,
            agent_id: optional_id(&r.agent_id, "agent_id")?,
            queue_id: optional_id(&r.queue_id, "queue_id")?,
            workstream_id: optional_id(&r.workstream_id, "workstream_id")?,
            bot_id: optional_id(&r.bot_id, "bot_id")?,
            note: (!r.note.is_empty()).then_some(r.note),
            agent_name: (!r.agent_name.is_empty()).then_some(r.agent_name),
            queue_name: (!r.queue_name.is_empty()).then_some(r.queue_name),
            transfer: r.transfer,
        };
        let view = self
            .session
            .transition(parse_id(&r.conversation_id, "conversation_id")?.into(), input)
            .await?;
        ok(convert::conversation(&view, self.session.now()))
    }

    async fn set_conversation_attributes(&self, request: Request<pb::SetAttributesRequest>) -> Reply<pb::Conversation> {
        let r = request.into_inner();
        let attributes: BTreeMap<String, String> = r.attributes.into_iter().map(|a| (a.key, a.value)).collect();
        let view = self
            .session
            .set_attributes(parse_id(&r.conversation_id, "conversation_id")?.into(), &attributes)
            .await?;
        ok(convert::conversation(&view, self.session.now()))
    }

    async fn send_automated_message(&self, request: Request<pb::SendAutomatedMessageRequest>) -> Reply<pb::SendAutomatedMessageResponse> {
        let r = request.into_inner();
        let render = RenderContext {
            agent_name: (!r.agent_name.is_empty()).then_some(r.agent_name),
            queue_name: (!r.queue_name.is_empty()).then_some(r.queue_name),
            variables: BTreeMap::new(),
        };
        let outcome = self
            .session
            .send_automated(parse_id(&r.conversation_id, "conversation_id")?, parse_trigger(&r.trigger)?, render)
            .await?;
        ok(match outcome {
            AutomatedOutcome::Sent(m) => pb::SendAutomatedMessageResponse {
                sent: true,
                reason: String::new(),
                message_id: m.id.to_string(),
            },
            AutomatedOutcome::NotSent(reason) => pb::SendAutomatedMessageResponse {
                sent: false,
                reason,
                message_id: String::new(),
            },
        })
    }

    async fn get_media(&self, request: Request<pb::GetMediaRequest>) -> Reply<files::ChunkStream> {
        let r = request.get_ref();
        let conversation = optional_id(&r.conversation_id, "conversation_id")?;
        let stream = media::stream(self.session.clone(), parse_id(&r.message_id, "message_id")?, r.index, conversation).await?;
        Ok(Response::new(stream))
    }

    async fn upload_file(&self, request: Request<tonic::Streaming<pb::UploadFileChunk>>) -> Reply<pb::File> {
        ok(files::upload(&self.session, request.into_inner()).await?)
    }
}
