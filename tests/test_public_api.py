"""The public surface changes only on purpose: it is compared with tests/public_api.txt."""

from __future__ import annotations

from tests.public_api import SNAPSHOT, WRITE_COMMAND, surface


def _qualified(lines: list[str]) -> list[str]:
    """Member lines prefixed with the name they belong to, so a difference reads alone."""
    out, owner = [], ""
    for line in lines:
        if line.startswith("  "):
            out.append(f"{owner} ::{line[1:]}")
        else:
            owner = line.split(":")[0]
            out.append(line)
    return out


def difference(snapshot: list[str], live: list[str]) -> str:
    """What ``live`` adds to and removes from ``snapshot``, one line each; empty if equal."""
    old, new = _qualified(snapshot), _qualified(live)
    removed = [f"- {line}" for line in old if line not in set(new)]
    added = [f"+ {line}" for line in new if line not in set(old)]
    moved = not removed and not added and old != new
    return "\n".join(removed + added + (["(same names, in another order)"] if moved else []))


def test_the_public_surface_matches_the_snapshot() -> None:
    live = surface()
    snapshot = SNAPSHOT.read_text().splitlines()
    changed = difference(snapshot, live)
    assert not changed, (
        f"dataloop's public surface differs from {SNAPSHOT.name} (- removed, + added):\n"
        f"{changed}\n"
        f"If the change is deliberate, run `{WRITE_COMMAND}`, keep a deprecated alias for a "
        "renamed or removed name, and add a CHANGELOG line."
    )


def test_a_difference_names_the_member_and_its_owner() -> None:
    snapshot = ["dataloop.Policy: class(ABC)", "  method plan(self, obs: Observation) -> Plan"]
    live = ["dataloop.Policy: class(ABC)", "  method plan(self, obs: Observation) -> list"]
    assert difference(snapshot, live).splitlines() == [
        "- dataloop.Policy :: method plan(self, obs: Observation) -> Plan",
        "+ dataloop.Policy :: method plan(self, obs: Observation) -> list",
    ]
    assert difference(snapshot, snapshot) == ""


def test_the_surface_has_no_memory_addresses_and_covers_what_users_extend() -> None:
    text = "\n".join(surface())
    assert " at 0x" not in text
    for line in (
        "dataloop.Policy: class(ABC)",
        "  method requests_for(self, allocation: dict[str, int], strategy: str | None = None)"
        " -> list[GenerationRequest]",
        "dataloop.Strategy: class(ABC)",
        "dataloop.TaskEnvironment: class(ABC)",
        "dataloop.students.Student: class(Protocol)",
        "dataloop run",
        "  option --set: list[str] | None = None",
    ):
        assert line in text.splitlines()
