//! An account's Webhooks configuration API state (SharedKeys, Settings, Rules, Operations) and
//! how a webhook's URL picks the live Setting that signs and times it: exact matches longest
//! first, then prefixes longest first, then the default Rule, as Twilio evaluates them.

use std::collections::BTreeMap;
use std::time::Instant;

use switchboard_twilio::overrides::ConnectionOverrides;
use switchboard_twilio::shared_key::Algorithm;
use switchboard_twilio::webhooks_config::{Rule, Setting, SettingReference};

/// An account's webhook configuration.
#[derive(Debug, Clone, Default)]
pub struct WebhooksConfig {
    /// Id → (name, secret).
    pub shared_keys: BTreeMap<String, (Option<String>, String)>,
    pub settings: BTreeMap<String, Setting>,
    pub rules: BTreeMap<String, LiveRule>,
    /// Id → (the Rule it changes, when it ends, whether it fails).
    pub operations: BTreeMap<String, (String, Instant, bool)>,
}

/// A Rule as asked for, and the Settings that apply now.
#[derive(Debug, Clone)]
pub struct LiveRule {
    pub rule: Rule,
    /// None until the Rule's creation has propagated.
    pub live: Option<Vec<SettingReference>>,
    /// When `rule.settings` become live.
    pub effective_at: Instant,
}

impl LiveRule {
    pub(crate) fn settle(&mut self, now: Instant) {
        if now >= self.effective_at {
            self.live = Some(self.rule.settings.clone());
        }
    }
}

/// What a webhook to some URL gets from the account's live Rules.
pub(crate) struct Applied {
    /// Key id, secret, algorithm.
    pub signer: Option<(String, String, Algorithm)>,
    pub connection: Option<ConnectionOverrides>,
}

impl WebhooksConfig {
    /// The live Setting for `url` (without its fragment), if a Rule matches.
    pub(crate) fn applied(&mut self, url: &str, now: Instant) -> Option<Applied> {
        let url = url.trim_end_matches('/');
        let mut best: Option<(u8, usize, &LiveRule)> = None;
        for rule in self.rules.values_mut() {
            rule.settle(now);
        }
        for rule in self.rules.values().filter(|r| r.live.is_some()) {
            let rank = match rule.rule.match_type.as_str() {
                "EXACT_MATCH" if rule.rule.value.as_deref() == Some(url) => (0, url.len()),
                "PREFIX_MATCH" => match rule.rule.prefix.as_deref() {
                    Some(p) if format!("{url}/").starts_with(p) => (1, p.len()),
                    _ => continue,
                },
                "DEFAULT" => (2, 0),
                _ => continue,
            };
            let better = best.is_none_or(|(kind, len, _)| rank.0 < kind || (rank.0 == kind && rank.1 > len));
            if better {
                best = Some((rank.0, rank.1, rule));
            }
        }
        let references = best?.2.live.clone()?;
        // Two Settings split the traffic by their percentages.
        let roll = fastrand::u8(0..100);
        let mut acc = 0u8;
        let chosen = references
            .iter()
            .find(|r| {
                acc = acc.saturating_add(r.percentage);
                roll < acc
            })
            .or(references.last())?;
        let setting = self.settings.get(&chosen.setting_id)?;
        let signer = setting.signature.as_ref().and_then(|s| {
            let key = s.shared_key_id.as_ref()?;
            let (_, secret) = self.shared_keys.get(key)?;
            let algorithm = Algorithm::parse(s.algorithm.as_deref()?)?;
            Some((key.clone(), secret.clone(), algorithm))
        });
        Some(Applied {
            signer,
            connection: setting.connection.as_ref().map(|c| c.to_overrides()),
        })
    }
}

#[cfg(test)]
mod tests {
    use switchboard_twilio::webhooks_config::SignatureSetting;

    use std::time::Duration;

    use super::*;

    fn config_with(rules: &[(&str, &str, &str)], propagation: Duration) -> (WebhooksConfig, Instant) {
        let mut config = WebhooksConfig::default();
        let now = Instant::now();
        for (setting, key, _) in rules {
            config.shared_keys.insert((*key).into(), (None, format!("secret-of-{key}")));
            config.settings.insert(
                (*setting).into(),
                Setting {
                    id: (*setting).into(),
                    kind: None,
                    friendly_name: None,
                    signature: Some(SignatureSetting {
                        kind: "SHARED_KEY".into(),
                        shared_key_id: Some((*key).into()),
                        algorithm: Some("HMAC_SHA256".into()),
                    }),
                    connection: None,
                },
            );
        }
        for (i, (setting, _, pattern)) in rules.iter().enumerate() {
            let mut rule = Rule::prefix("r", pattern, setting);
            if *pattern == "*" {
                rule.match_type = "DEFAULT".into();
                rule.prefix = None;
            } else if !pattern.ends_with('/') {
                rule.match_type = "EXACT_MATCH".into();
                rule.prefix = None;
                rule.value = Some((*pattern).into());
            }
            let mut live = LiveRule {
                rule,
                live: None,
                effective_at: now + propagation,
            };
            live.settle(now);
            config.rules.insert(format!("rule{i}"), live);
        }
        (config, now)
    }

    fn key_for(config: &mut WebhooksConfig, url: &str, now: Instant) -> Option<String> {
        config.applied(url, now).and_then(|a| a.signer).map(|(key, _, _)| key)
    }

    #[test]
    fn rules_apply_in_twilios_order_exact_then_longest_prefix_then_default() {
        let (mut config, now) = config_with(
            &[
                ("s_default", "k_default", "*"),
                ("s_short", "k_short", "https://x.test/v1/"),
                ("s_long", "k_long", "https://x.test/v1/twilio/"),
                ("s_exact", "k_exact", "https://x.test/v1/twilio/status"),
            ],
            Duration::ZERO,
        );
        assert_eq!(
            key_for(&mut config, "https://x.test/v1/twilio/status", now).as_deref(),
            Some("k_exact")
        );
        assert_eq!(
            key_for(&mut config, "https://x.test/v1/twilio/inbound", now).as_deref(),
            Some("k_long")
        );
        assert_eq!(key_for(&mut config, "https://x.test/v1/other", now).as_deref(), Some("k_short"));
        assert_eq!(
            key_for(&mut config, "https://elsewhere.test/hook", now).as_deref(),
            Some("k_default")
        );
    }

    #[test]
    fn a_rule_applies_nothing_until_its_change_has_propagated() {
        let (mut config, now) = config_with(&[("s1", "k1", "https://x.test/")], Duration::from_secs(30));
        assert!(config.applied("https://x.test/hook", now).is_none(), "not live yet");
        assert_eq!(
            key_for(&mut config, "https://x.test/hook", now + Duration::from_secs(31)).as_deref(),
            Some("k1")
        );
    }
}
