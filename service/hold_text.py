"""The title and description of a Kindly hold (pure).

The hold sits on the manager's calendar. Its title is warm and neutral (a
meeting request must never read as "you're in trouble"); its description
carries an invitation the manager can send, the kindness-first agenda and an
empty "Agreed expectations" section that the next digest reads back.
"""

from __future__ import annotations

from service.agenda import Agenda, first_name
from service.cadence import ReportStatus
from service.i18n import environment, translator
from service.model import Manager, Policy
from service.recap import untrusted

#: empty bullets under the heading, for the manager to fill in after the 1:1
PLACEHOLDER_BULLETS = 2


def hold_texts(
    manager: Manager,
    status: ReportStatus,
    *,
    agenda: Agenda,
    policy: Policy,
) -> tuple[str, str]:
    """(title, description) of this week's hold for one report, in the agenda's language;
    ``agenda`` is the one the digest shows too (``service.agenda.team_agendas``)."""
    language, report = agenda.language, status.report
    t = translator(language)
    name = first_name(report.name) or report.email
    if status.new_hire:
        title = t.gettext("1:1 with %(name)s — getting to know each other")
    else:
        title = t.gettext("1:1 with %(name)s — time to catch up")
    description = (
        environment(language)
        .get_template("hold.txt.j2")
        .render(
            name=name,
            manager=first_name(manager.name) or untrusted(manager.name),
            agenda=agenda,
            minutes=policy.hold_minutes,
            invited=policy.invite_report,
            placeholders=PLACEHOLDER_BULLETS,
        )
    )
    return untrusted(title % {"name": name}), description
