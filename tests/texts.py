"""Digests and hold texts for tests that start from a hand-made analysis.

The pipeline builds each week's agendas once (``service.agenda.team_agendas``)
and hands them to both; these helpers do the same for a test.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.agenda import Agenda, build_agenda, team_agendas
from service.cadence import ReportStatus, TeamAnalysis
from service.digest import Digest, build_digest
from service.hold_text import hold_texts
from service.model import Manager, PlacedHold, Policy, iso_week


def digest_of(
    analysis: TeamAnalysis,
    *,
    holds: Mapping[str, PlacedHold],
    agreed: Mapping[str, tuple[str, ...]],
    policy: Policy,
    language: str,
    agendas: Mapping[str, Agenda] | None = None,
    goals: Mapping[str, tuple[str, ...]] | None = None,
) -> Digest:
    week = iso_week(analysis.now.astimezone(analysis.tz))
    if agendas is None:
        agendas = team_agendas(analysis, week=week, language=language, policy=policy)
    return build_digest(
        analysis,
        holds=holds,
        agreed=agreed,
        goals=goals,
        policy=policy,
        language=language,
        agendas=agendas,
    )


def hold_text_of(
    manager: Manager, status: ReportStatus, *, week: str, language: str, policy: Policy
) -> tuple[str, str]:
    agenda = build_agenda(status, week=week, language=language, policy=policy)
    return hold_texts(manager, status, agenda=agenda, policy=policy)
