"""The operating model, generated from configuration: who owns each object (config/dashboard.py), each
team's exception types with runbook and escalation contact (the exception registry), the checks each
team does daily, weekly and at month-end, the drift checks and the schedules (their registries). Nothing
here lists a type or a check by hand: registering one changes the page."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from exceptions_queue import registry
from exceptions_queue.registry import Team

from .dashboard import CADENCES, OWNERSHIP, TEAM_CHECKS, screen_url

TEAM_LABELS = {**dict(Team.CHOICES), "admin": "Admin"}
DAILY_MINUTES = 24 * 60


def escalation_line(runbook: str) -> str:
    for line in runbook.splitlines():
        if line.strip().lower().startswith("escalate"):
            return line.split(":", 1)[1].strip() if ":" in line else line.strip()
    return ""


def _sla(exc_type) -> str:
    hours = exc_type.sla.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def _every(minutes: int | None, daily_at=None) -> str:
    if daily_at is not None:
        return f"daily at {daily_at:%H:%M} UTC"
    if not minutes:
        return "by hand"
    if minutes % DAILY_MINUTES == 0:
        return "every day" if minutes == DAILY_MINUTES else f"every {minutes // DAILY_MINUTES} days"
    if minutes % 60 == 0:
        return "every hour" if minutes == 60 else f"every {minutes // 60} h"
    return "every minute" if minutes == 1 else f"every {minutes} min"


@dataclass
class TeamModel:
    team: str
    label: str
    contact: str
    exception_types: list[dict] = field(default_factory=list)
    checks: dict[str, list[dict]] = field(default_factory=dict)  # cadence -> checks

    @property
    def by_cadence(self) -> list[tuple[str, list[dict]]]:
        return [(label, self.checks.get(cadence, [])) for cadence, label in CADENCES]


def _drift_checks() -> list:
    try:
        from integrations.drift.registry import all_checks

        return all_checks()
    except Exception:  # the drift registry is another flow's: the page shows the rest without it
        return []


def operating_model() -> dict:
    contacts = getattr(settings, "ESCALATION_CONTACTS", {})
    teams = {code: TeamModel(code, label, contacts.get(code, "")) for code, label in TEAM_LABELS.items()}
    for model in teams.values():
        model.checks = {cadence: [] for cadence, _ in CADENCES}
    for exc_type in registry.all_types():
        team = teams.setdefault(exc_type.team, TeamModel(exc_type.team, exc_type.team, contacts.get(exc_type.team, "")))
        team.exception_types.append({
            "code": exc_type.code, "title": exc_type.title, "severity": exc_type.severity, "system": exc_type.system,
            "sla": _sla(exc_type), "runbook": exc_type.runbook, "escalate": escalation_line(exc_type.runbook),
            "retry": bool(exc_type.retry_handler),
            "url": screen_url("exceptions", f"type={exc_type.code}&status=active"),
        })
    for check in TEAM_CHECKS:
        teams[check.team].checks.setdefault(check.cadence, []).append(
            {"what": check.what, "url": screen_url(check.screen, check.query), "source": "routine"})
    drift = []
    for check in _drift_checks():
        every = _every(check.schedule_minutes)
        cadence = "daily" if check.schedule_minutes <= DAILY_MINUTES else "weekly"
        url = screen_url("drift") or screen_url("exceptions", f"team={check.team}&status=active")
        drift.append({"code": check.code, "label": check.label, "team": check.team,
                      "team_label": TEAM_LABELS.get(check.team, check.team), "flow": check.flow, "every": every,
                      "description": check.description, "url": url})
        if check.team in teams:
            teams[check.team].checks.setdefault(cadence, []).append(
                {"what": f"Review the gaps the {check.label} check found (it runs {every})", "url": url,
                 "source": "drift check"})
    from config.schedules import registry as schedule_registry

    schedules = [{"name": spec.name, "func": spec.func, "owner": spec.owner,
                  "every": _every(spec.minutes, spec.daily_at)} for spec in schedule_registry()]
    ownership = [{"obj": o.obj, "owner": o.owner, "flows_to": o.flows_to, "team": TEAM_LABELS.get(o.team, o.team),
                  "url": screen_url(o.screen)} for o in OWNERSHIP]
    return {"ownership": ownership, "teams": list(teams.values()), "cadences": CADENCES, "drift_checks": drift,
            "schedules": schedules, "type_count": len(registry.all_types())}


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_link(text: str, url: str, base: str) -> str:
    return f"[{_md_cell(text)}]({base}{url})" if url else _md_cell(text)


def operating_model_markdown(model: dict, *, base: str = "") -> str:
    """The same page as Markdown (links absolute from `base`)."""
    out = ["# Operating model", "",
           "Generated by Ledgerline from its configuration and registries: it changes when they do.", "",
           "## Who owns what", "", "| Object | System of record | Flows to | Team | Screen |",
           "| --- | --- | --- | --- | --- |"]
    for o in model["ownership"]:
        out.append(f"| {_md_cell(o['obj'])} | {_md_cell(o['owner'])} | {_md_cell(o['flows_to'])} | {o['team']} | "
                   f"{_md_link('open', o['url'], base) if o['url'] else '—'} |")
    out += ["", f"## Exception types by team ({model['type_count']} registered)", ""]
    for team in model["teams"]:
        if not team.exception_types:
            continue
        out += [f"### {team.label}", "", f"Escalation contact: {team.contact or '(none configured)'}", "",
                "| Type | Severity | SLA | System | Retry | Escalate to | Runbook |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for t in team.exception_types:
            out.append(f"| {_md_link(t['code'], t['url'], base)} | {t['severity']} | {t['sla']} | {t['system'] or '—'} | "
                       f"{'yes' if t['retry'] else 'no'} | {_md_cell(t['escalate'] or team.contact)} | "
                       f"{_md_cell(t['runbook'])} |")
        out.append("")
    out += ["## Checks each team does", ""]
    for team in model["teams"]:
        if not any(team.checks.values()):
            continue
        out += [f"### {team.label}", ""]
        for cadence, label in model["cadences"]:
            for c in team.checks.get(cadence, []):
                out.append(f"- **{label}**: {_md_link(c['what'], c['url'], base)}")
        out.append("")
    out += ["## Drift checks", "", "| Check | Team | Flow | Runs | What it finds |", "| --- | --- | --- | --- | --- |"]
    for d in model["drift_checks"]:
        out.append(f"| {_md_link(d['label'], d['url'], base)} | {d['team_label']} | {d['flow']} | {d['every']} | "
                   f"{_md_cell(d['description'])} |")
    out += ["", "## What runs by itself", "", "| Schedule | Runs | Owner |", "| --- | --- | --- |"]
    for s in model["schedules"]:
        out.append(f"| {_md_cell(s['name'])} | {s['every']} | {s['owner']} |")
    return "\n".join(out) + "\n"
