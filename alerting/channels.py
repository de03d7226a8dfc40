"""The notifier chain a rules file's `notifiers` section describes."""

from __future__ import annotations

from pathlib import Path

from alerting.gammu import GammuNotifier
from alerting.notifier import FallbackNotifier, Notifier
from alerting.providers import FreeMobileNotifier, OvhNotifier, TwilioNotifier, WebhookNotifier
from alerting.rules import (
    AlertConfig,
    FreeMobileChannel,
    GammuChannel,
    OvhChannel,
    TwilioChannel,
    WebhookChannel,
)


def build_notifier(*, config: AlertConfig, base_dir: Path,
                   smsd_config: Path | None = None) -> FallbackNotifier:
    """Notifiers in the file's order; `smsd_config` (a local modem) goes first when given."""
    chain: list[Notifier] = []
    if smsd_config is not None:
        chain.append(GammuNotifier(config=smsd_config))
    for channel in config.notifiers:
        if isinstance(channel, GammuChannel):
            chain.append(GammuNotifier(config=(base_dir / channel.smsd_config).resolve()))
        elif isinstance(channel, OvhChannel):
            chain.append(OvhNotifier(service_name=channel.service_name,
                                     application_key=channel.application_key,
                                     application_secret=channel.application_secret,
                                     consumer_key=channel.consumer_key, sender=channel.sender,
                                     endpoint=channel.endpoint))
        elif isinstance(channel, TwilioChannel):
            chain.append(TwilioNotifier(account_sid=channel.account_sid,
                                        auth_token=channel.auth_token,
                                        from_number=channel.from_number))
        elif isinstance(channel, FreeMobileChannel):
            chain.append(FreeMobileNotifier(user=channel.user, password=channel.password,
                                            phone=channel.phone))
        elif isinstance(channel, WebhookChannel):
            chain.append(WebhookNotifier(url=channel.url, token=channel.token))
    if not chain:
        raise ValueError("no notifier: give --smsd-config or a `notifiers` section")
    return FallbackNotifier(notifiers=chain)
