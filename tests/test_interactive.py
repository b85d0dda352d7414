"""The pure edit functions and the Session driven by scripted input (no terminal, no model but a scripted one)."""

import pytest
from scripted_engine import ScriptedEngine

from goalcover_hf.checks import Checker
from goalcover_hf.decompose import Proposer
from goalcover_hf.interactive import Session, render_list
from goalcover_hf.spec import GoalSpec, add, delete, edit, merge, move, split


@pytest.fixture
def four(spec) -> GoalSpec:
    return add(add(spec, {"name": "Plain language", "description": "Avoids jargon a patient would not know."}),
               {"name": "Cites a source", "description": "Refers to a drug label or guideline."})


def ids(spec):
    return [s.id for s in spec.subgoals]


def test_edit_changes_fields_keeps_id_and_refuses_bad_values(spec):
    out = edit(spec, 0, description="Gives a dose with units and frequency.", mid="A dose without units.", low="")
    s = out.subgoals[0]
    assert s.id == "states_dose" and s.mid == "A dose without units." and s.low == ""
    assert s.high == spec.subgoals[0].high and out.meta == spec.meta
    with pytest.raises(ValueError, match="name must not be empty"):
        edit(spec, 0, name=" ")
    with pytest.raises(ValueError, match="already used"):
        edit(spec, 0, id="warns_side_effects")
    with pytest.raises(ValueError, match="not a valid id"):
        edit(spec, 0, id="Bad Id")


def test_add_delete_move(four):
    assert ids(four) == ["states_dose", "warns_side_effects", "plain_language", "cites_a_source"]
    assert ids(delete(four, 1)) == ["states_dose", "plain_language", "cites_a_source"]
    assert ids(move(four, 3, 0)) == ["cites_a_source", "states_dose", "warns_side_effects", "plain_language"]
    one = GoalSpec(goal="g", subgoals=[four.subgoals[0]])
    with pytest.raises(ValueError, match="at least one"):
        delete(one, 0)


def test_split_replaces_in_place(four):
    out = split(four, 1, [{"name": "Names a side effect", "description": "Names one side effect."},
                          {"name": "Says how common", "description": "Says how often it happens."}])
    assert ids(out) == ["states_dose", "names_a_side_effect", "says_how_common", "plain_language", "cites_a_source"]
    with pytest.raises(ValueError, match="at least two"):
        split(four, 1, [{"name": "Only", "description": "One."}])
    with pytest.raises(ValueError, match="part 2"):
        split(four, 1, [{"name": "A", "description": "a"}, {"name": "", "description": "b"}])


def test_merge_keeps_first_place_and_id(four):
    out = merge(four, [3, 1], name="Safety", description="Warns about a risk and its source.")
    assert ids(out) == ["states_dose", "warns_side_effects", "plain_language"]
    assert out.subgoals[1].name == "Safety" and out.subgoals[1].description.startswith("Warns about a risk")
    with pytest.raises(ValueError, match="two different"):
        merge(four, [1, 1])


def test_render_list_shows_findings_beside_their_subgoal(four):
    dup = add(four, {"name": "Gives a dose", "description": "The answer gives a dose with units."})
    text = render_list(dup, Checker(None).run(dup))
    block = text.split("\n 5. ")[1]
    assert "overlap" in block and "with 1. 'States a dose'" in block and "(merge 1 5)" in block


def scripted(lines, transcript):
    feed = iter(lines)

    def ask(prompt):
        transcript.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return ask


def session(spec, lines, tmp_path, **kw):
    out = []
    s = Session(spec, kw.pop("checker", Checker(None)), output=tmp_path / "goal.yaml", ask=scripted(lines, out),
                say=out.append, **kw)
    return s, s.run(), "\n".join(out)


def test_session_edit_accept_save(spec, tmp_path):
    s, result, text = session(spec, ["edit 1 mid", "A dose without units.", "accept 2", "save"], tmp_path)
    saved = GoalSpec.load(tmp_path / "goal.yaml")
    assert result is not None and saved.subgoals[0].mid == "A dose without units."
    assert saved.meta["reviewed"] == ["states_dose", "warns_side_effects"]
    assert saved.meta["checks"]["ran"] == ["atomic", "evaluable", "overlap"]


def test_session_never_replaces_a_file_without_confirmation(spec, tmp_path):
    target = tmp_path / "goal.yaml"
    target.write_text("mine")
    _, result, text = session(spec, ["save", "n", "quit", "y"], tmp_path)
    assert result is None and target.read_text() == "mine" and "Not saved" in text
    _, result, _ = session(spec, ["save", "y"], tmp_path)
    assert result is not None and GoalSpec.load(target).goal == spec.goal


def test_session_quit_asks_before_discarding(spec, tmp_path):
    _, result, text = session(spec, ["delete 2", "quit", "n", "undo", "save"], tmp_path)
    assert "Quit and discard" in text
    assert ids(GoalSpec.load(tmp_path / "goal.yaml")) == ["states_dose", "warns_side_effects"]


def test_session_keeps_a_draft_when_input_ends(spec, tmp_path):
    (tmp_path / "goal.draft.yaml").write_text("an older draft")
    _, result, text = session(spec, ["delete 1"], tmp_path)
    assert result is None and (tmp_path / "goal.draft.yaml").read_text() == "an older draft"
    assert ids(GoalSpec.load(tmp_path / "goal.draft2.yaml")) == ["warns_side_effects"]
    assert not (tmp_path / "goal.yaml").exists()


def test_session_reports_bad_commands_and_goes_on(spec, tmp_path):
    _, result, text = session(spec, ["delete 9", "frobnicate", "merge 1", "save"], tmp_path)
    assert "from 1 to 2" in text and "unknown command" in text and "at least two" in text
    assert result is not None


def test_session_regen_and_model_checks_with_a_scripted_model(spec, tmp_path):
    engine = ScriptedEngine({
        "ProposedSubgoal": {"id": "names_interaction", "name": "Names an interaction",
                            "description": "The answer names a drug that interacts.", "low": "None.",
                            "mid": "Vague.", "high": "Specific drug."},
        "SubgoalReview": lambda user: {"atomic_reason": "one", "atomic": "yes", "evaluable_reason": "why",
                                       "evaluable": "no" if "interacts" in user else "yes"},
        "CoverageReview": {"missing": "pregnancy warnings", "covered": "no"},
    })
    s, result, text = session(spec, ["regen 2 about interactions", "save"], tmp_path,
                              checker=Checker(engine), proposer=Proposer(engine))
    saved = GoalSpec.load(tmp_path / "goal.yaml")
    assert ids(saved) == ["states_dose", "names_interaction"]
    assert "about interactions" in [u for name, u in engine.calls if name == "ProposedSubgoal"][0]
    findings = saved.meta["checks"]["findings"]
    assert (findings[0]["check"], findings[0]["subgoals"], findings[0]["source"]) == (
        "evaluable", ["names_interaction"], "model")
    assert findings[-1]["check"] == "coverage" and "pregnancy" in findings[-1]["message"]
    assert saved.meta["checks"]["model"] == "scripted-engine@test"
    assert "pregnancy warnings" in text  # shown in the session, not only saved
