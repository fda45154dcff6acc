"""The work people do: `wnb sweep`, `wnb flags`, `wnb tasks`, `wnb task ack|complete|cancel|claim|assign|release`,
`wnb task send|letter-sent` (issue 18), `wnb task young-person-letters`, `wnb flag resolve`, `wnb explain` and
`wnb chronology`."""

from __future__ import annotations

import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from wnb.cli.common import (
    AllOption,
    ByOption,
    JsonOption,
    code_titles,
    emit_json,
    guarded,
    open_database,
    out,
    parse_now,
    person,
    print_counts,
    quick_database,
    ruleset_in_force,
    say,
    service,
)
from wnb.core.errors import WnbError


def sweep(
    now: Annotated[str | None, typer.Option("--now", help="ISO-8601 instant (default: the clock).")] = None,
) -> None:
    """Run time-based rules (WNB-14) and escalations as of NOW. A second sweep at the same NOW changes nothing."""

    def run() -> None:
        counts = service().sweep(parse_now(now))
        if counts.get("skipped_another_replica_sweeping"):  # not "0 judged": nothing was looked at
            say("sweep: skipped, another replica is sweeping now (it does the same work)")
            return
        print_counts("sweep", counts, ["follow_ups_judged", "follow_ups_void", "escalated"])

    guarded(run)


def flags(
    as_json: JsonOption = False,
    all_: AllOption = False,
    nhs_number: Annotated[str | None, typer.Option("--nhs-number", help="Only this person.")] = None,
) -> None:
    """List active flags (with --all: every flag)."""

    def run() -> None:
        quick = quick_database()
        if quick is not None:
            from wnb.store import quick as quick_list

            with closing(quick):
                items = quick_list.flags(quick, include_closed=all_, nhs_number=nhs_number)
        else:
            from wnb.store import listing

            with open_database().connect() as connection:
                items = listing.flags(connection, include_closed=all_, nhs_number=nhs_number)
        if as_json:
            return emit_json(items)
        from wnb.cli.tables import flags_table

        out.print(flags_table(items, f"{len(items)} flag{'s' if len(items) != 1 else ''}", code_titles()))

    guarded(run)


def _known_role(role: str | None) -> str | None:
    """--role names one of wnb's roles (those of wnb.core.policy, which own the rule files' tasks), else exit 2."""
    from wnb.core.kinds import Role

    known = [known.value for known in Role]
    if role is not None and role not in known:
        raise typer.BadParameter(f"{role!r} is not a role; the roles are {', '.join(known)}")
    return role


def tasks(
    as_json: JsonOption = False,
    all_: AllOption = False,
    role: Annotated[
        str | None,
        typer.Option("--role", help="Only tasks owned by this role (a team's tasks).", callback=_known_role),
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Only tasks assigned to this person.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only tasks assigned to the person named by --by.")] = False,
    team: Annotated[bool, typer.Option("--team", help="Only tasks of the role of the person named by --by.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who is asking, for --mine and --team: a user name.")] = None,
) -> None:
    """List open tasks, soonest due first (with --all: every task); --mine or --team with --by: my tasks, my team's."""

    def run() -> None:
        if (mine or team) and by is None:
            raise WnbError("--mine and --team need --by NAME: the person whose tasks (or team's tasks) to list")
        if mine and assignee is not None and assignee != by:
            raise WnbError("--mine lists the tasks of --by; give --assignee alone for someone else's")
        # Without --mine or --team no account is looked up: a quick read of the file, when it can be had.
        quick = None if mine or team else quick_database()
        if quick is not None:
            from wnb.store import quick as quick_list

            with closing(quick):
                items = quick_list.tasks(quick, include_closed=all_, role=role, assignee=assignee)
        else:
            from wnb.store import listing

            asker = person(open_database(), by) if by is not None and (mine or team) else None
            shown_role = asker.role.value if team and asker is not None and asker.role is not None else role
            with open_database().connect() as connection:
                mine_or = by if mine else assignee
                items = listing.tasks(connection, include_closed=all_, role=shown_role, assignee=mine_or)
        if as_json:
            return emit_json(items)
        from wnb.cli.tables import tasks_table

        title = f"{len(items)} task{'s' if len(items) != 1 else ''}"
        out.print(tasks_table(items, title, datetime.now(UTC), code_titles()))

    guarded(run)


task_app = typer.Typer(
    help="Act on a task: acknowledge, complete or cancel; claim, assign or release it.", no_args_is_help=True
)


flag_app = typer.Typer(help="Act on a flag.", no_args_is_help=True)


NoteOption = Annotated[str | None, typer.Option("--note", help="A note kept in the task's history.")]
# Completing or cancelling says what was done, or why it was not needed (issue 16): the option is required.
RequiredNote = Annotated[
    str, typer.Option("--note", help="What was done, or why it is not needed (required); kept in its history.")
]


TaskId = Annotated[str, typer.Argument(help="Task id, e.g. T12.")]


def _task_action(action: str, task_id: str, by: str, note: str | None) -> None:
    from wnb.core.wording import task_status

    def run() -> None:
        wnb = service()
        row = wnb.act_on_task(task_id, action, person(wnb.db, by), note)
        say(f"task T{row.id} ({wnb.ruleset.title(row.code)}): {task_status(row.status)}")

    guarded(run)


@task_app.command("ack")
def task_ack(task_id: TaskId, by: ByOption, note: NoteOption = None) -> None:
    """Acknowledge a requested task: it is yours and will not escalate."""
    _task_action("ack", task_id, by, note)


@task_app.command("complete")
def task_complete(task_id: TaskId, by: ByOption, note: RequiredNote) -> None:
    """Complete a task, with a note of what was done (required)."""
    _task_action("complete", task_id, by, note)


@task_app.command("cancel")
def task_cancel(task_id: TaskId, by: ByOption, note: RequiredNote) -> None:
    """Cancel a task that is not needed, with a note of why (required)."""
    _task_action("cancel", task_id, by, note)


@task_app.command("wait")
def task_wait(
    task_id: TaskId,
    by: ByOption,
    until: Annotated[str, typer.Option("--until", help="The date the reply is due, e.g. 2026-12-10 (UK date).")],
    reason: Annotated[str, typer.Option("--reason", help="Whose reply, and for what (kept in its history).")],
) -> None:
    """Mark an acknowledged task "waiting for a reply until" a date; then it is back at the top of your list."""
    from datetime import date

    from wnb.core.wording import plain_code

    def run() -> None:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            raise WnbError(f"--until {until!r} is not a date, e.g. 2026-12-10") from None
        wnb = service()
        row = wnb.wait_on_task(task_id, day, reason, person(wnb.db, by))
        say(f"task T{row.id} {plain_code(row.code)}: waiting for a reply until {day:%a %d %b %Y}")

    guarded(run)


def _assignment(action: str, task_id: str, by: str, to: str | None = None, reason: str | None = None) -> None:
    from wnb.core.wording import plain_code

    def run() -> None:
        wnb = service()
        row = wnb.assign_task(task_id, action, person(wnb.db, by), to, reason)
        who = f"assigned to {row.assignee}" if row.assignee else f"with the {row.owner_role} role"
        say(f"task T{row.id} {plain_code(row.code)}: {row.status}, {who}")

    guarded(run)


@task_app.command("claim")
def task_claim(task_id: TaskId, by: ByOption) -> None:
    """Assign a task of your role to yourself; a requested task claimed is acknowledged too."""
    _assignment("claim", task_id, by)


@task_app.command("assign")
def task_assign(
    task_id: TaskId,
    to: Annotated[str, typer.Option("--to", help="The user name of an enabled account of the task's role.")],
    by: ByOption,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required to take it from the person it is assigned to).")
    ] = None,
) -> None:
    """Assign (or reassign) a task to a named member of its role: for leads (wnb.core.policy)."""
    _assignment("assign", task_id, by, to, reason)


@task_app.command("release")
def task_release(task_id: TaskId, by: ByOption) -> None:
    """Hand a task assigned to a person back to its role: its assignee, or one who may assign it."""
    _assignment("release", task_id, by)


@task_app.command("send")
def task_send(
    task_id: TaskId,
    by: ByOption,
    channel: Annotated[
        str,
        typer.Option(
            "--channel", help="letter (printed, then marked sent), email (secure domains only) or fhir (signed)."
        ),
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="A letter: write it to this file (HTML, to print) as well.")
    ] = None,
) -> None:
    """Send an information-sharing task's message to the recipient in the child's context (issue 18)."""

    def run() -> None:
        wnb = service()
        made = wnb.send_communication(task_id, channel, person(wnb.db, by))
        if made.channel == "letter":
            say(f"letter {made.reference} to {made.recipient_name} is ready: print it, post it, then")
            say(f"  wnb task letter-sent {made.reference} --by {by}")
            if out_file is not None:
                from wnb.core.sharing import printable_letter

                out_file.write_text(printable_letter(made.reference, made.recipient_name, made.content), "utf-8")
                say(f"the letter is written to {out_file}")
        else:
            say(
                f"message {made.reference} to {made.recipient_name} queued ({made.channel}); "
                f"T{made.task_id} awaits acknowledgement"
            )

    guarded(run)


@task_app.command("letter-sent")
def task_letter_sent(
    message: Annotated[str, typer.Argument(help="The letter's reference (WNB-T12-1) or id (M3).")], by: ByOption
) -> None:
    """Mark a printed letter sent (posted): its task then awaits the recipient's acknowledgement."""

    def run() -> None:
        wnb = service()
        sent = wnb.mark_letter_sent(message, person(wnb.db, by))
        say(f"letter {sent.reference} marked sent; task T{sent.task_id} awaits acknowledgement")

    guarded(run)


@task_app.command("young-person-letters")
def task_young_person_letters(as_json: JsonOption = False) -> None:
    """List open letter-to-parent tasks raised for young people of 16 or 17 before WNB-09 wrote to them instead.

    For the booking team: cancel each (wnb task cancel ID --by NAME --note ...) and write to the young person.
    """
    from wnb.cli.tables import tasks_table
    from wnb.service.parent_letters import young_person_parent_letters

    def run() -> None:
        with open_database().connect() as connection:
            items = young_person_parent_letters(connection)
        if as_json:
            return emit_json(items)
        title = f"{len(items)} open letter-to-parent task{'s' if len(items) != 1 else ''} of young people (16-17)"
        out.print(tasks_table(items, title, datetime.now(UTC), code_titles()))
        if items:
            say("A young person's appointments are theirs: cancel each letter with a note and write to them instead.")

    guarded(run)


@flag_app.command("resolve")
def flag_resolve(
    flag_id: Annotated[str, typer.Argument(help="Flag id, e.g. F3.")],
    by: ByOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the flag is resolved (required).")],
) -> None:
    """Resolve an active flag (it becomes inactive), with a reason."""
    from wnb.core.wording import flag_status

    def run() -> None:
        wnb = service()
        row = wnb.resolve_flag(flag_id, person(wnb.db, by), reason)
        say(f"flag F{row.id} ({wnb.ruleset.title(row.code)}): {flag_status(row.status)}")

    guarded(run)


def explain(
    item_id: Annotated[str, typer.Argument(help="A flag (F12) or task (T34) id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the explanation as one JSON object, for scripts.")
    ] = False,
) -> None:
    """Show the events, facts and rule conditions that produced a flag or task, in plain words."""
    from wnb.service.explain import explanation, explanation_lines

    def run() -> None:
        with open_database().connect() as connection:
            found = explanation(connection, item_id)
        if as_json:
            return emit_json(found)
        for line in explanation_lines(found, ruleset_in_force()):
            say(line)

    guarded(run)


def chronology(
    nhs_number: Annotated[str, typer.Argument(help="The child's NHS number (spaces allowed).")],
    by: ByOption,
    form: Annotated[
        str, typer.Option("--format", help="csv (a spreadsheet), html (to print) or json (for scripts).")
    ] = "csv",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write it to this file instead of the terminal.")
    ] = None,
) -> None:
    """A child's multi-agency chronology: every outcome, flag, task and action in time order (an audited read)."""
    from wnb.core import chronology as rows
    from wnb.core.nhs import nhs_number_problem, normalise_nhs_number
    from wnb.core.policy import Action, check
    from wnb.store import chronology as store

    def run() -> None:
        if form not in ("csv", "html", "json"):
            raise WnbError(f"--format {form!r}: use csv, html or json")
        number = normalise_nhs_number(nhs_number)
        if problem := nhs_number_problem(number):
            raise WnbError(f"{nhs_number!r}: {problem}")
        db = open_database()
        reader = person(db, by)
        check(reader, Action.RECORDS_READ)
        now = datetime.now(UTC)
        found = store.export(db, number, reader.actor, now, form, code_titles())
        text = {
            "csv": lambda: rows.as_csv(found),
            "json": lambda: rows.as_json(number, found),
            "html": lambda: rows.as_html(number, found, now),
        }[form]()
        if out_file is None:
            sys.stdout.write(text)
        else:
            out_file.write_text(text, encoding="utf-8")
            say(f"{len(found)} rows written to {out_file}")

    guarded(run)
