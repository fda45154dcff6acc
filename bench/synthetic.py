"""A deterministic synthetic year of appointment outcomes for a large children's trust.

`generate(events=300_000, children=50_000, seed=1, out=DIR)` writes two files:

- `context.ndjson`: one person-context record (docs/readings.md) per child, plus a few adults;
- `events.ndjson`:  exactly `events` lines of canonical events (docs/architecture.md), in the order a trust's
  feeds would deliver them (by time received), including the awkward parts of real feeds: booked → outcome
  supersessions, corrections, withdrawals (`entered-in-error`), stale late arrivals, re-sent duplicates and
  invalid rows.

The same arguments always give byte-identical files. NHS numbers are synthetic: ten digits starting 999
with a valid Modulus 11 check digit, issued in sequence (prefixes whose check digit would be 10 are skipped).

Rates (of appointments, drawn per person so that missed appointments cluster in some families, as they do):
about 10% did-not-attend, 2% late-not-seen, 5% cancelled by the patient, 5% cancelled by the provider, 3%
attended late, the rest attended; ~35% of appointments are first sent as `booked` and later superseded by
their outcome; ~3% of missed outcomes are later corrected to attended, ~0.1% of appointments are withdrawn
(`entered-in-error`), ~0.2% get a stale late booking; ~1.5% of lines are re-sent duplicates and ~0.5% are
invalid. Context: ~1% of children have a child-protection plan or are looked after (some ended in the last
year), ~3% are child-in-need or early-help, ~4% have complex health needs; ages 0-17, plus 5% as many
adults (18-45), a fifth of them with care-and-support needs.
"""

from __future__ import annotations

import bisect
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from wnb.core.calendar import is_working_day

LONDON = ZoneInfo("Europe/London")
YEAR_START = date(2025, 4, 1)  # one financial year of outcomes
YEAR_DAYS = 365
YEAR_END_UTC = datetime.combine(YEAR_START + timedelta(days=YEAR_DAYS), time(0), tzinfo=LONDON).astimezone(UTC)

# (service, source, min age, max age, weight). Community services come from the community EHR (no DOB,
# no priority in its rows); the rest from the hospital PAS.
SERVICES: list[tuple[str, str, int, int, float]] = [
    ("paediatric-outpatients", "pas", 0, 17, 10),
    ("paediatric-diabetes", "pas", 1, 17, 2),
    ("paediatric-asthma", "pas", 1, 17, 2),
    ("paediatric-epilepsy", "pas", 0, 17, 1.5),
    ("paediatric-cardiology", "pas", 0, 17, 1),
    ("neonatal-follow-up", "pas", 0, 1, 2),
    ("audiology", "pas", 0, 45, 4),
    ("orthoptics", "pas", 2, 17, 3),
    ("paediatric-ophthalmology", "pas", 0, 17, 2),
    ("paediatric-ent", "pas", 1, 17, 2.5),
    ("paediatric-dermatology", "pas", 0, 17, 2),
    ("fracture-clinic", "pas", 2, 45, 2),
    ("paediatric-dental", "pas", 2, 17, 2),
    ("transition-clinic", "pas", 16, 25, 1),
    ("adult-learning-disability", "pas", 18, 45, 1),
    ("community-paediatrics", "community-ehr", 0, 17, 5),
    ("speech-and-language-therapy", "community-ehr", 1, 12, 3),
    ("paediatric-physiotherapy", "community-ehr", 0, 17, 2),
    ("occupational-therapy", "community-ehr", 2, 17, 1.5),
    ("camhs", "community-ehr", 5, 17, 3),
    ("health-visiting", "community-ehr", 0, 4, 4),
    ("school-nursing", "community-ehr", 5, 17, 3),
]

SERVICE_SOURCE = {name: source for name, source, *_ in SERVICES}
ATTENDANCE_CODES = {
    "attended": "5",
    "attended-late": "6",
    "late-not-seen": "7",
    "did-not-attend": "3",
    "cancelled-by-patient": "2",
    "cancelled-by-provider": "4",
    "booked": "0",
}
MISSED = ("did-not-attend", "late-not-seen")


def nhs_numbers(count: int, first_prefix: int = 999_000_001) -> list[str]:
    """`count` synthetic NHS numbers: 999 prefixes in sequence with a valid Modulus 11 check digit."""
    found: list[str] = []
    prefix = first_prefix
    while len(found) < count:
        digits = f"{prefix:09d}"
        if not digits.startswith("999"):
            raise ValueError("ran out of synthetic 999 NHS numbers")
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check != 10:
            found.append(digits + str(check))
        prefix += 1
    return found


@dataclass
class Person:
    nhs_number: str
    born: date
    adult: bool
    dna_rate: float
    services: list[str]
    statuses: list[dict[str, Any]] = field(default_factory=list)
    complex_health_needs: bool = False
    care_and_support_needs: bool = False


@dataclass
class Line:
    """One line of the events file, with the moment it reaches wnb (the file is sorted by that)."""

    received: datetime
    order: int
    text: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(LONDON).isoformat(timespec="seconds")


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class Generator:
    def __init__(self, events: int, children: int, seed: int):
        self.target = events
        self.children = children
        self.rng = random.Random(seed)
        self.working_days = [d for d in (YEAR_START + timedelta(days=i) for i in range(YEAR_DAYS)) if is_working_day(d)]
        self.event_ids = {"pas": 0, "community-ehr": 0}
        self.lines: list[Line] = []
        self.order = 0
        self.kinds: Counter[str] = Counter()  # what was written, for the report

    # ---- people ----

    def _eligible(self, age: int) -> tuple[list[str], list[float]]:
        names, weights = [], []
        for name, _source, low, high, weight in SERVICES:
            if low <= age <= high:
                names.append(name)
                weights.append(weight)
        return names, weights

    def people(self) -> list[Person]:
        rng = self.rng
        adults = max(1, self.children // 20)
        numbers = nhs_numbers(self.children + adults)
        people = []
        for index, number in enumerate(numbers):
            adult = index >= self.children
            if adult:
                born = YEAR_START - timedelta(days=rng.randint(18 * 365 + 5, 45 * 365))
            else:
                born = YEAR_START - timedelta(days=rng.randint(14, 18 * 365 - 2))
            age = _age_on(born, YEAR_START)
            bucket = rng.random()
            dna_rate = 0.04 if bucket < 0.65 else 0.14 if bucket < 0.90 else 0.33
            person = Person(number, born, adult, dna_rate, [])
            if not adult:
                draw = rng.random()
                if draw < 0.010:
                    kind = "child-protection-plan" if rng.random() < 0.55 else "looked-after"
                    start = YEAR_START - timedelta(days=rng.randint(0, 3 * 365))
                    start = max(start, born)
                    end = None
                    if rng.random() < 0.3:
                        end = start + timedelta(days=rng.randint(60, 700))
                    person.statuses.append(
                        {"kind": kind, "start": start.isoformat(), "end": end.isoformat() if end else None}
                    )
                    person.dna_rate = max(person.dna_rate, 0.14 if rng.random() < 0.6 else 0.33)
                elif draw < 0.040:
                    kind = "child-in-need" if rng.random() < 0.5 else "early-help"
                    start = max(born, YEAR_START - timedelta(days=rng.randint(-200, 2 * 365)))
                    end = start + timedelta(days=rng.randint(90, 540)) if rng.random() < 0.4 else None
                    person.statuses.append(
                        {"kind": kind, "start": start.isoformat(), "end": end.isoformat() if end else None}
                    )
                person.complex_health_needs = rng.random() < 0.04
            else:
                person.care_and_support_needs = rng.random() < 0.20
            names, weights = self._eligible(age)
            wanted = 1 + (rng.random() < 0.45) + (rng.random() < 0.15) + person.complex_health_needs
            while len(person.services) < min(wanted, len(names)):
                pick = rng.choices(names, weights)[0]
                if pick not in person.services:
                    person.services.append(pick)
            people.append(person)
        return people

    def context_record(self, person: Person) -> dict[str, Any]:
        rng = self.rng
        contacts: dict[str, Any] = {"gp_practice": f"Y{rng.randint(1, 420):05d} Practice {rng.randint(1, 420)}"}
        if not person.adult:
            if _age_on(person.born, YEAR_START) < 5:
                contacts["health_visitor"] = f"Health visiting team {rng.randint(1, 40)}"
            else:
                contacts["school_nurse"] = f"School nursing team {rng.randint(1, 60)}"
        for status in person.statuses:
            if status["kind"] in ("child-protection-plan", "looked-after", "child-in-need"):
                contacts["social_worker"] = f"Social worker {rng.randint(1, 900)}, Children's Services"
            else:
                contacts["lead_professional"] = f"Early help practitioner {rng.randint(1, 300)}"
        return {
            "nhs_number": person.nhs_number,
            "date_of_birth": person.born.isoformat(),
            "statuses": [{k: v for k, v in s.items() if v is not None} for s in person.statuses],
            "complex_health_needs": person.complex_health_needs,
            "care_and_support_needs": person.care_and_support_needs,
            "contacts": contacts,
        }

    # ---- events ----

    def _event_id(self, source: str) -> str:
        self.event_ids[source] += 1
        prefix = "pas" if source == "pas" else "ehr"
        return f"{prefix}-{self.event_ids[source]:07d}"

    def _add(self, received: datetime, record: dict[str, Any] | str) -> str:
        text = record if isinstance(record, str) else json.dumps(record)
        self.lines.append(Line(received, self.order, text))
        self.order += 1
        return text

    def _outcome(self, person: Person) -> str:
        draw = self.rng.random()
        p = person.dna_rate
        if draw < p:
            return "did-not-attend"
        if draw < p + 0.02:
            return "late-not-seen"
        if draw < p + 0.07:
            return "cancelled-by-patient"
        if draw < p + 0.12:
            return "cancelled-by-provider"
        if draw < p + 0.15:
            return "attended-late"
        return "attended"

    def slot(self, person: Person) -> tuple[str, datetime]:
        """A service and a clinic slot (a working day, 08:00-16:45 London time) for one appointment."""
        rng = self.rng
        service = rng.choice(person.services)
        day = rng.choice(self.working_days)
        if day <= person.born:
            day = person.born + timedelta(days=rng.randint(1, 30))
        slot = time(8 + rng.randint(0, 8), rng.choice((0, 15, 30, 45)))
        return service, datetime.combine(day, slot, tzinfo=LONDON)

    def appointment(self, person: Person, service: str, at: datetime, first: bool) -> int:
        """The lines of one appointment (booking, outcome, correction...); returns how many were added."""
        rng = self.rng
        source = SERVICE_SOURCE[service]
        appointment_id = f"{'A' if source == 'pas' else 'C'}{self.order:08d}"
        base: dict[str, Any] = {"source": source, "nhs_number": person.nhs_number}
        if source == "pas":
            base["date_of_birth"] = person.born.isoformat()
        base.update(service=service, appointment_id=appointment_id, appointment_at=_iso(at))
        if source == "pas":
            draw = rng.random()
            base["priority"] = "routine" if draw < 0.88 else "urgent" if draw < 0.97 else "two-week-wait"
            if rng.random() < 0.15:
                base["priority"] = {"routine": "1", "urgent": "2", "two-week-wait": "3"}[base["priority"]]
            base["first_appointment"] = first

        def event(attendance: str, recorded: datetime, **extra: Any) -> dict[str, Any]:
            shown = (
                ATTENDANCE_CODES.get(attendance, attendance) if source == "pas" and rng.random() < 0.3 else attendance
            )
            record = {
                "event_id": self._event_id(source),
                **base,
                "attendance": shown,
                **extra,
                "recorded_at": _iso(recorded),
            }
            record = {"source": record.pop("source"), **record}
            return record

        def delay(low_minutes: float, high_minutes: float) -> timedelta:
            return timedelta(minutes=rng.uniform(low_minutes, high_minutes))

        added = 0
        outcome = self._outcome(person)
        if outcome in ("cancelled-by-patient", "cancelled-by-provider"):
            recorded = at - timedelta(days=rng.uniform(1, 14 if outcome == "cancelled-by-patient" else 30))
        elif rng.random() < 0.1:
            recorded = at + timedelta(days=1) + delay(0, 240)
        else:
            recorded = at + delay(20, 300)
        booked = rng.random() < 0.35
        if booked:
            booked_at = min(at, recorded) - timedelta(days=rng.uniform(7, 60))
            self._add(booked_at + delay(1, 120), event("booked", booked_at))
            self.kinds["booked (later superseded or left booked)"] += 1
            added += 1
        if recorded >= YEAR_END_UTC:
            return added  # the outcome falls after the year: the appointment stays booked (or was never sent)
        extra: dict[str, Any] = {}
        if outcome in ("attended", "attended-late"):
            draw = rng.random()
            if draw < 0.15:
                extra["outcome"] = "discharged"
            elif draw < 0.70:
                extra["outcome"] = "another-appointment" if rng.random() < 0.8 else "2"
            elif draw < 0.80:
                extra["outcome"] = "appointment-to-be-made-later"
        elif outcome in MISSED:
            draw = rng.random()
            if draw < 0.05:
                extra["outcome"] = "discharged"
            elif draw < 0.45:
                extra["outcome"] = "another-appointment"
        received = recorded + delay(1, 180)
        self._add(received, event(outcome, recorded, **extra))
        self.kinds[f"outcome {outcome}"] += 1
        added += 1
        if outcome in MISSED and rng.random() < 0.03:  # a clerk corrects a wrongly recorded miss
            fixed = recorded + timedelta(days=rng.uniform(0.5, 3))
            self._add(fixed + delay(1, 120), event("attended", fixed))
            self.kinds["correction missed -> attended"] += 1
            added += 1
        elif rng.random() < 0.001:  # the appointment was recorded in error
            withdrawn = recorded + timedelta(days=rng.uniform(0.5, 5))
            self._add(withdrawn + delay(1, 120), event("entered-in-error", withdrawn))
            self.kinds["entered-in-error"] += 1
            added += 1
        elif rng.random() < 0.002:  # an old booking arrives late from a re-run extract: stale
            self._add(
                received + timedelta(hours=rng.uniform(1, 72)),
                event("booked", recorded - timedelta(days=rng.uniform(2, 20))),
            )
            self.kinds["late stale booking"] += 1
            added += 1
        return added

    def invalid(self, people: list[Person], index: int) -> None:
        rng = self.rng
        person = rng.choice(people)
        day = rng.choice(self.working_days)
        at = datetime.combine(day, time(10, 0), tzinfo=LONDON)
        received = at + timedelta(hours=rng.uniform(1, 8))
        record: dict[str, Any] = {
            "source": "pas",
            "event_id": f"pas-bad-{index:06d}",
            "nhs_number": person.nhs_number,
            "service": "paediatric-outpatients",
            "appointment_id": f"BAD{index:06d}",
            "appointment_at": _iso(at),
            "attendance": "did-not-attend",
            "recorded_at": _iso(received),
        }
        kind = index % 8
        if kind == 0:
            digits = person.nhs_number
            record["nhs_number"] = digits[:9] + str((int(digits[9]) + 1) % 10)  # wrong check digit
        elif kind == 1:
            record["attendance"] = rng.choice(["9", "no-show", "DNA"])
        elif kind == 2:
            record["appointment_at"] = f"{day.isoformat()} 25:61"
        elif kind == 3:
            record["clinic_code"] = f"CL{rng.randint(1, 99)}"
        elif kind == 4:
            record["date_of_birth"] = (day + timedelta(days=rng.randint(1, 400))).isoformat()
        elif kind == 5:
            text = json.dumps(record)
            self._add(received, text[: rng.randint(10, len(text) - 5)])  # a truncated line
            return
        elif kind == 6:
            del record["nhs_number"]
        else:
            record["priority"] = "very-urgent"
        self._add(received, record)

    def run(self, out: Path, progress: bool = True) -> dict[str, Any]:
        rng = self.rng
        out.mkdir(parents=True, exist_ok=True)
        people = self.people()
        with (out / "context.ndjson").open("w", encoding="utf-8") as handle:
            for person in people:
                handle.write(json.dumps(self.context_record(person)) + "\n")
        duplicates = round(self.target * 0.015)
        invalid = round(self.target * 0.005)
        base_target = self.target - duplicates - invalid
        # How often each person is seen: heavy-tailed, more for infants and children with complex needs.
        weights = []
        for person in people:
            weight = rng.lognormvariate(0, 0.8)
            if _age_on(person.born, YEAR_START) < 1 or person.complex_health_needs:
                weight *= 2
            weights.append(weight)
        cumulative = []
        total = 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        # Slots for a few more appointments than needed (~1.33 lines each); a new referral's earliest
        # appointment in a service is its first appointment.
        slots = []
        for _ in range(int(base_target / 1.2) + 100):
            person = people[bisect.bisect_left(cumulative, rng.random() * total)]
            slots.append((person, *self.slot(person)))
        first: set[int] = set()
        seen: set[tuple[str, str]] = set()
        for index in sorted(range(len(slots)), key=lambda i: slots[i][2]):
            person, service, _at = slots[index]
            if (person.nhs_number, service) not in seen:
                seen.add((person.nhs_number, service))
                if rng.random() < 0.4:
                    first.add(index)
        made = 0
        next_report = 50_000
        for index, (person, service, at) in enumerate(slots):
            if made >= base_target:
                break
            made += self.appointment(person, service, at, index in first)
            if progress and made >= next_report:
                print(f"[generate] {made:,} events", file=sys.stderr, flush=True)
                next_report += 50_000
        if made < base_target:
            raise RuntimeError("not enough appointment slots generated; raise the oversampling")
        del self.lines[base_target:]  # the last appointment may have overshot by a line or two
        base = list(self.lines)
        for _ in range(duplicates):  # a whole extract re-sent: the same line again, later
            original = rng.choice(base)
            self._add(original.received + timedelta(hours=rng.uniform(2, 24 * 7)), original.text)
        for index in range(invalid):
            self.invalid(people, index)
        self.lines.sort(key=lambda line: (line.received, line.order))
        with (out / "events.ndjson").open("w", encoding="utf-8") as handle:
            for line in self.lines:
                handle.write(line.text + "\n")
        outcomes = sum(n for kind, n in self.kinds.items() if kind.startswith("outcome "))
        people_seen = len({json.loads(line.text).get("nhs_number") for line in base})
        return {
            "events": len(self.lines),
            "people_with_events": people_seen,
            "outcome_mix_percent": {
                kind.removeprefix("outcome "): round(100 * n / outcomes, 2)
                for kind, n in sorted(self.kinds.items())
                if kind.startswith("outcome ")
            },
            "lines_by_kind": {k: v for k, v in sorted(self.kinds.items()) if not k.startswith("outcome ")},
            "children_with_plan_or_looked_after": sum(
                any(s["kind"] in ("child-protection-plan", "looked-after") for s in p.statuses) for p in people
            ),
            "children_in_need_or_early_help": sum(
                any(s["kind"] in ("child-in-need", "early-help") for s in p.statuses) for p in people
            ),
            "complex_health_needs": sum(p.complex_health_needs for p in people),
            "adults_with_care_needs": sum(p.care_and_support_needs for p in people),
            "people": len(people),
            "children": self.children,
            "adults": len(people) - self.children,
            "duplicates_written": duplicates,
            "invalid_written": invalid,
        }


def generate(events: int, children: int, seed: int, out: Path, progress: bool = True) -> dict[str, Any]:
    return Generator(events, children, seed).run(out, progress)
