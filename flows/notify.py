"""Notifications for new versions: an e-mail per version (SMTP) and, optionally, a JSON POST to a generic webhook.

A notification is a side effect that must never fail the retraining flow: every failure is logged and reported
in the returned :class:`Delivery`, nothing is raised.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifyConfig:
    """Where notifications go and the links they carry. ``smtp_host`` None disables e-mail."""

    smtp_host: str | None
    smtp_port: int
    smtp_from: str
    smtp_to: tuple[str, ...]
    service_url: str | None = None
    mlflow_ui_url: str | None = None
    webhook_url: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> NotifyConfig:
        """From :class:`flows.settings.Settings` (``DOCCLASS_SMTP_*``, ``DOCCLASS_SERVICE_URL``...)."""
        tracking = settings.mlflow_tracking_uri
        return cls(
            smtp_host=settings.smtp_host or None,
            smtp_port=int(settings.smtp_port),
            smtp_from=settings.smtp_from,
            smtp_to=tuple(addr.strip() for addr in settings.smtp_to.split(",") if addr.strip()),
            service_url=settings.service_url,
            mlflow_ui_url=settings.mlflow_ui_url
            or (tracking if tracking.startswith(("http://", "https://")) else None),
            webhook_url=settings.notify_webhook_url,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NotifyConfig:
        """From a plain mapping (a flow parameter); ``smtp_to`` may be a list or a comma-separated string.

        A missing ``smtp_*`` key takes the default declared in :class:`flows.settings.Settings` (the one place the
        SMTP defaults are written); a missing link or timeout takes this class's default. An empty ``smtp_host``
        disables e-mail.
        """
        from flows.settings import Settings

        def given_or_setting(key: str) -> Any:
            return data[key] if key in data else Settings.model_fields[key].default

        to = given_or_setting("smtp_to") or ()
        recipients = tuple(a.strip() for a in (to.split(",") if isinstance(to, str) else to) if a.strip())
        optional = {key: data[key] for key in ("service_url", "mlflow_ui_url", "webhook_url") if key in data}
        if "timeout_s" in data:
            optional["timeout_s"] = float(data["timeout_s"])
        return cls(
            smtp_host=given_or_setting("smtp_host") or None,
            smtp_port=int(given_or_setting("smtp_port")),
            smtp_from=str(given_or_setting("smtp_from")),
            smtp_to=recipients,
            **optional,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "smtp_to": list(self.smtp_to)}


@dataclass
class VersionSummary:
    """What a notification says about one version."""

    version: str
    label_count: int
    accuracy: float | None
    macro_f1: float | None
    gate: str
    gate_reasons: list[str]
    promoted: bool
    candidate: str | None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    run_id: str | None = None
    experiment_id: str | None = None
    model_name: str = "docclass"

    def links(self, config: NotifyConfig) -> dict[str, str]:
        """Links to the MLflow run, the registered version and the service (those that can be built)."""
        out: dict[str, str] = {}
        if config.mlflow_ui_url:
            base = config.mlflow_ui_url.rstrip("/")
            if self.run_id and self.experiment_id:
                out["mlflow_run"] = f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
            number = self.version.partition(".")[2]
            out["mlflow_version"] = f"{base}/#/models/{self.model_name}/versions/{number}"
        if config.service_url:
            out["service"] = config.service_url.rstrip("/") + "/"
        return out

    def payload(self, config: NotifyConfig) -> dict[str, Any]:
        """The JSON body posted to the generic webhook."""
        return {"event": "version_registered", **self.__dict__, "links": self.links(config)}


def _figure(value: float | None) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def subject(summary: VersionSummary) -> str:
    """One line, short enough not to be folded: version, whether it is served, labels, accuracy, gate."""
    state = "deployed" if summary.promoted else "not deployed"
    return (
        f"docclass {summary.version} {state}: {summary.label_count} labels, "
        f"accuracy {_figure(summary.accuracy)}, gate {summary.gate}"
    )


def body(summary: VersionSummary, config: NotifyConfig) -> str:
    """Plain-text body: headline figures, the gate result, per-class figures and links."""
    lines = [
        f"Version {summary.version} of {summary.model_name} was registered.",
        "",
        f"Labels:     {summary.label_count}",
        f"Candidate:  {summary.candidate or '-'}",
        f"Accuracy:   {_figure(summary.accuracy)} (cross-validated)",
        f"Macro-F1:   {_figure(summary.macro_f1)}",
        f"Gate:       {summary.gate}"
        + (": " + "; ".join(summary.gate_reasons) if summary.gate_reasons else ""),
        f"Champion:   {'yes, the service now answers with this version' if summary.promoted else 'no'}",
        "",
        "Per class:",
        f"  {'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}",
    ]
    for label, row in sorted(summary.per_class.items()):
        lines.append(
            f"  {label:<12} {_figure(row.get('precision')):>9} {_figure(row.get('recall')):>7} "
            f"{_figure(row.get('f1')):>6} {int(row.get('support') or 0):>7}"
        )
    links = summary.links(config)
    if links:
        lines += ["", "Links:"]
        names = {"mlflow_run": "MLflow run", "mlflow_version": "MLflow version", "service": "Service"}
        lines += [f"  {names[key]}: {url}" for key, url in links.items()]
    return "\n".join(lines) + "\n"


def build_email(summary: VersionSummary, config: NotifyConfig) -> EmailMessage:
    """The e-mail for one version."""
    message = EmailMessage()
    message["Subject"] = subject(summary)
    message["From"] = config.smtp_from
    message["To"] = ", ".join(config.smtp_to)
    message["X-Docclass-Version"] = summary.version
    message.set_content(body(summary, config))
    return message


@dataclass
class Delivery:
    """What happened to one notification: ``email`` / ``webhook`` are "sent", "disabled" or an error text."""

    email: str
    webhook: str

    @property
    def emailed(self) -> bool:
        return self.email == "sent"


def send_email(message: EmailMessage, config: NotifyConfig) -> None:
    """Send through the configured SMTP server.

    Raises:
        smtplib.SMTPException, OSError: the server refused or cannot be reached.
    """
    with smtplib.SMTP(config.smtp_host or "", config.smtp_port, timeout=config.timeout_s) as smtp:
        smtp.send_message(message)


def notify(summary: VersionSummary, config: NotifyConfig) -> Delivery:
    """E-mail (and webhook) for one version; never raises: failures are logged and returned."""
    email = "disabled"
    if config.smtp_host and config.smtp_to:
        try:
            send_email(build_email(summary, config), config)
            email = "sent"
        except (smtplib.SMTPException, OSError) as error:
            email = f"failed: {type(error).__name__}: {error}"
            logger.warning(
                "e-mail for version %s not sent via %s:%s: %s",
                summary.version,
                config.smtp_host,
                config.smtp_port,
                error,
            )
    hook = "disabled"
    if config.webhook_url:
        import httpx

        try:
            httpx.post(
                config.webhook_url, json=summary.payload(config), timeout=config.timeout_s
            ).raise_for_status()
            hook = "sent"
        except httpx.HTTPError as error:
            hook = f"failed: {type(error).__name__}: {error}"
            logger.warning(
                "webhook for version %s not delivered to %s: %s", summary.version, config.webhook_url, error
            )
    return Delivery(email, hook)


def summaries_table(summaries: Sequence[VersionSummary]) -> list[dict[str, Any]]:
    """Compact rows (version, labels, accuracy, gate, champion) for logs and the CLI."""
    return [
        {
            "version": s.version,
            "labels": s.label_count,
            "accuracy": s.accuracy,
            "gate": s.gate,
            "champion": s.promoted,
        }
        for s in summaries
    ]
