"""The title and description of a Kindly hold (pure).

Managers forward holds and add the report to them, so everything here is
written to be read by both: a title that reads the same from either side
("Carlos & Daniel: catch-up"), a description that is an invitation plus the
agenda's questions, and empty "Agreed expectations" and "Their goals"
sections that the next digest reads back. Coaching notes about the report,
cadence and anything that reads as monitoring stay in the digest.
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
    own = first_name(manager.name) or untrusted(manager.name)
    if status.new_hire:
        title = t.gettext("%(name)s & %(manager)s: getting to know each other")
    else:
        title = t.gettext("%(name)s & %(manager)s: catch-up")
    description = (
        environment(language)
        .get_template("hold.txt.j2")
        .render(
            name=name,
            manager=own,
            agenda=agenda,
            minutes=policy.hold_minutes,
            invited=policy.invite_report,
            welcome=status.new_hire,
            placeholders=PLACEHOLDER_BULLETS,
        )
    )
    return untrusted(title % {"name": name, "manager": own}), description
