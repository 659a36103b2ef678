"""Registry fidelity: is ``data/design`` a faithful transcription of the registry record, and
is every oddity of the record explained by a curated finding?

Two kinds of result:

* **mismatches** — the design says something the registry does not (a label, a dose text or
  a criterion that is not in the record, an arm missing, a finding quoting a line wrongly).
  A faithful design has none.
* **signals** — automatic detections of the registry's own problems (doses of one substance
  that differ by an order of magnitude, a route the product is not licensed for, a group
  listing an extra intervention, trait names spelt differently, a decimal comma, a fixed
  adult dose applied to children, a weight-based dose that does not say which body weight or
  up to what maximum, ...). Every signal must be explained by a finding in
  ``registry_findings.yaml`` (its ``signals`` list), and every signal a finding claims must
  still be detected; either failure is reported, so findings and checks cannot drift apart.

Findings that need judgement (how ``AND ... or`` groups, what "plasminogen deficit" means)
have no automatic signal; their quotes are still checked against the cited lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from palette_core.design.arms import Arm, Component, Dose
from palette_core.design.loader import Design
from palette_core.design.trial import Finding
from palette_core.registry.record import RegistryRecord, normalise, parse_registry

_DECIMAL_COMMA = re.compile(r"(?<![\d,])\d+,\d{1,2}(?!\d)")
#: words by which a dose text would say which body weight it uses, or cap it
_DOSING_WEIGHT_WORDS = re.compile(
    r"\b(ideal|adjusted|lean|actual|total)\s+(body\s+)?weight\b|\bmax(imum)?\b|\bnot\s+exceed",
    re.IGNORECASE,
)
_TRAIT_LIST = re.compile(r"treatable traits \(([^)]*)\)")
#: a per-administration or daily amount differing by this factor or more is a unit error,
#: not a different regimen (therapeutic and prophylactic heparin differ by 4)
DOSE_CONFLICT_RATIO = 10.0


@dataclass(frozen=True)
class Mismatch:
    check: str
    subject: str
    message: str
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Signal:
    key: str
    check: str
    subject: str
    message: str
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class FidelityReport:
    registry_path: str
    mismatches: tuple[Mismatch, ...]
    signals: tuple[Signal, ...]
    uncovered: tuple[Signal, ...]
    stale: tuple[tuple[str, str], ...]  # (finding id, claimed signal key)
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.uncovered or self.stale)

    def problems(self) -> list[str]:
        out = [f"mismatch [{m.check}] {m.subject}: {m.message}" for m in self.mismatches]
        out += [
            f"unexplained signal {sg.key}: {sg.message} (no finding lists it)"
            for sg in self.uncovered
        ]
        out += [
            f"{fid} claims signal {key}, which is no longer detected" for fid, key in self.stale
        ]
        return out

    def findings_table(self) -> pd.DataFrame:
        """One row per finding, in id order, for the book and the CLI."""
        rows = []
        for f in self.findings:
            blocks = [f"{b.arm} ({', '.join(b.age_groups)})" for b in f.blocks_dose]
            rows.append(
                {
                    "id": f.id,
                    "severity": f.severity,
                    "category": f.category,
                    "title": f.title,
                    "registry lines": ", ".join(
                        str(n) for n in sorted({e.line for e in f.evidence})
                    ),
                    "adopted reading": f.adopted_reading,
                    "reading": "proposed" if f.reading_status == "proposed" else "as written",
                    "blocks dose of": "; ".join(blocks) or "-",
                    "detected automatically": "yes" if f.signals else "no (reading)",
                }
            )
        return pd.DataFrame(rows)

    def signals_table(self) -> pd.DataFrame:
        owner = {key: f.id for f in self.findings for key in f.signals}
        return pd.DataFrame(
            [
                {
                    "signal": sg.key,
                    "check": sg.check,
                    "detail": sg.message,
                    "registry lines": ", ".join(map(str, sg.lines)),
                    "finding": owner.get(sg.key, "UNEXPLAINED"),
                }
                for sg in self.signals
            ]
        )


def check_fidelity(design: Design, record: RegistryRecord | None = None) -> FidelityReport:
    """Cross-check ``design`` against its registry record (parsed from ``design.registry_path``)."""
    record = record or parse_registry(design.registry_path)
    mismatches: list[Mismatch] = []
    signals: list[Signal] = []
    _arms_vs_groups(design, record, mismatches, signals)
    _texts(design, record, mismatches)
    _trait_names(design, record, mismatches, signals)
    _evidence(design, record, mismatches)
    _dose_signals(design, signals)
    _decimal_commas(record, signals)
    detected = {sg.key for sg in signals}
    claimed = {key: f.id for f in design.findings for key in f.signals}
    return FidelityReport(
        registry_path=str(record.path),
        mismatches=tuple(mismatches),
        signals=tuple(sorted(signals, key=lambda x: x.key)),
        uncovered=tuple(sg for sg in sorted(signals, key=lambda x: x.key) if sg.key not in claimed),
        stale=tuple(sorted((fid, key) for key, fid in claimed.items() if key not in detected)),
        findings=design.findings,
    )


# ----------------------------------------------------------------------------- checks
def _arms_vs_groups(d: Design, r: RegistryRecord, mm: list[Mismatch], sig: list[Signal]) -> None:
    matched: dict[int, str] = {}  # label line of a registry group -> the arm transcribing it
    for arm in d.arms:
        g = r.group(arm.registry.label)
        if g is None:
            mm.append(
                Mismatch(
                    "arm-label",
                    arm.id,
                    f"group label {arm.registry.label!r} is not in the registry",
                )
            )
            continue
        if g.label_line in matched:
            mm.append(
                Mismatch(
                    "duplicate-arm",
                    arm.id,
                    f"registry group {g.label!r} is already transcribed by arm {matched[g.label_line]!r}",
                    (g.label_line,),
                )
            )
            continue
        matched[g.label_line] = arm.id
        expected = "ACTIVE_COMPARATOR" if arm.role == "control" else "EXPERIMENTAL"
        if g.group_type != expected:
            mm.append(
                Mismatch(
                    "group-type",
                    arm.id,
                    f"registry group type {g.group_type}, design role {arm.role}",
                    (g.label_line,),
                )
            )
        names = [i.name for i in g.interventions]
        item = next(
            (
                i
                for i in g.interventions
                if normalise(i.name) == normalise(arm.registry.intervention)
            ),
            None,
        )
        if item is None:
            mm.append(
                Mismatch(
                    "arm-intervention",
                    arm.id,
                    f"intervention {arm.registry.intervention!r} not among {names}",
                    (g.label_line,),
                )
            )
            continue
        if normalise(item.text) != normalise(arm.registry.text):
            mm.append(
                Mismatch(
                    "arm-text", arm.id, "dose text differs from the registry", (item.text_line,)
                )
            )
        extra = [i for i in g.interventions if i is not item]
        if extra:
            sig.append(
                Signal(
                    f"group_extra_intervention:{arm.id}",
                    "group lists another intervention",
                    arm.id,
                    f"the group also lists {[i.name for i in extra]}",
                    tuple(i.name_line for i in extra),
                )
            )
        listed = [i for i in r.interventions if normalise(i.name) == normalise(item.name)]
        if not listed:
            mm.append(
                Mismatch(
                    "intervention-list",
                    arm.id,
                    f"{item.name!r} is missing from the registry's Interventions list",
                    (item.name_line,),
                )
            )
        elif all(normalise(i.text) != normalise(item.text) for i in listed):
            sig.append(
                Signal(
                    f"arm_text_differs_from_list:{arm.id}",
                    "arm text differs from intervention list",
                    arm.id,
                    f"{item.name!r}: the arm list and the intervention list give different texts",
                    (item.text_line, *(i.text_line for i in listed)),
                )
            )
    for g in r.groups:
        if g.label_line not in matched:
            mm.append(
                Mismatch(
                    "missing-arm",
                    g.label,
                    "registry group has no arm in arms.yaml",
                    (g.label_line,),
                )
            )
    for grp in d.shared_effect_groups:
        texts = {normalise(d.arm(a).registry.text) for a in grp.arms}
        names = {normalise(d.arm(a).registry.intervention) for a in grp.arms}
        if len(texts) > 1 or len(names) > 1:
            mm.append(
                Mismatch(
                    "shared-group",
                    grp.id,
                    "arms of a shared-effect group must be the same registry intervention and text",
                )
            )


def _texts(d: Design, r: RegistryRecord, mm: list[Mismatch]) -> None:
    # criteria and trait rules are whole registry lines: a shortened criterion is a mismatch
    el = d.eligibility
    whole = [("trait", t.id, t.registry_text) for t in d.traits]
    whole += [("criterion", c.id, c.registry_text) for c in el.inclusion + el.exclusion]
    whole.append(("field", "minimum_age", el.fields.minimum_age.registry_text))
    for kind, subject, text in whole:
        if not r.has_line(text):
            mm.append(
                Mismatch(
                    f"{kind}-text", subject, f"not a whole line of the registry: {text[:80]!r}"
                )
            )
    checks: list[tuple[str, str, str]] = []
    checks.append(("trial", "arms_per_trait", d.trial.arms_per_trait.registry_text))
    t = d.trial
    for name, value in [
        ("registry_id", t.registry_id),
        ("org_study_id", t.org_study_id),
        ("phase", t.phase),
        ("recruitment_status", t.recruitment_status),
        ("enrollment", f"{t.enrollment} participants"),
        ("study_start", t.study_start.isoformat()),
        ("study_completion", t.study_completion.isoformat()),
        ("last_updated", t.last_updated.isoformat()),
        ("allocation", t.allocation),
        ("intervention_model", t.intervention_model),
        ("masking", t.masking),
        ("primary_purpose", t.primary_purpose),
        ("title", t.title),
        ("sponsor", t.sponsor),
        *[("contacts", c) for c in t.contacts],
    ]:
        checks.append(("trial", name, value))
    for kind, subject, text in checks:
        if not r.contains(text):
            mm.append(
                Mismatch(f"{kind}-text", subject, f"text not found in the registry: {text[:80]!r}")
            )


def _trait_name(text: str) -> str:
    """The trait name at the start of a label or criterion: before ':' and any '(adults)'."""
    return re.sub(r"\s*\(.*?\)\s*$", "", text.split(":", 1)[0].strip()).strip()


def _trait_names(d: Design, r: RegistryRecord, mm: list[Mismatch], sig: list[Signal]) -> None:
    used: dict[str, dict[str, list[int]]] = {t.id: {} for t in d.traits}
    alias = {normalise(n).casefold(): t.id for t in d.traits for n in t.registry_names}

    def use(trait_id: str, name: str, line: int) -> None:
        used[trait_id].setdefault(name, []).append(line)

    for arm in d.arms:
        g = r.group(arm.registry.label)
        if g is not None:
            use(arm.trait, g.trait_label, g.label_line)
    for t in d.traits:
        lines = r.find(t.registry_text.split(":", 1)[0])
        use(t.id, _trait_name(t.registry_text), lines[0] if lines else 0)
    for n, line in enumerate(r.lines, start=1):
        for m in _TRAIT_LIST.finditer(line):
            for name in (x.strip() for x in m.group(1).split(",")):
                tid = alias.get(normalise(name).casefold())
                if tid is None:
                    mm.append(
                        Mismatch(
                            "trait-name",
                            name,
                            "trait named in the registry is not an alias of any trait",
                            (n,),
                        )
                    )
                else:
                    use(tid, name, n)
    for tid, names in used.items():
        declared = {normalise(n).casefold() for n in d.trait(tid).registry_names}
        for name, lines in names.items():
            if normalise(name).casefold() not in declared:
                mm.append(
                    Mismatch(
                        "trait-name",
                        tid,
                        f"registry name {name!r} is not declared in registry_names",
                        tuple(sorted(lines)),
                    )
                )
        distinct = {normalise(n).casefold() for n in names}
        if len(distinct) > 1:
            sig.append(
                Signal(
                    f"trait_name_variants:{tid}",
                    "trait spelt several ways",
                    tid,
                    f"spellings: {sorted(names)}",
                    tuple(sorted({x for ls in names.values() for x in ls})),
                )
            )


def _evidence(d: Design, r: RegistryRecord, mm: list[Mismatch]) -> None:
    for f in d.findings:
        for e in f.evidence:
            if e.line > len(r.lines):
                mm.append(
                    Mismatch(
                        "evidence",
                        f.id,
                        f"line {e.line} is beyond the record ({len(r.lines)} lines)",
                        (e.line,),
                    )
                )
            elif normalise(e.quote) not in normalise(r.line(e.line)):
                mm.append(
                    Mismatch(
                        "evidence", f.id, f"quote not on line {e.line}: {e.quote[:60]!r}", (e.line,)
                    )
                )


def _resolved_child(c: Component) -> tuple[Dose, ...] | None:
    return c.adult if c.child == "same_as_adult" else c.child


def _daily_amount(d: Design, dose: Dose) -> float:
    """Amount per day in the canonical unit, per basis (a rough scale for conflict detection)."""
    per_day = {
        "every_n_hours": 24 / (dose.every_hours or 24),
        "once_daily": 1,
        "every_other_day": 0.5,
        "continuous_infusion": 1,
        "daily": 1,
    }[dose.frequency]
    if dose.per == "hour":
        per_day = 24
    elif dose.per == "day":
        per_day = 1
    unit = d.units[d.unit_id(dose.unit)]
    return dose.amount * unit.factor * per_day


def _dose_signals(d: Design, sig: list[Signal]) -> None:
    by_substance: dict[str, list[tuple[Arm, Dose]]] = {}
    for arm in d.experimental_arms():
        open_to = d.arm_age_groups(arm)
        for c in arm.components:
            sub = d.substances[c.substance]
            if c.route is None:
                sig.append(
                    Signal(
                        f"route_not_stated:{arm.id}",
                        "route not stated",
                        arm.id,
                        f"{sub.name}: no route in the registry",
                    )
                )
            elif c.route not in sub.licensed_routes:
                sig.append(
                    Signal(
                        f"route_not_licensed:{arm.id}",
                        "route not licensed",
                        arm.id,
                        f"{sub.name} given {c.route}; licensed {list(sub.licensed_routes)} ({sub.reference})",
                    )
                )
            child = _resolved_child(c)
            if "child" not in open_to and c.child is not None:
                sig.append(
                    Signal(
                        f"child_dose_in_adult_only_trait:{arm.id}",
                        "children's dose in an adult-only arm",
                        arm.id,
                        f"{sub.name}: a children's dose is given but the arm admits {list(open_to)}",
                    )
                )
            if "child" in open_to:
                if c.procedure is not None:
                    sig.append(
                        Signal(
                            f"device_in_children:{arm.id}",
                            "procedure open to children",
                            arm.id,
                            f"{sub.name}: one schedule for all ages, no paediatric specification",
                        )
                    )
                elif child is None:
                    sig.append(
                        Signal(
                            f"no_child_dose:{arm.id}",
                            "no children's dose",
                            arm.id,
                            f"{sub.name}: arm open to children without a children's dose",
                        )
                    )
                elif any(x.basis == "fixed" for x in child):
                    sig.append(
                        Signal(
                            f"fixed_dose_in_children:{arm.id}",
                            "fixed dose for children",
                            arm.id,
                            f"{sub.name}: a fixed dose ({child[0].amount:g} {child[0].unit}) for children of any weight",
                        )
                    )
            for dose in c.adult or ():
                by_substance.setdefault(c.substance, []).append((arm, dose))
            rules = [*(c.adult or ()), *(child or ())]
            by_weight = any(x.basis in ("per_kg", "per_m2") for x in rules)
            if by_weight and not _DOSING_WEIGHT_WORDS.search(arm.registry.text):
                sig.append(
                    Signal(
                        f"dosing_weight_not_stated:{c.substance}",
                        "dosing weight not stated",
                        c.substance,
                        f"{arm.id}, {sub.name}: a dose per kg or per m² with no dosing weight "
                        "and no maximum",
                    )
                )
    for sub_id, doses in by_substance.items():
        for (a1, d1), (a2, d2) in combinations(doses, 2):
            if (
                d1.basis != d2.basis
                or d.units[d.unit_id(d1.unit)].dimension != d.units[d.unit_id(d2.unit)].dimension
            ):
                continue
            x, y = _daily_amount(d, d1), _daily_amount(d, d2)
            ratio = max(x, y) / min(x, y)
            if ratio >= DOSE_CONFLICT_RATIO:
                sig.append(
                    Signal(
                        f"dose_conflict:{sub_id}",
                        "doses of one substance differ by >= 10x",
                        sub_id,
                        f"{a1.id}: {d1.amount:g} {d1.unit} vs {a2.id}: {d2.amount:g} {d2.unit} (ratio {ratio:g})",
                    )
                )
    # one signal per key
    seen: set[str] = set()
    sig[:] = [x for x in sig if not (x.key in seen or seen.add(x.key))]


def _decimal_commas(r: RegistryRecord, sig: list[Signal]) -> None:
    for n, line in enumerate(r.lines, start=1):
        hits = _DECIMAL_COMMA.findall(line)
        if hits:
            sig.append(
                Signal(
                    f"decimal_comma:{n}", "decimal comma", f"line {n}", f"{hits} on line {n}", (n,)
                )
            )
